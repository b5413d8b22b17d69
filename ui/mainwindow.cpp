#include "mainwindow.h"

#include "compareview.h"
#include "editpanel.h"
#include "factsview.h"
#include "historyview.h"
#include "modelpanel.h"
#include "retentionview.h"
#include "rollbackcommands.h"
#include "runsview.h"
#include "subspaceview.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableWidget>
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

const QString kRecentLedgers = QStringLiteral("recent/ledgers");
constexpr int kRecentCount = 8;

QString csvField(const QString &text)
{
    if (!text.contains(QLatin1Char(',')) && !text.contains(QLatin1Char('"')) && !text.contains(QLatin1Char('\n')))
        return text;
    QString quoted = text;
    quoted.replace(QLatin1Char('"'), QStringLiteral("\"\""));
    return QLatin1Char('"') + quoted + QLatin1Char('"');
}

} // namespace

MainWindow::MainWindow(QWidget *parent)
    : QMainWindow(parent), m_worker(new EngineWorker), m_tabs(new QTabWidget(this)),
      m_modelPanel(new ModelPanel), m_factsView(new FactsView), m_runsView(new RunsView),
      m_historyView(new HistoryView), m_subspaceView(new SubspaceView), m_retentionView(new RetentionView),
      m_compareView(new CompareView), m_undoStack(new QUndoStack(this))
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
    // Edits from the Facts view are recorded in the Runs tab's ledger as the session's run.
    connect(edits, &EditPanel::applyRequested, this, [this](const oedit::EditSpec &spec) {
        m_worker->announceJob();
        const QString db = m_runsView->ledgerPath();
        if (!db.isEmpty())
            rememberLedger(db);
        Q_EMIT applyEditRequested(db, spec);
    });
    connect(edits, &EditPanel::undoRequested, this, &MainWindow::undoEditRequested);
    connect(this, &MainWindow::applyEditRequested, m_worker, &EngineWorker::applyEdit);
    connect(this, &MainWindow::undoEditRequested, m_worker, &EngineWorker::undoLastEdit);
    connect(m_worker, &EngineWorker::worldLoaded, edits, &EditPanel::setWorld);
    connect(m_worker, &EngineWorker::edited, edits, &EditPanel::showOutcome);
    connect(m_worker, &EngineWorker::editUndone, edits, &EditPanel::showUndone);
    connect(m_worker, &EngineWorker::sessionSynced, edits, &EditPanel::showSynced);
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
    connect(m_worker, &EngineWorker::failed, this, &MainWindow::showError);
    connect(m_worker, &EngineWorker::notice, this, [this](const QString &message) {
        statusBar()->showMessage(message, 10000);
    });
    connectRuns();
    connectHistory();
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

void MainWindow::showError(const QString &message)
{
    statusBar()->showMessage(message, 10000);
    if (!m_quietErrors)
        QMessageBox::warning(this, tr("O-Edit Workbench"), message);
}

