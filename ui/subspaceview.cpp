#include "subspaceview.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>
#include <limits>

namespace {

QString editLabel(const oedit::runs::EditEntry &edit)
{
    return QObject::tr("step %1: %2 → %3")
        .arg(edit.step)
        .arg(QString::fromStdString(edit.subject), QString::fromStdString(edit.targetNew));
}

} // namespace

SubspaceView::SubspaceView(QWidget *parent)
    : QWidget(parent), m_title(new QLabel), m_layer(new QComboBox), m_maxEdits(new QSpinBox),
      m_cosPlot(new QCustomPlot), m_cosMap(nullptr), m_capacityPlot(new QCustomPlot), m_overlap(new QTableWidget(0, 5)),
      m_editA(new QComboBox), m_editB(new QComboBox), m_angles(new QLabel), m_capacityNote(new QLabel)
{
    setObjectName(QStringLiteral("subspaceView"));
    m_title->setObjectName(QStringLiteral("subspaceTitle"));
    m_layer->setObjectName(QStringLiteral("subspaceLayer"));
    m_maxEdits->setObjectName(QStringLiteral("subspaceMaxEdits"));
    m_cosPlot->setObjectName(QStringLiteral("cosPlot"));
    m_capacityPlot->setObjectName(QStringLiteral("capacityPlot"));
    m_overlap->setObjectName(QStringLiteral("overlapTable"));
    m_editA->setObjectName(QStringLiteral("pairA"));
    m_editB->setObjectName(QStringLiteral("pairB"));
    m_angles->setObjectName(QStringLiteral("principalAngles"));
    m_capacityNote->setObjectName(QStringLiteral("capacityNote"));

    m_title->setText(tr("Select a run in the Runs tab to see how its edits' updates overlap."));
    m_title->setWordWrap(true);
    m_maxEdits->setRange(2, 2000);
    m_maxEdits->setValue(100);
    m_maxEdits->setToolTip(tr("Compare at most this many of the run's latest active edits"));

    m_cosMap = new QCPColorMap(m_cosPlot->xAxis, m_cosPlot->yAxis);
    m_cosMap->setName(tr("|cos|"));
    QCPColorGradient gradient(QCPColorGradient::gpHot);
    gradient.setNanHandling(QCPColorGradient::nhTransparent);
    gradient = gradient.inverted(); // 0 (orthogonal) pale, 1 (parallel) dark
    m_cosMap->setGradient(gradient);
    m_cosMap->setDataRange(QCPRange(0, 1));
    m_cosMap->setInterpolate(false);
    auto *scale = new QCPColorScale(m_cosPlot);
    m_cosPlot->plotLayout()->addElement(0, 1, scale);
    scale->setLabel(tr("|cos| of the updates"));
    m_cosMap->setColorScale(scale);
    scale->setGradient(gradient);
    scale->setDataRange(QCPRange(0, 1));
    m_cosPlot->xAxis->setLabel(tr("edit (step)"));
    m_cosPlot->yAxis->setLabel(tr("edit (step)"));
    m_cosPlot->setMinimumHeight(240);
    m_cosPlot->setToolTip(tr("Click a cell to see the principal angles of that pair"));

    m_capacityPlot->yAxis->setLabel(tr("dimensions"));
    m_capacityPlot->xAxis->setLabel(tr("layer"));
    m_capacityPlot->legend->setVisible(true);
    m_capacityPlot->legend->setFont(QFont(font().family(), 8));
    // Below the width line, which runs along the top.
    m_capacityPlot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignRight | Qt::AlignVCenter);
    m_capacityPlot->setMinimumHeight(160);

    m_overlap->setHorizontalHeaderLabels(
        {tr("Step"), tr("Fact"), tr("|cos| with protected"), tr("Protected rank"), tr("Capacity left")});
    m_overlap->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_overlap->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_overlap->verticalHeader()->setVisible(false);
    m_overlap->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
    m_angles->setWordWrap(true);
    m_angles->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_capacityNote->setWordWrap(true);

    auto *refresh = new QPushButton(tr("Refresh"));
    refresh->setObjectName(QStringLiteral("subspaceRefresh"));
    auto *controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Layer:")));
    controls->addWidget(m_layer);
    controls->addWidget(new QLabel(tr("Edits:")));
    controls->addWidget(m_maxEdits);
    controls->addWidget(refresh);
    controls->addStretch();

    auto *pair = new QFormLayout;
    pair->addRow(tr("Edit A:"), m_editA);
    pair->addRow(tr("Edit B:"), m_editB);
    pair->addRow(tr("Principal angles:"), m_angles);
    auto *right = new QWidget;
    auto *rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    rightLayout->addWidget(m_overlap, 2);
    rightLayout->addLayout(pair);
    rightLayout->addWidget(m_capacityPlot, 2);
    rightLayout->addWidget(m_capacityNote);

    auto *split = new QSplitter(Qt::Horizontal);
    split->addWidget(m_cosPlot);
    split->addWidget(right);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);

    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_title);
    layout->addLayout(controls);
    layout->addWidget(split, 1);

    m_replotTimer.setSingleShot(true);
    m_replotTimer.setInterval(40);
    connect(&m_replotTimer, &QTimer::timeout, this, &SubspaceView::replot);
    connect(m_layer, &QComboBox::currentIndexChanged, this, &SubspaceView::scheduleReplot);
    connect(refresh, &QPushButton::clicked, this, [this] {
        if (m_runId > 0)
            Q_EMIT reportRequested(m_db, m_runId, maxEdits());
    });
    connect(m_editA, &QComboBox::currentIndexChanged, this, &SubspaceView::requestAngles);
    connect(m_editB, &QComboBox::currentIndexChanged, this, &SubspaceView::requestAngles);
    connect(m_cosPlot, &QCustomPlot::plottableClick, this, [this](QCPAbstractPlottable *, int, QMouseEvent *event) {
        const double key = m_cosPlot->xAxis->pixelToCoord(event->pos().x());
        const double value = m_cosPlot->yAxis->pixelToCoord(event->pos().y());
        selectPair(static_cast<int>(std::lround(key)), static_cast<int>(std::lround(value)));
    });
}

