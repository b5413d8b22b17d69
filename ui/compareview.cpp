#include "compareview.h"

#include "glossary.h"
#include "celltablemodel.h"
#include "runstyle.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QSplitter>
#include <QTableView>
#include <QTableWidget>
#include <QVBoxLayout>

CompareView::CompareView(QWidget *parent)
    : QWidget(parent), m_runs(new QListWidget), m_metric(new QComboBox), m_curves(new QCustomPlot),
      m_final(new QTableWidget), m_facts(new QTableView), m_factModel(new CellTableModel(this)), m_onlyDiffering(new QCheckBox(tr("Only facts that differ"))),
      m_factSummary(new QLabel)
{
    setObjectName(QStringLiteral("compareView"));
    m_runs->setObjectName(QStringLiteral("compareRuns"));
    m_metric->setObjectName(QStringLiteral("compareMetric"));
    m_curves->setObjectName(QStringLiteral("compareCurves"));
    m_final->setObjectName(QStringLiteral("compareFinal"));
    m_facts->setObjectName(QStringLiteral("factDiff"));
    m_onlyDiffering->setObjectName(QStringLiteral("onlyDiffering"));
    m_factSummary->setObjectName(QStringLiteral("factSummary"));

    m_runs->setToolTip(tr("Check two or more runs to compare them"));
    m_runs->setMaximumWidth(220);
    m_metric->setToolTip(tr("The metric drawn for every checked run"));
    m_curves->xAxis->setLabel(tr("edits (step)"));
    placeLegendBelow(m_curves);
    m_curves->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_curves->setMinimumHeight(200);
    m_final->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_facts->setModel(m_factModel);
    m_facts->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_facts->verticalHeader()->setVisible(false);
    m_onlyDiffering->setChecked(true);
    m_factSummary->setWordWrap(true);

    auto *side = new QVBoxLayout;
    side->addWidget(new QLabel(tr("Runs:")));
    side->addWidget(m_runs, 1);
    side->addWidget(new QLabel(tr("Metric:")));
    side->addWidget(m_metric);

    auto *factsBox = new QWidget;
    auto *factsLayout = new QVBoxLayout(factsBox);
    factsLayout->setContentsMargins(0, 0, 0, 0);
    auto *factsHeader = new QHBoxLayout;
    factsHeader->addWidget(m_factSummary, 1);
    factsHeader->addWidget(m_onlyDiffering);
    factsLayout->addLayout(factsHeader);
    factsLayout->addWidget(m_facts, 1);

    auto *tables = new QSplitter(Qt::Horizontal);
    tables->addWidget(m_final);
    tables->addWidget(factsBox);
    tables->setStretchFactor(0, 1);
    tables->setStretchFactor(1, 2);
    auto *plots = new QSplitter(Qt::Vertical);
    plots->addWidget(m_curves);
    plots->addWidget(tables);

    auto *layout = new QHBoxLayout(this);
    layout->addLayout(side);
    layout->addWidget(plots, 1);

    m_replotTimer.setSingleShot(true);
    m_replotTimer.setInterval(40);
    connect(&m_replotTimer, &QTimer::timeout, this, &CompareView::replot);
    connect(m_runs, &QListWidget::itemChanged, this, &CompareView::checksChanged);
    connect(m_metric, &QComboBox::currentIndexChanged, this, &CompareView::scheduleReplot);
    connect(m_onlyDiffering, &QCheckBox::toggled, this, &CompareView::fillFacts);
}

QList<qint64> CompareView::checkedRuns() const
{
    QList<qint64> ids;
    for (int i = 0; i < m_runs->count(); ++i)
        if (m_runs->item(i)->checkState() == Qt::Checked)
            ids << m_runs->item(i)->data(Qt::UserRole).toLongLong();
    return ids;
}

void CompareView::checkRuns(const QList<qint64> &runIds)
{
    {
        const QSignalBlocker blocker(m_runs);
        for (int i = 0; i < m_runs->count(); ++i)
            m_runs->item(i)->setCheckState(runIds.contains(m_runs->item(i)->data(Qt::UserRole).toLongLong())
                                               ? Qt::Checked
                                               : Qt::Unchecked);
    }
    checksChanged();
}

