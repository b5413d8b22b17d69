#include "factsview.h"

#include "editpanel.h"

#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

FactsView::FactsView(QWidget *parent)
    : QWidget(parent), m_prompt(new QLineEdit), m_topK(new QSpinBox), m_predict(new QPushButton(tr("Predict"))),
      m_table(new QTableWidget(0, 2)), m_continuation(new QLabel), m_editPanel(new EditPanel)
{
    setObjectName(QStringLiteral("factsView"));
    m_prompt->setObjectName(QStringLiteral("promptEdit"));
    m_prompt->setPlaceholderText(tr("A prompt, e.g. \"The mother tongue of … is\""));
    m_predict->setObjectName(QStringLiteral("predictButton"));
    m_table->setObjectName(QStringLiteral("topTokens"));
    m_continuation->setObjectName(QStringLiteral("continuation"));
    m_topK->setRange(1, 50);
    m_topK->setValue(10);
    m_topK->setPrefix(tr("top "));
    m_table->setHorizontalHeaderLabels({tr("Next token"), tr("Probability")});
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_continuation->setWordWrap(true);
    m_continuation->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto *row = new QHBoxLayout;
    row->addWidget(m_prompt, 1);
    row->addWidget(m_topK);
    row->addWidget(m_predict);
    auto *layout = new QVBoxLayout(this);
    layout->addLayout(row);
    layout->addWidget(m_table, 1);
    layout->addWidget(new QLabel(tr("Greedy continuation:")));
    layout->addWidget(m_continuation);
    auto *editBox = new QGroupBox(tr("Edit a fact"));
    auto *editLayout = new QVBoxLayout(editBox);
    editLayout->addWidget(m_editPanel);
    layout->addWidget(editBox, 2);

    connect(m_predict, &QPushButton::clicked, this, &FactsView::requestPrediction);
    connect(m_prompt, &QLineEdit::returnPressed, this, &FactsView::requestPrediction);
    setModelReady(false);
}

void FactsView::setModelReady(bool ready)
{
    m_editPanel->setModelReady(ready);
    m_predict->setEnabled(ready);
    m_predict->setToolTip(ready ? QString() : tr("Open a model first (Model tab)"));
}

void FactsView::requestPrediction()
{
    const QString prompt = m_prompt->text();
    if (prompt.trimmed().isEmpty() || !m_predict->isEnabled())
        return;
    Q_EMIT predictRequested(prompt, m_topK->value());
}

void FactsView::modelChanged()
{
    if (m_shownPrompt.isEmpty())
        return;
    m_table->setEnabled(false);
    m_continuation->setEnabled(false);
    m_table->setToolTip(tr("The model changed: predicting again…"));
    if (m_predict->isEnabled())
        Q_EMIT predictRequested(m_shownPrompt, m_shownTopK);
}

void FactsView::showPrediction(const QString &prompt, const oedit::Prediction &prediction)
{
    m_shownPrompt = prompt;
    m_shownTopK = static_cast<int>(prediction.top.size());
    m_table->setEnabled(true);
    m_continuation->setEnabled(true);
    m_table->setToolTip(QString());
    m_table->setRowCount(static_cast<int>(prediction.top.size()));
    for (int row = 0; row < static_cast<int>(prediction.top.size()); ++row) {
        const auto &token = prediction.top[static_cast<size_t>(row)];
        m_table->setItem(row, 0, new QTableWidgetItem(QStringLiteral("'%1'").arg(QString::fromStdString(token.text))));
        m_table->setItem(row, 1, new QTableWidgetItem(QString::number(token.probability, 'f', 4)));
    }
    m_continuation->setText(QStringLiteral("<b>%1</b>%2")
                                .arg(prompt.toHtmlEscaped(),
                                     QString::fromStdString(prediction.continuation).toHtmlEscaped()));
}
