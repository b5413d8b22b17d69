#include "hparamsdialog.h"

#include "oedit/hparams.h"

#include <QDialogButtonBox>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QPlainTextEdit>
#include <QVBoxLayout>

HparamsDialog::HparamsDialog(const QString &method, const QString &modelDir, const QString &overrides,
                             QWidget *parent)
    : QDialog(parent), m_method(method), m_modelDir(modelDir), m_overrides(new QPlainTextEdit),
      m_resolved(new QPlainTextEdit), m_status(new QLabel)
{
    setObjectName(QStringLiteral("hparamsDialog"));
    setWindowTitle(tr("Hyperparameters of %1").arg(method));
    m_overrides->setObjectName(QStringLiteral("hparamsOverrides"));
    m_resolved->setObjectName(QStringLiteral("hparamsResolved"));
    m_status->setObjectName(QStringLiteral("hparamsStatus"));
    const QFont fixed = QFontDatabase::systemFont(QFontDatabase::FixedFont);
    m_overrides->setFont(fixed);
    m_resolved->setFont(fixed);
    m_resolved->setReadOnly(true);
    m_overrides->setPlainText(overrides);
    m_overrides->setPlaceholderText(tr("Overrides as a JSON object, e.g. {\"layer\": 2, \"clamp_norm_factor\": 4}"));
    m_status->setWordWrap(true);

    auto *about = new QLabel;
    about->setObjectName(QStringLiteral("hparamsAbout"));
    about->setWordWrap(true);
    about->setTextInteractionFlags(Qt::TextSelectableByMouse);
    const auto info = oedit::methodHparams(method.toStdString(), modelDir.toStdString());
    if (info) {
        QString text = QString::fromStdString(info->about);
        if (!info->presetsApplied.empty()) {
            QStringList presets;
            for (const auto &when : info->presetsApplied)
                presets << QString::fromStdString(when);
            text += QStringLiteral("\n\n") + tr("Presets applied for this model: %1").arg(presets.join(QStringLiteral("; ")));
        }
        text += QStringLiteral("\n") + tr("From %1.").arg(QString::fromStdString(info->file));
        about->setText(text);
    } else {
        about->setText(QString::fromStdString(info.message()));
    }

    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel | QDialogButtonBox::Reset);
    m_ok = buttons->button(QDialogButtonBox::Ok);
    buttons->button(QDialogButtonBox::Reset)->setText(tr("Defaults"));
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(buttons->button(QDialogButtonBox::Reset), &QPushButton::clicked, m_overrides, &QPlainTextEdit::clear);
    connect(m_overrides, &QPlainTextEdit::textChanged, this, &HparamsDialog::check);

    auto *columns = new QHBoxLayout;
    auto *left = new QVBoxLayout;
    left->addWidget(new QLabel(tr("Your overrides:")));
    left->addWidget(m_overrides);
    auto *right = new QVBoxLayout;
    right->addWidget(new QLabel(tr("What the edit will use:")));
    right->addWidget(m_resolved);
    columns->addLayout(left, 1);
    columns->addLayout(right, 1);
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(about);
    layout->addLayout(columns, 1);
    layout->addWidget(m_status);
    layout->addWidget(buttons);
    resize(820, 520);
    check();
}

QString HparamsDialog::overrides() const
{
    return m_overrides->toPlainText().trimmed();
}

void HparamsDialog::check()
{
    const auto resolved =
        oedit::resolveMethodHparams(m_method.toStdString(), m_modelDir.toStdString(), overrides().toStdString());
    if (resolved) {
        m_resolved->setPlainText(QString::fromStdString(resolved.value()));
        m_status->setText(overrides().isEmpty() ? tr("The defaults for this model.") : tr("Valid."));
        m_status->setStyleSheet(QString());
    } else {
        m_status->setText(QString::fromStdString(resolved.message()));
        m_status->setStyleSheet(QStringLiteral("color: #b00020"));
    }
    m_ok->setEnabled(resolved.ok());
}

HparamsButton::HparamsButton(QWidget *parent) : QPushButton(parent)
{
    setToolTip(tr("See and change the method's hyperparameters for the open model"));
    connect(this, &QPushButton::clicked, this, &HparamsButton::edit);
    updateText();
}

void HparamsButton::setModelDir(const QString &dir)
{
    m_modelDir = dir;
    setEnabled(!dir.isEmpty());
}

void HparamsButton::setMethod(const QString &method)
{
    m_method = method;
    updateText();
}

void HparamsButton::setOverrides(const QString &method, const QString &json)
{
    if (json.trimmed().isEmpty())
        m_overrides.remove(method);
    else
        m_overrides.insert(method, json.trimmed());
    updateText();
}

void HparamsButton::edit()
{
    HparamsDialog dialog(m_method, m_modelDir, overrides(m_method), this);
    if (dialog.exec() == QDialog::Accepted)
        setOverrides(m_method, dialog.overrides());
}

void HparamsButton::updateText()
{
    const QString json = overrides(m_method);
    const int changed = json.isEmpty() ? 0 : static_cast<int>(QJsonDocument::fromJson(json.toUtf8()).object().size());
    setText(changed ? tr("Hyperparameters (%n changed)…", nullptr, changed) : tr("Hyperparameters…"));
}