void MainWindow::createViews()
{
    m_tabs->setObjectName(QStringLiteral("views"));
    m_tabs->addTab(m_modelPanel, tr("Model"));
    m_tabs->addTab(m_factsView, tr("Facts"));
    m_tabs->addTab(m_runsView, tr("Runs"));
    m_tabs->addTab(m_historyView, tr("History"));
    m_tabs->addTab(m_subspaceView, tr("Subspace"));
    m_tabs->addTab(m_retentionView, tr("Retention"));
    m_tabs->addTab(m_compareView, tr("Compare"));
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
    m_recentLedgers = file->addMenu(tr("Recent &Ledgers"));
    m_recentLedgers->setObjectName(QStringLiteral("recentLedgers"));
    fillRecentLedgers();
    file->addSeparator();
    QMenu *exportMenu = file->addMenu(tr("&Export"));
    QAction *csv = exportMenu->addAction(tr("Run &Metrics as CSV…"), this, [this] {
        if (m_currentRun < 0)
            return showError(tr("Select a run in the Runs tab first."));
        QSettings settings;
        const QString path = QFileDialog::getSaveFileName(
            this, tr("Export the run's checkpoint metrics"),
            settings.value(QStringLiteral("recent/csvExport"), QStringLiteral("run-%1.csv").arg(m_currentRun)).toString(),
            tr("CSV (*.csv)"));
        if (path.isEmpty())
            return;
        settings.setValue(QStringLiteral("recent/csvExport"), path);
        exportRunCsv(path);
    });
    csv->setObjectName(QStringLiteral("exportCsvAction"));
    QAction *table = exportMenu->addAction(tr("Current &Table as CSV…"), this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Export the table"), QStringLiteral("table.csv"),
                                                          tr("CSV (*.csv)"));
        if (!path.isEmpty() && !exportCurrentTable(path))
            showError(tr("Could not write %1: this tab has no table, or the folder is not writable.").arg(path));
    });
    table->setObjectName(QStringLiteral("exportTableAction"));
    QAction *model = exportMenu->addAction(tr("Edited &Model…"), this, [this] {
        if (m_currentRun < 0)
            return showError(tr("Select a run in the Runs tab first."));
        const QString folder = QFileDialog::getSaveFileName(
            this, tr("A new folder for the edited model (config.json, model.safetensors, tokenizer)"),
            QStringLiteral("run-%1-model").arg(m_currentRun));
        if (!folder.isEmpty())
            exportRunModel(folder);
    });
    model->setObjectName(QStringLiteral("exportModelAction"));
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
    // Spelled out rather than QKeySequence::Redo: on X11 that is Ctrl+Shift+Z
    // too, and one key bound twice is an ambiguous shortcut that never fires.
    redo->setShortcuts({QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z), QKeySequence(Qt::CTRL | Qt::Key_Y)});
    edit->addAction(undo);
    edit->addAction(redo);
    QMenu *help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About"), this, [this] {
        QMessageBox::about(this, tr("About O-Edit Workbench"),
                           tr("O-Edit Workbench %1\nSequential knowledge editing with orthogonal subspaces.")
                               .arg(QStringLiteral(OEDIT_VERSION)));
    });
}

void MainWindow::rememberLedger(const QString &db)
{
    QSettings settings;
    QStringList recent = settings.value(kRecentLedgers).toStringList();
    const QString path = QFileInfo(db).absoluteFilePath();
    recent.removeAll(path);
    recent.prepend(path);
    while (recent.size() > kRecentCount)
        recent.removeLast();
    settings.setValue(kRecentLedgers, recent);
    fillRecentLedgers();
}

void MainWindow::fillRecentLedgers()
{
    if (!m_recentLedgers)
        return;
    m_recentLedgers->clear();
    const QStringList recent = QSettings().value(kRecentLedgers).toStringList();
    for (const auto &path : recent)
        m_recentLedgers->addAction(path, this, [this, path] {
            m_runsView->setLedgerPath(path);
            m_tabs->setCurrentWidget(m_runsView);
        });
    m_recentLedgers->setEnabled(!recent.isEmpty());
}

