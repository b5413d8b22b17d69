// The one object that owns the engine. It lives in its own QThread; views send
// requests as queued signals and get value types back. No tensor, pointer or
// exception crosses the thread boundary. Cancel is an atomic flag set directly
// from the GUI thread, read by the engine's progress callbacks.
#pragma once

#include "oedit/engine.h"
#include "oedit/runs.h"

#include <QMetaType>
#include <QObject>
#include <QString>
#include <QStringList>

#include <atomic>
#include <map>
#include <memory>
#include <vector>

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

// Runs in a ledger travel as the facade's plain structs.
using RunList = std::vector<oedit::runs::RunSummary>;
Q_DECLARE_METATYPE(oedit::runs::RunRequest)
Q_DECLARE_METATYPE(oedit::runs::RunSummary)
Q_DECLARE_METATYPE(RunList)
Q_DECLARE_METATYPE(oedit::runs::RunReport)
Q_DECLARE_METATYPE(oedit::runs::RollbackRequest)
Q_DECLARE_METATYPE(oedit::runs::RollbackInfo)

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

    // Sequential runs in the ledger file `db` (oedit/runs.h). An empty
    // request.modelDir runs on the open model's folder (or the default model).
    void startRun(const QString &db, const oedit::runs::RunRequest &request);
    void listRuns(const QString &db);
    void runReport(const QString &db, qint64 runId);
    // Rolls back through the ledger. Undo commands cannot know an event id
    // before the worker answers, so they name events by tickets: a non-zero
    // `ticket` records the event this call creates; a non-zero `undoTicket`
    // undoes the event recorded under it (request.undoEvent is then ignored).
    // Requests are handled in order, so an undo queued right after its redo
    // always finds the ticket filled.
    void rollback(const QString &db, const oedit::runs::RollbackRequest &request, int ticket, int undoTicket);

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
    void runFinished(const QString &db, const oedit::runs::RunSummary &summary);
    // A run that could not start (after `failed` with the same message).
    void runNotStarted(const QString &db, const QString &message);
    void runsListed(const QString &db, const RunList &runs);
    void reportReady(const QString &db, const oedit::runs::RunReport &report);
    void rolledBack(const QString &db, const oedit::runs::RollbackInfo &event);

private:
    std::unique_ptr<oedit::Engine> m_engine;
    std::atomic<bool> m_cancel{false};
    std::map<int, long long> m_ticketEvents; // rollback ticket -> ledger event id (worker thread only)
};
