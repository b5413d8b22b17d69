#include "mainwindow.h"

#include "modelpanel.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QVBoxLayout>

MainWindow::MainWindow(QWidget *parent)
    : QMainWindow(parent), m_worker(new EngineWorker), m_tabs(new QTabWidget(this)),
      m_modelPanel(new ModelPanel)
{
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(tr("O-Edit Workbench"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/oedit-workbench.svg")));

    // The worker has no parent: it is moved to its thread and deleted there.
    m_worker->moveToThread(&m_workerThread);
    connect(&m_workerThread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(this, &MainWindow::describeBuildRequested, m_worker, &EngineWorker::describeBuild);
    connect(m_worker, &EngineWorker::buildDescribed, m_modelPanel, &ModelPanel::showBuild);
    connect(m_worker, &EngineWorker::failed, this, [this](const QString &message) {
        QMessageBox::warning(this, tr("O-Edit Workbench"), message);
    });
    m_workerThread.setObjectName(QStringLiteral("engine worker"));
    m_workerThread.start();

    createViews();
    createMenus();
    restoreLayout();
    statusBar()->showMessage(tr("Ready"));
    Q_EMIT describeBuildRequested();
}

MainWindow::~MainWindow()
{
    shutDownWorker();
}

void MainWindow::createViews()
{
    m_tabs->setObjectName(QStringLiteral("views"));
    m_tabs->addTab(m_modelPanel, tr("Model"));
    setCentralWidget(m_tabs);
}

void MainWindow::createMenus()
{
    QMenu *file = menuBar()->addMenu(tr("&File"));
    QAction *quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    QMenu *help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About"), this, [this] {
        QMessageBox::about(this, tr("About O-Edit Workbench"),
                           tr("O-Edit Workbench %1\nSequential knowledge editing with orthogonal subspaces.")
                               .arg(QStringLiteral(OEDIT_VERSION)));
    });
}

void MainWindow::restoreLayout()
{
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
    if (!settings.contains(QStringLiteral("window/geometry")))
        resize(1100, 720);
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState());
    shutDownWorker();
    event->accept();
}

void MainWindow::shutDownWorker()
{
    // Cancel, quit, wait: a running job stops at its next progress report.
    if (!m_workerThread.isRunning())
        return;
    m_worker->requestCancel();
    m_workerThread.quit();
    m_workerThread.wait();
}
