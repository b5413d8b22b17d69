#include "plotrender.h"
#include "runstyle.h"

#include <qcustomplot.h>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSet>
#include <QSvgGenerator>

#include <algorithm>
#include <cmath>
#include <limits>

namespace {

const QStringList kSuffixes = {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")};

// Reads plot objects field by field and keeps the first mistake with its
// place in the spec, e.g. "plots[1].series[0].y[3]: not a number".
class SpecReader {
public:
    QString error;

    bool readPlot(const QJsonObject &object, const QString &where, PlotSpec *plot)
    {
        static const QStringList known = {
            QStringLiteral("title"),  QStringLiteral("x_label"), QStringLiteral("y_label"), QStringLiteral("x_log"),
            QStringLiteral("y_log"),  QStringLiteral("x_range"), QStringLiteral("y_range"), QStringLiteral("width"),
            QStringLiteral("height"), QStringLiteral("legend"),  QStringLiteral("series"),  QStringLiteral("file")};
        if (!onlyKnownKeys(object, known, where) || !readString(object, "title", where, &plot->title) ||
            !readString(object, "x_label", where, &plot->xLabel) ||
            !readString(object, "y_label", where, &plot->yLabel) || !readBool(object, "x_log", where, &plot->xLog) ||
            !readBool(object, "y_log", where, &plot->yLog) || !readFile(object, where, &plot->file) ||
            !readPixels(object, "width", where, &plot->size.rwidth()) ||
            !readPixels(object, "height", where, &plot->size.rheight()) || !readLegend(object, where, plot) ||
            !readRange(object, "x_range", where, plot->xLog, &plot->hasXRange, &plot->xMin, &plot->xMax) ||
            !readRange(object, "y_range", where, plot->yLog, &plot->hasYRange, &plot->yMin, &plot->yMax))
            return false;
        const QJsonValue series = object.value(QStringLiteral("series"));
        if (!series.isArray() || series.toArray().isEmpty())
            return fail(place(where, "series"), QStringLiteral("a non-empty list of series is required"));
        const QJsonArray list = series.toArray();
        for (int i = 0; i < list.size(); ++i) {
            const QString at = QStringLiteral("%1[%2]").arg(place(where, "series")).arg(i);
            if (!list[i].isObject())
                return fail(at, QStringLiteral("a series is an object"));
            PlotSeries one;
            if (!readSeries(list[i].toObject(), at, *plot, &one))
                return false;
            plot->series << one;
        }
        return true;
    }

private:
    bool fail(const QString &where, const QString &what)
    {
        error = where.isEmpty() ? what : QStringLiteral("%1: %2").arg(where, what);
        return false;
    }

    static QString place(const QString &where, const char *key)
    {
        return where.isEmpty() ? QString::fromLatin1(key) : QStringLiteral("%1.%2").arg(where, QLatin1String(key));
    }

    // A misspelt key would otherwise be silently ignored.
    bool onlyKnownKeys(const QJsonObject &object, const QStringList &known, const QString &where)
    {
        for (auto it = object.begin(); it != object.end(); ++it)
            if (!known.contains(it.key()))
                return fail(where, QStringLiteral("unknown key \"%1\" (known: %2)").arg(it.key(), known.join(u", ")));
        return true;
    }

    bool readString(const QJsonObject &object, const char *key, const QString &where, QString *value)
    {
        const QJsonValue v = object.value(QLatin1String(key));
        if (v.isUndefined())
            return true;
        if (!v.isString())
            return fail(place(where, key), QStringLiteral("not a string"));
        *value = v.toString();
        return true;
    }

    bool readBool(const QJsonObject &object, const char *key, const QString &where, bool *value)
    {
        const QJsonValue v = object.value(QLatin1String(key));
        if (v.isUndefined())
            return true;
        if (!v.isBool())
            return fail(place(where, key), QStringLiteral("not true or false"));
        *value = v.toBool();
        return true;
    }

    bool readFile(const QJsonObject &object, const QString &where, QString *file)
    {
        if (!readString(object, "file", where, file) || file->isEmpty())
            return true;
        // A name inside --out-dir: no folders, so a spec cannot write elsewhere.
        if (QFileInfo(*file).fileName() != *file || file->startsWith(QLatin1Char('.')) || file->contains(u'\\'))
            return fail(place(where, "file"), QStringLiteral("\"%1\" is not a plain file name").arg(*file));
        if (!kSuffixes.contains(QFileInfo(*file).suffix().toLower()))
            return fail(place(where, "file"), QStringLiteral("\"%1\" must end in .png, .svg or .pdf").arg(*file));
        return true;
    }

    bool readPixels(const QJsonObject &object, const char *key, const QString &where, int *pixels)
    {
        const QJsonValue v = object.value(QLatin1String(key));
        if (v.isUndefined())
            return true;
        // Bounded so a typo cannot ask for a picture of several gigabytes.
        const double n = v.toDouble(-1);
        if (!v.isDouble() || n != std::floor(n) || n < 64 || n > 8192)
            return fail(place(where, key), QStringLiteral("a whole number of pixels from 64 to 8192"));
        *pixels = static_cast<int>(n);
        return true;
    }

    bool readLegend(const QJsonObject &object, const QString &where, PlotSpec *plot)
    {
        static const QHash<QString, Qt::Alignment> places = {
            {QStringLiteral("top-right"), Qt::AlignTop | Qt::AlignRight},
            {QStringLiteral("top-left"), Qt::AlignTop | Qt::AlignLeft},
            {QStringLiteral("bottom-right"), Qt::AlignBottom | Qt::AlignRight},
            {QStringLiteral("bottom-left"), Qt::AlignBottom | Qt::AlignLeft},
            {QStringLiteral("none"), Qt::Alignment()}};
        QString name;
        if (!readString(object, "legend", where, &name))
            return false;
        if (name.isEmpty())
            return true;
        if (!places.contains(name))
            return fail(
                place(where, "legend"),
                QStringLiteral("\"%1\" is not top-right, top-left, bottom-right, bottom-left or none").arg(name));
        plot->legend = places.value(name);
        return true;
    }

    bool readRange(const QJsonObject &object, const char *key, const QString &where, bool log, bool *has, double *low,
                   double *high)
    {
        const QJsonValue v = object.value(QLatin1String(key));
        if (v.isUndefined())
            return true;
        QVector<double> pair;
        if (!readNumbers(v, place(where, key), false, &pair))
            return false;
        if (pair.size() != 2 || !(pair[0] < pair[1]))
            return fail(place(where, key), QStringLiteral("[low, high] with low < high"));
        if (log && pair[0] <= 0)
            return fail(place(where, key), QStringLiteral("a log axis needs a range above 0"));
        *has = true;
        *low = pair[0];
        *high = pair[1];
        return true;
    }

    // JSON null is read as NaN where `nullIsGap`: QCustomPlot leaves a gap there.
    bool readNumbers(const QJsonValue &value, const QString &where, bool nullIsGap, QVector<double> *numbers)
    {
        if (!value.isArray())
            return fail(where, QStringLiteral("not a list of numbers"));
        const QJsonArray array = value.toArray();
        for (int i = 0; i < array.size(); ++i) {
            const QString at = QStringLiteral("%1[%2]").arg(where).arg(i);
            if (array[i].isNull() && nullIsGap)
                *numbers << std::numeric_limits<double>::quiet_NaN();
            else if (!array[i].isDouble())
                return fail(at, nullIsGap ? QStringLiteral("not a number or null") : QStringLiteral("not a number"));
            else if (!std::isfinite(array[i].toDouble()))
                return fail(at, QStringLiteral("not a finite number"));
            else
                *numbers << array[i].toDouble();
        }
        return true;
    }

    bool readSeries(const QJsonObject &object, const QString &where, const PlotSpec &plot, PlotSeries *series)
    {
        static const QStringList known = {QStringLiteral("name"),  QStringLiteral("x"),         QStringLiteral("y"),
                                          QStringLiteral("style"), QStringLiteral("color_key"), QStringLiteral("y_low"),
                                          QStringLiteral("y_high")};
        static const QHash<QString, Qt::PenStyle> styles = {{QStringLiteral("solid"), Qt::SolidLine},
                                                            {QStringLiteral("dashed"), Qt::DashLine},
                                                            {QStringLiteral("dotted"), Qt::DotLine}};
        QString style;
        if (!onlyKnownKeys(object, known, where) || !readString(object, "name", where, &series->name) ||
            !readString(object, "color_key", where, &series->colourKey) ||
            !readString(object, "style", where, &style) ||
            !readNumbers(object.value(QStringLiteral("x")), place(where, "x"), false, &series->x) ||
            !readNumbers(object.value(QStringLiteral("y")), place(where, "y"), true, &series->y))
            return false;
        if (!style.isEmpty() && !styles.contains(style))
            return fail(place(where, "style"), QStringLiteral("\"%1\" is not solid, dashed or dotted").arg(style));
        series->style = styles.value(style, Qt::SolidLine);
        if (series->colourKey.isEmpty())
            series->colourKey = series->name;
        if (series->x.size() != series->y.size())
            return fail(where,
                        QStringLiteral("x has %1 values but y has %2").arg(series->x.size()).arg(series->y.size()));

        const bool hasLow = object.contains(QStringLiteral("y_low")),
                   hasHigh = object.contains(QStringLiteral("y_high"));
        if (hasLow != hasHigh)
            return fail(where, QStringLiteral("a band needs both y_low and y_high"));
        if (hasLow) {
            if (!readNumbers(object.value(QStringLiteral("y_low")), place(where, "y_low"), true, &series->yLow) ||
                !readNumbers(object.value(QStringLiteral("y_high")), place(where, "y_high"), true, &series->yHigh))
                return false;
            if (series->yLow.size() != series->x.size() || series->yHigh.size() != series->x.size())
                return fail(where,
                            QStringLiteral("y_low and y_high need as many values as x (%1)").arg(series->x.size()));
            for (int i = 0; i < series->x.size(); ++i)
                if (series->yLow[i] > series->yHigh[i])
                    return fail(QStringLiteral("%1[%2]").arg(place(where, "y_low")).arg(i),
                                QStringLiteral("above y_high[%1]").arg(i));
        }
        // QCustomPlot would drop such points without a word.
        if (plot.xLog)
            for (int i = 0; i < series->x.size(); ++i)
                if (series->x[i] <= 0)
                    return fail(QStringLiteral("%1[%2]").arg(place(where, "x")).arg(i),
                                QStringLiteral("x_log needs values above 0"));
        if (plot.yLog)
            for (const auto *values : {&series->y, &series->yLow, &series->yHigh})
                for (const double v : *values)
                    if (v <= 0) // NaN (a gap) compares false
                        return fail(where, QStringLiteral("y_log needs y values above 0"));
        return true;
    }
};

// The colour of each series' key: methodColour, except that a key whose colour
// an earlier, different key of this plot already has takes the first palette
// colour still free, so two methods never look alike in one plot.
QHash<QString, QColor> seriesColours(const QList<PlotSeries> &series)
{
    QHash<QString, QColor> byKey;
    QList<QColor> used;
    for (const auto &one : series) {
        const QString key = methodKey(one.colourKey);
        if (byKey.contains(key))
            continue;
        QColor colour = methodColour(key);
        for (int i = 0; used.contains(colour) && i < plotPalette().size(); ++i)
            colour = plotPalette()[i];
        byKey.insert(key, colour);
        used << colour;
    }
    return byKey;
}

// Fits the axis to [low, high] with a margin, so points on the edge stay
// visible (in log space on a log axis). A single value gets one unit (or one
// decade) around it; no value at all, 0 to 1 (1 to 10 on a log axis).
void fitAxis(QCPAxis *axis, bool log, double margin, double low, double high)
{
    if (low > high) {
        low = log ? 1 : 0;
        high = log ? 10 : 1;
    }
    if (log) {
        low = std::log10(low);
        high = std::log10(high);
    }
    if (high - low < 1e-9) {
        low -= 0.5;
        high += 0.5;
    }
    const double pad = (high - low) * margin;
    low -= pad;
    high += pad;
    axis->setRange(log ? std::pow(10.0, low) : low, log ? std::pow(10.0, high) : high);
}

// QCPAxisTickerLog switches to linear ticks on a range under 1.6 decades
// (e.g. 500, 1000, 1500, 2000 for edits 100..2000), which leaves the low end
// of a log axis unlabelled; there, ticks at 1, 2 and 5 times each power of
// ten spread evenly. Wider ranges keep its ticks at powers of ten.
class LogTicker : public QCPAxisTickerLog {
protected:
    QVector<double> createTickVector(double tickStep, const QCPRange &range) override
    {
        m_narrow = range.lower > 0 && std::log10(range.upper / range.lower) < 1.6;
        if (!m_narrow)
            return QCPAxisTickerLog::createTickVector(tickStep, range);
        QVector<double> ticks;
        for (int power = int(std::floor(std::log10(range.lower))); power <= int(std::ceil(std::log10(range.upper)));
             ++power)
            for (const double mantissa : {1.0, 2.0, 5.0})
                ticks << mantissa * std::pow(10.0, power);
        return ticks;
    }

    QVector<double> createSubTickVector(int subTickCount, const QVector<double> &ticks) override
    {
        return m_narrow ? QVector<double>() : QCPAxisTickerLog::createSubTickVector(subTickCount, ticks);
    }

private:
    bool m_narrow = false;
};

void setUpAxis(QCPAxis *axis, const QString &label, bool log)
{
    axis->setLabel(label);
    if (log) {
        axis->setScaleType(QCPAxis::stLogarithmic);
        axis->setTicker(QSharedPointer<QCPAxisTicker>(new LogTicker));
    }
}

void drawPlot(QCustomPlot &plot, const PlotSpec &spec)
{
    setUpAxis(plot.xAxis, spec.xLabel, spec.xLog);
    setUpAxis(plot.yAxis, spec.yLabel, spec.yLog);
    if (!spec.title.isEmpty()) {
        plot.plotLayout()->insertRow(0);
        plot.plotLayout()->addElement(
            0, 0, new QCPTextElement(&plot, spec.title, QFont(plot.font().family(), 12, QFont::Bold)));
    }

    const auto colours = seriesColours(spec.series);
    bool named = false;
    for (const auto &series : spec.series) {
        const QColor colour = colours.value(methodKey(series.colourKey));
        if (!series.yLow.isEmpty()) {
            // The band first, so the curve is drawn over it.
            QCPGraph *low = plot.addGraph();
            QCPGraph *high = plot.addGraph();
            low->setData(series.x, series.yLow);
            high->setData(series.x, series.yHigh);
            low->setPen(Qt::NoPen);
            high->setPen(Qt::NoPen);
            QColor shade = colour;
            shade.setAlpha(50);
            high->setBrush(shade);
            high->setChannelFillGraph(low);
            low->removeFromLegend();
            high->removeFromLegend();
        }
        QCPGraph *graph = plot.addGraph();
        graph->setData(series.x, series.y);
        graph->setName(series.name);
        styleCurve(graph, colour, series.style);
        if (series.name.isEmpty())
            graph->removeFromLegend();
        named = named || !series.name.isEmpty();
    }

    // From the values themselves: QCustomPlot's rescaleAxes keeps the old
    // range's size around a single point and ignores an all-gap series oddly.
    const double inf = std::numeric_limits<double>::infinity();
    double xLow = inf, xHigh = -inf, yLow = inf, yHigh = -inf;
    for (const auto &series : spec.series) {
        for (int i = 0; i < series.x.size(); ++i)
            for (const auto *values : {&series.y, &series.yLow, &series.yHigh})
                if (i < values->size() && !std::isnan((*values)[i])) {
                    xLow = std::min(xLow, series.x[i]);
                    xHigh = std::max(xHigh, series.x[i]);
                    yLow = std::min(yLow, (*values)[i]);
                    yHigh = std::max(yHigh, (*values)[i]);
                }
    }
    fitAxis(plot.xAxis, spec.xLog, 0.04, xLow, xHigh);
    fitAxis(plot.yAxis, spec.yLog, 0.06, yLow, yHigh);
    if (spec.hasXRange)
        plot.xAxis->setRange(spec.xMin, spec.xMax);
    if (spec.hasYRange)
        plot.yAxis->setRange(spec.yMin, spec.yMax);

    plot.legend->setVisible(named && spec.legend != Qt::Alignment());
    plot.legend->setBrush(QColor(255, 255, 255, 220)); // curves behind it stay faintly visible
    if (plot.legend->visible())
        plot.axisRect()->insetLayout()->setInsetAlignment(0, spec.legend);
}

} // namespace

QList<PlotSpec> parsePlotSpecs(const QByteArray &json, QString *error)
{
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(json, &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        const QByteArray before = json.left(parseError.offset);
        *error = QStringLiteral("invalid JSON at line %1, column %2: %3")
                     .arg(before.count('\n') + 1)
                     .arg(parseError.offset - before.lastIndexOf('\n'))
                     .arg(parseError.errorString());
        return {};
    }
    if (!document.isObject()) {
        *error = QStringLiteral("expected a plot object or {\"plots\": [...]}");
        return {};
    }
    const QJsonObject top = document.object();
    SpecReader reader;
    QList<PlotSpec> plots;
    if (!top.contains(QStringLiteral("plots"))) {
        PlotSpec plot;
        if (!reader.readPlot(top, QString(), &plot)) {
            *error = reader.error;
            return {};
        }
        return {plot};
    }
    const QJsonValue list = top.value(QStringLiteral("plots"));
    if (top.size() != 1 || !list.isArray() || list.toArray().isEmpty()) {
        *error = QStringLiteral("expected {\"plots\": [...]} with one or more plots and no other key");
        return {};
    }
    for (int i = 0; i < list.toArray().size(); ++i) {
        const QString where = QStringLiteral("plots[%1]").arg(i);
        PlotSpec plot;
        if (!list.toArray()[i].isObject()) {
            *error = where + QStringLiteral(": a plot is an object");
            return {};
        }
        if (!reader.readPlot(list.toArray()[i].toObject(), where, &plot)) {
            *error = reader.error;
            return {};
        }
        plots << plot;
    }
    return plots;
}

QList<PlotSpec> readPlotSpecs(const QString &path, QString *error)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        *error = QStringLiteral("cannot read %1: %2").arg(path, file.errorString());
        return {};
    }
    // Specs are small; a bound keeps a wrong path (a model file) from being read whole.
    if (file.size() > 64 * 1024 * 1024) {
        *error = QStringLiteral("%1: larger than 64 MiB, not a plot spec").arg(path);
        return {};
    }
    const auto plots = parsePlotSpecs(file.readAll(), error);
    if (plots.isEmpty())
        *error = QStringLiteral("%1: %2").arg(path, *error);
    return plots;
}

