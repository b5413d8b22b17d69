#include "editpanel.h"

#include "hparamsdialog.h"

#include "oedit/probe_counts.h"

#include <QComboBox>
#include <QCompleter>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QStringListModel>
#include <QTableWidget>
#include <QVBoxLayout>

namespace {

QString probability(double value)
{
    return value < 0 ? QStringLiteral("–") : QString::number(value, 'f', 3);
}

QString factKey(const QString &subject, const QString &prompt)
{
    return subject.trimmed() + QLatin1Char('|') + prompt.trimmed();
}

} // namespace

EditPanel::EditPanel(QWidget *parent)
    : QWidget(parent), m_subject(new QLineEdit), m_prompt(new QComboBox), m_target(new QLineEdit),
      m_method(new QComboBox), m_hparams(new HparamsButton), m_apply(new QPushButton(tr("Apply Edit"))), m_undo(new QPushButton(tr("Undo Last Edit"))),
      m_traceFact(new QPushButton(tr("Where Does It Live?"))),
      m_warning(new QLabel), m_probes(new QTableWidget(0, 6)), m_diagnostics(new QLabel),
      m_subjectCompleter(new QCompleter(this))
{
    setObjectName(QStringLiteral("editPanel"));
    m_subject->setObjectName(QStringLiteral("editSubject"));
    m_prompt->setObjectName(QStringLiteral("editPrompt"));
    m_target->setObjectName(QStringLiteral("editTarget"));
    m_method->setObjectName(QStringLiteral("editMethod"));
    m_hparams->setObjectName(QStringLiteral("editHparams"));
    m_hparams->setEnabled(false);
    m_apply->setObjectName(QStringLiteral("applyEdit"));
    m_undo->setObjectName(QStringLiteral("undoEdit"));
    m_traceFact->setObjectName(QStringLiteral("traceFact"));
    m_traceFact->setToolTip(tr("Causal trace of this prompt (Trace tab): which layer and token carry the answer, "
                               "so you know where to edit"));
    m_probes->setObjectName(QStringLiteral("editProbes"));
    m_diagnostics->setObjectName(QStringLiteral("editDiagnostics"));
    m_warning->setObjectName(QStringLiteral("editWarning"));

    m_subject->setPlaceholderText(tr("Subject, e.g. a name from the world"));
    m_subjectCompleter->setModel(new QStringListModel(this));
    m_subjectCompleter->setCaseSensitivity(Qt::CaseInsensitive);
    m_subjectCompleter->setFilterMode(Qt::MatchContains);
    m_subject->setCompleter(m_subjectCompleter);
    m_prompt->setEditable(true);
    m_prompt->setInsertPolicy(QComboBox::NoInsert);
    m_prompt->lineEdit()->setPlaceholderText(tr("Prompt with {} for the subject, e.g. \"The mother tongue of {} is\""));
    m_target->setPlaceholderText(tr("New target, e.g. French"));
    for (const auto &method : oedit::editMethods())
        m_method->addItem(QString::fromStdString(method));
    m_method->setCurrentText(QStringLiteral("oedit+"));
    m_hparams->setMethod(m_method->currentText());
    connect(m_method, &QComboBox::currentTextChanged, m_hparams, &HparamsButton::setMethod);
    m_warning->setStyleSheet(QStringLiteral("color: #a15c00"));
    m_warning->setWordWrap(true);
    m_diagnostics->setWordWrap(true);
    m_diagnostics->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_probes->setHorizontalHeaderLabels(
        {tr("Kind"), tr("Prompt"), tr("P(new) before → after"), tr("Old target"), tr("P(old) before → after"),
         tr("Continuation after")});
    m_probes->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_probes->horizontalHeader()->setStretchLastSection(true);
    m_probes->setEditTriggers(QAbstractItemView::NoEditTriggers);

    auto *form = new QFormLayout;
    form->addRow(tr("Subject:"), m_subject);
    form->addRow(tr("Prompt:"), m_prompt);
    form->addRow(tr("New target:"), m_target);
    auto *methodRow = new QHBoxLayout;
    methodRow->addWidget(m_method, 1);
    methodRow->addWidget(m_hparams);
    form->addRow(tr("Method:"), methodRow);
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(m_apply);
    buttons->addWidget(m_undo);
    buttons->addWidget(m_traceFact);
    buttons->addStretch();
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(form);
    layout->addLayout(buttons);
    layout->addWidget(m_warning);
    layout->addWidget(m_probes, 1);
    layout->addWidget(m_diagnostics);

    connect(m_apply, &QPushButton::clicked, this, &EditPanel::requestApply);
    connect(m_target, &QLineEdit::returnPressed, this, &EditPanel::requestApply);
    connect(m_undo, &QPushButton::clicked, this, &EditPanel::undoRequested);
    connect(m_traceFact, &QPushButton::clicked, this, [this] {
        Q_EMIT traceRequested(m_subject->text().trimmed(), m_prompt->currentText().trimmed());
    });
    const auto warnIfEditedBefore = [this] {
        const bool before = m_editedFacts.contains(factKey(m_subject->text(), m_prompt->currentText()));
        m_warning->setText(before ? tr("This subject and prompt were edited before in this run: a second edit "
                                       "overrides the first and adds interference.")
                                  : QString());
    };
    connect(m_subject, &QLineEdit::textChanged, this, warnIfEditedBefore);
    connect(m_prompt, &QComboBox::currentTextChanged, this, warnIfEditedBefore);
    updateButtons();
}

