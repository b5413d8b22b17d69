#include "modelpanel.h"

#include <QFormLayout>
#include <QLabel>

ModelPanel::ModelPanel(QWidget *parent)
    : QWidget(parent), m_version(new QLabel(tr("…"))), m_backend(new QLabel(tr("…"))),
      m_device(new QLabel(tr("…"))), m_model(new QLabel(tr("…")))
{
    setObjectName(QStringLiteral("modelPanel"));
    auto *layout = new QFormLayout(this);
    layout->addRow(tr("Workbench:"), m_version);
    layout->addRow(tr("Tensor backend:"), m_backend);
    layout->addRow(tr("Device:"), m_device);
    layout->addRow(tr("Model:"), m_model);
    m_model->setTextInteractionFlags(Qt::TextSelectableByMouse);
}

void ModelPanel::showBuild(const BuildSummary &summary)
{
    m_version->setText(summary.version);
    m_backend->setText(tr("libtorch %1, BLAS: %2").arg(summary.torchVersion, summary.blas));
    m_device->setText(summary.cudaAvailable ? tr("CUDA available (CPU in use)") : tr("CPU"));
    m_model->setText(summary.defaultModel.isEmpty() ? tr("the default model is not installed") : summary.defaultModel);
}