bool savePlot(QCustomPlot &plot, const QString &path, QSize size, QString *error)
{
    const QFileInfo info(path);
    const QString suffix = info.suffix().toLower();
    if (!kSuffixes.contains(suffix)) {
        *error = QStringLiteral("%1: the name must end in .png, .svg or .pdf").arg(path);
        return false;
    }
    if (!QFileInfo(info.absolutePath()).isDir()) {
        *error = QStringLiteral("cannot write %1: the folder %2 does not exist").arg(path, info.absolutePath());
        return false;
    }
    // Write beside the target and rename, so a failed write leaves no half file.
    const QString partial = info.dir().filePath(QStringLiteral(".%1.part.%2").arg(info.completeBaseName(), suffix));
    bool written = false;
    if (suffix == QLatin1String("png")) {
        written = plot.savePng(partial, size.width(), size.height());
    } else if (suffix == QLatin1String("pdf")) {
        written = plot.savePdf(partial, size.width(), size.height());
    } else {
        QSvgGenerator generator;
        generator.setFileName(partial);
        generator.setSize(size);
        generator.setViewBox(QRect(QPoint(0, 0), size));
        generator.setTitle(QStringLiteral("O-Edit plot"));
        QCPPainter painter;
        if (painter.begin(&generator)) {
            plot.toPainter(&painter, size.width(), size.height());
            written = painter.end();
        }
    }
    if (written && (!QFile::exists(path) || QFile::remove(path)) && QFile::rename(partial, path))
        return true;
    QFile::remove(partial);
    *error =
        QStringLiteral("cannot write %1: check that its folder is writable and the name is not a folder").arg(path);
    return false;
}

