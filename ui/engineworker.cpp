#include "engineworker.h"

#include "oedit/ledger_access.h"
#include "oedit/world.h"

#include <QDir>
#include <QMutexLocker>
#include <QFile>
#include <QFileInfo>
#include <QSaveFile>

EngineWorker::EngineWorker() : m_engine(std::make_unique<oedit::Engine>())
{
    qRegisterMetaType<BuildSummary>();
    qRegisterMetaType<oedit::ModelInfo>();
    qRegisterMetaType<oedit::Prediction>();
    qRegisterMetaType<oedit::EditSpec>();
    qRegisterMetaType<oedit::EditOutcome>();
    qRegisterMetaType<oedit::Engine::SessionInfo>();
    qRegisterMetaType<WorldSummary>();
    qRegisterMetaType<oedit::PromptTraceQuery>();
    qRegisterMetaType<oedit::PromptTrace>();
    qRegisterMetaType<oedit::runs::RunRequest>();
    qRegisterMetaType<oedit::runs::RunSummary>();
    qRegisterMetaType<RunList>();
    qRegisterMetaType<oedit::runs::RunReport>();
    qRegisterMetaType<oedit::runs::RollbackRequest>();
    qRegisterMetaType<oedit::runs::RollbackInfo>();
    qRegisterMetaType<EditList>();
    qRegisterMetaType<NormList>();
    qRegisterMetaType<FactList>();
    qRegisterMetaType<oedit::runs::SubspaceReport>();
    qRegisterMetaType<oedit::runs::PrincipalAngles>();
    qRegisterMetaType<oedit::runs::FactQuery>();
    qRegisterMetaType<oedit::runs::FactExplanation>();
    qRegisterMetaType<oedit::runs::BlastRadius>();
    qRegisterMetaType<QList<qint64>>();
}

unsigned long long EngineWorker::beginJob()
{
    const unsigned long long job = m_started.fetch_add(1) + 1;
    // A job nobody announced still counts, so later announcements line up.
    unsigned long long announced = m_announced.load();
    while (announced < job && !m_announced.compare_exchange_weak(announced, job)) {
    }
    return job;
}

EngineWorker::~EngineWorker() = default;

void EngineWorker::describeBuild()
{
    const oedit::BuildInfo info = oedit::Engine::buildInfo();
    BuildSummary summary;
    summary.version = QString::fromStdString(info.version);
    summary.torchVersion = QString::fromStdString(info.torchVersion);
    summary.blas = QString::fromStdString(info.blas);
    summary.cudaAvailable = info.cudaAvailable;
    summary.defaultModel = QString::fromStdString(oedit::Engine::defaultModelDirectory());
    Q_EMIT buildDescribed(summary);
}

void EngineWorker::openModel(const QString &directory, const QString &device, bool allowNonFinite)
{
    std::string path = directory.toStdString();
    if (path.empty())
        path = oedit::Engine::defaultModelDirectory();
    if (path.empty()) {
        Q_EMIT failed(tr("The embedded default model is not installed. Open a model folder (File > Open Model) "
                         "or build one with 'oedit world' and 'oedit train'."));
        return;
    }
    Q_EMIT busyChanged(true, tr("Opening %1…").arg(QString::fromStdString(path)));
    oedit::OpenOptions options;
    options.device = device.isEmpty() ? std::string("cpu") : device.toStdString();
    options.allowNonFiniteWeights = allowNonFinite;
    const oedit::Status status = m_engine->openModel(path, options);
    Q_EMIT busyChanged(false, QString());
    if (!status && status.kind() == oedit::FailureKind::NonFiniteWeights) {
        Q_EMIT openRefusedNonFinite(QString::fromStdString(path), device, QString::fromStdString(status.message()));
        return;
    }
    if (!status) {
        Q_EMIT failed(QString::fromStdString(status.message()));
        return;
    }
    Q_EMIT sessionChanged(m_engine->session());
    Q_EMIT modelOpened(m_engine->modelInfo());

    // A world model's folder holds its world: offer its subjects and prompts.
    WorldSummary summary;
    if (const auto world = oedit::world::loadWorld(path)) {
        for (const auto &subject : world->subjects)
            summary.subjects << QString::fromStdString(subject.name);
        for (const auto &relation : world->relations)
            summary.canonicalPrompts << QString::fromStdString(relation.templates.front());
    }
    Q_EMIT worldLoaded(summary);
}

