#include "mainwindow.h"

#include "editpanel.h"
#include "factsview.h"
#include "modelpanel.h"
#include "retentionview.h"
#include "runsview.h"

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
#include <QUndoCommand>
#include <QUndoStack>
#include <QVBoxLayout>

#include <functional>

// Resources compiled into the static oedit_ui library must be registered by
// hand; the macro cannot be called inside a namespace or a member's init list.
static void registerResources()
{
    Q_INIT_RESOURCE(oedit);
}

namespace {

using SendRollback =
    std::function<void(const QString &db, const oedit::runs::RollbackRequest &request, int ticket, int undoTicket)>;

// Reverts a run to a step. redo() asks the worker to revert and record the
// event under this command's ticket; undo() undoes that event. The ledger
// does the work, so the stack and the ledger cannot disagree for long: a
// refused request shows its message and leaves the ledger as it was.
class RevertCommand : public QUndoCommand {
public:
    RevertCommand(const QString &db, qint64 runId, qint64 step, int ticket, SendRollback send)
        : m_db(db), m_runId(runId), m_step(step), m_ticket(ticket), m_send(std::move(send))
    {
        setText(QObject::tr("Revert Run %1 to Step %2").arg(runId).arg(step));
    }
    void redo() override
    {
        oedit::runs::RollbackRequest request;
        request.runId = m_runId;
        request.toStep = m_step;
        m_send(m_db, request, m_ticket, 0);
    }
    void undo() override
    {
        oedit::runs::RollbackRequest request;
        request.runId = m_runId;
        m_send(m_db, request, 0, m_ticket);
    }

private:
    QString m_db; // its own ledger, even after the Runs tab switches to another
    qint64 m_runId, m_step;
    int m_ticket;
    SendRollback m_send;
};

// Undoes an earlier rollback event (one made outside this stack, e.g. by
// `oedit rollback` or before a restart). Undoing this command repeats the
// original rollback; redoing it again undoes that repeat.
class UndoRollbackCommand : public QUndoCommand {
public:
    UndoRollbackCommand(const QString &db, qint64 runId, const oedit::runs::RollbackInfo &event, int ticket,
                        SendRollback send)
        : m_db(db), m_runId(runId), m_event(event), m_ticket(ticket), m_send(std::move(send))
    {
        setText(QObject::tr("Undo Rollback %1 of Run %2").arg(event.eventId).arg(runId));
    }
    void redo() override
    {
        oedit::runs::RollbackRequest request;
        request.runId = m_runId;
        if (m_first) {
            m_first = false;
            request.undoEvent = m_event.eventId;
            m_send(m_db, request, 0, 0);
        } else {
            m_send(m_db, request, 0, m_ticket);
        }
    }
    void undo() override
    {
        oedit::runs::RollbackRequest request;
        request.runId = m_runId;
        request.toStep = m_event.targetStep;
        request.removeEdit = m_event.targetEdit;
        m_send(m_db, request, m_ticket, 0);
    }

private:
    QString m_db;
    qint64 m_runId;
    oedit::runs::RollbackInfo m_event;
    int m_ticket;
    SendRollback m_send;
    bool m_first = true;
};

} // namespace

MainWindow::MainWindow(QWidget *parent)
    : QMainWindow(parent), m_worker(new EngineWorker), m_tabs(new QTabWidget(this)),
      m_modelPanel(new ModelPanel), m_factsView(new FactsView), m_runsView(new RunsView),
      m_retentionView(new RetentionView), m_undoStack(new QUndoStack(this))
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
    connectRuns();
    m_workerThread.setObjectName(QStringLiteral("engine worker"));
    m_workerThread.start();

    createViews();
    createMenus();
    restoreLayout();
    statusBar()->showMessage(tr("Ready"));
    Q_EMIT describeBuildRequested();
    m_runsView->refresh();
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
    m_tabs->addTab(m_runsView, tr("Runs"));
    m_tabs->addTab(m_retentionView, tr("Retention"));
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
    // Undo and redo of rollbacks; each step goes through the ledger.
    QMenu *edit = menuBar()->addMenu(tr("&Edit"));
    QAction *undo = m_undoStack->createUndoAction(this, tr("&Undo"));
    undo->setObjectName(QStringLiteral("undoAction"));
    undo->setShortcut(QKeySequence::Undo);
    QAction *redo = m_undoStack->createRedoAction(this, tr("&Redo"));
    redo->setObjectName(QStringLiteral("redoAction"));
    redo->setShortcut(QKeySequence::Redo);
    edit->addAction(undo);
    edit->addAction(redo);
    QMenu *help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About"), this, [this] {
        QMessageBox::about(this, tr("About O-Edit Workbench"),
                           tr("O-Edit Workbench %1\nSequential knowledge editing with orthogonal subspaces.")
                               .arg(QStringLiteral(OEDIT_VERSION)));
    });
}

