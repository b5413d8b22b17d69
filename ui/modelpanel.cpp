#include "modelpanel.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QPushButton>
#include <QSettings>

ModelPanel::ModelPanel(QWidget *parent)
    : QWidget(parent), m_version(new QLabel(tr("…"))), m_backend(new QLabel(tr("…"))), m_device(new QComboBox),
      m_model(new QLabel(tr("no model open"))), m_architecture(new QLabel), m_size(new QLabel),
      m_tokenizer(new QLabel), m_open(new QPushButton(tr("Open Model Folder…")))
{
    setObjectName(QStringLiteral("modelPanel"));
    m_device->setObjectName(QStringLiteral("deviceChoice"));
    m_device->addItem(tr("CPU"), QStringLiteral("cpu"));
    m_open->setObjectName(QStringLiteral("openModel"));
    m_model->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_model->setWordWrap(true);

    auto *layout = new QFormLayout(this);
    layout->addRow(tr("Workbench:"), m_version);
    layout->addRow(tr("Tensor backend:"), m_backend);
    layout->addRow(tr("Device:"), m_device);
    layout->addRow(tr("Model:"), m_model);
    layout->addRow(tr("Architecture:"), m_architecture);
    layout->addRow(tr("Size:"), m_size);
    layout->addRow(tr("Tokenizer:"), m_tokenizer);
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(m_open);
    buttons->addStretch();
    layout->addRow(buttons);
    connect(m_open, &QPushButton::clicked, this, &ModelPanel::chooseFolder);
}

QString ModelPanel::selectedDevice() const
{
    return m_device->currentData().toString();
}

void ModelPanel::chooseFolder()
{
    QSettings settings;
    const QString start = settings.value(QStringLiteral("recent/modelFolder")).toString();
    const QString folder = QFileDialog::getExistingDirectory(
        this, tr("Open a Hugging Face model folder (config.json, safetensors, tokenizer)"), start);
    if (folder.isEmpty())
        return;
    settings.setValue(QStringLiteral("recent/modelFolder"), folder);
    Q_EMIT openRequested(folder, selectedDevice());
}

void ModelPanel::showBuild(const BuildSummary &summary)
{
    m_version->setText(summary.version);
    m_backend->setText(tr("libtorch %1, BLAS: %2").arg(summary.torchVersion, summary.blas));
    if (summary.cudaAvailable && m_device->findData(QStringLiteral("cuda")) < 0)
        m_device->addItem(tr("CUDA GPU"), QStringLiteral("cuda"));
}

void ModelPanel::showModel(const oedit::ModelInfo &info)
{
    m_model->setText(QString::fromStdString(info.path));
    m_architecture->setText(tr("%1 (%2): %3 layers, width %4, MLP %5, %6 heads (%7 key/value), %8 positions")
                                .arg(QString::fromStdString(info.family), QString::fromStdString(info.modelType))
                                .arg(info.layers)
                                .arg(info.hidden)
                                .arg(info.intermediate)
                                .arg(info.heads)
                                .arg(info.kvHeads)
                                .arg(info.maxPositions));
    m_size->setText(tr("%1 parameters, %2 on %3, vocabulary %4")
                        .arg(QLocale().toString(info.parameters), QString::fromStdString(info.dtype),
                             QString::fromStdString(info.device))
                        .arg(info.vocabSize));
    QString tokenizer = QString::fromStdString(info.tokenizer);
    // Warnings of a checkpoint opened anyway (weights that are not numbers), one per line.
    for (const auto &warning : info.warnings)
        tokenizer += QStringLiteral("\n⚠ ") + QString::fromStdString(warning);
    m_tokenizer->setText(tokenizer);
}
