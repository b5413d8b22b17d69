#include "mainwindow.h"

#include "compareview.h"
#include "document.h"
#include "editpanel.h"
#include "factsview.h"
#include "historyview.h"
#include "glossary.h"
#include "interferenceview.h"
#include "traceview.h"
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
#include <QTableView>
#include <QTimer>
#include <QUndoStack>
#include <QVBoxLayout>

#include <algorithm>
#include <functional>
#include <utility>

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
    : QMainWindow(parent), m_worker(new EngineWorker), m_document(new Document(this)),
      m_tabs(new QTabWidget(this)), m_modelPanel(new ModelPanel), m_factsView(new FactsView),
      m_runsView(new RunsView(m_document)), m_historyView(new HistoryView), m_subspaceView(new SubspaceView),
      m_retentionView(new RetentionView), m_compareView(new CompareView), m_interferenceView(new InterferenceView),
      m_traceView(new TraceView)
{
    registerResources();
    setObjectName(QStringLiteral("mainWindow"));
    setWindowTitle(tr("O-Edit Workbench"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/oedit-workbench.svg")));
    // Below this the forms and plots overlap and labels are cut off.
    setMinimumSize(900, 600);
    // A control greyed out while the worker is busy (a prediction refreshing
    // after an undo, a button) hands its focus to the next widget, often a
    // text field; there Ctrl+Z and Ctrl+Shift+Z undo typing instead of the
    // window's edits, so the user's next keystroke would be lost. The focus
    // goes to the current tab's page instead, where shortcuts reach the window.
    connect(qApp, &QApplication::focusChanged, this, [this](QWidget *old, QWidget *now) {
        if (!old || !now || old->isEnabled() || !isAncestorOf(now) || !now->inherits("QLineEdit"))
            return;
        if (QWidget *page = m_tabs->currentWidget()) {
            page->setFocusPolicy(Qt::ClickFocus);
            page->setFocus(Qt::OtherFocusReason);
        }
    });

    // The worker has no parent: it is moved to its thread and deleted there.
    m_worker->moveToThread(&m_workerThread);
    connect(&m_workerThread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(this, &MainWindow::describeBuildRequested, m_worker, &EngineWorker::describeBuild);
    connect(m_worker, &EngineWorker::buildDescribed, m_modelPanel, &ModelPanel::showBuild);
    connect(this, &MainWindow::openModelRequested, m_worker, &EngineWorker::openModel);
    connect(this, &MainWindow::predictRequested, m_worker, &EngineWorker::predict);
    connect(m_modelPanel, &ModelPanel::openRequested, this,
            [this](const QString &directory, const QString &device) { Q_EMIT openModelRequested(directory, device, false); });
    // Weights that are not numbers: say which, and offer to open the checkpoint
    // anyway to inspect it (its outputs are NaN; edits on it are refused).
    connect(m_worker, &EngineWorker::openRefusedNonFinite, this,
            [this](const QString &directory, const QString &device, const QString &message) {
                if (m_quietErrors) {
                    showError(message);
                    return;
                }
                QMessageBox box(QMessageBox::Warning, tr("O-Edit Workbench"),
                                tr("This checkpoint has weights that are not numbers (NaN or infinite)."),
                                QMessageBox::Cancel, this);
                box.setInformativeText(message);
                QPushButton *anyway = box.addButton(tr("Open Anyway to Inspect"), QMessageBox::AcceptRole);
                box.setDefaultButton(QMessageBox::Cancel);
                box.exec();
                if (box.clickedButton() == anyway)
                    Q_EMIT openModelRequested(directory, device, true);
                else
                    statusBar()->showMessage(tr("Not opened: %1").arg(message), 10000);
            });
    connect(m_factsView, &FactsView::predictRequested, this, &MainWindow::predictRequested);
    connect(m_worker, &EngineWorker::modelOpened, m_modelPanel, &ModelPanel::showModel);
    connect(m_worker, &EngineWorker::modelOpened, this, [this](const oedit::ModelInfo &info) {
        m_factsView->setModelReady(true);
        if (info.warnings.empty())
            statusBar()->showMessage(tr("Model: %1").arg(QString::fromStdString(info.path)));
        else
            statusBar()->showMessage(tr("Model: %1, opened with %n warning(s): %2", nullptr,
                                        static_cast<int>(info.warnings.size()))
                                         .arg(QString::fromStdString(info.path),
                                              QString::fromStdString(info.warnings.front())));
    });
    connect(m_worker, &EngineWorker::predicted, m_factsView, &FactsView::showPrediction);
    EditPanel *edits = m_factsView->editPanel();
    // Edits from the Facts view are recorded in the document's ledger as the session's run.
    connect(edits, &EditPanel::applyRequested, this, [this](const oedit::EditSpec &spec) {
        m_worker->announceJob();
        if (!m_document->ledgerPath().isEmpty())
            rememberLedger(m_document->ledgerPath());
        m_document->applyEdit(spec);
    });
    connect(m_worker, &EngineWorker::editRefusedUnfamiliarTarget, this,
            [this, edits](const oedit::EditSpec &spec, const QString &message) {
                edits->showRefused(message);
                if (m_quietErrors) {
                    showError(message);
                    return;
                }
                QMessageBox box(QMessageBox::Warning, tr("O-Edit Workbench"),
                                tr("The model has never read '%1'.").arg(QString::fromStdString(spec.targetNew)),
                                QMessageBox::Cancel, this);
                box.setInformativeText(message);
                QPushButton *anyway = box.addButton(tr("Edit Anyway"), QMessageBox::AcceptRole);
                box.setDefaultButton(QMessageBox::Cancel);
                box.exec();
                if (box.clickedButton() != anyway) {
                    statusBar()->showMessage(tr("Edit not made: '%1' is not a word of this model's world.")
                                                 .arg(QString::fromStdString(spec.targetNew)),
                                             10000);
                    return;
                }
                oedit::EditSpec again = spec;
                again.allowUnfamiliarTarget = true;
                m_worker->announceJob();
                m_document->applyEdit(again);
            });
    connect(edits, &EditPanel::undoRequested, m_document, &Document::undoLastEdit);
    connect(m_worker, &EngineWorker::worldLoaded, edits, &EditPanel::setWorld);
    connect(m_worker, &EngineWorker::edited, edits, &EditPanel::showOutcome);
    connect(m_worker, &EngineWorker::editUndone, edits, &EditPanel::showUndone);
    connect(m_worker, &EngineWorker::editRedone, edits, &EditPanel::showSynced);
    // The prediction shown follows the open model: after an edit, its undo or
    // redo, a rollback (the open model follows one of its session's run) or
    // another model, it is greyed out and predicted again.
    for (const auto signal : {&EngineWorker::editUndone, &EngineWorker::editRedone})
        connect(m_worker, signal, m_factsView, &FactsView::modelChanged);
    connect(m_worker, &EngineWorker::edited, m_factsView, &FactsView::modelChanged);
    connect(m_worker, &EngineWorker::rolledBack, m_factsView, &FactsView::modelChanged);
    connect(m_worker, &EngineWorker::modelOpened, m_factsView, &FactsView::modelChanged);
    connect(m_document, &Document::sessionSynced, edits, &EditPanel::showSynced);
    connect(m_document->undoStack(), &QUndoStack::indexChanged, edits,
            [this, edits] { edits->setUndoAvailable(m_document->canUndoEdit()); });
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
    connectDocument();
    connectRuns();
    connectHistory();
    connectInterference();
    connectTrace();
    connectPlotClicks();
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
    Q_EMIT openModelRequested(directory, m_modelPanel->selectedDevice(), false);
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
    m_tabs->addTab(m_interferenceView, tr("Interference"));
    m_tabs->addTab(m_traceView, tr("Trace"));
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
        if (m_document->currentRun() < 0)
            return showError(tr("Select a run in the Runs tab first."));
        QSettings settings;
        const QString path = QFileDialog::getSaveFileName(
            this, tr("Export the run's checkpoint metrics"),
            settings.value(QStringLiteral("recent/csvExport"),
                           QStringLiteral("run-%1.csv").arg(m_document->currentRun()))
                .toString(),
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
        if (m_document->currentRun() < 0)
            return showError(tr("Select a run in the Runs tab first."));
        const QString folder = QFileDialog::getSaveFileName(
            this, tr("A new folder for the edited model (config.json, model.safetensors, tokenizer)"),
            QStringLiteral("run-%1-model").arg(m_document->currentRun()));
        if (!folder.isEmpty())
            exportRunModel(folder);
    });
    model->setObjectName(QStringLiteral("exportModelAction"));
    file->addSeparator();
    QAction *quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    // Undo and redo of Facts edits and rollbacks; each step goes through the
    // ledger, whose file name the commands' texts carry.
    QMenu *edit = menuBar()->addMenu(tr("&Edit"));
    QAction *undo = m_document->undoStack()->createUndoAction(this, tr("&Undo"));
    undo->setObjectName(QStringLiteral("undoAction"));
    undo->setShortcut(QKeySequence::Undo);
    QAction *redo = m_document->undoStack()->createRedoAction(this, tr("&Redo"));
    redo->setObjectName(QStringLiteral("redoAction"));
    // Spelled out rather than QKeySequence::Redo: on X11 that is Ctrl+Shift+Z
    // too, and one key bound twice is an ambiguous shortcut that never fires.
    redo->setShortcuts({QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z), QKeySequence(Qt::CTRL | Qt::Key_Y)});
    edit->addAction(undo);
    edit->addAction(redo);
    QMenu *help = menuBar()->addMenu(tr("&Help"));
    QAction *glossary = help->addAction(tr("&Glossary"), this, [this] {
        QMessageBox box(QMessageBox::NoIcon, tr("Glossary"), glossaryHtml(), QMessageBox::Close, this);
        box.setTextFormat(Qt::RichText);
        box.exec();
    });
    glossary->setObjectName(QStringLiteral("glossaryAction"));
    glossary->setShortcut(QKeySequence::HelpContents);
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
            m_document->setLedgerPath(path);
            m_tabs->setCurrentWidget(m_runsView);
        });
    m_recentLedgers->setEnabled(!recent.isEmpty());
}

