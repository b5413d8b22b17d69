// `oedit-workbench --screenshot DIR`: opens a model, makes two small runs in a
// temporary ledger (O-Edit+ and ROME, 6 edits each, evaluated every 2), shows
// each view on them (the Interference tab on the first edit's fact) and saves one PNG per tab into DIR, so the views can be
// reviewed as pictures. Drives the window only through its widgets and the
// worker's signals, as a user would. GUI thread only.
#pragma once

#include <QObject>
#include <QString>
#include <QTimer>

#include <functional>
#include <memory>

class MainWindow;
class QTemporaryDir;
class StallMonitor;

class ScreenshotTour : public QObject {
    Q_OBJECT
public:
    ScreenshotTour(MainWindow *window, const QString &outDir, const QString &modelDir, QObject *parent = nullptr);
    ~ScreenshotTour() override;

    void start();

Q_SIGNALS:
    // 0 when every picture was written; the reason went to stderr otherwise.
    void finished(int exitCode);

private:
    void startRun(const QString &method);
    void showViews();
    void showInterference();
    void showTrace();
    void shoot(int tab);
    void fail(const QString &why);
    // Calls `then` once `ready` holds (checked every 100 ms), or fails after `seconds`.
    void waitFor(const QString &what, std::function<bool()> ready, std::function<void()> then, int seconds);

    MainWindow *m_window;
    QString m_outDir;
    QString m_modelDir;
    std::unique_ptr<QTemporaryDir> m_ledgerDir;
    StallMonitor *m_stalls;
    QTimer m_poll;
    int m_runsDone = 0;
    bool m_done = false;
};
