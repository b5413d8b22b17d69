// How runs look in every plot and table: one colour per run (or per curve,
// in a fixed order), one colour per method where a plot is keyed by method
// (`--plot` reports), a label "<method> #<run id>", and one pen and marker
// for every curve, so Retention, Compare and rendered reports look alike.
#pragma once

#include "oedit/runs.h"

#include <QColor>
#include <QList>
#include <QString>

class QCPGraph;

// The palette, in the order runColour hands it out.
const QList<QColor> &plotPalette();
QColor runColour(int index);
// The colour of a method, the same in every plot: the editing methods hold
// fixed palette slots; any other key gets a slot derived from its text.
// The key is compared loosely, so "O-Edit+", "oedit+" and "oedit_plus" agree.
QColor methodColour(const QString &key);
// The form in which methodColour compares keys ("O-Edit+" -> "oedit+").
QString methodKey(const QString &key);
QString runLabel(const oedit::runs::RunReport &report);
// The curve pen (width, line style) and, when `markers`, a circle on each point.
void styleCurve(QCPGraph *graph, const QColor &colour, Qt::PenStyle style = Qt::SolidLine, bool markers = true);

class QCustomPlot;
// Puts `plot`'s legend below its axes, in rows of `columns` entries, so it
// never covers the data (and clicks on points reach them).
void placeLegendBelow(QCustomPlot *plot, int columns = 4);