void MainWindow::connectRuns()
{
    connect(m_worker, &EngineWorker::modelOpened, m_runsView, [this](const oedit::ModelInfo &info) {
        m_runsView->setModelReady(true);
        m_runsView->setModelDir(QString::fromStdString(info.path));
        m_factsView->editPanel()->setModelDir(QString::fromStdString(info.path));
    });
    connect(m_worker, &EngineWorker::busyChanged, m_runsView, [this](bool busy) { m_runsView->setBusy(busy); });
    connect(m_worker, &EngineWorker::progress, m_runsView, &RunsView::showProgress);
    connect(m_runsView, &RunsView::cancelRequested, this, [this] { m_worker->requestCancel(); });
    connect(m_runsView, &RunsView::startRunRequested, this,
            [this](const QString &db, const oedit::runs::RunRequest &request) {
                m_worker->announceJob();
                m_worker->announceWrite();
                rememberLedger(db);
                Q_EMIT startRunRequested(db, request);
            });
    connect(m_runsView, &RunsView::resumeRequested, this, [this](const QString &db, qint64 runId) {
        m_worker->announceJob();
        m_worker->announceWrite();
        Q_EMIT resumeRunRequested(db, runId);
    });
    connect(m_runsView, &RunsView::listRunsRequested, this, &MainWindow::listRunsRequested);
    connect(this, &MainWindow::startRunRequested, m_worker, &EngineWorker::startRun);
    connect(this, &MainWindow::resumeRunRequested, m_worker, &EngineWorker::resumeRun);
    connect(this, &MainWindow::listRunsRequested, m_worker, &EngineWorker::listRuns);
    connect(this, &MainWindow::runReportRequested, m_worker, &EngineWorker::runReport);
    connect(this, &MainWindow::normGrowthRequested, m_worker, &EngineWorker::normGrowth);
    connect(this, &MainWindow::compareFactsRequested, m_worker, &EngineWorker::compareFacts);
    connect(this, &MainWindow::exportCsvRequested, m_worker, &EngineWorker::exportCsv);
    connect(this, &MainWindow::exportModelRequested, m_worker, &EngineWorker::exportModel);
    connect(m_worker, &EngineWorker::runFinished, m_runsView, &RunsView::showRunFinished);
    connect(m_worker, &EngineWorker::runNotStarted, m_runsView, &RunsView::showRunNotStarted);
    connect(m_worker, &EngineWorker::runsListed, m_runsView, &RunsView::showRuns);
    connect(m_worker, &EngineWorker::ledgerAccessChecked, m_document, &Document::onLedgerAccess);
    connect(m_document, &Document::accessChanged, m_historyView,
            [this] { m_historyView->setReadOnly(m_document->ledgerReadOnly()); });
    connect(m_worker, &EngineWorker::runsListed, m_compareView, &CompareView::showRuns);
    connect(m_worker, &EngineWorker::reportReady, m_retentionView, &RetentionView::showReport);
    connect(m_worker, &EngineWorker::reportReady, m_compareView, &CompareView::showReport);
    connect(m_worker, &EngineWorker::normGrowthReady, m_retentionView, &RetentionView::showNormGrowth);
    connect(m_worker, &EngineWorker::normGrowthInterrupted, this,
            [this](const QString &db, qint64 runId) { requestRead(Read::Norms, db, runId); });
    connect(m_worker, &EngineWorker::factsCompared, m_compareView, &CompareView::showFacts);
    connect(m_worker, &EngineWorker::exported, this, [this](const QString &path, const QString &what) {
        statusBar()->showMessage(tr("Exported %1 to %2").arg(what, path), 10000);
    });

    // Selected runs feed the retention view.
    connect(m_document, &Document::selectionChanged, this, [this](const QList<qint64> &ids) {
        const QString db = m_document->ledgerPath();
        m_retentionView->setRuns(db, ids);
        for (const auto id : ids) {
            requestRead(Read::Report, db, id);
            requestRead(Read::Norms, db, id);
        }
    });
    connect(m_compareView, &CompareView::compareRequested, this, [this](const QString &db, const QList<qint64> &ids) {
        for (const auto id : ids)
            requestRead(Read::Report, db, id);
        Q_EMIT compareFactsRequested(db, ids);
    });

    connect(m_worker, &EngineWorker::rolledBack, this, [this](const QString &db, const oedit::runs::RollbackInfo &event) {
        statusBar()->showMessage(tr("Rollback event %1 (%2): %3 edits taken out, %4 put back")
                                     .arg(event.eventId)
                                     .arg(QString::fromStdString(event.kind))
                                     .arg(event.deactivated.size())
                                     .arg(event.activated.size()),
                                 8000);
        m_runsView->refresh();
        if (db == m_document->ledgerPath())
            refreshCurrentRun();
    });
}