void EngineWorker::attachLedger(const QString &db, qint64 runId)
{
    if (!m_engine->hasModel()) {
        Q_EMIT failed(runId != 0 ? tr("Open the model run %1 was made on first (File > Open Model Folder).").arg(runId)
                                 : tr("Open a model first (File > Open Model Folder)."));
        return;
    }
    QDir().mkpath(QFileInfo(db).absolutePath());
    Q_EMIT busyChanged(true, runId != 0 ? tr("Loading run %1 into the open model…").arg(runId)
                                        : tr("Recording edits in %1…").arg(QFileInfo(db).fileName()));
    const oedit::Status status = m_engine->attachLedger(db.toStdString(), runId);
    Q_EMIT busyChanged(false, QString());
    if (!status) {
        if (runId != 0)
            Q_EMIT failed(tr("Cannot continue run %1: %2. The open model is unchanged.")
                              .arg(runId)
                              .arg(QString::fromStdString(status.message())));
        else
            Q_EMIT failed(tr("Edits cannot be recorded in the ledger %1 (%2). Choose a ledger you can write to in "
                             "the Runs tab.")
                              .arg(db, QString::fromStdString(status.message())));
        Q_EMIT sessionChanged(m_engine->session()); // as it was
        return;
    }
    Q_EMIT sessionChanged(m_engine->session());
    Q_EMIT ledgerAttached(db, runId);
    if (runId != 0)
        Q_EMIT notice(tr("Continuing run %1: the open model holds its %n edit(s); edits in the Facts tab are "
                         "appended to it.",
                         nullptr, m_engine->editCount())
                          .arg(runId));
}

void EngineWorker::applyEdit(const QString &db, const oedit::EditSpec &spec)
{
    beginWrite();
    const auto job = beginJob();
    if (cancelled(job)) {
        Q_EMIT notice(tr("Edit cancelled before it started."));
        return;
    }
    if (!db.isEmpty() && QString::fromStdString(m_engine->session().db) != db) {
        Q_EMIT failed(tr("The edit was not made: it could not be recorded in the ledger %1.").arg(db));
        return;
    }
    Q_EMIT busyChanged(true, tr("Editing with %1…").arg(QString::fromStdString(spec.method)));
    const auto outcome = m_engine->applyEdit(spec, [this, job](long long done, long long total) {
        Q_EMIT progress(done, total);
        return !cancelled(job);
    });
    Q_EMIT busyChanged(false, QString());
    if (!outcome && outcome.status().kind() == oedit::FailureKind::UnfamiliarTarget) {
        Q_EMIT editRefusedUnfamiliarTarget(spec, QString::fromStdString(outcome.message()));
        return;
    }
    if (!outcome) {
        Q_EMIT failed(QString::fromStdString(outcome.message()));
        return;
    }
    Q_EMIT sessionChanged(m_engine->session());
    Q_EMIT edited(outcome.value(), m_engine->editCount());
}

void EngineWorker::undoLastEdit()
{
    beginWrite();
    const oedit::Status status = m_engine->undoLastEdit();
    if (!status) {
        Q_EMIT failed(QString::fromStdString(status.message()));
        return;
    }
    Q_EMIT sessionChanged(m_engine->session());
    Q_EMIT editUndone(m_engine->editCount());
}

void EngineWorker::redoEdit()
{
    beginWrite();
    const oedit::Status status = m_engine->redoEdit();
    if (!status) {
        Q_EMIT failed(QString::fromStdString(status.message()));
        return;
    }
    Q_EMIT sessionChanged(m_engine->session());
    Q_EMIT editRedone(m_engine->editCount());
}

