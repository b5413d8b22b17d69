// History tab: the ledger of the current run as a table (step, fact, method,
// in effect or not, efficacy at the latest checkpoint, time; a model over the
// run's edits, so a 100,000-edit run shows at once), with revert to
// a step, remove one edit, and undo/redo of those through the window's
// QUndoStack. GUI thread only; it emits requests the main window turns into
// undo commands and worker calls, and shows the answers it is given.
#pragma once

#include "engineworker.h"


#include <utility>
#include <vector>
#include <QWidget>

class CellTableModel;
class QLabel;
class QPushButton;
class QTableView;
class QUndoStack;

class HistoryView : public QWidget {
    Q_OBJECT
public:
    explicit HistoryView(QWidget *parent = nullptr);

    // Undo and Redo buttons drive this stack (the Edit menu's too).
    void setUndoStack(QUndoStack *stack);
    QString ledgerPath() const { return m_db; }
    qint64 runId() const { return m_runId; }
    // The edit shown in `row` of the table, -1 when none.
    qint64 editIdAt(int row) const;

public Q_SLOTS:
    // The run to show; its edits and report come through showEdits/showReport.
    void setRun(const QString &db, qint64 runId);
    void showEdits(const QString &db, qint64 runId, const EditList &edits);
    void showReport(const QString &db, const oedit::runs::RunReport &report);
    void setBusy(bool busy);
    // The document's ledger is read-only: rollbacks are off.
    void setReadOnly(bool readOnly);
    // Selects and shows the edit made at `step` of the run shown; false when
    // the run has no such step (or its edits have not arrived yet).
    bool selectStep(qint64 step);

Q_SIGNALS:
    void revertRequested(const QString &db, qint64 runId, qint64 step);
    void removeRequested(const QString &db, qint64 runId, qint64 editId, qint64 step);
    void refreshRequested(const QString &db, qint64 runId);
    // The selected edit's own fact, to the Interference tab: which edits weakened it.
    void explainRequested(const QString &subject, const QString &prompt, const QString &target);
    // The selected edit, to the Interference tab: what it hurt.
    void blastRadiusRequested(qint64 editId);

private:
    void fill();
    // Orders m_edits by the column the user clicked (step by default).
    void sortEdits();
    void sortBy(int column, Qt::SortOrder order);
    QVariant sortKey(const oedit::runs::EditEntry &edit, int column) const;
    void updateButtons();
    const oedit::runs::EditEntry *selectedEdit() const;
    QVariant cell(int row, int column, int role) const;

    QLabel *m_title;
    QTableView *m_table;
    CellTableModel *m_model;
    QPushButton *m_revert;
    QPushButton *m_remove;
    QPushButton *m_undo;
    QPushButton *m_redo;
    QPushButton *m_explain;
    QPushButton *m_blast;
    QUndoStack *m_stack = nullptr;
    QString m_db;
    qint64 m_runId = -1;
    EditList m_edits;
    int m_sortColumn = 0; // ColStep
    Qt::SortOrder m_sortOrder = Qt::AscendingOrder;
    std::vector<std::pair<long long, double>> m_efficacy; // (edit id, success) at the latest checkpoint, by id
    qint64 m_efficacyStep = -1;
    bool m_busy = false;
    bool m_readOnly = false;
};