void MainWindow::connectHistory()
{
    m_historyView->setUndoStack(m_document->undoStack());
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
        if (db == m_document->ledgerPath())
            m_document->revertRun(runId, step);
    });
    connect(m_historyView, &HistoryView::removeRequested, this,
            [this](const QString &db, qint64 runId, qint64 editId, qint64 step) {
                if (db == m_document->ledgerPath())
                    m_document->removeEdit(runId, editId, step);
            });
    // History and Subspace show the document's current run.
    connect(m_document, &Document::currentRunChanged, this, [this](const QString &db, qint64 runId) {
        m_historyView->setRun(db, runId);
        m_subspaceView->setRun(db, runId);
        refreshCurrentRun();
    });
    // A Facts edit (or its undo) landed in the ledger: its run shows it.
    connect(m_document, &Document::sessionRecorded, this, [this] { refreshCurrentRun(); });
}

void MainWindow::connectInterference()
{
    connect(this, &MainWindow::explainFactRequested, m_worker, &EngineWorker::explainFact);
    connect(this, &MainWindow::blastRadiusRequested, m_worker, &EngineWorker::blastRadius);
    connect(m_worker, &EngineWorker::factExplained, m_interferenceView, &InterferenceView::showExplanation);
    connect(m_worker, &EngineWorker::blastRadiusReady, m_interferenceView, &InterferenceView::showBlastRadius);
    connect(m_worker, &EngineWorker::busyChanged, m_interferenceView, &InterferenceView::setBusy);
    // Announced before queued, so Cancel reaches them.
    connect(m_interferenceView, &InterferenceView::explainRequested, this,
            [this](const QString &db, const oedit::runs::FactQuery &query) {
                m_worker->announceJob();
                Q_EMIT explainFactRequested(db, query);
            });
    connect(m_interferenceView, &InterferenceView::blastRadiusRequested, this,
            [this](const QString &db, qint64 runId, qint64 editId, int top) {
                m_worker->announceJob();
                Q_EMIT blastRadiusRequested(db, runId, editId, top);
            });
    // Removing a culprit is History's removal: one undoable rollback.
    connect(m_interferenceView, &InterferenceView::removeRequested, this,
            [this](const QString &db, qint64 runId, qint64 editId, qint64 step) {
                if (db == m_document->ledgerPath())
                    m_document->removeEdit(runId, editId, step);
            });
    connect(m_document, &Document::currentRunChanged, m_interferenceView, &InterferenceView::setRun);
    connect(m_document, &Document::accessChanged, m_interferenceView,
            [this] { m_interferenceView->setReadOnly(m_document->ledgerReadOnly()); });
    connect(m_worker, &EngineWorker::rolledBack, m_interferenceView, [this] { m_interferenceView->markStale(); });
    connect(m_document, &Document::sessionRecorded, m_interferenceView, &InterferenceView::markStale);
    // From History: the selected edit's own fact, or what it hurt.
    connect(m_historyView, &HistoryView::explainRequested, this,
            [this](const QString &subject, const QString &prompt, const QString &target) {
                m_tabs->setCurrentWidget(m_interferenceView);
                m_interferenceView->explain(subject, prompt, target);
            });
    connect(m_historyView, &HistoryView::blastRadiusRequested, this, [this](qint64 editId) {
        m_tabs->setCurrentWidget(m_interferenceView);
        m_interferenceView->blastRadiusOf(editId);
    });
}

