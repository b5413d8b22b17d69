#include "runstyle.h"

#include <qcustomplot.h>

#include <QHash>

const QList<QColor> &plotPalette()
{
    // Matplotlib's tab10: distinct, and familiar from papers' plots.
    static const QList<QColor> colours = {
        QColor(31, 119, 180), QColor(214, 39, 40),   QColor(44, 160, 44),   QColor(255, 127, 14), QColor(148, 103, 189),
        QColor(140, 86, 75),  QColor(227, 119, 194), QColor(127, 127, 127), QColor(188, 189, 34), QColor(23, 190, 207)};
    return colours;
}

QColor runColour(int index)
{
    return plotPalette()[index % plotPalette().size()];
}

QString methodKey(const QString &key)
{
    QString loose = key.toLower();
    loose.remove(QLatin1Char('-')).remove(QLatin1Char('_')).remove(QLatin1Char(' '));
    loose.replace(QLatin1String("plus"), QLatin1String("+")); // resources/hparams/oedit_plus.json
    return loose;
}

QColor methodColour(const QString &key)
{
    const QString loose = methodKey(key);
    // The methods core implements; O-Edit+ and its nearest rival first, so a
    // report's usual comparison is blue against red.
    static const QHash<QString, int> fixed = {{QStringLiteral("oedit+"), 0}, {QStringLiteral("rome"), 1},
                                              {QStringLiteral("memit"), 2},  {QStringLiteral("alphaedit"), 3},
                                              {QStringLiteral("oedit"), 4},  {QStringLiteral("ft"), 5}};
    const auto it = fixed.constFind(loose);
    if (it != fixed.constEnd())
        return plotPalette()[*it];
    // Other keys share the slots no method holds. A fixed string hash (FNV-1a),
    // not qHash, whose seed may differ between runs.
    quint32 hash = 2166136261u;
    for (const QChar c : std::as_const(loose))
        hash = (hash ^ c.unicode()) * 16777619u;
    const int free = plotPalette().size() - fixed.size();
    return plotPalette()[fixed.size() + static_cast<int>(hash % quint32(free))];
}

QString runLabel(const oedit::runs::RunReport &report)
{
    // A label the user gave names the run; the method and id stay, to tell runs apart.
    if (!report.run.label.empty())
        return QStringLiteral("%1 (%2 #%3)")
            .arg(QString::fromStdString(report.run.label), QString::fromStdString(report.run.method))
            .arg(report.run.runId);
    return QStringLiteral("%1 #%2").arg(QString::fromStdString(report.run.method)).arg(report.run.runId);
}

void styleCurve(QCPGraph *graph, const QColor &colour, Qt::PenStyle style, bool markers)
{
    QPen pen(colour);
    pen.setWidthF(1.6);
    pen.setStyle(style);
    graph->setPen(pen);
    if (markers)
        // A solid outline even on a dashed curve, so every point reads as a circle.
        graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(colour, 1.6), Qt::NoBrush, 5));
}

void placeLegendBelow(QCustomPlot *plot, int columns)
{
    auto *below = new QCPLayoutGrid;
    plot->plotLayout()->addElement(plot->plotLayout()->rowCount(), 0, below);
    below->addElement(0, 0, plot->legend);
    plot->legend->setFillOrder(QCPLegend::foColumnsFirst);
    plot->legend->setWrap(columns);
    plot->legend->setBorderPen(Qt::NoPen);
    plot->plotLayout()->setRowStretchFactor(plot->plotLayout()->rowCount() - 1, 0.001);
    plot->legend->setVisible(true);
}
