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