void MainWindow::connectPlotClicks()
{
    connect(m_retentionView, &RetentionView::stepClicked, this, [this](qint64 runId, qint64 step) {
        if (runId != m_document->currentRun()) {
            statusBar()->showMessage(
                tr("Step %1 of run %2: select that run alone in Runs to see its edits in History.").arg(step).arg(runId),
                8000);
            return;
        }
        m_tabs->setCurrentWidget(m_historyView);
        if (!m_historyView->selectStep(step))
            statusBar()->showMessage(tr("Run %1 has no edit at step %2 in History.").arg(runId).arg(step), 8000);
    });
}

void MainWindow::connectTrace()
{
    connect(this, &MainWindow::tracePromptRequested, m_worker, &EngineWorker::tracePrompt);
    connect(m_worker, &EngineWorker::promptTraced, m_traceView, &TraceView::showTrace);
    connect(m_worker, &EngineWorker::busyChanged, m_traceView, &TraceView::setBusy);
    connect(m_worker, &EngineWorker::worldLoaded, m_traceView, &TraceView::setWorld);
    connect(m_worker, &EngineWorker::modelOpened, m_traceView, [this] {
        m_traceView->setModelReady(true);
        m_traceView->markStale();
    });
    // Announced before queued, so Cancel reaches it.
    connect(m_traceView, &TraceView::traceRequested, this, [this](const oedit::PromptTraceQuery &query) {
        m_worker->announceJob();
        Q_EMIT tracePromptRequested(query);
    });
    // The trace is of the open model: any change to it makes the trace shown stale.
    for (const auto signal : {&EngineWorker::editUndone, &EngineWorker::editRedone})
        connect(m_worker, signal, m_traceView, &TraceView::markStale);
    connect(m_worker, &EngineWorker::edited, m_traceView, &TraceView::markStale);
    connect(m_worker, &EngineWorker::rolledBack, m_traceView, &TraceView::markStale);
    // From the Facts tab: trace the fact before editing it.
    connect(m_factsView->editPanel(), &EditPanel::traceRequested, this,
            [this](const QString &subject, const QString &prompt) {
                m_tabs->setCurrentWidget(m_traceView);
                m_traceView->trace(subject, prompt);
            });
}

