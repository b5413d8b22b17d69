// `oedit-workbench --plot SPEC --out FILE | --out-dir DIR` with no display:
// it exits 0 and writes pictures of the requested size in which each method's
// run-style colour appears; a bad spec or output path exits 1 with a message
// and leaves no file. Anything else the workbench prints on stderr (a Qt
// warning) fails the test.
#include "runstyle.h"

#include <QDir>
#include <QImage>
#include <QProcess>
#include <QSet>
#include <QTemporaryDir>
#include <QtTest>

namespace {

struct Result {
    int exitCode = -1;
    QString out, err;
};

Result runWorkbench(const QStringList &arguments, const QString &runtimeDir)
{
    QProcess workbench;
    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    // No display and no platform chosen: --plot must pick offscreen itself.
    environment.remove(QStringLiteral("QT_QPA_PLATFORM"));
    environment.remove(QStringLiteral("DISPLAY"));
    environment.remove(QStringLiteral("WAYLAND_DISPLAY"));
    // Else Qt warns that XDG_RUNTIME_DIR is unset (a fact of the test machine).
    environment.insert(QStringLiteral("XDG_RUNTIME_DIR"), runtimeDir);
    workbench.setProcessEnvironment(environment);
    workbench.start(QStringLiteral(OEDIT_WORKBENCH), arguments);
    Result result;
    if (!workbench.waitForFinished(60000) || workbench.exitStatus() != QProcess::NormalExit)
        return result;
    result.exitCode = workbench.exitCode();
    result.out = QString::fromUtf8(workbench.readAllStandardOutput());
    result.err = QString::fromUtf8(workbench.readAllStandardError());
    return result;
}

// Pixels within a small distance of `colour`: antialiasing blends a curve's
// edges with the background, its middle keeps the colour.
int pixelsNear(const QImage &image, const QColor &colour)
{
    int count = 0;
    for (int y = 0; y < image.height(); ++y)
        for (int x = 0; x < image.width(); ++x) {
            const QColor pixel = image.pixelColor(x, y);
            if (qAbs(pixel.red() - colour.red()) < 30 && qAbs(pixel.green() - colour.green()) < 30 &&
                qAbs(pixel.blue() - colour.blue()) < 30)
                ++count;
        }
    return count;
}

int coloursOnGrid(const QImage &image)
{
    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); y += 3)
        for (int x = 0; x < image.width(); x += 3)
            colours.insert(image.pixel(x, y));
    return colours.size();
}

const QByteArray kOnePlot = R"({
  "title": "Efficacy after N edits", "x_label": "edits", "y_label": "ES", "x_log": true,
  "y_range": [0, 1], "width": 700, "height": 430, "legend": "bottom-left",
  "series": [
    {"name": "O-Edit+", "color_key": "oedit+", "x": [100, 500, 1000, 2000], "y": [0.9, 0.8, 0.5, 0.2],
     "y_low": [0.85, 0.7, 0.4, 0.1], "y_high": [0.95, 0.85, 0.6, 0.3]},
    {"name": "ROME", "x": [100, 500, 1000, 2000], "y": [0.7, null, 0.2, 0.05], "style": "dashed"}
  ]})";

const QByteArray kTwoPlots = R"({"plots": [
  {"file": "first.png", "series": [{"name": "rome", "x": [1, 2, 3], "y": [3, 1, 2]},
                                   {"name": "memit", "x": [1, 2, 3], "y": [1, 2, 3]}]},
  {"file": "second.png", "y_log": true, "series": [{"name": "ROME", "x": [1, 2, 3], "y": [10, 100, 1000], "style": "dotted"}]}
]})";

bool writeFile(const QString &path, const QByteArray &text)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(text) == text.size();
}

} // namespace