void EngineWorker::predict(const QString &prompt, int topK)
{
    const auto prediction = m_engine->predict(prompt.toStdString(), topK, 12);
    if (!prediction) {
        Q_EMIT failed(QString::fromStdString(prediction.message()));
        return;
    }
    Q_EMIT predicted(prompt, prediction.value());
}

void EngineWorker::startRun(const QString &db, const oedit::runs::RunRequest &request)
{
    beginWrite();
    oedit::runs::RunRequest run = request;
    if (run.modelDir.empty())
        run.modelDir = m_engine->hasModel() ? m_engine->modelInfo().path : oedit::Engine::defaultModelDirectory();
    if (run.modelDir.empty()) {
        const QString message = tr("No model to run on: open a model folder first (File > Open Model Folder).");
        Q_EMIT failed(message);
        Q_EMIT runNotStarted(db, message);
        return;
    }
    const auto job = beginJob();
    if (cancelled(job)) {
        const QString message = tr("The run was cancelled before it started; nothing was written.");
        Q_EMIT notice(message);
        Q_EMIT runNotStarted(db, message);
        return;
    }
    Q_EMIT busyChanged(true, tr("Running %1 edits with %2…").arg(run.edits).arg(QString::fromStdString(run.method)));
    const auto result = m_engine->startRun(db.toStdString(), run, [this, job](long long done, long long total) {
        Q_EMIT progress(done, total);
        return !cancelled(job);
    });
    Q_EMIT busyChanged(false, QString());
    if (!result) {
        const QString message = tr("The run could not start: %1").arg(QString::fromStdString(result.message()));
        Q_EMIT failed(message);
        Q_EMIT runNotStarted(db, message);
        return;
    }
    if (result->status == "failed")
        Q_EMIT failed(tr("Run %1 failed: %2. Its edits so far are kept in the ledger.")
                          .arg(result->runId)
                          .arg(QString::fromStdString(result->message)));
    Q_EMIT runFinished(db, result.value());
}

void EngineWorker::listRuns(const QString &db)
{
    const auto runs = oedit::runs::listRuns(db.toStdString());
    if (!runs) {
        Q_EMIT failed(tr("Cannot list the runs: %1").arg(QString::fromStdString(runs.message())));
        return;
    }
    Q_EMIT runsListed(db, runs.value());
    if (const auto access = oedit::runs::ledgerAccess(db.toStdString()))
        Q_EMIT ledgerAccessChecked(db, access->readOnly, QString::fromStdString(access->reason));
}

void EngineWorker::runReport(const QString &db, qint64 runId)
{
    if (supersededRead(readKey("report", db, runId)))
        return;
    const auto report = oedit::runs::runReport(db.toStdString(), runId);
    if (!report) {
        Q_EMIT failed(tr("Cannot read run %1: %2").arg(runId).arg(QString::fromStdString(report.message())));
        return;
    }
    Q_EMIT reportReady(db, report.value());
}

void EngineWorker::rollback(const QString &db, const oedit::runs::RollbackRequest &request, int tag)
{
    beginWrite();
    // The engine brings the open model along when this is its session's run.
    const auto event = m_engine->rollback(db.toStdString(), request);
    if (!event) {
        Q_EMIT failed(tr("Rollback of run %1 failed: %2").arg(request.runId).arg(QString::fromStdString(event.message())));
        Q_EMIT rollbackRefused(tag);
        return;
    }
    Q_EMIT sessionChanged(m_engine->session());
    Q_EMIT rolledBack(db, event.value(), request.runId, tag);
}