void MainWindow::connectDocument()
{
    // Connected before the requests below reach the worker (slots run in the
    // order they were connected), so a write is announced before it is queued.
    const auto announceWrite = [this] { m_worker->announceWrite(); };
    connect(m_document, &Document::applyEditRequested, this, announceWrite);
    connect(m_document, &Document::undoEditRequested, this, announceWrite);
    connect(m_document, &Document::redoEditRequested, this, announceWrite);
    connect(m_document, &Document::rollbackRequested, this, announceWrite);
    // Requests the document makes of the worker, and the answers it keeps.
    connect(m_document, &Document::attachLedgerRequested, m_worker, &EngineWorker::attachLedger);
    connect(m_document, &Document::applyEditRequested, m_worker, &EngineWorker::applyEdit);
    connect(m_document, &Document::undoEditRequested, m_worker, &EngineWorker::undoLastEdit);
    connect(m_document, &Document::redoEditRequested, m_worker, &EngineWorker::redoEdit);
    connect(m_document, &Document::rollbackRequested, m_worker, &EngineWorker::rollback);
    connect(m_document, &Document::listRunsRequested, m_worker, &EngineWorker::listRuns);
    connect(m_document, &Document::runReportRequested, m_worker, &EngineWorker::runReport);
    connect(m_worker, &EngineWorker::sessionChanged, m_document, &Document::onSessionChanged);
    connect(m_worker, &EngineWorker::modelOpened, m_document, &Document::onModelOpened);
    connect(m_worker, &EngineWorker::ledgerAttached, m_document, &Document::onLedgerAttached);
    connect(m_worker, &EngineWorker::edited, m_document, &Document::onEdited);
    connect(m_worker, &EngineWorker::editUndone, m_document, &Document::onEditUndone);
    connect(m_worker, &EngineWorker::editRedone, m_document, &Document::onEditRedone);
    connect(m_worker, &EngineWorker::rolledBack, m_document, &Document::onRolledBack);
    connect(m_worker, &EngineWorker::rollbackRefused, m_document, &Document::onRollbackRefused);
    connect(m_worker, &EngineWorker::runsListed, m_document, &Document::onRunsListed);
    connect(m_worker, &EngineWorker::reportReady, m_document, &Document::onReportReady);
    connect(m_document, &Document::message, this, [this](const QString &text, bool error) {
        if (error)
            showError(text);
        else
            statusBar()->showMessage(text, 10000);
    });
    // The window's title names the ledger that Undo and Redo act on.
    const auto showLedger = [this] {
        setWindowTitle(tr("O-Edit Workbench — %1").arg(m_document->ledgerName()));
    };
    connect(m_document, &Document::ledgerChanged, this, showLedger);
    showLedger();
}