void MainWindow::connectRuns()
{
    connect(m_worker, &EngineWorker::modelOpened, m_runsView, [this] { m_runsView->setModelReady(true); });
    connect(m_worker, &EngineWorker::busyChanged, m_runsView, [this](bool busy) { m_runsView->setBusy(busy); });
    connect(m_worker, &EngineWorker::progress, m_runsView, &RunsView::showProgress);
    connect(m_runsView, &RunsView::cancelRequested, this, [this] { m_worker->requestCancel(); });
    connect(m_runsView, &RunsView::startRunRequested, this,
            [this](const QString &db, const oedit::runs::RunRequest &request) {
                m_worker->announceJob();
                rememberLedger(db);
                Q_EMIT startRunRequested(db, request);
            });
    connect(m_runsView, &RunsView::resumeRequested, this, [this](const QString &db, qint64 runId) {
        m_worker->announceJob();
        Q_EMIT resumeRunRequested(db, runId);
    });
    connect(m_runsView, &RunsView::continueEditingRequested, this, &MainWindow::continueRunRequested);
    connect(m_runsView, &RunsView::listRunsRequested, this, &MainWindow::listRunsRequested);
    connect(this, &MainWindow::startRunRequested, m_worker, &EngineWorker::startRun);
    connect(this, &MainWindow::resumeRunRequested, m_worker, &EngineWorker::resumeRun);
    connect(this, &MainWindow::continueRunRequested, m_worker, &EngineWorker::continueRun);
    connect(this, &MainWindow::listRunsRequested, m_worker, &EngineWorker::listRuns);
    connect(this, &MainWindow::runReportRequested, m_worker, &EngineWorker::runReport);
    connect(this, &MainWindow::rollbackRequested, m_worker, &EngineWorker::rollback);
    connect(this, &MainWindow::normGrowthRequested, m_worker, &EngineWorker::normGrowth);
    connect(this, &MainWindow::compareFactsRequested, m_worker, &EngineWorker::compareFacts);
    connect(this, &MainWindow::exportCsvRequested, m_worker, &EngineWorker::exportCsv);
    connect(this, &MainWindow::exportModelRequested, m_worker, &EngineWorker::exportModel);
    connect(m_worker, &EngineWorker::runFinished, m_runsView, &RunsView::showRunFinished);
    connect(m_worker, &EngineWorker::runNotStarted, m_runsView, &RunsView::showRunNotStarted);
    connect(m_worker, &EngineWorker::runsListed, m_runsView, &RunsView::showRuns);
    connect(m_worker, &EngineWorker::runsListed, m_compareView, &CompareView::showRuns);
    connect(m_worker, &EngineWorker::reportReady, m_retentionView, &RetentionView::showReport);
    connect(m_worker, &EngineWorker::reportReady, m_compareView, &CompareView::showReport);
    connect(m_worker, &EngineWorker::normGrowthReady, m_retentionView, &RetentionView::showNormGrowth);
    connect(m_worker, &EngineWorker::factsCompared, m_compareView, &CompareView::showFacts);
    connect(m_worker, &EngineWorker::exported, this, [this](const QString &path, const QString &what) {
        statusBar()->showMessage(tr("Exported %1 to %2").arg(what, path), 10000);
    });

    // Selected runs feed the retention view; the first is the current run.
    connect(m_runsView, &RunsView::selectionChanged, this, [this](const QString &db, const QList<qint64> &ids) {
        m_retentionView->setRuns(db, ids);
        for (const auto id : ids) {
            Q_EMIT runReportRequested(db, id);
            Q_EMIT normGrowthRequested(db, id);
        }
        // Only a new selection makes its first run current: the list refreshes
        // after every run and rollback, and a Facts edit's run may be current.
        const bool changed = db != m_selectedDb || ids != m_selectedRuns;
        m_selectedDb = db;
        m_selectedRuns = ids;
        if (changed && !ids.isEmpty())
            setCurrentRun(db, ids.first());
    });
    connect(m_compareView, &CompareView::compareRequested, this, [this](const QString &db, const QList<qint64> &ids) {
        for (const auto id : ids)
            Q_EMIT runReportRequested(db, id);
        Q_EMIT compareFactsRequested(db, ids);
    });

    connect(m_runsView, &RunsView::revertRequested, this, [this](const QString &db, qint64 runId, qint64 step) {
        m_undoStack->push(makeRevertCommand(db, runId, step, m_nextTicket++, rollbackSender()));
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
    connect(m_worker, &EngineWorker::rolledBack, this, [this](const QString &db, const oedit::runs::RollbackInfo &event) {
        statusBar()->showMessage(tr("Rollback event %1 (%2): %3 edits taken out, %4 put back")
                                     .arg(event.eventId)
                                     .arg(QString::fromStdString(event.kind))
                                     .arg(event.deactivated.size())
                                     .arg(event.activated.size()),
                                 8000);
        m_runsView->refresh();
        if (db == m_currentDb)
            refreshCurrentRun();
    });
}

void MainWindow::connectHistory()
{
    m_historyView->setUndoStack(m_undoStack);
    connect(this, &MainWindow::listEditsRequested, m_worker, &EngineWorker::listEdits);
    connect(this, &MainWindow::subspaceRequested, m_worker, &EngineWorker::subspaceReport);
    connect(this, &MainWindow::anglesRequested, m_worker, &EngineWorker::principalAngles);
    connect(m_worker, &EngineWorker::editsListed, m_historyView, &HistoryView::showEdits);
    connect(m_worker, &EngineWorker::reportReady, m_historyView, &HistoryView::showReport);
    connect(m_worker, &EngineWorker::subspaceReady, m_subspaceView, &SubspaceView::showReport);
    connect(m_worker, &EngineWorker::anglesReady, m_subspaceView, &SubspaceView::showAngles);
    connect(m_worker, &EngineWorker::busyChanged, m_historyView, &HistoryView::setBusy);
    connect(m_historyView, &HistoryView::refreshRequested, this, [this] { refreshCurrentRun(); });
    connect(m_subspaceView, &SubspaceView::reportRequested, this, &MainWindow::subspaceRequested);
    connect(m_subspaceView, &SubspaceView::anglesRequested, this, &MainWindow::anglesRequested);
    connect(m_historyView, &HistoryView::revertRequested, this, [this](const QString &db, qint64 runId, qint64 step) {
        m_undoStack->push(makeRevertCommand(db, runId, step, m_nextTicket++, rollbackSender()));
    });
    connect(m_historyView, &HistoryView::removeRequested, this,
            [this](const QString &db, qint64 runId, qint64 editId, qint64 step) {
                m_undoStack->push(makeRemoveEditCommand(db, runId, editId, step, m_nextTicket++, rollbackSender()));
            });
    // An edit in the Facts view lands in the ledger: its run becomes the current one.
    connect(m_worker, &EngineWorker::sessionRecorded, this, [this](const QString &db, const oedit::runs::RunSummary &run) {
        if (db == m_runsView->ledgerPath())
            m_runsView->refresh();
        setCurrentRun(db, run.runId);
        refreshCurrentRun();
    });
}

void MainWindow::setCurrentRun(const QString &db, qint64 runId)
{
    const bool changed = db != m_currentDb || runId != m_currentRun;
    m_currentDb = db;
    m_currentRun = runId;
    m_historyView->setRun(db, runId);
    m_subspaceView->setRun(db, runId);
    if (changed)
        refreshCurrentRun();
}

void MainWindow::refreshCurrentRun()
{
    if (m_currentRun < 0)
        return;
    Q_EMIT listEditsRequested(m_currentDb, m_currentRun);
    Q_EMIT runReportRequested(m_currentDb, m_currentRun);
    Q_EMIT subspaceRequested(m_currentDb, m_currentRun, m_subspaceView->maxEdits());
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

void MainWindow::exportRunCsv(const QString &path)
{
    if (m_currentRun < 0)
        return showError(tr("Select a run in the Runs tab first."));
    Q_EMIT exportCsvRequested(m_currentDb, m_currentRun, path);
}

void MainWindow::exportRunModel(const QString &directory)
{
    if (m_currentRun < 0)
        return showError(tr("Select a run in the Runs tab first."));
    Q_EMIT exportModelRequested(m_currentDb, m_currentRun, directory);
}

bool MainWindow::exportCurrentTable(const QString &path)
{
    QWidget *tab = m_tabs->currentWidget();
    if (!tab)
        return false;
    QTableWidget *table = nullptr;
    for (auto *candidate : tab->findChildren<QTableWidget *>())
        if (candidate->isVisible() && candidate->rowCount() > 0) {
            table = candidate;
            break;
        }
    if (!table)
        return false;
    QString text;
    QStringList header;
    const bool rowHeaders = table->verticalHeader()->isVisible();
    if (rowHeaders)
        header << QString();
    for (int c = 0; c < table->columnCount(); ++c)
        header << csvField(table->horizontalHeaderItem(c) ? table->horizontalHeaderItem(c)->text() : QString());
    text += header.join(QLatin1Char(',')) + QLatin1Char('\n');
    for (int r = 0; r < table->rowCount(); ++r) {
        QStringList row;
        if (rowHeaders)
            row << csvField(table->verticalHeaderItem(r) ? table->verticalHeaderItem(r)->text() : QString());
        for (int c = 0; c < table->columnCount(); ++c)
            row << csvField(table->item(r, c) ? table->item(r, c)->text() : QString());
        text += row.join(QLatin1Char(',')) + QLatin1Char('\n');
    }
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return false;
    file.write(text.toUtf8());
    return file.commit();
}

void MainWindow::restoreLayout()
{
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
    m_tabs->setCurrentIndex(settings.value(QStringLiteral("window/tab"), 0).toInt());
    if (!settings.contains(QStringLiteral("window/geometry")))
        resize(1100, 720);
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState());
    settings.setValue(QStringLiteral("window/tab"), m_tabs->currentIndex());
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
