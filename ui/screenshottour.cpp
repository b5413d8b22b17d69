#include "screenshottour.h"

#include "compareview.h"
#include "mainwindow.h"
#include "runsview.h"
#include "stallmonitor.h"
#include "traceview.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QComboBox>
#include <QCompleter>
#include <QDeadlineTimer>
#include <QDir>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>

#include <cstdio>

ScreenshotTour::ScreenshotTour(MainWindow *window, const QString &outDir, const QString &modelDir, QObject *parent)
    : QObject(parent), m_window(window), m_outDir(outDir), m_modelDir(modelDir),
      m_ledgerDir(std::make_unique<QTemporaryDir>()), m_stalls(new StallMonitor(this))
{
}

ScreenshotTour::~ScreenshotTour() = default;

void ScreenshotTour::fail(const QString &why)
{
    if (m_done)
        return;
    m_done = true;
    m_poll.stop();
    std::fprintf(stderr, "screenshot: %s\n", qPrintable(why));
    Q_EMIT finished(1);
}

void ScreenshotTour::waitFor(const QString &what, std::function<bool()> ready, std::function<void()> then,
                             int seconds)
{
    m_poll.disconnect();
    m_poll.setInterval(100);
    const QDeadlineTimer deadline(seconds * 1000);
    connect(&m_poll, &QTimer::timeout, this, [this, what, ready, then, deadline] {
        if (m_done)
            return;
        if (ready()) {
            m_poll.stop();
            m_poll.disconnect();
            then();
        } else if (deadline.hasExpired()) {
            fail(QStringLiteral("gave up waiting for %1").arg(what));
        }
    });
    m_poll.start();
}

void ScreenshotTour::start()
{
    if (!QDir().mkpath(m_outDir))
        return fail(QStringLiteral("cannot create the folder %1").arg(m_outDir));
    if (!m_ledgerDir->isValid())
        return fail(QStringLiteral("cannot create a temporary folder for the ledger"));
    EngineWorker *worker = m_window->worker();
    connect(worker, &EngineWorker::failed, this, [this](const QString &message) { fail(message); });
    connect(worker, &EngineWorker::runFinished, this, [this](const QString &, const oedit::runs::RunSummary &run) {
        ++m_runsDone;
        std::printf("screenshot: run %lld (%s) %s with %lld edits\n", run.runId, run.method.c_str(),
                    run.status.c_str(), run.steps);
        if (m_runsDone == 1) {
            QTimer::singleShot(0, this, [this] { startRun(QStringLiteral("rome")); });
        } else if (m_runsDone == 2) {
            m_stalls->stop();
            std::printf("screenshot: longest GUI stall while the runs went: %.1f ms (%lld ticks, %lld over 100 ms)\n",
                        m_stalls->longestStallMs(), m_stalls->ticks(), m_stalls->stallsOver100Ms());
            std::fflush(stdout);
            showViews();
        }
    });
    connect(worker, &EngineWorker::modelOpened, this, [this](const oedit::ModelInfo &info) {
        if (m_runsDone > 0 || m_stalls->ticks() > 0)
            return;
        std::printf("screenshot: model %s\n", info.path.c_str());
        m_window->findChild<RunsView *>(QStringLiteral("runsView"))
            ->setLedgerPath(m_ledgerDir->filePath(QStringLiteral("screenshots.sqlite")));
        m_stalls->start();
        startRun(QStringLiteral("oedit+"));
    });
    m_window->openModel(m_modelDir);
}

void ScreenshotTour::startRun(const QString &method)
{
    auto *start = m_window->findChild<QPushButton *>(QStringLiteral("startRun"));
    m_window->findChild<QComboBox *>(QStringLiteral("runDataset"))->setCurrentText(QStringLiteral("world"));
    m_window->findChild<QComboBox *>(QStringLiteral("runMethod"))->setCurrentText(method);
    m_window->findChild<QSpinBox *>(QStringLiteral("runEdits"))->setValue(6);
    m_window->findChild<QSpinBox *>(QStringLiteral("runEvery"))->setValue(2);
    m_window->findChild<QSpinBox *>(QStringLiteral("runSeed"))->setValue(1);
    waitFor(QStringLiteral("the Start Run button"), [start] { return start->isEnabled(); },
            [start] { start->click(); }, 60);
}

