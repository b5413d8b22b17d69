// The workbench's main window: owns the worker thread and the views. Lives on
// the GUI thread; never calls the engine directly.
#pragma once

#include "engineworker.h"

#include <QMainWindow>
#include <QThread>

class QProgressBar;
class QPushButton;
class QTabWidget;
class FactsView;
class ModelPanel;

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

protected:
    void closeEvent(QCloseEvent *event) override;

Q_SIGNALS:
    void describeBuildRequested();
    void openModelRequested(const QString &directory, const QString &device);
    void predictRequested(const QString &prompt, int topK);
    void applyEditRequested(const oedit::EditSpec &spec);
    void undoEditRequested();

private:
    void createViews();
    void createMenus();
    void restoreLayout();
    void shutDownWorker();

    QThread m_workerThread;
    EngineWorker *m_worker;
    QTabWidget *m_tabs;
    ModelPanel *m_modelPanel;
    FactsView *m_factsView;
    bool m_quietErrors = false;
    QProgressBar *m_progress;
    QPushButton *m_cancel;
};