void MainWindow::connectRuns()
{
    connect(m_worker, &EngineWorker::modelOpened, m_runsView, [this] { m_runsView->setModelReady(true); });
    connect(m_worker, &EngineWorker::busyChanged, m_runsView, [this](bool busy) { m_runsView->setBusy(busy); });
    connect(m_worker, &EngineWorker::progress, m_runsView, &RunsView::showProgress);
    connect(m_runsView, &RunsView::cancelRequested, this, [this] { m_worker->requestCancel(); });
    connect(m_runsView, &RunsView::startRunRequested, this, &MainWindow::startRunRequested);
    connect(m_runsView, &RunsView::listRunsRequested, this, &MainWindow::listRunsRequested);
    connect(this, &MainWindow::startRunRequested, m_worker, &EngineWorker::startRun);
    connect(this, &MainWindow::listRunsRequested, m_worker, &EngineWorker::listRuns);
    connect(this, &MainWindow::runReportRequested, m_worker, &EngineWorker::runReport);
    connect(this, &MainWindow::rollbackRequested, m_worker, &EngineWorker::rollback);
    connect(m_worker, &EngineWorker::runFinished, m_runsView, &RunsView::showRunFinished);
    connect(m_worker, &EngineWorker::runNotStarted, m_runsView, &RunsView::showRunNotStarted);
    connect(m_worker, &EngineWorker::runsListed, m_runsView, &RunsView::showRuns);
    connect(m_worker, &EngineWorker::reportReady, m_retentionView, &RetentionView::showReport);

    // Selected runs feed the retention and compare view.
    connect(m_runsView, &RunsView::selectionChanged, this, [this](const QString &db, const QList<qint64> &ids) {
        m_retentionView->setRuns(db, ids);
        for (const auto id : ids)
            Q_EMIT runReportRequested(db, id);
    });

    connect(m_runsView, &RunsView::revertRequested, this, [this](const QString &db, qint64 runId, qint64 step) {
        m_undoStack->push(new RevertCommand(db, runId, step, m_nextTicket++, rollbackSender()));
    });
    connect(m_runsView, &RunsView::undoLastRollbackRequested, this, [this](const QString &db, qint64 runId) {
        m_undoLastDb = db;
        m_undoLastRun = runId;
        Q_EMIT runReportRequested(db, runId);
    });
    connect(m_worker, &EngineWorker::reportReady, this,
            [this](const QString &db, const oedit::runs::RunReport &report) {
                if (db == m_undoLastDb && report.run.runId == m_undoLastRun) {
                    m_undoLastRun = -1;
                    pushUndoLastRollback(db, report);
                }
            });
    connect(m_worker, &EngineWorker::rolledBack, this, [this](const QString &, const oedit::runs::RollbackInfo &event) {
        statusBar()->showMessage(tr("Rollback event %1 (%2): %3 edits taken out, %4 put back")
                                     .arg(event.eventId)
                                     .arg(QString::fromStdString(event.kind))
                                     .arg(event.deactivated.size())
                                     .arg(event.activated.size()),
                                 8000);
        m_runsView->refresh();
    });
}

std::function<void(const QString &, const oedit::runs::RollbackRequest &, int, int)> MainWindow::rollbackSender()
{
    return [this](const QString &db, const oedit::runs::RollbackRequest &request, int ticket, int undoTicket) {
        Q_EMIT rollbackRequested(db, request, ticket, undoTicket);
    };
}

void MainWindow::pushUndoLastRollback(const QString &db, const oedit::runs::RunReport &report)
{
    // The latest rollback that is itself no undo and has not been undone.
    for (auto it = report.rollbacks.rbegin(); it != report.rollbacks.rend(); ++it) {
        if (it->kind == "redo" || it->undoneBy)
            continue;
        m_undoStack->push(new UndoRollbackCommand(db, report.run.runId, *it, m_nextTicket++, rollbackSender()));
        return;
    }
    const QString message = tr("Run %1 has no rollback left to undo. Use Revert to Step… to take edits out.")
                                .arg(report.run.runId);
    statusBar()->showMessage(message, 10000);
    if (!m_quietErrors)
        QMessageBox::information(this, tr("O-Edit Workbench"), message);
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