void MainWindow::refreshCurrentRun()
{
    const qint64 run = m_document->currentRun();
    if (run < 0)
        return;
    const QString db = m_document->ledgerPath();
    requestRead(Read::Edits, db, run);
    requestRead(Read::Report, db, run);
    requestRead(Read::Subspace, db, run);
}

void MainWindow::requestRead(Read kind, const QString &db, qint64 runId)
{
    const PendingRead read{kind, db, runId};
    if (!m_reads.contains(read))
        m_reads << read;
    if (!m_readsScheduled) {
        m_readsScheduled = true;
        QTimer::singleShot(0, this, &MainWindow::sendReads);
    }
}

void MainWindow::sendReads()
{
    m_readsScheduled = false;
    auto reads = std::exchange(m_reads, {});
    std::stable_sort(reads.begin(), reads.end(),
                     [](const PendingRead &a, const PendingRead &b) { return a.kind < b.kind; });
    for (const auto &read : std::as_const(reads)) {
        switch (read.kind) {
        case Read::Edits:
            m_worker->announceRead(EngineWorker::readKey("edits", read.db, read.runId));
            Q_EMIT listEditsRequested(read.db, read.runId);
            break;
        case Read::Report:
            m_worker->announceRead(EngineWorker::readKey("report", read.db, read.runId));
            Q_EMIT runReportRequested(read.db, read.runId);
            break;
        case Read::Subspace: {
            const int maxEdits = m_subspaceView->maxEdits();
            m_worker->announceRead(EngineWorker::readKey("subspace", read.db, read.runId, maxEdits));
            Q_EMIT subspaceRequested(read.db, read.runId, maxEdits);
            break;
        }
        case Read::Norms:
            m_worker->announceRead(EngineWorker::readKey("norms", read.db, read.runId));
            Q_EMIT normGrowthRequested(read.db, read.runId);
            break;
        }
    }
}

