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
//
// Each slot makes one engine (or ledger) call and emits its result; what the
// results mean for the views (the session run, undo commands) is the
// Document's business. Calls that may change the open model's session emit
// sessionChanged with the engine's session right before their result.
#pragma once

#include "oedit/engine.h"
#include "oedit/runs.h"

#include <QHash>
#include <QList>
#include <QMetaType>
#include <QMutex>
#include <QObject>
#include <QString>
#include <QStringList>

#include <algorithm>
#include <atomic>
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
Q_DECLARE_METATYPE(oedit::Engine::SessionInfo)

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
Q_DECLARE_METATYPE(oedit::runs::FactQuery)
Q_DECLARE_METATYPE(oedit::runs::FactExplanation)
Q_DECLARE_METATYPE(oedit::runs::BlastRadius)
Q_DECLARE_METATYPE(oedit::PromptTraceQuery)
Q_DECLARE_METATYPE(oedit::PromptTrace)

class EngineWorker : public QObject {
    Q_OBJECT
public:
    EngineWorker();
    ~EngineWorker() override;

    // GUI thread, right before queueing a cancellable job (see the top).
    void announceJob() { m_announced.fetch_add(1); }
    // GUI thread, right before queueing a change of the open model or of a
    // ledger (edit, undo, redo, rollback, run): a norm curve being read gives
    // way to it (normGrowthInterrupted) instead of keeping it waiting for the
    // seconds a 100,000-edit run takes.
    void announceWrite() { m_writesAnnounced.fetch_add(1); }
    // GUI thread, right before queueing the read `key` names (readKey): when
    // its turn comes, a read with a later copy queued is skipped, the copy
    // answering it (fresher). Unannounced reads are never skipped.
    void announceRead(const QString &key);
    static QString readKey(const char *kind, const QString &db, qint64 runId, int extra = 0);
    // Safe from any thread: every job announced so far stops at its next
    // progress report (or does not start).
    void requestCancel() { m_cancelUpTo.store(std::max(m_announced.load(), m_started.load())); }

public Q_SLOTS:
    void describeBuild();
    // Opens a model folder; an empty path opens the embedded default model.
    // `allowNonFinite` opens a checkpoint whose weights hold NaN or infinity
    // (with the model's warnings); without it such a checkpoint is refused
    // with openRefusedNonFinite.
    void openModel(const QString &directory, const QString &device, bool allowNonFinite = false);
    void predict(const QString &prompt, int topK);
    // Attaches the open model's session to run `runId` of `db` (0: a new
    // "manual" run); see Engine::attachLedger. Creates the ledger's folder.
    void attachLedger(const QString &db, qint64 runId);
    // Edits the open model. A non-empty `db` is the ledger the session must be
    // attached to (attachLedger first): the edit is refused when it is not,
    // rather than made unrecorded.
    void applyEdit(const QString &db, const oedit::EditSpec &spec);
    void undoLastEdit();
    void redoEdit();