class TestPlotRender : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void methodsKeepTheirColour()
    {
        QCOMPARE(methodColour(QStringLiteral("O-Edit+")), methodColour(QStringLiteral("oedit+")));
        QCOMPARE(methodColour(QStringLiteral("oedit_plus")), methodColour(QStringLiteral("oedit+")));
        QCOMPARE(methodColour(QStringLiteral("some new method")), methodColour(QStringLiteral("Some-New-Method")));
        const QStringList methods = {QStringLiteral("oedit+"),    QStringLiteral("rome"),  QStringLiteral("memit"),
                                     QStringLiteral("alphaedit"), QStringLiteral("oedit"), QStringLiteral("ft")};
        QSet<QRgb> colours;
        for (const auto &method : methods)
            colours.insert(methodColour(method).rgb());
        QCOMPARE(colours.size(), methods.size());
    }

    void onePlotToAFile()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(writeFile(dir.filePath(QStringLiteral("spec.json")), kOnePlot));
        const QString png = dir.filePath(QStringLiteral("plot.png"));
        const Result result = runWorkbench(
            {QStringLiteral("--plot"), dir.filePath(QStringLiteral("spec.json")), QStringLiteral("--out"), png},
            dir.path());
        QVERIFY2(result.err.isEmpty(), qPrintable(result.err));
        QCOMPARE(result.exitCode, 0);
        QCOMPARE(result.out.trimmed(), png);

        const QImage image(png);
        QVERIFY2(!image.isNull(), qPrintable(png));
        QCOMPARE(image.size(), QSize(700, 430));
        QVERIFY2(coloursOnGrid(image) > 10, "a blank or single-colour picture");
        QVERIFY(pixelsNear(image, methodColour(QStringLiteral("oedit+"))) > 50);
        QVERIFY(pixelsNear(image, methodColour(QStringLiteral("rome"))) > 50);
        // Nothing left beside it (the temporary file was renamed).
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden).size(), 2);
    }

    void plotsToAFolder()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(writeFile(dir.filePath(QStringLiteral("spec.json")), kTwoPlots));
        const QString out = dir.filePath(QStringLiteral("figures")); // made by the workbench
        const Result result = runWorkbench(
            {QStringLiteral("--plot"), dir.filePath(QStringLiteral("spec.json")), QStringLiteral("--out-dir"), out},
            dir.path());
        QVERIFY2(result.err.isEmpty(), qPrintable(result.err));
        QCOMPARE(result.exitCode, 0);
        for (const auto &name : {QStringLiteral("first.png"), QStringLiteral("second.png")}) {
            const QImage image(QDir(out).filePath(name));
            QVERIFY2(!image.isNull(), qPrintable(name));
            QCOMPARE(image.size(), QSize(900, 560)); // the default size
            QVERIFY2(coloursOnGrid(image) > 10, qPrintable(name));
            // ROME has the same colour in both plots, whatever else they hold.
            QVERIFY2(pixelsNear(image, methodColour(QStringLiteral("rome"))) > 50, qPrintable(name));
        }
        QCOMPARE(QDir(out).entryList(QDir::Files | QDir::Hidden).size(), 2);
    }

    void badInputIsRefused_data()
    {
        QTest::addColumn<QByteArray>("spec"); // empty: no spec file at all
        QTest::addColumn<QString>("out");     // relative to the test's folder
        QTest::addColumn<QString>("message"); // part of what stderr must say

        const QByteArray good = R"({"series": [{"name": "rome", "x": [1, 2], "y": [1, 2]}]})";
        QTest::newRow("no spec file") << QByteArray() << "plot.png"
                                      << "cannot read";
        QTest::newRow("invalid JSON") << QByteArray(R"({"series": [)") << "plot.png"
                                      << "invalid JSON at line 1";
        QTest::newRow("not an object") << QByteArray("[1, 2]") << "plot.png"
                                       << "expected a plot object";
        QTest::newRow("length mismatch") << QByteArray(R"({"series": [{"x": [1, 2, 3], "y": [1, 2]}]})") << "plot.png"
                                         << "series[0]: x has 3 values but y has 2";
        QTest::newRow("text in y") << QByteArray(R"({"series": [{"x": [1, 2], "y": [1, "high"]}]})") << "plot.png"
                                   << "series[0].y[1]: not a number or null";
        QTest::newRow("null in x") << QByteArray(R"({"series": [{"x": [1, null], "y": [1, 2]}]})") << "plot.png"
                                   << "series[0].x[1]: not a number";
        QTest::newRow("no series") << QByteArray(R"({"title": "empty"})") << "plot.png"
                                   << "a non-empty list of series";
        QTest::newRow("misspelt key") << QByteArray(R"({"x_lable": "edits", "series": []})") << "plot.png"
                                      << "unknown key \"x_lable\"";
        QTest::newRow("zero on a log axis")
            << QByteArray(R"({"x_log": true, "series": [{"x": [0, 1], "y": [1, 2]}]})") << "plot.png"
            << "x_log needs values above 0";
        QTest::newRow("half a band") << QByteArray(R"({"series": [{"x": [1], "y": [1], "y_low": [0]}]})") << "plot.png"
                                     << "needs both y_low and y_high";
        QTest::newRow("unknown style") << QByteArray(R"({"series": [{"x": [1], "y": [1], "style": "wavy"}]})")
                                       << "plot.png"
                                       << "\"wavy\" is not solid, dashed or dotted";
        QTest::newRow("huge picture") << QByteArray(R"({"width": 100000, "series": [{"x": [1], "y": [1]}]})")
                                      << "plot.png"
                                      << "width: a whole number of pixels";
        QTest::newRow("missing folder") << good << "no/such/folder/plot.png"
                                        << "does not exist";
        QTest::newRow("folder as output") << good << "taken.png"
                                          << "cannot write"; // see below
        QTest::newRow("unknown format") << good << "plot.gif"
                                        << "must end in .png, .svg or .pdf";
        QTest::newRow("several plots, one file")
            << QByteArray(R"({"plots": [{"series": [{"x": [1], "y": [1]}]}, {"series": [{"x": [1], "y": [1]}]}]})")
            << "plot.png"
            << "--out writes one";
    }

    void badInputIsRefused()
    {
        QFETCH(QByteArray, spec);
        QFETCH(QString, out);
        QFETCH(QString, message);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString specPath = dir.filePath(QStringLiteral("spec.json"));
        if (!spec.isEmpty())
            QVERIFY(writeFile(specPath, spec));
        if (out == QLatin1String("taken.png")) // a folder stands where the picture would go
            QVERIFY(QDir(dir.path()).mkdir(out));
        const Result result =
            runWorkbench({QStringLiteral("--plot"), specPath, QStringLiteral("--out"), dir.filePath(out)}, dir.path());
        QCOMPARE(result.exitCode, 1);
        QVERIFY2(result.err.contains(message), qPrintable(result.err));
        QVERIFY2(result.err.count(QLatin1Char('\n')) == 1, qPrintable(result.err)); // one clear line, no Qt noise
        // No picture and no temporary file: only the spec (when there was one).
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden).size(), spec.isEmpty() ? 0 : 1);
    }

    void usageErrors()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString spec = dir.filePath(QStringLiteral("spec.json"));
        QVERIFY(writeFile(spec, kOnePlot));
        // Neither --out nor --out-dir, and both.
        QCOMPARE(runWorkbench({QStringLiteral("--plot"), spec}, dir.path()).exitCode, 2);
        QCOMPARE(runWorkbench({QStringLiteral("--plot"), spec, QStringLiteral("--out"), dir.filePath("a.png"),
                               QStringLiteral("--out-dir"), dir.path()},
                              dir.path())
                     .exitCode,
                 2);
        // --out-dir with a plot that names no file.
        const Result result = runWorkbench(
            {QStringLiteral("--plot"), spec, QStringLiteral("--out-dir"), dir.filePath(QStringLiteral("figures"))},
            dir.path());
        QCOMPARE(result.exitCode, 1);
        QVERIFY2(result.err.contains(QLatin1String("\"file\"")), qPrintable(result.err));
    }
};

QTEST_GUILESS_MAIN(TestPlotRender)
#include "tst_plot_render.moc"
