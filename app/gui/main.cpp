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
    parser.addPositionalArgument(QStringLiteral("model"),
                                 QStringLiteral("A model folder to open (default: the embedded model)"), QStringLiteral("[model]"));
    parser.process(app);

    MainWindow window;
    window.show();
    window.openModel(parser.positionalArguments().value(0));
    return app.exec();
}
