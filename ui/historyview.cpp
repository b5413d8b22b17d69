#include "historyview.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QTableWidget>
#include <QUndoStack>
#include <QVBoxLayout>

#include <algorithm>

namespace {

enum Column { ColStep, ColFact, ColMethod, ColActive, ColEfficacy, ColSeconds, ColCreated, ColumnCount };

QString factText(const oedit::runs::EditEntry &edit)
{
    QString prompt = QString::fromStdString(edit.prompt);
    prompt.replace(QStringLiteral("{}"), QString::fromStdString(edit.subject));
    return QStringLiteral("%1 → %2").arg(prompt, QString::fromStdString(edit.targetNew));
}

} // namespace

HistoryView::HistoryView(QWidget *parent)
    : QWidget(parent), m_title(new QLabel), m_table(new QTableWidget(0, ColumnCount)),
      m_revert(new QPushButton(tr("Revert to Selected Step"))), m_remove(new QPushButton(tr("Remove Selected Edit"))),
      m_undo(new QPushButton(tr("Undo"))), m_redo(new QPushButton(tr("Redo")))
{
    setObjectName(QStringLiteral("historyView"));
    m_title->setObjectName(QStringLiteral("historyTitle"));
    m_table->setObjectName(QStringLiteral("historyTable"));
    m_revert->setObjectName(QStringLiteral("historyRevert"));
    m_remove->setObjectName(QStringLiteral("historyRemove"));
    m_undo->setObjectName(QStringLiteral("historyUndo"));
    m_redo->setObjectName(QStringLiteral("historyRedo"));

    m_title->setText(tr("Select a run in the Runs tab, or apply an edit in the Facts tab, to see its history."));
    m_title->setWordWrap(true);
    m_table->setHorizontalHeaderLabels({tr("Step"), tr("Fact"), tr("Method"), tr("In effect"), tr("Efficacy now"),
                                        tr("Edit time"), tr("Made")});
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->verticalHeader()->setVisible(false);
    m_table->horizontalHeader()->setSectionResizeMode(ColFact, QHeaderView::Stretch);
    m_revert->setToolTip(tr("Keep the edits up to the selected step and take the later ones out (undoable)"));
    m_remove->setToolTip(tr("Take only the selected edit out (undoable)"));
    m_undo->setToolTip(tr("Undo the last rollback (Ctrl+Z)"));
    m_redo->setToolTip(tr("Redo it (Ctrl+Shift+Z)"));

    auto *refresh = new QPushButton(tr("Refresh"));
    refresh->setObjectName(QStringLiteral("historyRefresh"));
    auto *actions = new QHBoxLayout;
    actions->addWidget(refresh);
    actions->addStretch();
    actions->addWidget(m_revert);
    actions->addWidget(m_remove);
    actions->addSpacing(12);
    actions->addWidget(m_undo);
    actions->addWidget(m_redo);
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_title);
    layout->addWidget(m_table, 1);
    layout->addLayout(actions);

    connect(refresh, &QPushButton::clicked, this, [this] {
        if (m_runId > 0)
            Q_EMIT refreshRequested(m_db, m_runId);
    });
    connect(m_table, &QTableWidget::itemSelectionChanged, this, &HistoryView::updateButtons);
    connect(m_revert, &QPushButton::clicked, this, [this] {
        if (const auto *edit = selectedEdit())
            Q_EMIT revertRequested(m_db, m_runId, edit->step);
    });
    connect(m_remove, &QPushButton::clicked, this, [this] {
        if (const auto *edit = selectedEdit())
            Q_EMIT removeRequested(m_db, m_runId, edit->editId, edit->step);
    });
    updateButtons();
}

void HistoryView::setUndoStack(QUndoStack *stack)
{
    m_stack = stack;
    connect(m_undo, &QPushButton::clicked, stack, &QUndoStack::undo);
    connect(m_redo, &QPushButton::clicked, stack, &QUndoStack::redo);
    connect(stack, &QUndoStack::canUndoChanged, this, &HistoryView::updateButtons);
    connect(stack, &QUndoStack::canRedoChanged, this, &HistoryView::updateButtons);
    updateButtons();
}

void HistoryView::setRun(const QString &db, qint64 runId)
{
    if (db == m_db && runId == m_runId)
        return;
    m_db = db;
    m_runId = runId;
    m_edits.clear();
    m_efficacy.clear();
    m_efficacyStep = -1;
    m_table->setRowCount(0);
    m_title->setText(runId < 0 ? tr("No run selected in %1").arg(QFileInfo(db).fileName())
                               : tr("Run %1 in %2").arg(runId).arg(QFileInfo(db).fileName()));
    updateButtons();
}

