#include "historyview.h"

#include "celltablemodel.h"

#include <QColor>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QPushButton>
#include <QTableView>
#include <QUndoStack>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace {

enum Column {
    ColStep,
    ColFact,
    ColMethod,
    ColActive,
    ColEfficacy,
    ColUpdateNorm,
    ColKeyOverlap,
    ColSeconds,
    ColCreated,
    ColumnCount
};

QStringList headers()
{
    return {HistoryView::tr("Step"),         HistoryView::tr("Fact"),         HistoryView::tr("Method"),
            HistoryView::tr("In effect"),    HistoryView::tr("Efficacy now"), HistoryView::tr("Update ‖ΔW‖"),
            HistoryView::tr("Key overlap"), HistoryView::tr("Edit time"),    HistoryView::tr("Made")};
}

QString factText(const oedit::runs::EditEntry &edit)
{
    QString prompt = QString::fromStdString(edit.prompt);
    prompt.replace(QStringLiteral("{}"), QString::fromStdString(edit.subject));
    return QStringLiteral("%1 → %2").arg(prompt, QString::fromStdString(edit.targetNew));
}

} // namespace

HistoryView::HistoryView(QWidget *parent)
    : QWidget(parent), m_title(new QLabel), m_table(new QTableView), m_model(new CellTableModel(this)),
      m_revert(new QPushButton(tr("Revert to Selected Step"))), m_remove(new QPushButton(tr("Remove Selected Edit"))),
      m_undo(new QPushButton(tr("Undo"))), m_redo(new QPushButton(tr("Redo"))),
      m_explain(new QPushButton(tr("What Weakened It?"))), m_blast(new QPushButton(tr("What Did It Break?")))
{
    setObjectName(QStringLiteral("historyView"));
    m_title->setObjectName(QStringLiteral("historyTitle"));
    m_table->setObjectName(QStringLiteral("historyTable"));
    m_revert->setObjectName(QStringLiteral("historyRevert"));
    m_remove->setObjectName(QStringLiteral("historyRemove"));
    m_undo->setObjectName(QStringLiteral("historyUndo"));
    m_redo->setObjectName(QStringLiteral("historyRedo"));
    m_explain->setObjectName(QStringLiteral("historyExplain"));
    m_blast->setObjectName(QStringLiteral("historyBlastRadius"));
    m_explain->setToolTip(tr("In the Interference tab: which edits of the run moved the selected edit's own fact"));
    m_blast->setToolTip(tr("In the Interference tab: the facts and edits the selected edit lowered most"));

    m_title->setText(tr("Select a run in the Runs tab, or apply an edit in the Facts tab, to see its history."));
    m_title->setWordWrap(true);
    m_model->reset(headers(), 0, {});
    m_table->setModel(m_model);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->verticalHeader()->setVisible(false);
    m_table->horizontalHeader()->setSectionResizeMode(ColFact, QHeaderView::Stretch);
    // Sortable by any column (the header flips the order on a second click):
    // the largest update norms or key overlaps find the edits that disabled
    // the model or fought another.
    m_table->horizontalHeader()->setSectionsClickable(true);
    m_table->horizontalHeader()->setSortIndicatorShown(true);
    m_table->horizontalHeader()->setSortIndicator(ColStep, Qt::AscendingOrder);
    m_table->horizontalHeader()->setToolTip(tr("Click a column to sort by it, again to reverse"));
    connect(m_table->horizontalHeader(), &QHeaderView::sortIndicatorChanged, this, &HistoryView::sortBy);
    m_revert->setToolTip(tr("Keep the edits up to the selected step and take the later ones out (undoable)"));
    m_remove->setToolTip(tr("Take only the selected edit out (undoable)"));
    m_undo->setToolTip(tr("Undo the last rollback (Ctrl+Z)"));
    m_redo->setToolTip(tr("Redo it (Ctrl+Shift+Z)"));

    auto *refresh = new QPushButton(tr("Refresh"));
    refresh->setObjectName(QStringLiteral("historyRefresh"));
    auto *actions = new QHBoxLayout;
    actions->addWidget(refresh);
    actions->addWidget(m_explain);
    actions->addWidget(m_blast);
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
    connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, &HistoryView::updateButtons);
    connect(m_revert, &QPushButton::clicked, this, [this] {
        if (const auto *edit = selectedEdit())
            Q_EMIT revertRequested(m_db, m_runId, edit->step);
    });
    connect(m_remove, &QPushButton::clicked, this, [this] {
        if (const auto *edit = selectedEdit())
            Q_EMIT removeRequested(m_db, m_runId, edit->editId, edit->step);
    });
    connect(m_explain, &QPushButton::clicked, this, [this] {
        if (const auto *edit = selectedEdit())
            Q_EMIT explainRequested(QString::fromStdString(edit->subject), QString::fromStdString(edit->prompt),
                                    QString::fromStdString(edit->targetNew));
    });
    connect(m_blast, &QPushButton::clicked, this, [this] {
        if (const auto *edit = selectedEdit())
            Q_EMIT blastRadiusRequested(edit->editId);
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
    m_model->reset(headers(), 0, {});
    m_title->setText(runId < 0 ? tr("No run selected in %1").arg(QFileInfo(db).fileName())
                               : tr("Run %1 in %2").arg(runId).arg(QFileInfo(db).fileName()));
    updateButtons();
}

void HistoryView::showEdits(const QString &db, qint64 runId, const EditList &edits)
{
    if (db != m_db || runId != m_runId)
        return;
    m_edits = edits;
    sortEdits();
    fill();
}

QVariant HistoryView::sortKey(const oedit::runs::EditEntry &edit, int column) const
{
    switch (column) {
    case ColFact:
        return factText(edit);
    case ColMethod:
        return QString::fromStdString(edit.method);
    case ColActive:
        return edit.active ? 1 : 0;
    case ColEfficacy: {
        const auto efficacy = std::lower_bound(m_efficacy.begin(), m_efficacy.end(),
                                               std::pair<long long, double>(edit.editId, -INFINITY));
        return efficacy == m_efficacy.end() || efficacy->first != edit.editId ? -1.0 : efficacy->second;
    }
    case ColUpdateNorm:
        return edit.updateNorm;
    case ColKeyOverlap:
        return edit.keyOverlap;
    case ColSeconds:
        return edit.seconds;
    case ColCreated:
        return QString::fromStdString(edit.created);
    default:
        return static_cast<qlonglong>(edit.step);
    }
}

void HistoryView::sortEdits()
{
    if (m_sortColumn == ColStep && m_sortOrder == Qt::AscendingOrder &&
        std::is_sorted(m_edits.begin(), m_edits.end(), [](const auto &a, const auto &b) { return a.step < b.step; }))
        return; // the ledger's order
    // Keys computed once per edit, not per comparison.
    std::vector<std::pair<QVariant, size_t>> keys;
    keys.reserve(m_edits.size());
    for (size_t i = 0; i < m_edits.size(); ++i)
        keys.emplace_back(sortKey(m_edits[i], m_sortColumn), i);
    const bool descending = m_sortOrder == Qt::DescendingOrder;
    std::stable_sort(keys.begin(), keys.end(), [&](const auto &a, const auto &b) {
        const auto order = QVariant::compare(a.first, b.first);
        if (order == QPartialOrdering::Equivalent || order == QPartialOrdering::Unordered)
            return descending ? m_edits[a.second].step > m_edits[b.second].step
                              : m_edits[a.second].step < m_edits[b.second].step;
        return descending ? order == QPartialOrdering::Greater : order == QPartialOrdering::Less;
    });
    EditList sorted;
    sorted.reserve(m_edits.size());
    for (const auto &key : keys)
        sorted.push_back(m_edits[key.second]);
    m_edits = std::move(sorted);
}

void HistoryView::sortBy(int column, Qt::SortOrder order)
{
    m_sortColumn = column;
    m_sortOrder = order;
    const auto *selected = selectedEdit();
    const qint64 selectedId = selected ? selected->editId : -1;
    sortEdits();
    m_model->contentsChanged();
    for (int row = 0; row < static_cast<int>(m_edits.size()) && selectedId >= 0; ++row)
        if (m_edits[static_cast<size_t>(row)].editId == selectedId) {
            m_table->selectRow(row);
            m_table->scrollTo(m_model->index(row, 0));
            break;
        }
}

void HistoryView::showReport(const QString &db, const oedit::runs::RunReport &report)
{
    if (db != m_db || report.run.runId != m_runId)
        return;
    m_efficacy.clear();
    m_efficacyStep = -1;
    if (!report.checkpoints.empty()) {
        m_efficacyStep = report.checkpoints.back().step;
        // Sorted by edit id for the cells' lookups (a copy of a vector, not 100,000 map insertions).
        m_efficacy = report.checkpoints.back().editSuccess;
        if (!std::is_sorted(m_efficacy.begin(), m_efficacy.end()))
            std::sort(m_efficacy.begin(), m_efficacy.end());
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

bool HistoryView::selectStep(qint64 step)
{
    const auto it = std::find_if(m_edits.begin(), m_edits.end(),
                                 [step](const oedit::runs::EditEntry &edit) { return edit.step == step; });
    if (it == m_edits.end())
        return false;
    const int row = static_cast<int>(it - m_edits.begin());
    m_table->selectRow(row);
    m_table->scrollTo(m_model->index(row, 0), QAbstractItemView::PositionAtCenter);
    return true;
}

void HistoryView::fill()
{
    const auto *selected = selectedEdit();
    const qint64 selectedId = selected ? selected->editId : -1;
    const int rows = static_cast<int>(m_edits.size());
    if (rows == m_model->rowCount()) {
        // The same run refreshed (a rollback, a checkpoint): scroll position and selection stay.
        m_model->contentsChanged();
    } else {
        const bool first = m_model->rowCount() == 0;
        m_model->reset(headers(), rows, [this](int row, int column, int role) { return cell(row, column, role); });
        for (int row = 0; row < rows && selectedId >= 0; ++row)
            if (m_edits[static_cast<size_t>(row)].editId == selectedId) {
                m_table->selectRow(row);
                m_table->scrollTo(m_model->index(row, 0));
                break;
            }
        if (first) {
            // Sized from the rows on screen (Qt measures at most a thousand), not from every row;
            // the step column from the widest step, which is the last.
            m_table->resizeColumnToContents(ColMethod);
            m_table->resizeColumnToContents(ColCreated);
            const QString widest = QString::number(m_edits.back().step);
            m_table->setColumnWidth(ColStep, std::max(m_table->horizontalHeader()->sectionSizeHint(ColStep),
                                                      m_table->fontMetrics().horizontalAdvance(widest) + 16));
        }
    }
    updateButtons();
}

QVariant HistoryView::cell(int row, int column, int role) const
{
    const auto &edit = m_edits[static_cast<size_t>(row)];
    if (role == Qt::ForegroundRole) {
        if (!edit.active)
            return QColor(140, 140, 140);
        return edit.outlier && column == ColUpdateNorm ? QVariant(QColor(190, 20, 20)) : QVariant();
    }
    if (role == Qt::ToolTipRole && column == ColUpdateNorm)
        return edit.outlier
                   ? tr("Over ten times the run's median update norm: an edit that may have disabled the model "
                        "(the Retention tab's norm curve jumps at its step). Remove it here, or ask the Interference "
                        "tab what it broke.")
                   : tr("The Frobenius norm of this edit's update to the weights, all layers together. The value "
                        "shift its optimisation found: %1")
                         .arg(edit.valueShiftNorm, 0, 'g', 4);
    if (role == Qt::ToolTipRole && column == ColKeyOverlap)
        return tr("The largest |cos| between this edit's key and an earlier edit's key in the same layer: near 1, "
                  "the two facts are read from the same place and their updates compete");
    if (role == Qt::ToolTipRole && column == ColFact)
        return tr("subject: %1\nprompt: %2\nnew target: %3\nold target: %4")
            .arg(QString::fromStdString(edit.subject), QString::fromStdString(edit.prompt),
                 QString::fromStdString(edit.targetNew), QString::fromStdString(edit.targetTrue));
    if (role != Qt::DisplayRole)
        return {};
    switch (column) {
    case ColStep:
        return QString::number(edit.step);
    case ColFact:
        return factText(edit);
    case ColMethod:
        return QString::fromStdString(edit.method);
    case ColActive:
        return edit.active ? tr("yes") : tr("no");
    case ColEfficacy: {
        const auto efficacy = std::lower_bound(m_efficacy.begin(), m_efficacy.end(),
                                               std::pair<long long, double>(edit.editId, -INFINITY));
        return efficacy == m_efficacy.end() || efficacy->first != edit.editId
                   ? QStringLiteral("–")
                   : (efficacy->second > 0.5 ? tr("kept") : tr("lost"));
    }
    case ColUpdateNorm:
        return edit.updateNorm > 0 ? (edit.outlier ? QStringLiteral("⚠ ") : QString()) +
                                         QString::number(edit.updateNorm, 'g', 4)
                                   : QStringLiteral("–");
    case ColKeyOverlap:
        return edit.keyOverlap > 0 ? QString::number(edit.keyOverlap, 'f', 3) : QStringLiteral("–");
    case ColSeconds:
        return QStringLiteral("%1 s").arg(edit.seconds, 0, 'f', 2);
    case ColCreated:
        return QString::fromStdString(edit.created);
    default:
        return {};
    }
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

void HistoryView::setReadOnly(bool readOnly)
{
    m_readOnly = readOnly;
    updateButtons();
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
    m_revert->setEnabled(!m_readOnly && edit && laterActive);
    m_remove->setEnabled(!m_readOnly && edit && edit->active);
    m_explain->setEnabled(edit != nullptr);
    m_blast->setEnabled(edit && edit->active);
    m_undo->setEnabled(m_stack && m_stack->canUndo());
    m_redo->setEnabled(m_stack && m_stack->canRedo());
}
