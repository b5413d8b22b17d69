// Retention and compare view: metric curves against the step for the runs
// selected in the Runs tab (one colour per run when comparing), the retention
// matrix (edit x checkpoint success) of the first selected run as a heatmap,
// a side-by-side table of final metrics, and the weight-norm growth of each
// edited layer (||W_k|| / ||W_0||) with a warning line where collapse
// usually begins. GUI thread only; it is handed
// reports and never asks the worker itself.
#pragma once

#include "engineworker.h"

#include <QList>
#include <QMap>
#include <QTimer>
#include <QWidget>

class QCPAbstractPlottable;
class QCPColorMap;
class QCustomPlot;
class QListWidget;
class QPushButton;
class QTableWidget;

class RetentionView : public QWidget {
    Q_OBJECT
public:
    explicit RetentionView(QWidget *parent = nullptr);

    // Writes the curve plot to `path`; the suffix picks PNG, SVG or PDF.
    // False when the file could not be written.
    bool exportPlot(const QString &path);

public Q_SLOTS:
    // The runs to show, in order; reports for them come through showReport.
    void setRuns(const QString &db, const QList<qint64> &runIds);
    void showReport(const QString &db, const oedit::runs::RunReport &report);
    void showNormGrowth(const QString &db, qint64 runId, const NormList &series);

Q_SIGNALS:
    // A point of a curve or of the norm plot was clicked: the edit at `step`
    // of run `runId` (the main window selects it in History).
    void stepClicked(qint64 runId, qint64 step);

public:
    // Relative norm growth at which the warning line is drawn: a heuristic.
    // Sequential-editing studies (e.g. Gupta et al. 2024, "Model editing at
    // scale leads to gradual and catastrophic forgetting") see edited layers'
    // norms grow steadily before the model collapses; past about twice the
    // original norm collapse is common, well before it rare.
    static constexpr double kCollapseWarning = 2.0;
    // Rows of the retention heatmap at most: more edits are binned (retentionmatrix.h).
    static constexpr int kHeatmapRows = 1000;

private:
    void scheduleReplot();
    void replot();
    void rebuildMetricList();
    void fillHeatmap(const oedit::runs::RunReport &report);
    void fillCompareTable(const QList<const oedit::runs::RunReport *> &reports);
    void fillNorms(const QList<const oedit::runs::RunReport *> &reports);
    void chooseExport();
    void applyNormScale();
    void onPlottableClick(QCPAbstractPlottable *plottable, int dataIndex);

    QCustomPlot *m_curves;
    QCustomPlot *m_retention;
    QCustomPlot *m_norms;
    QCPColorMap *m_heatmap;
    QListWidget *m_metrics;
    QTableWidget *m_compare;
    QPushButton *m_export;
    class QCheckBox *m_logScale;
    QTimer m_replotTimer; // single shot: many reports in a burst cost one replot
    QString m_db;
    QList<qint64> m_runIds;
    QMap<qint64, oedit::runs::RunReport> m_reports;
    QMap<qint64, NormList> m_normSeries;
};