int SubspaceView::maxEdits() const
{
    return m_maxEdits->value();
}

qint64 SubspaceView::pairA() const
{
    return m_editA->currentIndex() >= 0 ? m_editA->currentData().toLongLong() : -1;
}

qint64 SubspaceView::pairB() const
{
    return m_editB->currentIndex() >= 0 ? m_editB->currentData().toLongLong() : -1;
}

void SubspaceView::setRun(const QString &db, qint64 runId)
{
    if (db == m_db && runId == m_runId)
        return;
    m_db = db;
    m_runId = runId;
    m_hasReport = false;
    m_title->setText(runId < 0 ? tr("No run selected in %1").arg(QFileInfo(db).fileName())
                               : tr("Run %1 in %2: reading its updates…").arg(runId).arg(QFileInfo(db).fileName()));
}

void SubspaceView::showReport(const QString &db, const oedit::runs::SubspaceReport &report)
{
    if (db != m_db || report.runId != m_runId)
        return;
    const qint64 a = pairA(), b = pairB();
    const QString layer = m_layer->currentText();
    m_report = report;
    m_hasReport = true;
    const auto n = static_cast<long long>(report.edits.size());
    m_title->setText(report.activeEdits > n
                         ? tr("Run %1 (%2): the latest %3 of its %4 active edits")
                               .arg(report.runId)
                               .arg(QString::fromStdString(report.method))
                               .arg(n)
                               .arg(report.activeEdits)
                         : tr("Run %1 (%2): its %3 active edits")
                               .arg(report.runId)
                               .arg(QString::fromStdString(report.method))
                               .arg(n));
    {
        const QSignalBlocker blockLayer(m_layer);
        m_layer->clear();
        m_layer->addItem(tr("all layers"), -1);
        for (const auto l : report.layers)
            m_layer->addItem(tr("layer %1").arg(l), l);
        const int keep = m_layer->findText(layer);
        m_layer->setCurrentIndex(keep >= 0 ? keep : 0);
    }
    {
        const QSignalBlocker blockA(m_editA), blockB(m_editB);
        m_editA->clear();
        m_editB->clear();
        for (const auto &edit : report.edits) {
            m_editA->addItem(editLabel(edit), edit.editId);
            m_editB->addItem(editLabel(edit), edit.editId);
        }
        // Keep the chosen pair; else the last two edits.
        const int ia = m_editA->findData(a), ib = m_editB->findData(b);
        m_editA->setCurrentIndex(ia >= 0 ? ia : std::max(0, int(n) - 2));
        m_editB->setCurrentIndex(ib >= 0 ? ib : std::max(0, int(n) - 1));
    }
    fillOverlapTable();
    requestAngles();
    scheduleReplot();
}

