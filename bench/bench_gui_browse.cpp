// Browsing a big ledger in the workbench: does the window stay responsive?
//
// Opens the real main window (run it under a display: `xvfb-run -a`), opens
// the default model, then the ledger as File > Recent Ledgers does, and goes
// through what a user does with a big run, driving the widgets:
//   open ledger   the Runs table lists the ledger's runs
//   select run    its row selected in Runs: History fills, the report and the
//                 norm curve arrive (times to each)
//   history       the History tab shown, scrolled to the middle and the end,
//                 a row in the middle selected
//   subspace, retention
//                 each tab shown for a second
//   compare       the run and the ledger's next run checked in Compare, every
//                 fact of the two listed
//   remove edit   History's "Remove Selected Edit" on the middle row, until
//                 the ledger answered and History shows it out of effect
//   undo          Ctrl+Z's action, until the edit is back in effect
// and prints, per phase, how long it took and the longest GUI stall: how late
// a 10 ms timer on the GUI thread came (ui/stallmonitor.h). A measurement,
// never a pass/fail: exit 1 only when a step could not be done.
//
// Usage: bench_gui_browse --db FILE [--run N] [--model DIR] [--timeout S] [--shots DIR]
// (--shots saves the window as a PNG at the end of each phase, to look at).
// (make the ledger with bench_big_ledger first).
#include "compareview.h"
#include "document.h"
#include "mainwindow.h"
#include "stallmonitor.h"

#include <QAbstractItemModel>
#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QPushButton>
#include <QScrollBar>
#include <QTabWidget>
#include <QTableView>
#include <QUndoStack>

#include <cstdio>
#include <functional>
#include <string>
#include <utility>

namespace {

struct Phase {
    QString name;
    double ms = 0;
    double longestStallMs = 0;
    long long over100 = 0;
    QString note;
};

class Browser {
public:
    Browser(MainWindow &window, int timeoutSeconds, QString shots)
        : m_window(window), m_timeoutMs(timeoutSeconds * 1000), m_shots(std::move(shots))
    {
    }

    // Spins the event loop until `ready` holds; false after the timeout.
    bool waitUntil(const std::function<bool()> &ready)
    {
        QElapsedTimer clock;
        clock.start();
        while (!ready()) {
            if (clock.elapsed() > m_timeoutMs)
                return false;
            QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
        }
        return true;
    }
    // Lets the window paint and its timers fire for `ms`.
    void idle(int ms)
    {
        QElapsedTimer clock;
        clock.start();
        while (clock.elapsed() < ms)
            QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
    }

    // Runs `body` (which starts the phase and waits for its end, returning a
    // note or an error) under a fresh stall monitor.
    bool phase(const QString &name, const std::function<bool(QString &note)> &body)
    {
        StallMonitor stalls;
        QElapsedTimer clock;
        stalls.start();
        clock.start();
        QString note;
        const bool ok = body(note);
        const double ms = double(clock.nsecsElapsed()) / 1e6;
        stalls.stop();
        if (!ok) {
            std::fprintf(stderr, "bench_gui_browse: %s: %s\n", qPrintable(name), qPrintable(note));
            return false;
        }
        m_phases.push_back({name, ms, stalls.longestStallMs(), stalls.stallsOver100Ms(), note});
        const auto &p = m_phases.back();
        std::printf("%-14s %8.0f ms, longest stall %7.1f ms (%lld over 100 ms)  %s\n", qPrintable(p.name), p.ms,
                    p.longestStallMs, p.over100, qPrintable(p.note));
        std::fflush(stdout);
        if (!m_shots.isEmpty())
            m_window.grab().save(QDir(m_shots).filePath(QString(name).replace(QLatin1Char(' '), QLatin1Char('-')) +
                                                        QStringLiteral(".png")));
        return true;
    }

    void print() const
    {
        double worst = 0;
        for (const auto &p : m_phases)
            worst = std::max(worst, p.longestStallMs);
        std::printf("longest GUI stall over all phases: %.1f ms\n", worst);
    }

    template <typename T> T *child(const char *name)
    {
        return m_window.findChild<T *>(QString::fromLatin1(name));
    }

private:
    MainWindow &m_window;
    int m_timeoutMs;
    QString m_shots;
    std::vector<Phase> m_phases;
};

int rowOfRun(QAbstractItemModel *runs, qint64 runId)
{
    for (int row = 0; row < runs->rowCount(); ++row)
        if (runs->index(row, 0).data().toLongLong() == runId)
            return row;
    return -1;
}

} // namespace

