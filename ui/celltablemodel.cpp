#include "celltablemodel.h"

void CellTableModel::reset(const QStringList &headers, int rows, Cells cells)
{
    beginResetModel();
    m_headers = headers;
    m_rows = rows;
    m_cells = std::move(cells);
    endResetModel();
}

void CellTableModel::contentsChanged()
{
    if (m_rows > 0 && !m_headers.isEmpty())
        Q_EMIT dataChanged(index(0, 0), index(m_rows - 1, static_cast<int>(m_headers.size()) - 1));
}

int CellTableModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : m_rows;
}

int CellTableModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : static_cast<int>(m_headers.size());
}

QVariant CellTableModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid() || !m_cells || index.row() >= m_rows || index.column() >= m_headers.size())
        return {};
    return m_cells(index.row(), index.column(), role);
}

QVariant CellTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation == Qt::Horizontal && role == Qt::DisplayRole && section >= 0 && section < m_headers.size())
        return m_headers[section];
    if (orientation == Qt::Vertical && role == Qt::DisplayRole)
        return section + 1;
    return {};
}