void MainWindow::exportRunCsv(const QString &path)
{
    if (m_document->currentRun() < 0)
        return showError(tr("Select a run in the Runs tab first."));
    Q_EMIT exportCsvRequested(m_document->ledgerPath(), m_document->currentRun(), path);
}

void MainWindow::exportRunModel(const QString &directory)
{
    if (m_document->currentRun() < 0)
        return showError(tr("Select a run in the Runs tab first."));
    Q_EMIT exportModelRequested(m_document->ledgerPath(), m_document->currentRun(), directory);
}

bool MainWindow::exportCurrentTable(const QString &path)
{
    QWidget *tab = m_tabs->currentWidget();
    if (!tab)
        return false;
    // Item tables and model views alike: every row, not only those on screen.
    QTableView *table = nullptr;
    for (auto *candidate : tab->findChildren<QTableView *>())
        if (candidate->isVisible() && candidate->model() && candidate->model()->rowCount() > 0) {
            table = candidate;
            break;
        }
    if (!table)
        return false;
    const QAbstractItemModel *model = table->model();
    QString text;
    QStringList header;
    const bool rowHeaders = table->verticalHeader()->isVisible();
    if (rowHeaders)
        header << QString();
    for (int c = 0; c < model->columnCount(); ++c)
        header << csvField(model->headerData(c, Qt::Horizontal).toString());
    text += header.join(QLatin1Char(',')) + QLatin1Char('\n');
    for (int r = 0; r < model->rowCount(); ++r) {
        QStringList row;
        if (rowHeaders)
            row << csvField(model->headerData(r, Qt::Vertical).toString());
        for (int c = 0; c < model->columnCount(); ++c)
            row << csvField(model->index(r, c).data().toString());
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
