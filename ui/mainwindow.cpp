#include "mainwindow.h"

#include "editpanel.h"
#include "factsview.h"
#include "modelpanel.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QVBoxLayout>

// Resources compiled into the static oedit_ui library must be registered by
// hand; the macro cannot be called inside a namespace or a member's init list.
static void registerResources()
{
    Q_INIT_RESOURCE(oedit);
}

MainWindow::MainWindow(QWidget *parent)
    : QMainWindow(parent), m_worker(new EngineWorker), m_tabs(new QTabWidget(this)),
      m_modelPanel(new ModelPanel), m_factsView(new FactsView)
{
    registerResources();
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(tr("O-Edit Workbench"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/oedit-workbench.svg")));

    // The worker has no parent: it is moved to its thread and deleted there.
    m_worker->moveToThread(&m_workerThread);
    connect(&m_workerThread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(this, &MainWindow::describeBuildRequested, m_worker, &EngineWorker::describeBuild);
    connect(m_worker, &EngineWorker::buildDescribed, m_modelPanel, &ModelPanel::showBuild);
    connect(this, &MainWindow::openModelRequested, m_worker, &EngineWorker::openModel);
    connect(this, &MainWindow::predictRequested, m_worker, &EngineWorker::predict);
    connect(m_modelPanel, &ModelPanel::openRequested, this, &MainWindow::openModelRequested);
    connect(m_factsView, &FactsView::predictRequested, this, &MainWindow::predictRequested);
    connect(m_worker, &EngineWorker::modelOpened, m_modelPanel, &ModelPanel::showModel);
    connect(m_worker, &EngineWorker::modelOpened, this, [this](const oedit::ModelInfo &info) {
        m_factsView->setModelReady(true);
        statusBar()->showMessage(tr("Model: %1").arg(QString::fromStdString(info.path)));
    });
    connect(m_worker, &EngineWorker::predicted, m_factsView, &FactsView::showPrediction);
    EditPanel *edits = m_factsView->editPanel();
    connect(edits, &EditPanel::applyRequested, this, &MainWindow::applyEditRequested);
    connect(edits, &EditPanel::undoRequested, this, &MainWindow::undoEditRequested);
    connect(this, &MainWindow::applyEditRequested, m_worker, &EngineWorker::applyEdit);
    connect(this, &MainWindow::undoEditRequested, m_worker, &EngineWorker::undoLastEdit);
    connect(m_worker, &EngineWorker::worldLoaded, edits, &EditPanel::setWorld);
    connect(m_worker, &EngineWorker::edited, edits, &EditPanel::showOutcome);
    connect(m_worker, &EngineWorker::editUndone, edits, &EditPanel::showUndone);
    connect(m_worker, &EngineWorker::busyChanged, edits, [edits](bool busy) { edits->setBusy(busy); });
    // Long work shows a progress bar and a Cancel button; cancelling sets the
    // worker's atomic flag directly, since its thread is busy with the job.
    m_progress = new QProgressBar;
    m_progress->setObjectName(QStringLiteral("progress"));
    m_progress->setMaximumWidth(220);
    m_progress->setVisible(false);
    m_cancel = new QPushButton(tr("Cancel"));
    m_cancel->setObjectName(QStringLiteral("cancel"));
    m_cancel->setVisible(false);
    statusBar()->addPermanentWidget(m_progress);
    statusBar()->addPermanentWidget(m_cancel);
    connect(m_cancel, &QPushButton::clicked, this, [this] { m_worker->requestCancel(); });
    connect(m_worker, &EngineWorker::progress, this, [this](long long done, long long total) {
        m_progress->setRange(0, 1000);
        m_progress->setValue(total > 0 ? static_cast<int>(1000 * done / total) : 0);
    });
    connect(m_worker, &EngineWorker::busyChanged, this, [this](bool busy, const QString &what) {
        m_progress->setVisible(busy);
        m_cancel->setVisible(busy);
        m_progress->setRange(0, 0); // busy indicator until the first progress report
        if (busy)
            statusBar()->showMessage(what);
        else
            statusBar()->clearMessage();
    });
    connect(m_worker, &EngineWorker::failed, this, [this](const QString &message) {
        statusBar()->showMessage(message, 10000);
        if (!m_quietErrors)
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

void MainWindow::openModel(const QString &directory)
{
    Q_EMIT openModelRequested(directory, m_modelPanel->selectedDevice());
}

MainWindow::~MainWindow()
{
    shutDownWorker();
}

void MainWindow::createViews()
{
    m_tabs->setObjectName(QStringLiteral("views"));
    m_tabs->addTab(m_modelPanel, tr("Model"));
    m_tabs->addTab(m_factsView, tr("Facts"));
    setCentralWidget(m_tabs);
}

void MainWindow::createMenus()
{
    QMenu *file = menuBar()->addMenu(tr("&File"));
    QAction *open = file->addAction(tr("&Open Model Folder…"), this, [this] {
        const QString folder = QFileDialog::getExistingDirectory(
            this, tr("Open a Hugging Face model folder (config.json, safetensors, tokenizer)"),
            QSettings().value(QStringLiteral("recent/modelFolder")).toString());
        if (folder.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("recent/modelFolder"), folder);
        openModel(folder);
    });
    open->setShortcut(QKeySequence::Open);
    file->addAction(tr("Open &Default Model"), this, [this] { openModel(); });
    file->addSeparator();
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
