// Subspace tab: how the updates of the current run's edits sit against each
// other, from the updates stored in the ledger. A heatmap of |cos| between
// every pair of edits (all layers combined, or one layer), each edit's overlap
// with the protected implicit-knowledge subspace as its method recorded it,
// the principal angles of a chosen pair, and a capacity gauge per layer
// (protected rank + edit rank against the layer's width) with the
// orthogonality residual. GUI thread only; fed by the worker's answers.
#pragma once

#include "engineworker.h"

#include <QTimer>
#include <QWidget>

class QCPColorMap;
class QCustomPlot;
class QComboBox;
class QLabel;
class QSpinBox;
class QTableWidget;

class SubspaceView : public QWidget {
    Q_OBJECT
public:
    explicit SubspaceView(QWidget *parent = nullptr);

    int maxEdits() const;
    // The pair whose principal angles are shown (edit ids), -1 when none.
    qint64 pairA() const;
    qint64 pairB() const;

public Q_SLOTS:
    void setRun(const QString &db, qint64 runId);
    void showReport(const QString &db, const oedit::runs::SubspaceReport &report);
    void showAngles(const QString &db, const oedit::runs::PrincipalAngles &angles);
    // Chooses the pair by position in the report's edit list.
    void selectPair(int a, int b);

Q_SIGNALS:
    void reportRequested(const QString &db, qint64 runId, int maxEdits);
    void anglesRequested(const QString &db, qint64 editA, qint64 editB);

private:
    void scheduleReplot();
    void replot();
    void fillOverlapTable();
    void requestAngles();

    QLabel *m_title;
    QComboBox *m_layer;
    QSpinBox *m_maxEdits;
    QCustomPlot *m_cosPlot;
    QCPColorMap *m_cosMap;
    QCustomPlot *m_capacityPlot;
    QTableWidget *m_overlap;
    QComboBox *m_editA;
    QComboBox *m_editB;
    QLabel *m_angles;
    QLabel *m_capacityNote;
    QTimer m_replotTimer;
    QString m_db;
    qint64 m_runId = -1;
    oedit::runs::SubspaceReport m_report;
    bool m_hasReport = false;
};