    // Sequential runs in the ledger file `db` (oedit/runs.h). An empty
    // request.modelDir runs on the open model's folder (or the default model).
    void startRun(const QString &db, const oedit::runs::RunRequest &request);
    void listRuns(const QString &db);
    void runReport(const QString &db, qint64 runId);
    // Rolls back through the ledger (the open model follows when it is the
    // session's run). `tag` is echoed in the answer (rolledBack or
    // rollbackRefused) so the caller can match it to its request.
    void rollback(const QString &db, const oedit::runs::RollbackRequest &request, int tag);
    void resumeRun(const QString &db, qint64 runId);
    void listEdits(const QString &db, qint64 runId);
    void subspaceReport(const QString &db, qint64 runId, int maxEdits);
    void principalAngles(const QString &db, qint64 editA, qint64 editB);
    void normGrowth(const QString &db, qint64 runId);
    void compareFacts(const QString &db, const QList<qint64> &runIds);
    // The interference explorer (cancellable: announce them with announceJob).
    void explainFact(const QString &db, const oedit::runs::FactQuery &query);
    void blastRadius(const QString &db, qint64 runId, qint64 editId, int top);
    // The causal trace of one prompt on the open model (cancellable).
    void tracePrompt(const oedit::PromptTraceQuery &query);
    // Writes the run's checkpoint metrics as CSV (through a temporary file).
    void exportCsv(const QString &db, qint64 runId, const QString &path);
    // Writes the run's current weights as a checkpoint folder.
    void exportModel(const QString &db, qint64 runId, const QString &directory);

Q_SIGNALS:
    void buildDescribed(const BuildSummary &summary);
    void modelOpened(const oedit::ModelInfo &info);
    // The checkpoint was refused for weights that are not numbers (after no
    // `failed`): the window may offer to open it anyway.
    void openRefusedNonFinite(const QString &directory, const QString &device, const QString &message);
    // applyEdit refused a target the world model has never read (see
    // EditSpec::allowUnfamiliarTarget); the window may ask and send `spec`
    // again with allowUnfamiliarTarget set.
    void editRefusedUnfamiliarTarget(const oedit::EditSpec &spec, const QString &message);
    void predicted(const QString &prompt, const oedit::Prediction &prediction);
    void worldLoaded(const WorldSummary &world);
    void edited(const oedit::EditOutcome &outcome, int editCount);
    void editUndone(int editCount);
    void editRedone(int editCount);
    // The session after a call that may change it (open, attach, edit, undo, redo, rollback).
    void sessionChanged(const oedit::Engine::SessionInfo &session);
    // attachLedger succeeded (after sessionChanged, which a refused attach emits too).
    void ledgerAttached(const QString &db, qint64 runId);
    void progress(long long done, long long total);
    void busyChanged(bool busy, const QString &what);
    void failed(const QString &message);
    void runFinished(const QString &db, const oedit::runs::RunSummary &summary);
    // A run that could not start (after `failed` with the same message).
    void runNotStarted(const QString &db, const QString &message);
    void runsListed(const QString &db, const RunList &runs);
    // After runsListed: whether the ledger can be changed, and why not.
    void ledgerAccessChecked(const QString &db, bool readOnly, const QString &reason);
    void reportReady(const QString &db, const oedit::runs::RunReport &report);
    void rolledBack(const QString &db, const oedit::runs::RollbackInfo &event, qint64 runId, int tag);
    // The rollback tagged `tag` was refused (after `failed`).
    void rollbackRefused(int tag);
    void editsListed(const QString &db, qint64 runId, const EditList &edits);
    void subspaceReady(const QString &db, const oedit::runs::SubspaceReport &report);
    void anglesReady(const QString &db, const oedit::runs::PrincipalAngles &angles);
    void normGrowthReady(const QString &db, qint64 runId, const NormList &series);
    // The norm curve of the run was left unfinished for a write (announceWrite); ask again.
    void normGrowthInterrupted(const QString &db, qint64 runId);
    void factsCompared(const QString &db, const QList<qint64> &runIds, const FactList &facts);
    void factExplained(const QString &db, const oedit::runs::FactExplanation &explanation);
    void promptTraced(const oedit::PromptTrace &trace);
    void blastRadiusReady(const QString &db, const oedit::runs::BlastRadius &radius);
    void exported(const QString &path, const QString &what);
    // Something worth a line in the status bar, no error.
    void notice(const QString &message);

private:
    // Worker thread: numbers the job that starts now; cancelled(id) asks the flag.
    unsigned long long beginJob();
    bool cancelled(unsigned long long job) const { return job <= m_cancelUpTo.load(); }
    // Worker thread: a write starts (never counted ahead of the announcements,
    // so a write nobody announced cannot leave reads interrupted for good).
    void beginWrite() { m_writesStarted.store(std::min(m_writesStarted.load() + 1, m_writesAnnounced.load())); }
    bool writeWaiting() const { return m_writesAnnounced.load() > m_writesStarted.load(); }
    // Worker thread: true when a later copy of the read `key` is queued.
    bool supersededRead(const QString &key);

    std::unique_ptr<oedit::Engine> m_engine;
    std::atomic<unsigned long long> m_announced{0}, m_started{0}, m_cancelUpTo{0};
    std::atomic<unsigned long long> m_writesAnnounced{0}, m_writesStarted{0};
    QMutex m_readsMutex;
    QHash<QString, int> m_readsQueued; // announced reads not yet started, by key
};
