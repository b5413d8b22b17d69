#include "retentionview.h"

#include "glossary.h"
#include "retentionmatrix.h"
#include "plotrender.h"
#include "runstyle.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPushButton>
#include <QSet>
#include <QSettings>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace {

// The headline metrics (efficacy, generalisation, specificity, their score,
// unedited-fact accuracy), checked by default when present.
const QStringList kDefaultMetrics = {QStringLiteral("ES"), QStringLiteral("PS"), QStringLiteral("NS"),
                                     QStringLiteral("score"), QStringLiteral("unedited_acc")};

} // namespace

RetentionView::RetentionView(QWidget *parent)
    : QWidget(parent), m_curves(new QCustomPlot), m_retention(new QCustomPlot), m_norms(new QCustomPlot),
      m_heatmap(nullptr),
      m_metrics(new QListWidget), m_compare(new QTableWidget), m_export(new QPushButton(tr("Export Plot…"))),
      m_logScale(new QCheckBox(tr("Log scale for norms")))
{
    setObjectName(QStringLiteral("retentionView"));
    m_curves->setObjectName(QStringLiteral("curvePlot"));
    m_retention->setObjectName(QStringLiteral("retentionPlot"));
    m_norms->setObjectName(QStringLiteral("normPlot"));
    m_metrics->setObjectName(QStringLiteral("metricList"));
    m_compare->setObjectName(QStringLiteral("compareTable"));
    m_export->setObjectName(QStringLiteral("exportPlot"));

    m_curves->xAxis->setLabel(tr("edits (step)"));
    m_curves->yAxis->setLabel(tr("metric"));
    placeLegendBelow(m_curves);
    m_curves->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_curves->setMinimumHeight(220);

    m_heatmap = new QCPColorMap(m_retention->xAxis, m_retention->yAxis);
    m_heatmap->setName(tr("retention"));
    // Lost (0) red, kept (1) green; blank where an edit was not made yet.
    QCPColorGradient gradient;
    gradient.setColorStopAt(0, QColor(214, 39, 40));
    gradient.setColorStopAt(0.5, QColor(255, 221, 87));
    gradient.setColorStopAt(1, QColor(44, 160, 44));
    gradient.setNanHandling(QCPColorGradient::nhTransparent);
    m_heatmap->setGradient(gradient);
    m_heatmap->setDataRange(QCPRange(0, 1));
    m_heatmap->setInterpolate(false);
    auto *scale = new QCPColorScale(m_retention);
    m_retention->plotLayout()->addElement(0, 1, scale);
    scale->setLabel(tr("success"));
    m_heatmap->setColorScale(scale); // takes the scale's gradient, so give it ours
    scale->setGradient(gradient);
    scale->setDataRange(QCPRange(0, 1));
    QSharedPointer<QCPAxisTickerFixed> integers(new QCPAxisTickerFixed);
    integers->setTickStep(1);
    integers->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_retention->yAxis->setTicker(integers);
    m_curves->xAxis->setTicker(integers);
    m_retention->xAxis->setLabel(tr("checkpoint (step)"));
    m_retention->yAxis->setLabel(tr("edit (in run order)"));
    m_retention->setMinimumHeight(180);
    m_norms->xAxis->setLabel(tr("edits (step)"));
    m_norms->yAxis->setLabel(tr("‖W‖ / ‖W₀‖"));
    placeLegendBelow(m_norms);
    m_norms->legend->setFont(QFont(font().family(), 8));
    m_norms->setMinimumHeight(160);
    m_norms->setToolTip(tr("Frobenius norm of each edited layer's MLP output weights against the original. "
                           "The dashed line (%1x) marks where collapse often begins: a rule of thumb, not a test.")
                            .arg(kCollapseWarning));

    m_metrics->setToolTip(tr("Metrics to draw"));
    m_metrics->setMaximumWidth(200);
    m_compare->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_compare->setToolTip(tr("Final metrics of the selected runs, side by side"));

    auto *lower = new QSplitter(Qt::Horizontal);
    lower->addWidget(m_retention);
    lower->addWidget(m_norms);
    auto *plots = new QSplitter(Qt::Vertical);
    plots->addWidget(m_curves);
    plots->addWidget(lower);
    plots->addWidget(m_compare);
    plots->setStretchFactor(0, 3);
    plots->setStretchFactor(1, 2);
    plots->setStretchFactor(2, 1);

    auto *side = new QVBoxLayout;
    side->addWidget(new QLabel(tr("Metrics:")));
    side->addWidget(m_metrics, 1);
    side->addWidget(m_logScale);
    side->addWidget(m_export);

    auto *layout = new QHBoxLayout(this);
    layout->addLayout(side);
    layout->addWidget(plots, 1);

    // However often reports arrive, redraw at most every 40 ms.
    m_replotTimer.setSingleShot(true);
    m_replotTimer.setInterval(40);
    connect(&m_replotTimer, &QTimer::timeout, this, &RetentionView::replot);
    connect(m_metrics, &QListWidget::itemChanged, this, &RetentionView::scheduleReplot);
    connect(m_export, &QPushButton::clicked, this, &RetentionView::chooseExport);
    m_logScale->setObjectName(QStringLiteral("normLogScale"));
    m_logScale->setToolTip(tr("A norm that grows 1,000 times flattens every other curve on a linear axis"));
    connect(m_logScale, &QCheckBox::toggled, this, [this] {
        applyNormScale();
        m_norms->replot(QCustomPlot::rpQueuedReplot);
    });
    // A point leads to its edit in History.
    for (QCustomPlot *plot : {m_curves, m_norms}) {
        connect(plot, &QCustomPlot::plottableClick, this,
                [this](QCPAbstractPlottable *plottable, int dataIndex, QMouseEvent *) {
                    onPlottableClick(plottable, dataIndex);
                });
        plot->setToolTip(plot->toolTip() + (plot->toolTip().isEmpty() ? QString() : QStringLiteral("\n")) +
                         tr("Click a point to select its edit in History; drag to pan, wheel to zoom."));
    }
}