void EngineWorker::resumeRun(const QString &db, qint64 runId)
{
    beginWrite();
    const auto job = beginJob();
    if (cancelled(job)) {
        const QString message = tr("Resuming run %1 was cancelled before it started.").arg(runId);
        Q_EMIT notice(message);
        Q_EMIT runNotStarted(db, message);
        return;
    }
    Q_EMIT busyChanged(true, tr("Resuming run %1…").arg(runId));
    const auto result = m_engine->resumeRun(db.toStdString(), runId, [this, job](long long done, long long total) {
        Q_EMIT progress(done, total);
        return !cancelled(job);
    });
    Q_EMIT busyChanged(false, QString());
    if (!result) {
        const QString message =
            tr("Run %1 could not be resumed: %2").arg(runId).arg(QString::fromStdString(result.message()));
        Q_EMIT failed(message);
        Q_EMIT runNotStarted(db, message);
        return;
    }
    if (result->status == "failed")
        Q_EMIT failed(tr("Run %1 failed again: %2. Its edits so far are kept in the ledger.")
                          .arg(result->runId)
                          .arg(QString::fromStdString(result->message)));
    Q_EMIT runFinished(db, result.value());
}

void EngineWorker::listEdits(const QString &db, qint64 runId)
{
    if (supersededRead(readKey("edits", db, runId)))
        return;
    const auto edits = oedit::runs::listEdits(db.toStdString(), runId);
    if (!edits) {
        Q_EMIT failed(tr("Cannot list the edits of run %1: %2").arg(runId).arg(QString::fromStdString(edits.message())));
        return;
    }
    Q_EMIT editsListed(db, runId, edits.value());
}

void EngineWorker::subspaceReport(const QString &db, qint64 runId, int maxEdits)
{
    if (supersededRead(readKey("subspace", db, runId, maxEdits)))
        return;
    const auto report = oedit::runs::subspaceReport(db.toStdString(), runId, maxEdits);
    if (!report) {
        Q_EMIT failed(tr("Cannot compare the updates of run %1: %2")
                          .arg(runId)
                          .arg(QString::fromStdString(report.message())));
        return;
    }
    Q_EMIT subspaceReady(db, report.value());
}

void EngineWorker::principalAngles(const QString &db, qint64 editA, qint64 editB)
{
    const auto angles = oedit::runs::principalAngles(db.toStdString(), editA, editB);
    if (!angles) {
        Q_EMIT notice(QString::fromStdString(angles.message()));
        return;
    }
    Q_EMIT anglesReady(db, angles.value());
}

void EngineWorker::normGrowth(const QString &db, qint64 runId)
{
    if (supersededRead(readKey("norms", db, runId)))
        return;
    bool interrupted = false;
    const auto series = m_engine->normGrowth(db.toStdString(), runId, [this, &interrupted](long long, long long) {
        interrupted = writeWaiting();
        return !interrupted;
    });
    if (!series && interrupted) {
        Q_EMIT normGrowthInterrupted(db, runId);
        return;
    }
    if (!series) {
        // The curves and heatmap still stand; only the norm plot stays empty.
        Q_EMIT notice(tr("No weight norms for run %1: %2").arg(runId).arg(QString::fromStdString(series.message())));
        return;
    }
    Q_EMIT normGrowthReady(db, runId, series.value());
}

void EngineWorker::compareFacts(const QString &db, const QList<qint64> &runIds)
{
    const auto facts = oedit::runs::compareFacts(db.toStdString(), std::vector<long long>(runIds.begin(), runIds.end()));
    if (!facts) {
        Q_EMIT failed(tr("Cannot compare the runs' facts: %1").arg(QString::fromStdString(facts.message())));
        return;
    }
    Q_EMIT factsCompared(db, runIds, facts.value());
}

void EngineWorker::explainFact(const QString &db, const oedit::runs::FactQuery &query)
{
    const auto job = beginJob();
    Q_EMIT busyChanged(true, tr("Ranking the edits of run %1 for the fact…").arg(query.runId));
    const auto explanation = m_engine->explainFact(db.toStdString(), query, [this, job](long long done, long long total) {
        Q_EMIT progress(done, total);
        return !cancelled(job);
    });
    Q_EMIT busyChanged(false, QString());
    if (!explanation) {
        Q_EMIT failed(tr("Cannot explain the fact: %1").arg(QString::fromStdString(explanation.message())));
        return;
    }
    Q_EMIT factExplained(db, explanation.value());
}