int main(int argc, char **argv)
{
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("oedit-bench"));
    QApplication::setApplicationName(QStringLiteral("bench_gui_browse"));
    QString db, modelDir, shots;
    qint64 runId = -1;
    int timeout = 600;
    const QStringList args = QApplication::arguments();
    for (int i = 1; i < args.size(); ++i) {
        const bool hasValue = i + 1 < args.size();
        if (args[i] == QLatin1String("--db") && hasValue)
            db = args[++i];
        else if (args[i] == QLatin1String("--run") && hasValue)
            runId = args[++i].toLongLong();
        else if (args[i] == QLatin1String("--model") && hasValue)
            modelDir = args[++i];
        else if (args[i] == QLatin1String("--timeout") && hasValue)
            timeout = args[++i].toInt();
        else if (args[i] == QLatin1String("--shots") && hasValue)
            shots = args[++i];
        else {
            std::fprintf(stderr, "usage: bench_gui_browse --db FILE [--run N] [--model DIR] [--timeout S] [--shots DIR]\n");
            return 2;
        }
    }
    if (db.isEmpty() || !QFileInfo::exists(db)) {
        std::fprintf(stderr, "bench_gui_browse: give an existing ledger with --db (bench_big_ledger makes one)\n");
        return 2;
    }

    MainWindow window;
    window.setQuietErrors(true);
    window.resize(1400, 900);
    window.show();
    if (!shots.isEmpty() && !QDir().mkpath(shots)) {
        std::fprintf(stderr, "bench_gui_browse: cannot make the folder %s\n", qPrintable(shots));
        return 2;
    }
    Browser browser(window, timeout, shots);

    bool opened = false;
    QObject::connect(window.worker(), &EngineWorker::modelOpened, &window, [&] { opened = true; });
    QString lastError;
    QObject::connect(window.worker(), &EngineWorker::failed, &window, [&](const QString &message) {
        lastError = message;
        std::fprintf(stderr, "bench_gui_browse: the workbench says: %s\n", qPrintable(message));
    });
    if (!browser.phase(QStringLiteral("open model"), [&](QString &note) {
            window.openModel(modelDir);
            note = lastError;
            return browser.waitUntil([&] { return opened || !lastError.isEmpty(); }) && opened;
        }))
        return 1;

    auto *tabs = browser.child<QTabWidget>("views");
    auto *runs = browser.child<QTableView>("runsTable");
    auto *history = browser.child<QTableView>("historyTable");
    if (!tabs || !runs || !history) {
        std::fprintf(stderr, "bench_gui_browse: the window has no views/runsTable/historyTable\n");
        return 1;
    }
    if (!browser.phase(QStringLiteral("open ledger"), [&](QString &note) {
            window.document()->setLedgerPath(db);
            tabs->setCurrentIndex(tabs->indexOf(browser.child<QWidget>("runsView")));
            if (!browser.waitUntil([&] { return runs->model()->rowCount() > 0; }))
                return note = QStringLiteral("no run listed"), false;
            note = QStringLiteral("%1 runs").arg(runs->model()->rowCount());
            return true;
        }))
        return 1;

    long long steps = 0;
    bool reported = false, normed = false;
    QObject::connect(window.worker(), &EngineWorker::reportReady, &window,
                     [&](const QString &, const oedit::runs::RunReport &report) {
                         if (report.run.runId == runId) {
                             reported = true;
                             steps = report.run.steps;
                         }
                     });
    QObject::connect(window.worker(), &EngineWorker::normGrowthReady, &window,
                     [&](const QString &, qint64 run, const NormList &) { normed = normed || run == runId; });
    if (!browser.phase(QStringLiteral("select run"), [&](QString &note) {
            if (runId < 0)
                runId = runs->model()->index(0, 0).data().toLongLong();
            const int row = rowOfRun(runs->model(), runId);
            if (row < 0)
                return note = QStringLiteral("run %1 is not in the ledger").arg(runId), false;
            QElapsedTimer clock;
            clock.start();
            runs->selectRow(row);
            double historyMs = -1, reportMs = -1, normsMs = -1;
            const bool ok = browser.waitUntil([&] {
                if (historyMs < 0 && history->model()->rowCount() > 0)
                    historyMs = double(clock.elapsed());
                if (reportMs < 0 && reported)
                    reportMs = double(clock.elapsed());
                if (normsMs < 0 && normed)
                    normsMs = double(clock.elapsed());
                return historyMs >= 0 && reportMs >= 0 && normsMs >= 0;
            });
            note = QStringLiteral("run %1, %2 steps; History filled after %3 ms, report %4 ms, norm curve %5 ms")
                       .arg(runId)
                       .arg(steps)
                       .arg(historyMs, 0, 'f', 0)
                       .arg(reportMs, 0, 'f', 0)
                       .arg(normsMs, 0, 'f', 0);
            return ok;
        }))
        return 1;

    const int middle = history->model()->rowCount() / 2;
    if (!browser.phase(QStringLiteral("history"), [&](QString &note) {
            tabs->setCurrentIndex(tabs->indexOf(browser.child<QWidget>("historyView")));
            browser.idle(300);
            auto *bar = history->verticalScrollBar();
            bar->setValue(bar->maximum() / 2);
            browser.idle(300);
            bar->setValue(bar->maximum());
            browser.idle(300);
            history->selectRow(middle);
            history->scrollTo(history->model()->index(middle, 0));
            browser.idle(300);
            note = QStringLiteral("%1 rows, row %2 selected").arg(history->model()->rowCount()).arg(middle);
            return true;
        }))
        return 1;
    for (const char *view : {"subspaceView", "retentionView"})
        if (!browser.phase(QString::fromLatin1(view).chopped(4), [&](QString &) {
                tabs->setCurrentIndex(tabs->indexOf(browser.child<QWidget>(view)));
                browser.idle(1000);
                return true;
            }))
            return 1;

    auto *compare = browser.child<CompareView>("compareView");
    auto *facts = browser.child<QTableView>("factDiff");
    auto *onlyDiffering = browser.child<QCheckBox>("onlyDiffering");
    if (!compare || !facts || !onlyDiffering) {
        std::fprintf(stderr, "bench_gui_browse: the Compare tab has no factDiff table or onlyDiffering box\n");
        return 1;
    }
    if (!browser.phase(QStringLiteral("compare"), [&](QString &note) {
            tabs->setCurrentWidget(compare);
            onlyDiffering->setChecked(false);
            qint64 other = -1;
            for (int row = 0; row < runs->model()->rowCount() && other < 0; ++row)
                if (runs->model()->index(row, 0).data().toLongLong() != runId)
                    other = runs->model()->index(row, 0).data().toLongLong();
            if (other < 0)
                return note = QStringLiteral("the ledger has one run: Compare needs two"), false;
            compare->checkRuns({runId, other});
            if (!browser.waitUntil([&] { return facts->model()->rowCount() > 0; }))
                return note = QStringLiteral("no fact listed"), false;
            browser.idle(500);
            note = QStringLiteral("%1 facts listed").arg(facts->model()->rowCount());
            return true;
        }))
        return 1;

    // The middle edit's "In effect" cell, as History shows it.
    const int activeColumn = 3;
    auto inEffect = [&] { return history->model()->index(middle, activeColumn).data().toString(); };
    const QString yes = inEffect();
    auto *remove = browser.child<QPushButton>("historyRemove");
    auto *undo = browser.child<QAction>("undoAction");
    int rolledBack = 0;
    QObject::connect(window.worker(), &EngineWorker::rolledBack, &window, [&] { ++rolledBack; });
    auto rollbackPhase = [&](const QString &name, const std::function<void()> &act, const std::function<bool()> &shown) {
        return browser.phase(name, [&](QString &note) {
            QElapsedTimer clock;
            clock.start();
            const int before = rolledBack;
            act();
            double answeredMs = -1;
            const bool ok = browser.waitUntil([&] {
                if (answeredMs < 0 && rolledBack > before)
                    answeredMs = double(clock.elapsed());
                return answeredMs >= 0 && shown();
            });
            note = QStringLiteral("the ledger answered after %1 ms; History shows it after %2 ms")
                       .arg(answeredMs, 0, 'f', 0)
                       .arg(double(clock.elapsed()), 0, 'f', 0);
            return ok;
        });
    };
    tabs->setCurrentIndex(tabs->indexOf(browser.child<QWidget>("historyView")));
    history->selectRow(middle);
    browser.idle(200);
    if (!remove || !undo || !remove->isEnabled()) {
        std::fprintf(stderr, "bench_gui_browse: History's Remove Selected Edit is not there or not enabled\n");
        return 1;
    }
    if (!rollbackPhase(QStringLiteral("remove edit"), [&] { remove->click(); }, [&] { return inEffect() != yes; }))
        return 1;
    if (!rollbackPhase(QStringLiteral("undo"), [&] { undo->trigger(); }, [&] { return inEffect() == yes; }))
        return 1;

    browser.print();
    window.close();
    return 0;
}