void EditPanel::setWorld(const WorldSummary &world)
{
    static_cast<QStringListModel *>(m_subjectCompleter->model())->setStringList(world.subjects);
    const QString current = m_prompt->currentText();
    m_prompt->clear();
    m_prompt->addItems(world.canonicalPrompts);
    m_prompt->setCurrentText(current);
    m_editedFacts.clear(); // a new model starts a new run
    m_editCount = 0;
    updateButtons();
}

void EditPanel::setModelReady(bool ready)
{
    m_ready = ready;
    updateButtons();
}

void EditPanel::setBusy(bool busy)
{
    m_busy = busy;
    updateButtons();
}

void EditPanel::setModelDir(const QString &dir)
{
    m_hparams->setModelDir(dir);
}

void EditPanel::updateButtons()
{
    m_apply->setEnabled(m_ready && !m_busy);
    m_undo->setEnabled(m_ready && !m_busy && m_undoAvailable);
    m_traceFact->setEnabled(m_ready && !m_busy);
}

void EditPanel::requestApply()
{
    if (!m_apply->isEnabled())
        return;
    oedit::EditSpec spec;
    spec.method = m_method->currentText().toStdString();
    spec.hparamsJson = m_hparams->overrides(m_method->currentText()).toStdString();
    spec.subject = m_subject->text().trimmed().toStdString();
    spec.prompt = m_prompt->currentText().trimmed().toStdString();
    spec.targetNew = m_target->text().trimmed().toStdString();
    if (spec.subject.empty() || spec.prompt.empty() || spec.targetNew.empty()) {
        m_warning->setText(tr("Fill in the subject, the prompt and the new target."));
        return;
    }
    Q_EMIT applyRequested(spec);
}

