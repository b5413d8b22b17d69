// oedit-workbench: the desktop application. Argument handling only; the
// window and its views live in oedit_ui.
#include "mainwindow.h"

#include <QApplication>
#include <QCommandLineParser>

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
    parser.process(app);

    MainWindow window;
    window.show();
    return app.exec();
}