void CompareView::showRuns(const QString &db, const RunList &runs)
{
    const QList<qint64> checked = db == m_db ? checkedRuns() : QList<qint64>();
    if (db != m_db) {
        m_reports.clear();
        m_factList.clear();
        m_factRuns.clear();
    }
    m_db = db;
    {
        const QSignalBlocker blocker(m_runs);
        m_runs->clear();
        for (const auto &run : runs) {
            auto *item = new QListWidgetItem(tr("#%1 %2, %3 edits (%4)")
                                                 .arg(run.runId)
                                                 .arg(QString::fromStdString(run.method))
                                                 .arg(run.activeEdits)
                                                 .arg(QString::fromStdString(run.status)),
                                             m_runs);
            item->setData(Qt::UserRole, qint64(run.runId));
            item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
            item->setCheckState(checked.contains(run.runId) ? Qt::Checked : Qt::Unchecked);
        }
    }
    // The runs changed (a new run, a rollback): ask again for what is checked.
    if (checkedRuns().size() >= 2)
        Q_EMIT compareRequested(m_db, checkedRuns());
}

void CompareView::checksChanged()
{
    const auto ids = checkedRuns();
    if (ids.size() >= 2) {
        m_factSummary->setText(tr("Comparing…"));
        Q_EMIT compareRequested(m_db, ids);
    } else {
        m_factSummary->setText(tr("Check two or more runs."));
    }
    scheduleReplot();
}

void CompareView::showReport(const QString &db, const oedit::runs::RunReport &report)
{
    if (db != m_db)
        return;
    m_reports.insert(report.run.runId, report);
    // Offer every metric any report has; ES first when present.
    const QString current = m_metric->currentText();
    QStringList names;
    for (const auto &r : std::as_const(m_reports))
        for (const auto &checkpoint : r.checkpoints)
            for (const auto &metric : checkpoint.metrics) {
                const QString name = QString::fromStdString(metric.first);
                if (!names.contains(name))
                    names << name;
            }
    if (names.size() != m_metric->count()) {
        const QSignalBlocker blocker(m_metric);
        m_metric->clear();
        m_metric->addItems(names);
        for (int i = 0; i < names.size(); ++i)
            m_metric->setItemData(i, metricDescription(names[i]), Qt::ToolTipRole);
        const int keep = m_metric->findText(current.isEmpty() ? QStringLiteral("ES") : current);
        m_metric->setCurrentIndex(keep >= 0 ? keep : 0);
    }
    scheduleReplot();
}

void CompareView::showFacts(const QString &db, const QList<qint64> &runIds, const FactList &facts)
{
    if (db != m_db || runIds != checkedRuns())
        return; // the user has checked other runs since
    m_factRuns = runIds;
    m_factList = facts;
    fillFacts();
}

void CompareView::fillFacts()
{
    const int runs = static_cast<int>(m_factRuns.size());
    QStringList headers = {tr("Subject"), tr("Prompt"), tr("New target")};
    for (const auto id : std::as_const(m_factRuns)) {
        const auto it = m_reports.constFind(id);
        headers << (it == m_reports.constEnd() ? QStringLiteral("#%1").arg(id) : runLabel(*it));
    }
    // Facts kept by one run and lost by another, per pair of the first run with each other.
    int differing = 0, shared = 0;
    m_shownFacts.clear();
    for (const auto &fact : m_factList) {
        bool kept = false, lost = false;
        int scored = 0;
        for (const int k : fact.kept) {
            kept = kept || k == 1;
            lost = lost || k == 0;
            scored += k >= 0 ? 1 : 0;
        }
        if (scored == runs)
            ++shared;
        const bool differs = kept && lost;
        differing += differs ? 1 : 0;
        if (differs || !m_onlyDiffering->isChecked())
            m_shownFacts << &fact;
    }
    const bool first = m_factModel->columnCount() != headers.size();
    m_factModel->reset(headers, static_cast<int>(m_shownFacts.size()), [this](int row, int column, int role) -> QVariant {
        const auto &fact = *m_shownFacts[row];
        if (column < 3)
            return role == Qt::DisplayRole ? QString::fromStdString(column == 0   ? fact.subject
                                                                    : column == 1 ? fact.prompt
                                                                                  : fact.targetNew)
                                           : QVariant();
        const size_t r = static_cast<size_t>(column - 3);
        const int k = r < fact.kept.size() ? fact.kept[r] : -1;
        if (role == Qt::DisplayRole)
            return k == 1 ? tr("kept") : k == 0 ? tr("lost") : QStringLiteral("–");
        if (role == Qt::BackgroundRole && k >= 0)
            return k == 1 ? QColor(200, 235, 200) : QColor(245, 200, 200);
        return {};
    });
    if (first) // measured on the rows on screen (Qt looks at a thousand at most)
        m_facts->resizeColumnsToContents();
    m_factSummary->setText(runs < 2 ? tr("Check two or more runs.")
                                    : tr("%1 facts edited in all %2 runs; %3 kept by one run and lost by another "
                                         "(at each run's last checkpoint).")
                                          .arg(shared)
                                          .arg(runs)
                                          .arg(differing));
}

