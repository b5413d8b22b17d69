// The workbench's main window: owns the worker thread and the views. Lives on
// the GUI thread; never calls the engine directly.
#pragma once

#include "engineworker.h"

#include <QMainWindow>
#include <QThread>

#include <functional>

class QProgressBar;
class QPushButton;
class QTabWidget;
class QUndoStack;
class FactsView;
class ModelPanel;
class RetentionView;
class RunsView;

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
    // Rollbacks of runs, as undoable commands that go through the ledger.
    QUndoStack *undoStack() const { return m_undoStack; }

protected:
    void closeEvent(QCloseEvent *event) override;

Q_SIGNALS:
    void describeBuildRequested();
    void openModelRequested(const QString &directory, const QString &device);
    void predictRequested(const QString &prompt, int topK);
    void applyEditRequested(const oedit::EditSpec &spec);
    void undoEditRequested();
    void startRunRequested(const QString &db, const oedit::runs::RunRequest &request);
    void listRunsRequested(const QString &db);
    void runReportRequested(const QString &db, qint64 runId);
    void rollbackRequested(const QString &db, const oedit::runs::RollbackRequest &request, int ticket,
                           int undoTicket);

private:
    void createViews();
    void createMenus();
    void restoreLayout();
    void shutDownWorker();
    void connectRuns();
    // What undo commands call to send a rollback to the worker.
    std::function<void(const QString &, const oedit::runs::RollbackRequest &, int, int)> rollbackSender();
    void pushUndoLastRollback(const QString &db, const oedit::runs::RunReport &report);

    QThread m_workerThread;
    EngineWorker *m_worker;
    QTabWidget *m_tabs;
    ModelPanel *m_modelPanel;
    FactsView *m_factsView;
    RunsView *m_runsView;
    RetentionView *m_retentionView;
    QUndoStack *m_undoStack;
    int m_nextTicket = 1; // names rollback events for the worker (see EngineWorker::rollback)
    // "Undo Last Rollback" waits for this run's report to find the event.
    QString m_undoLastDb;
    qint64 m_undoLastRun = -1;
    bool m_quietErrors = false;
    QProgressBar *m_progress;
    QPushButton *m_cancel;
};
