// The workbench's main window: owns the worker thread, the document and the
// views, and connects them. Lives on the GUI thread; never calls the engine
// directly.
//
// The document (document.h) holds the ledger, the selected and current runs,
// the session run and the undo stack; the views observe it. The current run
// (History and Subspace) is the first run selected in the Runs tab, or the
// Facts view's session run after an edit there.
#pragma once

#include "engineworker.h"

#include <QMainWindow>
#include <QThread>

class QMenu;
class QProgressBar;
class QPushButton;
class QTabWidget;
class CompareView;
class Document;
class FactsView;
class HistoryView;
class InterferenceView;
class TraceView;
class ModelPanel;
class RetentionView;
class RunsView;
class SubspaceView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget *parent = nullptr);
    ~MainWindow() override;

    // Asks the worker to open a model folder (empty: the embedded default).
    void openModel(const QString &directory = QString());
    // Errors go to the status bar only, not to a modal box (tests, scripts).
    void setQuietErrors(bool quiet) { m_quietErrors = quiet; }

    // The worker (living on its own thread), for tests that wait on its signals.
    EngineWorker *worker() const { return m_worker; }
    // What the views show and act on: the ledger, the runs, the undo stack.
    Document *document() const { return m_document; }

    // Exports through the worker (menu actions ask for the paths first).
    void exportRunCsv(const QString &path);
    void exportRunModel(const QString &directory);
    // Writes the first table of the current tab as CSV; false when there is none or it cannot be written.
    bool exportCurrentTable(const QString &path);

protected:
    void closeEvent(QCloseEvent *event) override;

Q_SIGNALS:
    void describeBuildRequested();
    void openModelRequested(const QString &directory, const QString &device, bool allowNonFinite);
    void predictRequested(const QString &prompt, int topK);
    void startRunRequested(const QString &db, const oedit::runs::RunRequest &request);
    void resumeRunRequested(const QString &db, qint64 runId);
    void listRunsRequested(const QString &db);
    void runReportRequested(const QString &db, qint64 runId);
    void listEditsRequested(const QString &db, qint64 runId);
    void subspaceRequested(const QString &db, qint64 runId, int maxEdits);
    void anglesRequested(const QString &db, qint64 editA, qint64 editB);
    void normGrowthRequested(const QString &db, qint64 runId);
    void compareFactsRequested(const QString &db, const QList<qint64> &runIds);
    void explainFactRequested(const QString &db, const oedit::runs::FactQuery &query);
    void tracePromptRequested(const oedit::PromptTraceQuery &query);
    void blastRadiusRequested(const QString &db, qint64 runId, qint64 editId, int top);
    void exportCsvRequested(const QString &db, qint64 runId, const QString &path);
    void exportModelRequested(const QString &db, qint64 runId, const QString &directory);

private:
    void createViews();
    void createMenus();
    void restoreLayout();
    void shutDownWorker();
    void connectRuns();
    void connectHistory();
    void connectInterference();
    void connectTrace();
    void connectPlotClicks();
    void connectDocument();
    void refreshCurrentRun();
    // Reads of runs for the views. Those asked for in one turn of the event
    // loop go to the worker once each and cheapest first, so History is not
    // kept waiting behind a norm curve that reads every update of a big run;
    // each is announced to the worker, which skips a read whose later copy
    // is already queued.
    enum class Read { Edits, Report, Subspace, Norms };
    void requestRead(Read kind, const QString &db, qint64 runId);
    void sendReads();
    void rememberLedger(const QString &db);
    void fillRecentLedgers();
    void showError(const QString &message);

    QThread m_workerThread;
    EngineWorker *m_worker;
    Document *m_document;
    QTabWidget *m_tabs;
    ModelPanel *m_modelPanel;
    FactsView *m_factsView;
    RunsView *m_runsView;
    HistoryView *m_historyView;
    SubspaceView *m_subspaceView;
    RetentionView *m_retentionView;
    CompareView *m_compareView;
    InterferenceView *m_interferenceView;
    TraceView *m_traceView;
    QMenu *m_recentLedgers = nullptr;
    bool m_quietErrors = false;
    struct PendingRead {
        Read kind;
        QString db;
        qint64 runId;
        bool operator==(const PendingRead &o) const { return kind == o.kind && db == o.db && runId == o.runId; }
    };
    QList<PendingRead> m_reads;
    bool m_readsScheduled = false;
    QProgressBar *m_progress;
    QPushButton *m_cancel;
};
