// Compare tab: choose two or more runs of the ledger; see one metric's curves
// overlaid (one colour per run, the legend names method and run), their final
// metrics side by side, and the per-fact difference: facts edited by the runs
// (matched by subject, prompt and new target) that one run's last checkpoint
// keeps and another's lost. GUI thread only; fed by the worker's answers.
#pragma once

#include "engineworker.h"

#include <QList>
#include <QMap>
#include <QTimer>
#include <QWidget>

class CellTableModel;
class QCheckBox;
class QComboBox;
class QCustomPlot;
class QLabel;
class QListWidget;
class QTableView;
class QTableWidget;

class CompareView : public QWidget {
    Q_OBJECT
public:
    explicit CompareView(QWidget *parent = nullptr);

    QList<qint64> checkedRuns() const;
    // Checks exactly these runs (those the ledger has).
    void checkRuns(const QList<qint64> &runIds);

public Q_SLOTS:
    void showRuns(const QString &db, const RunList &runs);
    void showReport(const QString &db, const oedit::runs::RunReport &report);
    void showFacts(const QString &db, const QList<qint64> &runIds, const FactList &facts);

Q_SIGNALS:
    // The checked runs changed: their reports and fact comparison are wanted.
    void compareRequested(const QString &db, const QList<qint64> &runIds);

private:
    void checksChanged();
    void scheduleReplot();
    void replot();
    void fillFacts();

    QListWidget *m_runs;
    QComboBox *m_metric;
    QCustomPlot *m_curves;
    QTableWidget *m_final;
    QTableView *m_facts; // a model over the shown facts: a 100,000-edit run lists at once
    CellTableModel *m_factModel;
    QCheckBox *m_onlyDiffering;
    QLabel *m_factSummary;
    QTimer m_replotTimer;
    QString m_db;
    QMap<qint64, oedit::runs::RunReport> m_reports;
    QList<qint64> m_factRuns;
    FactList m_factList;
    QList<const oedit::runs::FactComparison *> m_shownFacts; // into m_factList
};