void EngineWorker::tracePrompt(const oedit::PromptTraceQuery &query)
{
    const auto job = beginJob();
    if (cancelled(job)) {
        Q_EMIT notice(tr("Trace cancelled before it started."));
        return;
    }
    Q_EMIT busyChanged(true, tr("Tracing '%1'…").arg(QString::fromStdString(query.prompt)));
    const auto trace = m_engine->tracePrompt(query, [this, job](long long done, long long total) {
        Q_EMIT progress(done, total);
        return !cancelled(job);
    });
    Q_EMIT busyChanged(false, QString());
    if (!trace) {
        Q_EMIT failed(tr("Cannot trace the prompt: %1").arg(QString::fromStdString(trace.message())));
        return;
    }
    Q_EMIT promptTraced(trace.value());
}

void EngineWorker::blastRadius(const QString &db, qint64 runId, qint64 editId, int top)
{
    const auto job = beginJob();
    Q_EMIT busyChanged(true, tr("Scoring the facts with and without edit %1…").arg(editId));
    const auto radius = m_engine->blastRadius(db.toStdString(), runId, editId, top,
                                              [this, job](long long done, long long total) {
                                                  Q_EMIT progress(done, total);
                                                  return !cancelled(job);
                                              });
    Q_EMIT busyChanged(false, QString());
    if (!radius) {
        Q_EMIT failed(tr("Cannot compute the blast radius of edit %1: %2")
                          .arg(editId)
                          .arg(QString::fromStdString(radius.message())));
        return;
    }
    Q_EMIT blastRadiusReady(db, radius.value());
}

void EngineWorker::exportCsv(const QString &db, qint64 runId, const QString &path)
{
    const auto report = oedit::runs::runReport(db.toStdString(), runId);
    if (!report) {
        Q_EMIT failed(tr("Cannot read run %1: %2").arg(runId).arg(QString::fromStdString(report.message())));
        return;
    }
    const std::string csv = oedit::runs::toCsv(report.value());
    QSaveFile file(path); // a temporary beside it, renamed on commit
    if (!file.open(QIODevice::WriteOnly) || file.write(csv.data(), qint64(csv.size())) != qint64(csv.size()) ||
        !file.commit()) {
        Q_EMIT failed(tr("Could not write %1 (%2). Choose a folder you can write to.").arg(path, file.errorString()));
        return;
    }
    Q_EMIT exported(path, tr("metrics of run %1").arg(runId));
}

void EngineWorker::exportModel(const QString &db, qint64 runId, const QString &directory)
{
    Q_EMIT busyChanged(true, tr("Writing the weights of run %1…").arg(runId));
    const auto included = m_engine->exportRun(db.toStdString(), runId, std::nullopt, directory.toStdString());
    Q_EMIT busyChanged(false, QString());
    if (!included) {
        Q_EMIT failed(tr("Could not export run %1: %2").arg(runId).arg(QString::fromStdString(included.message())));
        return;
    }
    Q_EMIT exported(directory, tr("run %1 with %n edit(s)", nullptr, int(included.value())).arg(runId));
}

QString EngineWorker::readKey(const char *kind, const QString &db, qint64 runId, int extra)
{
    return QStringLiteral("%1|%2|%3|%4").arg(QLatin1String(kind), db).arg(runId).arg(extra);
}

void EngineWorker::announceRead(const QString &key)
{
    const QMutexLocker lock(&m_readsMutex);
    ++m_readsQueued[key];
}

bool EngineWorker::supersededRead(const QString &key)
{
    const QMutexLocker lock(&m_readsMutex);
    const auto it = m_readsQueued.find(key);
    if (it == m_readsQueued.end())
        return false;
    if (--it.value() <= 0) {
        m_readsQueued.erase(it);
        return false;
    }
    return true;
}
