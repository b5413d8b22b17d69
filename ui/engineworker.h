// The one object that owns the engine. It lives in its own QThread; views send
// requests as queued signals and get value types back. No tensor, pointer or
// exception crosses the thread boundary. Cancel is set directly from the GUI
// thread (atomics), read by the engine's progress callbacks.
//
// Cancel and the queue: a cancellable job (edit, run, resume) is announced
// from the GUI thread when it is queued (announceJob), and numbered in that
// order when it starts. requestCancel() cancels every job announced so far,
// so a Cancel pressed after Start but before the worker picked the job up is
// honoured, and never touches a job queued after it.
#pragma once

#include "oedit/engine.h"
#include "oedit/runs.h"

#include <QList>
#include <QMetaType>
#include <QObject>
#include <QString>
#include <QStringList>

#include <algorithm>
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
using EditList = std::vector<oedit::runs::EditEntry>;
using NormList = std::vector<oedit::runs::NormSeries>;
using FactList = std::vector<oedit::runs::FactComparison>;
Q_DECLARE_METATYPE(EditList)
Q_DECLARE_METATYPE(NormList)
Q_DECLARE_METATYPE(FactList)
Q_DECLARE_METATYPE(oedit::runs::SubspaceReport)
Q_DECLARE_METATYPE(oedit::runs::PrincipalAngles)

class EngineWorker : public QObject {
    Q_OBJECT
public:
    EngineWorker();
    ~EngineWorker() override;

    // GUI thread, right before queueing a cancellable job (see the top).
    void announceJob() { m_announced.fetch_add(1); }
    // Safe from any thread: every job announced so far stops at its next
    // progress report (or does not start).
    void requestCancel() { m_cancelUpTo.store(std::max(m_announced.load(), m_started.load())); }

public Q_SLOTS:
    void describeBuild();
    // Opens a model folder; an empty path opens the embedded default model.
    void openModel(const QString &directory, const QString &device);
    void predict(const QString &prompt, int topK);
    // Edits the open model; with a ledger `db`, the edit is also recorded in
    // the ledger as this session's "manual" run (sessionRecorded), so History
    // lists it and rollbacks of that run reach the open model.
    void applyEdit(const QString &db, const oedit::EditSpec &spec);
    void undoLastEdit();
    // Makes the open model the active edits of run `runId` of `db` (a run
    // made on this model folder) and that run the session's, so further
    // Facts edits are appended to it. On failure the open model is unchanged.
    void continueRun(const QString &db, qint64 runId);

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
    void resumeRun(const QString &db, qint64 runId);
    void listEdits(const QString &db, qint64 runId);
    void subspaceReport(const QString &db, qint64 runId, int maxEdits);
    void principalAngles(const QString &db, qint64 editA, qint64 editB);
    void normGrowth(const QString &db, qint64 runId);
    void compareFacts(const QString &db, const QList<qint64> &runIds);
    // Writes the run's checkpoint metrics as CSV (through a temporary file).
    void exportCsv(const QString &db, qint64 runId, const QString &path);
    // Writes the run's current weights as a checkpoint folder.
    void exportModel(const QString &db, qint64 runId, const QString &directory);

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
    void editsListed(const QString &db, qint64 runId, const EditList &edits);
    void subspaceReady(const QString &db, const oedit::runs::SubspaceReport &report);
    void anglesReady(const QString &db, const oedit::runs::PrincipalAngles &angles);
    void normGrowthReady(const QString &db, qint64 runId, const NormList &series);
    void factsCompared(const QString &db, const QList<qint64> &runIds, const FactList &facts);
    void exported(const QString &path, const QString &what);
    // The Facts view's edits as a ledger run (after an edit or its undo).
    void sessionRecorded(const QString &db, const oedit::runs::RunSummary &run);
    // The open model was loaded from the session's run in the ledger, after a
    // rollback of that run or continueRun (its edit count).
    void sessionSynced(int editCount);
    // Something worth a line in the status bar, no error.
    void notice(const QString &message);

private:
    // Worker thread: numbers the job that starts now; cancelled(id) asks the flag.
    unsigned long long beginJob();
    bool cancelled(unsigned long long job) const { return job <= m_cancelUpTo.load(); }
    // sessionRecorded for the run the engine's session is attached to, if any.
    void announceSessionRun();

    std::unique_ptr<oedit::Engine> m_engine;
    std::atomic<unsigned long long> m_announced{0}, m_started{0}, m_cancelUpTo{0};
    std::map<int, long long> m_ticketEvents; // rollback ticket -> ledger event id (worker thread only)
};
