// The one object that owns the engine. It lives in its own QThread; views send
// requests as queued signals and get value types back. No tensor, pointer or
// exception crosses the thread boundary. Cancel is an atomic flag set directly
// from the GUI thread, read by the engine's progress callbacks.
#pragma once

#include <QObject>
#include <QString>

#include <atomic>
#include <memory>

namespace oedit {
class Engine;
}

struct BuildSummary {
    QString version;
    QString torchVersion;
    QString blas;
    bool cudaAvailable = false;
    QString defaultModel;
};
Q_DECLARE_METATYPE(BuildSummary)

class EngineWorker : public QObject {
    Q_OBJECT
public:
    EngineWorker();
    ~EngineWorker() override;

    // Safe from any thread: asks the running job to stop at its next progress report.
    void requestCancel() { m_cancel.store(true); }

public Q_SLOTS:
    void describeBuild();

Q_SIGNALS:
    void buildDescribed(const BuildSummary &summary);
    void failed(const QString &message);

private:
    std::unique_ptr<oedit::Engine> m_engine;
    std::atomic<bool> m_cancel{false};
};
