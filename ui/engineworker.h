// The one object that owns the engine. It lives in its own QThread; views send
// requests as queued signals and get value types back. No tensor, pointer or
// exception crosses the thread boundary. Cancel is an atomic flag set directly
// from the GUI thread, read by the engine's progress callbacks.
#pragma once

#include "oedit/engine.h"

#include <QMetaType>
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>

struct BuildSummary {
    QString version;
    QString torchVersion;
    QString blas;
    bool cudaAvailable = false;
    QString defaultModel;
};
Q_DECLARE_METATYPE(BuildSummary)
Q_DECLARE_METATYPE(oedit::ModelInfo)
Q_DECLARE_METATYPE(oedit::Prediction)
Q_DECLARE_METATYPE(oedit::EditSpec)
Q_DECLARE_METATYPE(oedit::EditOutcome)

// What the facts view offers for completion: the open model's world, if any.
struct WorldSummary {
    QStringList subjects;
    QStringList canonicalPrompts; // one "{}" template per relation, canonical first
};
Q_DECLARE_METATYPE(WorldSummary)

class EngineWorker : public QObject {
    Q_OBJECT
public:
    EngineWorker();
    ~EngineWorker() override;

    // Safe from any thread: asks the running job to stop at its next progress report.
    void requestCancel() { m_cancel.store(true); }

public Q_SLOTS:
    void describeBuild();
    // Opens a model folder; an empty path opens the embedded default model.
    void openModel(const QString &directory, const QString &device);
    void predict(const QString &prompt, int topK);
    void applyEdit(const oedit::EditSpec &spec);
    void undoLastEdit();

Q_SIGNALS:
    void buildDescribed(const BuildSummary &summary);
    void modelOpened(const oedit::ModelInfo &info);
    void predicted(const QString &prompt, const oedit::Prediction &prediction);
    void worldLoaded(const WorldSummary &world);
    void edited(const oedit::EditOutcome &outcome, int editCount);
    void editUndone(int editCount);
    void progress(long long done, long long total);
    void busyChanged(bool busy, const QString &what);
    void failed(const QString &message);

private:
    std::unique_ptr<oedit::Engine> m_engine;
    std::atomic<bool> m_cancel{false};
};
