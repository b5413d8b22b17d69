// oedit-workbench: the desktop application. Argument handling only; the
// window and its views live in oedit_ui.
#include "mainwindow.h"
#include "plotrender.h"
#include "screenshottour.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QSettings>
#include <QTemporaryDir>

#include <csignal>
#include <cstdio>
#include <cstring>

namespace {

// True when the command line asks for --plot: checked before QApplication
// exists, since the platform plugin is chosen in its constructor.
bool wantsPlot(int argc, char **argv)
{
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--plot") == 0 || std::strncmp(argv[i], "--plot=", 7) == 0)
            return true;
    return false;
}

} // namespace

int main(int argc, char **argv)
{
    // Writes past the user's file size limit fail with a message (like a
    // full disk) instead of killing the workbench.
    signal(SIGXFSZ, SIG_IGN);
    // Plots are drawn into images, never shown: the offscreen platform needs
    // no display, so --plot works on servers and in CI. A platform the caller
    // chose is kept.
    if (wantsPlot(argc, argv) && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("oedit-workbench"));
    QApplication::setOrganizationName(QStringLiteral("O-Edit"));
    QApplication::setApplicationVersion(QStringLiteral(OEDIT_VERSION));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("O-Edit Workbench: sequential knowledge editing of language models"));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("model"),
                                 QStringLiteral("A model folder to open (default: the embedded model)"), QStringLiteral("[model]"));
    const QCommandLineOption screenshot(
        QStringLiteral("screenshot"),
        QStringLiteral("Make two small runs on the model in a temporary ledger, save a PNG of each view into DIR "
                       "and exit (0 when every picture was written)."),
        QStringLiteral("DIR"));
    parser.addOption(screenshot);
    const QCommandLineOption plot(
        QStringLiteral("plot"),
        QStringLiteral("Draw the plots described in the JSON file SPEC (see README) in the workbench's style, "
                       "write them with --out or --out-dir and exit without a window (0 when all were written)."),
        QStringLiteral("SPEC"));
    const QCommandLineOption out(QStringLiteral("out"),
                                 QStringLiteral("With --plot: the file (.png, .svg or .pdf) for a spec of one plot."),
                                 QStringLiteral("FILE"));
    const QCommandLineOption outDir(QStringLiteral("out-dir"),
                                    QStringLiteral("With --plot: the folder for {\"plots\": [...]}, each plot "
                                                   "written to its \"file\"."),
                                    QStringLiteral("DIR"));
    parser.addOptions({plot, out, outDir});
    parser.process(app);

    if (parser.isSet(plot)) {
        // Exit codes as oedit's: 2 for bad usage, 1 for a bad spec or a failed write.
        if (parser.isSet(out) == parser.isSet(outDir) || !parser.positionalArguments().isEmpty()) {
            std::fprintf(stderr, "oedit-workbench: --plot SPEC needs either --out FILE or --out-dir DIR "
                                 "(and no model folder)\n");
            return 2;
        }
        QStringList written;
        QString error;
        if (!renderPlotSpecFile(parser.value(plot), parser.value(out), parser.value(outDir), &written, &error)) {
            std::fprintf(stderr, "oedit-workbench: %s\n", qPrintable(error));
            return 1;
        }
        for (const auto &file : std::as_const(written))
            std::printf("%s\n", qPrintable(file));
        return 0;
    }

    if (parser.isSet(screenshot)) {
        // The user's settings (ledger, recent files, layout) stay untouched.
        QTemporaryDir settingsDir;
        QSettings::setDefaultFormat(QSettings::IniFormat);
        QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, settingsDir.path());
        MainWindow window;
        window.setQuietErrors(true);
        window.resize(1280, 820);
        window.show();
        ScreenshotTour tour(&window, parser.value(screenshot), parser.positionalArguments().value(0));
        QObject::connect(&tour, &ScreenshotTour::finished, &app, [&window](int code) {
            window.close();
            QCoreApplication::exit(code);
        }, Qt::QueuedConnection); // it may finish before the event loop runs

        tour.start();
        return app.exec();
    }

    MainWindow window;
    window.show();
    window.openModel(parser.positionalArguments().value(0));
    return app.exec();
}
