// Plots for reports, drawn without a window: a JSON plot spec (the README's
// `--plot` paragraph describes it) drawn with QCustomPlot in the workbench's
// run style (runstyle.h) and written as PNG, SVG or PDF. The Retention view
// writes its plot through savePlot too.
// GUI thread only (QCustomPlot is a widget), so a QApplication must exist; the
// offscreen platform is enough. Failures come back as a message, never thrown.
#pragma once

#include <QList>
#include <QSize>
#include <QString>
#include <QVector>

class QCustomPlot;

struct PlotSeries {
    QString name;      // legend text; an empty name stays out of the legend
    QString colourKey; // picks the colour (methodColour); the name when not given
    Qt::PenStyle style = Qt::SolidLine;
    QVector<double> x, y;        // NaN in y is a gap in the line
    QVector<double> yLow, yHigh; // a shaded band when both are non-empty
};

struct PlotSpec {
    QString file; // a plain file name for --out-dir (.png, .svg or .pdf); may be empty with --out
    QString title, xLabel, yLabel;
    bool xLog = false, yLog = false;
    bool hasXRange = false, hasYRange = false;
    double xMin = 0, xMax = 1, yMin = 0, yMax = 1;
    QSize size{900, 560};
    Qt::Alignment legend = Qt::AlignTop | Qt::AlignRight; // no legend when 0
    QList<PlotSeries> series;
};

// A spec file holds one plot object or {"plots": [...]}. On any mistake the
// list is empty and *error names the file, the place (e.g. plots[1].series[0].y)
// and what is wrong.
QList<PlotSpec> readPlotSpecs(const QString &path, QString *error);
QList<PlotSpec> parsePlotSpecs(const QByteArray &json, QString *error);

// Writes `plot` to `path` at `size`; the suffix (.png, .svg or .pdf) picks the
// format. It writes a temporary file beside `path` and renames it, so a failed
// write leaves no half file. False with *error set when it could not write.
bool savePlot(QCustomPlot &plot, const QString &path, QSize size, QString *error);

// Draws `spec` on a fresh, never shown QCustomPlot and saves it at spec.size.
bool renderPlot(const PlotSpec &spec, const QString &path, QString *error);

// The workbench's `--plot SPEC --out FILE` (SPEC holds exactly one plot) or
// `--plot SPEC --out-dir DIR` (every plot names its "file"; DIR is created).
// Checks the whole spec before drawing anything. Appends each file written to
// *written; false with *error set at the first failure.
bool renderPlotSpecFile(const QString &specPath, const QString &out, const QString &outDir, QStringList *written,
                        QString *error);