void RetentionView::applyNormScale()
{
    if (m_logScale->isChecked()) {
        m_norms->yAxis->setScaleType(QCPAxis::stLogarithmic);
        m_norms->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
        if (m_norms->yAxis->range().lower <= 0)
            m_norms->yAxis->setRangeLower(0.5);
    } else {
        m_norms->yAxis->setScaleType(QCPAxis::stLinear);
        m_norms->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
}

void RetentionView::onPlottableClick(QCPAbstractPlottable *plottable, int dataIndex)
{
    auto *graph = qobject_cast<QCPGraph *>(plottable);
    if (!graph || dataIndex < 0 || dataIndex >= graph->dataCount())
        return;
    const qint64 runId = graph->property("runId").toLongLong();
    const auto step = static_cast<qint64>(std::llround(graph->data()->at(dataIndex)->key));
    if (runId > 0 && step > 0)
        Q_EMIT stepClicked(runId, step);
}

void RetentionView::setRuns(const QString &db, const QList<qint64> &runIds)
{
    if (db != m_db) {
        m_reports.clear();
        m_normSeries.clear();
    }
    m_db = db;
    m_runIds = runIds;
    scheduleReplot();
}

void RetentionView::showReport(const QString &db, const oedit::runs::RunReport &report)
{
    if (db != m_db)
        return;
    m_reports.insert(report.run.runId, report);
    rebuildMetricList();
    scheduleReplot();
}

void RetentionView::showNormGrowth(const QString &db, qint64 runId, const NormList &series)
{
    if (db != m_db)
        return;
    m_normSeries.insert(runId, series);
    scheduleReplot();
}

void RetentionView::scheduleReplot()
{
    if (!m_replotTimer.isActive())
        m_replotTimer.start();
}

void RetentionView::rebuildMetricList()
{
    // Every metric any shown report carries, in stored order; checks kept.
    QStringList names;
    for (const auto &report : std::as_const(m_reports))
        for (const auto &checkpoint : report.checkpoints)
            for (const auto &metric : checkpoint.metrics) {
                const QString name = QString::fromStdString(metric.first);
                if (!names.contains(name))
                    names << name;
            }
    QStringList present;
    for (int i = 0; i < m_metrics->count(); ++i)
        present << m_metrics->item(i)->text();
    const QSignalBlocker blocker(m_metrics);
    for (const auto &name : std::as_const(names)) {
        if (present.contains(name))
            continue;
        auto *item = new QListWidgetItem(name, m_metrics);
        item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
        item->setCheckState(kDefaultMetrics.contains(name) ? Qt::Checked : Qt::Unchecked);
        item->setToolTip(metricDescription(name));
    }
}

void RetentionView::replot()
{
    QSet<QString> checked;
    for (int i = 0; i < m_metrics->count(); ++i)
        if (m_metrics->item(i)->checkState() == Qt::Checked)
            checked.insert(m_metrics->item(i)->text());

    QList<const oedit::runs::RunReport *> reports;
    for (const auto id : std::as_const(m_runIds)) {
        const auto it = m_reports.constFind(id);
        if (it != m_reports.constEnd())
            reports << &it.value();
    }

    // One colour per run when comparing; one colour per metric for a single run.
    m_curves->clearGraphs();
    const bool comparing = reports.size() > 1;
    static const QList<Qt::PenStyle> styles = {Qt::SolidLine, Qt::DashLine, Qt::DotLine, Qt::DashDotLine,
                                               Qt::DashDotDotLine};
    for (int r = 0; r < reports.size(); ++r) {
        const auto &report = *reports[r];
        std::map<std::string, std::pair<QVector<double>, QVector<double>>> series;
        std::vector<std::string> order;
        for (const auto &checkpoint : report.checkpoints)
            for (const auto &[name, value] : checkpoint.metrics) {
                if (!checked.contains(QString::fromStdString(name)))
                    continue;
                if (!series.count(name))
                    order.push_back(name);
                series[name].first << double(checkpoint.step);
                series[name].second << value;
            }
        for (size_t m = 0; m < order.size(); ++m) {
            QCPGraph *graph = m_curves->addGraph();
            const auto &[keys, values] = series[order[m]];
            graph->setData(keys, values, true);
            const QString metric = QString::fromStdString(order[m]);
            graph->setName(comparing ? QStringLiteral("%1 %2").arg(runLabel(report), metric) : metric);
            graph->setProperty("runId", report.run.runId);
            styleCurve(graph, comparing ? runColour(r) : runColour(static_cast<int>(m)),
                       comparing ? styles[static_cast<int>(m) % styles.size()] : Qt::SolidLine);
        }
    }
    m_curves->rescaleAxes();
    m_curves->yAxis->scaleRange(1.1); // keep curves at 0 and 1 off the frame
    if (m_curves->xAxis->range().size() < 1)
        m_curves->xAxis->setRange(m_curves->xAxis->range().center() - 1, m_curves->xAxis->range().center() + 1);
    m_curves->replot(QCustomPlot::rpQueuedReplot);

    if (reports.isEmpty()) {
        m_heatmap->data()->clear();
        m_retention->replot(QCustomPlot::rpQueuedReplot);
    } else {
        fillHeatmap(*reports.first());
    }
    fillCompareTable(reports);
    fillNorms(reports);
}

void RetentionView::fillNorms(const QList<const oedit::runs::RunReport *> &reports)
{
    m_norms->clearGraphs();
    m_norms->clearItems();
    const bool comparing = reports.size() > 1;
    static const QList<Qt::PenStyle> styles = {Qt::SolidLine, Qt::DashLine, Qt::DotLine, Qt::DashDotLine};
    double top = kCollapseWarning;
    double lastStep = 1;
    for (int r = 0; r < reports.size(); ++r) {
        const auto it = m_normSeries.constFind(reports[r]->run.runId);
        if (it == m_normSeries.constEnd())
            continue;
        for (size_t l = 0; l < it->size(); ++l) {
            const auto &series = (*it)[l];
            QVector<double> keys, values;
            for (size_t i = 0; i < series.steps.size(); ++i) {
                keys << double(series.steps[i]);
                values << series.relative[i];
                top = std::max(top, series.relative[i]);
                lastStep = std::max(lastStep, double(series.steps[i]));
            }
            QCPGraph *graph = m_norms->addGraph();
            graph->setData(keys, values, true);
            graph->setName(QStringLiteral("%1 L%2").arg(runLabel(*reports[r])).arg(series.layer));
            graph->setProperty("runId", reports[r]->run.runId);
            styleCurve(graph, comparing ? runColour(r) : runColour(static_cast<int>(l)),
                       comparing ? styles[static_cast<int>(l) % styles.size()] : Qt::SolidLine, false);
        }
    }
    // Where collapse usually begins (a heuristic; see kCollapseWarning).
    auto *warning = new QCPItemStraightLine(m_norms);
    warning->point1->setCoords(0, kCollapseWarning);
    warning->point2->setCoords(1, kCollapseWarning);
    warning->setPen(QPen(QColor(214, 39, 40), 1.4, Qt::DashLine));
    auto *label = new QCPItemText(m_norms);
    label->position->setType(QCPItemPosition::ptPlotCoords);
    label->position->setCoords(0, kCollapseWarning);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    label->setText(tr("collapse often begins (%1x, heuristic)").arg(kCollapseWarning));
    label->setColor(QColor(214, 39, 40));
    label->setFont(QFont(font().family(), 8));
    m_norms->xAxis->setRange(0, lastStep);
    m_norms->yAxis->setRange(0.9, top * 1.08);
    m_norms->replot(QCustomPlot::rpQueuedReplot);
}

void RetentionView::fillHeatmap(const oedit::runs::RunReport &report)
{
    const auto matrix = retentionMatrix(report, kHeatmapRows);
    auto *data = m_heatmap->data();
    if (matrix.columns == 0 || matrix.rows == 0) {
        data->clear();
        m_retention->replot(QCustomPlot::rpQueuedReplot);
        return;
    }
    data->setSize(matrix.columns, matrix.rows);
    // Cell centres at the middle edit of each bin, so the axis counts edits.
    const double first = 1.0 + double(matrix.editsPerRow - 1) / 2.0;
    data->setRange(QCPRange(0, matrix.columns - 1),
                   QCPRange(first, first + double(matrix.editsPerRow) * double(matrix.rows - 1)));
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    // At most about ten step labels, so they do not run into each other.
    const int labelEvery = std::max(1, (matrix.columns + 9) / 10);
    for (int c = 0; c < matrix.columns; ++c) {
        if (c % labelEvery == 0 || c == matrix.columns - 1)
            ticker->addTick(c, QString::number(matrix.steps[static_cast<size_t>(c)]));
        for (int r = 0; r < matrix.rows; ++r)
            data->setCell(c, r, matrix.cell(c, r));
    }
    m_retention->xAxis->setTicker(ticker);
    m_retention->xAxis->setRange(-0.5, matrix.columns - 0.5);
    m_retention->yAxis->setRange(0.5, double(matrix.edits) + 0.5);
    m_retention->yAxis->setLabel(matrix.editsPerRow > 1
                                     ? tr("edit (rows of %1, mean)").arg(matrix.editsPerRow)
                                     : tr("edit (in run order)"));
    m_retention->plotLayout()->setAutoMargins(QCP::msAll);
    m_retention->replot(QCustomPlot::rpQueuedReplot);
}

void RetentionView::fillCompareTable(const QList<const oedit::runs::RunReport *> &reports)
{
    // Final metrics: the last checkpoint of each run, rows in first-seen order.
    QStringList names;
    QList<QMap<QString, double>> finals;
    for (const auto *report : reports) {
        QMap<QString, double> last;
        if (!report->checkpoints.empty())
            for (const auto &[name, value] : report->checkpoints.back().metrics) {
                const QString metric = QString::fromStdString(name);
                last.insert(metric, value);
                if (!names.contains(metric))
                    names << metric;
            }
        finals << last;
    }
    m_compare->clear();
    m_compare->setRowCount(names.size());
    m_compare->setColumnCount(reports.size());
    QStringList headers;
    for (const auto *report : reports)
        headers << QStringLiteral("%1 (step %2)")
                       .arg(runLabel(*report))
                       .arg(report->checkpoints.empty() ? 0 : report->checkpoints.back().step);
    m_compare->setHorizontalHeaderLabels(headers);
    m_compare->setVerticalHeaderLabels(names);
    for (int row = 0; row < names.size(); ++row)
        for (int column = 0; column < reports.size(); ++column) {
            const auto it = finals[column].constFind(names[row]);
            m_compare->setItem(row, column,
                               new QTableWidgetItem(it == finals[column].constEnd() ? QStringLiteral("–")
                                                                                    : QString::number(*it, 'f', 4)));
        }
    m_compare->resizeColumnsToContents();
}

void RetentionView::chooseExport()
{
    QSettings settings;
    const QString start = settings.value(QStringLiteral("recent/plotExport"), QStringLiteral("retention.png")).toString();
    const QString path = QFileDialog::getSaveFileName(this, tr("Export the plot"), start,
                                                      tr("PNG image (*.png);;SVG drawing (*.svg);;PDF (*.pdf)"));
    if (path.isEmpty())
        return;
    settings.setValue(QStringLiteral("recent/plotExport"), path);
    if (!exportPlot(path))
        QMessageBox::warning(this, tr("Export the plot"),
                             tr("Could not write %1. Choose a folder you can write to, ending the name in "
                                ".png, .svg or .pdf.")
                                 .arg(path));
}

bool RetentionView::exportPlot(const QString &path)
{
    QString error;
    return savePlot(*m_curves, path, QSize(qMax(m_curves->width(), 800), qMax(m_curves->height(), 500)), &error);
}