void CompareView::scheduleReplot()
{
    if (!m_replotTimer.isActive())
        m_replotTimer.start();
}

void CompareView::replot()
{
    const auto ids = checkedRuns();
    QList<const oedit::runs::RunReport *> reports;
    for (const auto id : ids) {
        const auto it = m_reports.constFind(id);
        if (it != m_reports.constEnd())
            reports << &it.value();
    }
    const std::string metric = m_metric->currentText().toStdString();
    m_curves->clearGraphs();
    for (int r = 0; r < reports.size(); ++r) {
        QVector<double> keys, values;
        for (const auto &checkpoint : reports[r]->checkpoints)
            for (const auto &[name, value] : checkpoint.metrics)
                if (name == metric) {
                    keys << double(checkpoint.step);
                    values << value;
                }
        QCPGraph *graph = m_curves->addGraph();
        graph->setName(runLabel(*reports[r]));
        graph->setData(keys, values, true);
        styleCurve(graph, runColour(r));
    }
    m_curves->yAxis->setLabel(m_metric->currentText());
    m_curves->rescaleAxes();
    if (m_curves->yAxis->range().size() < 1e-9) // a flat metric: a unit range around it
        m_curves->yAxis->setRange(m_curves->yAxis->range().center() - 0.55, m_curves->yAxis->range().center() + 0.55);
    else
        m_curves->yAxis->scaleRange(1.1);
    if (m_curves->xAxis->range().size() < 1)
        m_curves->xAxis->setRange(m_curves->xAxis->range().center() - 1, m_curves->xAxis->range().center() + 1);
    m_curves->replot(QCustomPlot::rpQueuedReplot);

    // Final metrics side by side: the last checkpoint of each run.
    QStringList names;
    QList<QMap<QString, double>> finals;
    for (const auto *report : reports) {
        QMap<QString, double> last;
        if (!report->checkpoints.empty())
            for (const auto &[name, value] : report->checkpoints.back().metrics) {
                last.insert(QString::fromStdString(name), value);
                if (!names.contains(QString::fromStdString(name)))
                    names << QString::fromStdString(name);
            }
        finals << last;
    }
    m_final->clear();
    m_final->setRowCount(names.size());
    m_final->setColumnCount(reports.size());
    QStringList headers;
    for (const auto *report : reports)
        headers << runLabel(*report);
    m_final->setHorizontalHeaderLabels(headers);
    m_final->setVerticalHeaderLabels(names);
    for (int row = 0; row < names.size(); ++row)
        for (int column = 0; column < reports.size(); ++column) {
            const auto it = finals[column].constFind(names[row]);
            m_final->setItem(row, column,
                             new QTableWidgetItem(it == finals[column].constEnd() ? QStringLiteral("–")
                                                                                  : QString::number(*it, 'f', 4)));
        }
    m_final->resizeColumnsToContents();
    if (m_factRuns == ids)
        fillFacts(); // run labels in the fact table's header come with the reports
}