bool renderPlot(const PlotSpec &spec, const QString &path, QString *error)
{
    QCustomPlot plot;
    drawPlot(plot, spec);
    return savePlot(plot, path, spec.size, error);
}

bool renderPlotSpecFile(const QString &specPath, const QString &out, const QString &outDir, QStringList *written,
                        QString *error)
{
    const auto plots = readPlotSpecs(specPath, error);
    if (plots.isEmpty())
        return false;
    QStringList targets;
    if (!out.isEmpty()) {
        if (plots.size() != 1) {
            *error = QStringLiteral("%1 holds %2 plots; --out writes one, --out-dir DIR writes each to its \"file\"")
                         .arg(specPath)
                         .arg(plots.size());
            return false;
        }
        targets << out;
    } else {
        QSet<QString> names;
        for (int i = 0; i < plots.size(); ++i) {
            const QString &name = plots[i].file;
            const QString which = plots.size() == 1 ? QStringLiteral("the plot") : QStringLiteral("plots[%1]").arg(i);
            if (name.isEmpty() || names.contains(name)) {
                *error = QStringLiteral("%1: %2 needs a \"file\" name of its own for --out-dir").arg(specPath, which);
                return false;
            }
            names.insert(name);
            targets << QDir(outDir).filePath(name);
        }
        if (!QDir().mkpath(outDir)) {
            *error = QStringLiteral("cannot create the folder %1").arg(outDir);
            return false;
        }
    }
    for (int i = 0; i < plots.size(); ++i) {
        if (!renderPlot(plots[i], targets[i], error))
            return false;
        *written << targets[i];
    }
    return true;
}