void HistoryView::showEdits(const QString &db, qint64 runId, const EditList &edits)
{
    if (db != m_db || runId != m_runId)
        return;
    m_edits = edits;
    fill();
}

void HistoryView::showReport(const QString &db, const oedit::runs::RunReport &report)
{
    if (db != m_db || report.run.runId != m_runId)
        return;
    m_efficacy.clear();
    m_efficacyStep = -1;
    if (!report.checkpoints.empty()) {
        m_efficacyStep = report.checkpoints.back().step;
        for (const auto &[edit, success] : report.checkpoints.back().editSuccess)
            m_efficacy.insert(edit, success);
    }
    m_title->setText(tr("Run %1 (%2, %3) in %4: %5 edits, %6 in effect%7")
                         .arg(report.run.runId)
                         .arg(QString::fromStdString(report.run.method), QString::fromStdString(report.run.dataset),
                              QFileInfo(db).fileName())
                         .arg(report.run.steps)
                         .arg(report.run.activeEdits)
                         .arg(m_efficacyStep >= 0 ? tr("; efficacy as of the checkpoint at step %1").arg(m_efficacyStep)
                                                  : tr("; no checkpoint yet")));
    fill();
}

void HistoryView::fill()
{
    const qint64 selected = selectedEdit() ? selectedEdit()->editId : -1;
    const QSignalBlocker blocker(m_table);
    m_table->setRowCount(static_cast<int>(m_edits.size()));
    for (int row = 0; row < static_cast<int>(m_edits.size()); ++row) {
        const auto &edit = m_edits[static_cast<size_t>(row)];
        const auto efficacy = m_efficacy.constFind(edit.editId);
        const QStringList cells = {
            QString::number(edit.step),
            factText(edit),
            QString::fromStdString(edit.method),
            edit.active ? tr("yes") : tr("no"),
            efficacy == m_efficacy.constEnd() ? QStringLiteral("–") : (*efficacy > 0.5 ? tr("kept") : tr("lost")),
            QStringLiteral("%1 s").arg(edit.seconds, 0, 'f', 2),
            QString::fromStdString(edit.created)};
        for (int column = 0; column < ColumnCount; ++column) {
            auto *item = new QTableWidgetItem(cells[column]);
            if (!edit.active)
                item->setForeground(QColor(140, 140, 140));
            if (column == ColFact)
                item->setToolTip(tr("subject: %1\nprompt: %2\nnew target: %3\nold target: %4")
                                     .arg(QString::fromStdString(edit.subject), QString::fromStdString(edit.prompt),
                                          QString::fromStdString(edit.targetNew),
                                          QString::fromStdString(edit.targetTrue)));
            m_table->setItem(row, column, item);
        }
        if (edit.editId == selected)
            m_table->selectRow(row);
    }
    m_table->resizeColumnToContents(ColStep);
    m_table->resizeColumnToContents(ColMethod);
    m_table->resizeColumnToContents(ColCreated);
    updateButtons();
}

qint64 HistoryView::editIdAt(int row) const
{
    return row >= 0 && row < static_cast<int>(m_edits.size()) ? m_edits[static_cast<size_t>(row)].editId : -1;
}

const oedit::runs::EditEntry *HistoryView::selectedEdit() const
{
    const auto rows = m_table->selectionModel()->selectedRows();
    if (rows.isEmpty())
        return nullptr;
    const int row = rows.first().row();
    return row < static_cast<int>(m_edits.size()) ? &m_edits[static_cast<size_t>(row)] : nullptr;
}

void HistoryView::setBusy(bool busy)
{
    m_busy = busy;
    updateButtons();
}

void HistoryView::updateButtons()
{
    const auto *edit = selectedEdit();
    long long lastStep = 0;
    bool laterActive = false;
    for (const auto &e : m_edits) {
        lastStep = std::max<long long>(lastStep, e.step);
        if (edit && e.step > edit->step && e.active)
            laterActive = true;
    }
    // The facade refuses a revert that takes nothing out and a removal of an inactive edit.
    m_revert->setEnabled(edit && laterActive);
    m_remove->setEnabled(edit && edit->active);
    m_undo->setEnabled(m_stack && m_stack->canUndo());
    m_redo->setEnabled(m_stack && m_stack->canRedo());
}
