// oedit-workbench: the desktop application. Argument handling only; the
// window and its views live in oedit_ui.
#include "mainwindow.h"
#include "screenshottour.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QSettings>
#include <QTemporaryDir>

int main(int argc, char **argv)
{
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
    parser.process(app);

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