void SubspaceView::selectPair(int a, int b)
{
    if (a < 0 || b < 0 || a >= m_editA->count() || b >= m_editB->count())
        return;
    const QSignalBlocker blockA(m_editA);
    m_editA->setCurrentIndex(a);
    m_editB->setCurrentIndex(b); // asks for the angles
    requestAngles();
}

void SubspaceView::requestAngles()
{
    if (!m_hasReport || pairA() < 0 || pairB() < 0)
        return;
    m_angles->setText(tr("…"));
    Q_EMIT anglesRequested(m_db, pairA(), pairB());
}

void SubspaceView::showAngles(const QString &db, const oedit::runs::PrincipalAngles &angles)
{
    if (db != m_db || angles.editA != pairA() || angles.editB != pairB())
        return; // an answer about a pair the user has since left
    QStringList lines;
    for (size_t i = 0; i < angles.layers.size(); ++i) {
        QStringList degrees;
        const auto &values = angles.degrees[i];
        for (size_t k = 0; k < values.size() && k < 6; ++k)
            degrees << QString::number(values[k], 'f', 2) + QStringLiteral("°");
        if (values.size() > 6)
            degrees << tr("… (%1 in all)").arg(values.size());
        lines << tr("layer %1: %2").arg(angles.layers[i]).arg(degrees.isEmpty() ? tr("none (a zero update)")
                                                                                 : degrees.join(QStringLiteral(", ")));
    }
    m_angles->setText(lines.join(QLatin1Char('\n')) +
                      tr("\n(0° shares a direction; 90° is orthogonal, what O-Edit aims for)"));
}

void SubspaceView::fillOverlapTable()
{
    const auto runCapabilities = oedit::methodCapabilities(m_report.method);
    const bool oedit = runCapabilities && runCapabilities->protectsSubspace;
    m_overlap->setRowCount(static_cast<int>(m_report.edits.size()));
    for (int row = 0; row < static_cast<int>(m_report.edits.size()); ++row) {
        const auto &edit = m_report.edits[static_cast<size_t>(row)];
        const auto capabilities = oedit::methodCapabilities(edit.method);
        const bool recorded = capabilities && capabilities->protectsSubspace;
        const QStringList cells = {
            QString::number(edit.step),
            QStringLiteral("%1 → %2").arg(QString::fromStdString(edit.subject), QString::fromStdString(edit.targetNew)),
            recorded ? QString::number(edit.maxAbsCosWithProtected, 'g', 3) : QStringLiteral("–"),
            recorded ? QString::number(edit.protectedRank) : QStringLiteral("–"),
            edit.remainingCapacity >= 0 ? QString::number(edit.remainingCapacity) : QStringLiteral("–")};
        for (int column = 0; column < cells.size(); ++column)
            m_overlap->setItem(row, column, new QTableWidgetItem(cells[column]));
    }
    m_overlap->resizeColumnToContents(0);
    m_overlap->resizeColumnToContents(2);
    m_overlap->setToolTip(oedit ? tr("What each edit's method recorded when it was made")
                                : tr("Only O-Edit and O-Edit+ record a protected subspace"));
}

void SubspaceView::scheduleReplot()
{
    if (!m_replotTimer.isActive())
        m_replotTimer.start();
}