void EditPanel::showOutcome(const oedit::EditOutcome &outcome, int editCount)
{
    m_editCount = editCount;
    m_editedFacts.insert(factKey(QString::fromStdString(outcome.subject), QString::fromStdString(outcome.prompt)));
    m_probes->setRowCount(static_cast<int>(outcome.probes.size()));
    for (int row = 0; row < static_cast<int>(outcome.probes.size()); ++row) {
        const auto &probe = outcome.probes[static_cast<size_t>(row)];
        const QStringList cells = {
            QString::fromStdString(probe.kind),
            QString::fromStdString(probe.text),
            probability(probe.newBefore) + QStringLiteral(" → ") + probability(probe.newAfter),
            QString::fromStdString(probe.oldTarget),
            probability(probe.oldBefore) + QStringLiteral(" → ") + probability(probe.oldAfter),
            QString::fromStdString(probe.continuationAfter)};
        for (int column = 0; column < cells.size(); ++column)
            m_probes->setItem(row, column, new QTableWidgetItem(cells[column]));
    }
    const auto &d = outcome.diagnostics;
    const QString target = QString::fromStdString(outcome.targetNew).toHtmlEscaped();
    const QString verdict =
        outcome.succeeded()
            ? tr("succeeded: '%1' is now the prompt's most likely continuation").arg(target)
            : tr("<b>did not succeed</b>: '%1' is not the prompt's most likely continuation").arg(target);
    QString text = tr("<b>%1</b> edit #%2 %3 (%4 s). Largest |cos| with earlier updates: %5.")
                       .arg(QString::fromStdString(outcome.method))
                       .arg(outcome.id)
                       .arg(verdict)
                       .arg(outcome.timings.total, 0, 'f', 2)
                       .arg(d.maxAbsCosWithEarlier, 0, 'g', 3);
    // Over every paraphrase and neighbour probed: does it generalise, does it stay put?
    const oedit::ProbeCounts counts = oedit::countProbes(outcome);
    if (counts.paraphrases || counts.neighbours)
        text += QStringLiteral("<br>") + tr("Paraphrases now saying '%1': %2 of %3. Neighbours keeping their own "
                                            "object (P(own) > P(new)): %4 of %5.")
                                             .arg(target)
                                             .arg(counts.paraphrasesSayingNew)
                                             .arg(counts.paraphrases)
                                             .arg(counts.neighboursKeepingOwn)
                                             .arg(counts.neighbours);
    // A target of several tokens, token by token: the one that does not move shows.
    if (outcome.targetPieces.size() > 1 && !outcome.probes.empty()) {
        const auto &prompt = outcome.probes.front();
        QStringList pieces;
        for (size_t i = 0; i < outcome.targetPieces.size(); ++i)
            pieces << tr("'%1' %2 → %3")
                          .arg(QString::fromStdString(outcome.targetPieces[i]).toHtmlEscaped(),
                               probability(i < prompt.pieceProbsBefore.size() ? prompt.pieceProbsBefore[i] : -1),
                               probability(i < prompt.pieceProbsAfter.size() ? prompt.pieceProbsAfter[i] : -1));
        text += QStringLiteral("<br>") + tr("Target spelled as %n token(s), P on the prompt: ", nullptr,
                                              static_cast<int>(outcome.targetPieces.size())) +
                pieces.join(QStringLiteral(" · "));
    }
    if (d.remainingCapacity >= 0)
        text += tr(" Protected rank %1, capacity left %2.").arg(d.protectedRank).arg(d.remainingCapacity);
    if (!d.capacityNote.empty())
        text += QStringLiteral(" ") + QString::fromStdString(d.capacityNote).toHtmlEscaped();
    m_diagnostics->setText(text);
    // The new key close to an earlier edit's key: the layer reads both facts
    // from nearly the same direction, so the later update rewrites the earlier.
    constexpr double kCloseKeyCos = 0.9;
    if (d.maxKeyCosWithEarlier > kCloseKeyCos)
        m_warning->setText(tr("This edit's key is close to an earlier edit's in this run (|cos| %1): the layer "
                              "reads both facts from nearly the same direction, so they may interfere. Check the "
                              "earlier edit in History, or use O-Edit+ with side 'input' to keep keys apart.")
                               .arg(d.maxKeyCosWithEarlier, 0, 'f', 2));
    updateButtons();
}

void EditPanel::showRefused(const QString &message)
{
    m_diagnostics->setText(tr("Edit not made: %1").arg(message.toHtmlEscaped()));
}

void EditPanel::showUndone(int editCount)
{
    m_editCount = editCount;
    m_diagnostics->setText(tr("Last edit undone; %n edit(s) remain in this run.", nullptr, editCount));
    updateButtons();
}

void EditPanel::showSynced(int editCount)
{
    m_editCount = editCount;
    m_diagnostics->setText(tr("The open model follows the ledger: %n edit(s) in effect.", nullptr, editCount));
    updateButtons();
}

void EditPanel::setUndoAvailable(bool available)
{
    m_undoAvailable = available;
    updateButtons();
}
