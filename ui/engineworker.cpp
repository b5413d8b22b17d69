#include "engineworker.h"

#include "oedit/world.h"

EngineWorker::EngineWorker() : m_engine(std::make_unique<oedit::Engine>())
{
    qRegisterMetaType<BuildSummary>();
    qRegisterMetaType<oedit::ModelInfo>();
    qRegisterMetaType<oedit::Prediction>();
    qRegisterMetaType<oedit::EditSpec>();
    qRegisterMetaType<oedit::EditOutcome>();
    qRegisterMetaType<WorldSummary>();
    qRegisterMetaType<oedit::runs::RunRequest>();
    qRegisterMetaType<oedit::runs::RunSummary>();
    qRegisterMetaType<RunList>();
    qRegisterMetaType<oedit::runs::RunReport>();
    qRegisterMetaType<oedit::runs::RollbackRequest>();
    qRegisterMetaType<oedit::runs::RollbackInfo>();
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

void EngineWorker::openModel(const QString &directory, const QString &device)
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
    const oedit::Status status = m_engine->openModel(path, options);
    Q_EMIT busyChanged(false, QString());
    if (!status) {
        Q_EMIT failed(QString::fromStdString(status.message()));
        return;
    }
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

void EngineWorker::applyEdit(const oedit::EditSpec &spec)
{
    m_cancel.store(false);
    Q_EMIT busyChanged(true, tr("Editing with %1…").arg(QString::fromStdString(spec.method)));
    const auto outcome = m_engine->applyEdit(spec, [this](long long done, long long total) {
        Q_EMIT progress(done, total);
        return !m_cancel.load();
    });
    Q_EMIT busyChanged(false, QString());
    if (!outcome) {
        Q_EMIT failed(QString::fromStdString(outcome.message()));
        return;
    }
    Q_EMIT edited(outcome.value(), m_engine->editCount());
}

void EngineWorker::undoLastEdit()
{
    const oedit::Status status = m_engine->undoLastEdit();
    if (!status) {
        Q_EMIT failed(QString::fromStdString(status.message()));
        return;
    }
    Q_EMIT editUndone(m_engine->editCount());
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
    oedit::runs::RunRequest run = request;
    if (run.modelDir.empty())
        run.modelDir = m_engine->hasModel() ? m_engine->modelInfo().path : oedit::Engine::defaultModelDirectory();
    if (run.modelDir.empty()) {
        const QString message = tr("No model to run on: open a model folder first (File > Open Model Folder).");
        Q_EMIT failed(message);
        Q_EMIT runNotStarted(db, message);
        return;
    }
    m_cancel.store(false);
    Q_EMIT busyChanged(true, tr("Running %1 edits with %2…").arg(run.edits).arg(QString::fromStdString(run.method)));
    const auto result = oedit::runs::startRun(db.toStdString(), run, [this](long long done, long long total) {
        Q_EMIT progress(done, total);
        return !m_cancel.load();
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
}

void EngineWorker::runReport(const QString &db, qint64 runId)
{
    const auto report = oedit::runs::runReport(db.toStdString(), runId);
    if (!report) {
        Q_EMIT failed(tr("Cannot read run %1: %2").arg(runId).arg(QString::fromStdString(report.message())));
        return;
    }
    Q_EMIT reportReady(db, report.value());
}

void EngineWorker::rollback(const QString &db, const oedit::runs::RollbackRequest &request, int ticket,
                            int undoTicket)
{
    oedit::runs::RollbackRequest effective = request;
    if (undoTicket != 0) {
        const auto it = m_ticketEvents.find(undoTicket);
        if (it == m_ticketEvents.end()) {
            Q_EMIT failed(tr("Nothing to undo: the rollback it would undo did not happen (see the earlier message)."));
            return;
        }
        effective.toStep.reset();
        effective.removeEdit.reset();
        effective.undoEvent = it->second;
        m_ticketEvents.erase(it);
    }
    const auto event = oedit::runs::rollback(db.toStdString(), effective);
    if (!event) {
        Q_EMIT failed(tr("Rollback of run %1 failed: %2").arg(request.runId).arg(QString::fromStdString(event.message())));
        return;
    }
    if (ticket != 0)
        m_ticketEvents[ticket] = event->eventId;
    Q_EMIT rolledBack(db, event.value());
}