void SubspaceView::replot()
{
    const int n = static_cast<int>(m_report.edits.size());
    auto *data = m_cosMap->data();
    if (!m_hasReport || n == 0) {
        data->clear();
        m_cosPlot->replot(QCustomPlot::rpQueuedReplot);
        return;
    }
    const qint64 layer = m_layer->currentData().toLongLong();
    const std::vector<double> *values = &m_report.combined;
    for (size_t l = 0; l < m_report.layers.size(); ++l)
        if (m_report.layers[l] == layer)
            values = &m_report.perLayer[l];
    data->setSize(n, n);
    data->setRange(QCPRange(0, n - 1), QCPRange(0, n - 1));
    for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b)
            data->setCell(a, b, (*values)[static_cast<size_t>(a * n + b)]);
    // Label the axes with steps, thinned out for long runs.
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    const int every = std::max(1, n / 12);
    for (int i = 0; i < n; i += every)
        ticker->addTick(i, QString::number(m_report.edits[static_cast<size_t>(i)].step));
    m_cosPlot->xAxis->setTicker(ticker);
    m_cosPlot->yAxis->setTicker(ticker);
    m_cosPlot->xAxis->setRange(-0.5, n - 0.5);
    m_cosPlot->yAxis->setRange(-0.5, n - 0.5);
    m_cosPlot->replot(QCustomPlot::rpQueuedReplot);

    // Capacity: protected rank + edit rank stacked against each layer's width.
    m_capacityPlot->clearPlottables();
    m_capacityPlot->clearItems();
    QVector<double> keys, protectedRanks, editRanks;
    double widest = 1;
    QStringList residuals;
    QSharedPointer<QCPAxisTickerText> layerTicker(new QCPAxisTickerText);
    for (size_t l = 0; l < m_report.layers.size(); ++l) {
        keys << double(l);
        protectedRanks << double(m_report.protectedRank);
        editRanks << double(m_report.editRank[l]);
        widest = std::max(widest, double(m_report.width[l]));
        layerTicker->addTick(double(l), QString::number(m_report.layers[l]));
        residuals << tr("layer %1: %2").arg(m_report.layers[l]).arg(m_report.residual[l], 0, 'g', 3);
    }
    auto *protectedBars = new QCPBars(m_capacityPlot->xAxis, m_capacityPlot->yAxis);
    protectedBars->setName(tr("protected rank"));
    protectedBars->setBrush(QColor(31, 119, 180, 180));
    protectedBars->setPen(QPen(QColor(31, 119, 180)));
    protectedBars->setData(keys, protectedRanks);
    protectedBars->setWidth(0.5);
    auto *editBars = new QCPBars(m_capacityPlot->xAxis, m_capacityPlot->yAxis);
    editBars->setName(tr("edit rank"));
    editBars->setBrush(QColor(255, 127, 14, 200));
    editBars->setPen(QPen(QColor(255, 127, 14)));
    editBars->setData(keys, editRanks);
    editBars->setWidth(0.5);
    editBars->moveAbove(protectedBars);
    auto *width = new QCPGraph(m_capacityPlot->xAxis, m_capacityPlot->yAxis);
    width->setName(tr("layer width"));
    width->setPen(QPen(QColor(214, 39, 40), 2, Qt::DashLine));
    // One level segment over each layer's bar; NaN between them breaks the line.
    QVector<double> widthKeys, widths;
    for (size_t l = 0; l < m_report.width.size(); ++l) {
        widthKeys << double(l) - 0.4 << double(l) + 0.4 << double(l) + 0.5;
        widths << double(m_report.width[l]) << double(m_report.width[l]) << std::numeric_limits<double>::quiet_NaN();
    }
    width->setData(widthKeys, widths, true);
    m_capacityPlot->xAxis->setTicker(layerTicker);
    m_capacityPlot->xAxis->setRange(-0.6, double(keys.size()) - 0.4);
    m_capacityPlot->yAxis->setRange(0, widest * 1.1);
    m_capacityPlot->replot(QCustomPlot::rpQueuedReplot);
    m_capacityNote->setText(tr("Orthogonality residual (largest cosine between two edits' output directions; 0 is "
                               "orthogonal): %1. Protected rank: the latest edit's, as its method recorded it.")
                                .arg(residuals.join(QStringLiteral(", "))));
}
