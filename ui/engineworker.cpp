#include "engineworker.h"

#include "oedit/engine.h"

EngineWorker::EngineWorker() : m_engine(std::make_unique<oedit::Engine>())
{
    qRegisterMetaType<BuildSummary>();
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
