// The workbench's main window: owns the worker thread and the views. Lives on
// the GUI thread; never calls the engine directly.
#pragma once

#include "engineworker.h"

#include <QMainWindow>
#include <QThread>

class QTabWidget;
class ModelPanel;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget *parent = nullptr);
    ~MainWindow() override;

    // The worker (living on its own thread), for tests that wait on its signals.
    EngineWorker *worker() const { return m_worker; }

protected:
    void closeEvent(QCloseEvent *event) override;

Q_SIGNALS:
    void describeBuildRequested();

private:
    void createViews();
    void createMenus();
    void restoreLayout();
    void shutDownWorker();

    QThread m_workerThread;
    EngineWorker *m_worker;
    QTabWidget *m_tabs;
    ModelPanel *m_modelPanel;
};