void ScreenshotTour::showViews()
{
    // A prediction for the Facts tab, both runs compared, the first one current.
    auto *prompt = m_window->findChild<QLineEdit *>(QStringLiteral("promptEdit"));
    prompt->setText(QStringLiteral("The mother tongue of"));
    m_window->findChild<QPushButton *>(QStringLiteral("predictButton"))->click();
    auto *runs = m_window->findChild<QTableWidget *>(QStringLiteral("runsTable"));
    waitFor(QStringLiteral("the runs table"), [runs] { return runs->rowCount() == 2; },
            [this, runs] {
                runs->selectRow(0);
                auto *compare = m_window->findChild<CompareView *>(QStringLiteral("compareView"));
                compare->checkRuns({runs->item(0, 0)->text().toLongLong(), runs->item(1, 0)->text().toLongLong()});
                auto *history = m_window->findChild<QTableView *>(QStringLiteral("historyTable"));
                auto *cos = m_window->findChild<QCustomPlot *>(QStringLiteral("cosPlot"));
                auto *norms = m_window->findChild<QCustomPlot *>(QStringLiteral("normPlot"));
                auto *facts = m_window->findChild<QTableView *>(QStringLiteral("factDiff"));
                auto *curves = m_window->findChild<QCustomPlot *>(QStringLiteral("compareCurves"));
                auto *top = m_window->findChild<QTableWidget *>(QStringLiteral("topTokens"));
                waitFor(QStringLiteral("the views' data"),
                        [=] {
                            auto *map = qobject_cast<QCPColorMap *>(cos->plottable(0));
                            return history->model()->rowCount() == 6 && map && map->data()->keySize() == 6 &&
                                   norms->graphCount() > 0 && facts->model()->columnCount() == 5 &&
                                   curves->graphCount() == 2 && top->rowCount() > 0;
                        },
                        [this] { showInterference(); }, 120);
            },
            30);
}

void ScreenshotTour::showInterference()
{
    // The first edit's fact through History's "What Weakened It?", then the
    // blast radius of its top culprit.
    auto *history = m_window->findChild<QTableView *>(QStringLiteral("historyTable"));
    history->selectRow(0);
    m_window->findChild<QPushButton *>(QStringLiteral("historyExplain"))->click();
    auto *culprits = m_window->findChild<QTableWidget *>(QStringLiteral("culpritTable"));
    auto *hurt = m_window->findChild<QTableWidget *>(QStringLiteral("blastRadiusTable"));
    auto *blast = m_window->findChild<QPushButton *>(QStringLiteral("culpritBlastRadius"));
    waitFor(QStringLiteral("the culprits"), [=] { return culprits->rowCount() > 0 && blast->isEnabled(); },
            [=] {
                blast->click();
                waitFor(QStringLiteral("the blast radius"), [hurt] { return hurt->rowCount() > 0; },
                        [this] { showTrace(); }, 120);
            },
            120);
}

void ScreenshotTour::showTrace()
{
    // The world's first subject (a person) on the first relation's prompt.
    auto *trace = m_window->findChild<TraceView *>(QStringLiteral("traceView"));
    const QCompleter *subjects = m_window->findChild<QLineEdit *>(QStringLiteral("traceSubject"))->completer();
    const QCompleter *prompts = m_window->findChild<QLineEdit *>(QStringLiteral("tracePrompt"))->completer();
    if (!subjects || !prompts || subjects->model()->rowCount() == 0 || prompts->model()->rowCount() == 0)
        return fail(QStringLiteral("the Trace tab has no world subjects or prompts to offer"));
    trace->trace(subjects->model()->index(0, 0).data().toString(), prompts->model()->index(0, 0).data().toString());
    waitFor(QStringLiteral("the trace"), [trace] { return !trace->shownTrace().tokens.empty(); },
            [this] { shoot(0); }, 120);
}

void ScreenshotTour::shoot(int tab)
{
    auto *tabs = m_window->findChild<QTabWidget *>(QStringLiteral("views"));
    if (tab >= tabs->count()) {
        m_done = true;
        Q_EMIT finished(0);
        return;
    }
    tabs->setCurrentIndex(tab);
    // Let layouts settle and the views' 40 ms replot timers fire first.
    QTimer::singleShot(300, this, [this, tabs, tab] {
        if (m_done)
            return;
        const QString file = QDir(m_outDir).filePath(tabs->tabText(tab).toLower() + QStringLiteral(".png"));
        if (!m_window->grab().save(file))
            return fail(QStringLiteral("cannot write %1").arg(file));
        std::printf("screenshot: %s\n", qPrintable(file));
        shoot(tab + 1);
    });
}
