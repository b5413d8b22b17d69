#include "runstyle.h"

#include <QList>

QColor runColour(int index)
{
    // Matplotlib's tab10 order: distinct, and familiar from papers' plots.
    static const QList<QColor> colours = {QColor(31, 119, 180), QColor(214, 39, 40),  QColor(44, 160, 44),
                                          QColor(255, 127, 14), QColor(148, 103, 189), QColor(140, 86, 75),
                                          QColor(227, 119, 194), QColor(127, 127, 127)};
    return colours[index % colours.size()];
}

QString runLabel(const oedit::runs::RunReport &report)
{
    return QStringLiteral("%1 #%2").arg(QString::fromStdString(report.run.method)).arg(report.run.runId);
}
