// A read-only table model whose cells come from a function: the view keeps
// its rows in its own vector and the table asks only for the cells it paints.
// A QTableWidget makes an item per cell up front, seconds of the GUI thread
// for a 100,000-edit run; this costs nothing until a row is on screen.
// GUI thread only.
#pragma once

#include <QAbstractTableModel>
#include <QStringList>

#include <functional>

class CellTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    // Returns the cell's data for `role` (Qt::DisplayRole, Qt::ToolTipRole,
    // Qt::ForegroundRole, ...), or an invalid QVariant.
    using Cells = std::function<QVariant(int row, int column, int role)>;

    explicit CellTableModel(QObject *parent = nullptr) : QAbstractTableModel(parent) {}

    // New headers, row count and cells: the view shows them from scratch.
    void reset(const QStringList &headers, int rows, Cells cells);
    // The same rows with new contents (selection and scroll position kept).
    void contentsChanged();

    int rowCount(const QModelIndex &parent = QModelIndex()) const override;
    int columnCount(const QModelIndex &parent = QModelIndex()) const override;
    QVariant data(const QModelIndex &index, int role) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

private:
    QStringList m_headers;
    int m_rows = 0;
    Cells m_cells;
};
