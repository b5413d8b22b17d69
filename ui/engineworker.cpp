#include "engineworker.h"

EngineWorker::EngineWorker() : m_engine(std::make_unique<oedit::Engine>())
{
    qRegisterMetaType<BuildSummary>();
    qRegisterMetaType<oedit::ModelInfo>();
    qRegisterMetaType<oedit::Prediction>();
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
