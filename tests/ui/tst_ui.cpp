// The main window opens offscreen, its views exist, and the engine worker
// answers from its own thread. Every test fails on a Qt warning (a message
// handler collects them), so each view must render cleanly.
#include "compareview.h"
#include "document.h"
#include "historyview.h"
#include "hparamsdialog.h"
#include "interferenceview.h"
#include "traceview.h"
#include "mainwindow.h"
#include "retentionview.h"
#include "runsview.h"
#include "stallmonitor.h"
#include "subspaceview.h"

#include "oedit/world.h"

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QSemaphore>
#include <QSettings>
#include <QStandardPaths>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProgressBar>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QPushButton>
#include <QTableView>
#include <QTableWidget>
#include <QSignalSpy>
#include <QTabWidget>
#include <QPlainTextEdit>
#include <QStatusBar>
#include <QDialogButtonBox>
#include <QtTest>

#include <memory>

#include <sqlite3.h>

#include <qcustomplot.h>

namespace {

// A cell of a table view as it shows it.
QString cellText(QTableView *table, int row, int column)
{
    return table->model()->index(row, column).data().toString();
}

QStringList g_warnings;
QtMessageHandler g_previousHandler = nullptr;

void collectWarnings(QtMsgType type, const QMessageLogContext &context, const QString &message)
{
    // The offscreen platform plugin says this of every window it shows: a
    // fact about the test platform, not about a view.
    const bool platform = message.contains(QLatin1String("does not support propagateSizeHints"));
    if ((type == QtWarningMsg || type == QtCriticalMsg) && !platform)
        g_warnings << message;
    if (g_previousHandler)
        g_previousHandler(type, context, message);
}

// Opens the mini model in `window` with a fresh ledger in `dir`; false when it failed.
bool openMini(MainWindow &window, QSignalSpy &opened)
{
    window.show();
    window.openModel(QStringLiteral(OEDIT_MINI_MODEL_DIR));
    return QTest::qWaitFor([&opened] { return opened.count() == 1; }, 60000);
}

} // namespace

class TestUi : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        QCoreApplication::setOrganizationName(QStringLiteral("O-Edit-tests"));
        QCoreApplication::setApplicationName(QStringLiteral("tst_ui"));
        // Settings and the default ledger go to a test location, not the user's.
        QStandardPaths::setTestModeEnabled(true);
        QSettings().clear();
        g_previousHandler = qInstallMessageHandler(collectWarnings);
    }

    void init() { g_warnings.clear(); }

    void cleanup()
    {
        // No view may warn while it renders (QCustomPlot, layouts, painters).
        QVERIFY2(g_warnings.isEmpty(), qPrintable(g_warnings.join(QLatin1Char('\n'))));
    }

    // A ledger written by a newer version opens for viewing: the Runs tab
    // says it is read-only and why, and Start Run stays off with a model open.
    void readOnlyLedgerIsShownAndItsWritesAreOff()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath(QStringLiteral("newer.sqlite"));
        {
            oedit::Engine engine;
            QVERIFY(engine.openModel(OEDIT_MINI_MODEL_DIR).ok());
            QVERIFY(engine.attachLedger(db.toStdString()).ok());
            // One edit, so the ledger has a run for History to show.
            const auto world = oedit::world::loadWorld(OEDIT_MINI_MODEL_DIR);
            QVERIFY(world.ok());
            const auto &fact = world->facts.front();
            const auto &relation = world->relationOf(fact);
            oedit::EditSpec spec;
            spec.method = "rome";
            spec.subject = world->subjectName(fact);
            spec.prompt = relation.templates[0];
            spec.targetNew = relation.objects[(fact.object + 1) % relation.objects.size()];
            const auto edit = engine.applyEdit(spec);
            QVERIFY2(edit.ok(), edit.message().c_str());
        }
        sqlite3 *handle = nullptr;
        QCOMPARE(sqlite3_open(db.toUtf8().constData(), &handle), SQLITE_OK);
        QCOMPARE(sqlite3_exec(handle, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(handle);

        MainWindow window;
        window.setQuietErrors(true);
        window.show();
        QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
        QVERIFY2(openMini(window, opened), qPrintable(failed.isEmpty() ? QString() : failed.last().first().toString()));
        window.document()->setLedgerPath(db);
        auto *banner = window.findChild<QLabel *>(QStringLiteral("ledgerReadOnly"));
        QVERIFY(banner != nullptr);
        QTRY_VERIFY_WITH_TIMEOUT(!banner->isHidden(), 10000);
        QVERIFY2(banner->text().contains(QStringLiteral("newer")), qPrintable(banner->text()));
        QVERIFY(!window.findChild<QPushButton *>(QStringLiteral("startRun"))->isEnabled());
        // The run's History lists its edit but offers no rollback of it.
        auto *runs = window.findChild<QTableWidget *>(QStringLiteral("runsTable"));
        QTRY_COMPARE_WITH_TIMEOUT(runs->rowCount(), 1, 10000);
        runs->selectRow(0);
        auto *history = window.findChild<QTableView *>(QStringLiteral("historyTable"));
        QTRY_COMPARE_WITH_TIMEOUT(history->model()->rowCount(), 1, 10000);
        history->selectRow(0);
        QCOMPARE(cellText(history, 0, 3), QStringLiteral("yes"));
        QVERIFY(!window.findChild<QPushButton *>(QStringLiteral("historyRemove"))->isEnabled());
    }

    void mainWindowOpensWithItsViews()
    {
        MainWindow window;
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        auto *tabs = window.findChild<QTabWidget *>(QStringLiteral("views"));
        QVERIFY(tabs != nullptr);
        QVERIFY(window.findChild<QWidget *>(QStringLiteral("modelPanel")) != nullptr);
        QCOMPARE(tabs->tabText(0), QStringLiteral("Model"));

        // The worker runs on another thread and fills the model panel.
        QVERIFY(window.worker()->thread() != QThread::currentThread());
        // (Its answer may come before a QSignalSpy could attach, so watch the panel.)
        const auto panelMentionsTorch = [&window] {
            for (auto *label : window.findChildren<QLabel *>()) {
                if (label->text().contains(QStringLiteral("libtorch")))
                    return true;
            }
            return false;
        };
        QTRY_VERIFY_WITH_TIMEOUT(panelMentionsTorch(), 30000);
        window.close();
    }

    // The document tells its observers when the ledger changes, and the undo
    // stack's texts name the ledger: changing it clears the stack, so Undo
    // never acts on a ledger that is not shown.
    void documentLedgerNotifiesAndNamesUndo()
    {
        QTemporaryDir dir;
        Document document;
        QSignalSpy ledger(&document, &Document::ledgerChanged);
        QSignalSpy current(&document, &Document::currentRunChanged);
        QSignalSpy selection(&document, &Document::selectionChanged);
        const QString a = dir.filePath(QStringLiteral("a.sqlite"));
        document.setLedgerPath(a);
        QCOMPARE(ledger.count(), 1);
        QCOMPARE(ledger.last().first().toString(), a);
        QCOMPARE(document.ledgerPath(), a);
        QCOMPARE(QSettings().value(QStringLiteral("runs/ledger")).toString(), a); // remembered
        document.setLedgerPath(a); // the same ledger: no news
        QCOMPARE(ledger.count(), 1);

        document.setSelectedRuns({3, 5});
        QCOMPARE(selection.last().first().value<QList<qint64>>(), (QList<qint64>{3, 5}));
        QCOMPARE(document.currentRun(), 3LL); // the first selected run is current
        QCOMPARE(current.last().at(1).toLongLong(), 3LL);

        std::unique_ptr<QAction> undo(document.undoStack()->createUndoAction(nullptr, QStringLiteral("Undo")));
        document.push(new QUndoCommand(QStringLiteral("Revert Run 3 to Step 1")));
        QCOMPARE(undo->text(), QStringLiteral("Undo Revert Run 3 to Step 1 (a.sqlite)"));

        const QString b = dir.filePath(QStringLiteral("b.sqlite"));
        document.setLedgerPath(b);
        QCOMPARE(ledger.count(), 2);
        QCOMPARE(ledger.last().first().toString(), b);
        QCOMPARE(document.undoStack()->count(), 0);
        QVERIFY(!undo->isEnabled());
        QVERIFY(document.selectedRuns().isEmpty());
        QCOMPARE(document.currentRun(), -1LL);
        QCOMPARE(current.last().at(0).toString(), b);
        QCOMPARE(current.last().at(1).toLongLong(), -1LL);
    }

    // A Facts edit is a command on the document's stack: undone and redone
    // through the worker (Engine::undoLastEdit / redoEdit), by the stack and by
    // the keyboard (Ctrl+Z, Ctrl+Y), each step recorded in the ledger's run.
    void factsEditUndoRedoThroughTheStack()
    {
        QTemporaryDir dir;
        MainWindow window;
        window.setQuietErrors(true);
        Document *document = window.document();
        QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
        QSignalSpy edited(window.worker(), &EngineWorker::edited);
        QSignalSpy undone(window.worker(), &EngineWorker::editUndone);
        QSignalSpy redone(window.worker(), &EngineWorker::editRedone);
        QSignalSpy recorded(document, &Document::sessionRecorded);
        const auto lastFailure = [&failed] { return failed.isEmpty() ? QString() : failed.last().first().toString(); };
        const QString db = dir.filePath(QStringLiteral("facts-undo.sqlite"));
        document->setLedgerPath(db);
        QVERIFY2(openMini(window, opened), qPrintable(lastFailure()));

        const auto world = oedit::world::loadWorld(OEDIT_MINI_MODEL_DIR);
        QVERIFY(world.ok());
        const auto &fact = world->facts.front();
        const auto &relation = world->relationOf(fact);
        const QString target =
            QString::fromStdString(relation.objects[(fact.object + 1) % relation.objects.size()]);
        window.findChild<QLineEdit *>(QStringLiteral("editSubject"))->setText(QString::fromStdString(world->subjectName(fact)));
        window.findChild<QComboBox *>(QStringLiteral("editPrompt"))->setCurrentText(QString::fromStdString(relation.templates[0]));
        window.findChild<QLineEdit *>(QStringLiteral("editTarget"))->setText(target);
        window.findChild<QComboBox *>(QStringLiteral("editMethod"))->setCurrentText(QStringLiteral("rome"));
        auto *apply = window.findChild<QPushButton *>(QStringLiteral("applyEdit"));
        QTRY_VERIFY_WITH_TIMEOUT(apply->isEnabled(), 5000);
        QTest::mouseClick(apply, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(edited.count() == 1, qPrintable(lastFailure()), 120000);
        QTRY_COMPARE_WITH_TIMEOUT(recorded.count(), 1, 30000);
        const qint64 run = recorded.last().at(1).value<oedit::runs::RunSummary>().runId;
        QCOMPARE(document->sessionRun(), run);
        QCOMPARE(document->currentRun(), run);

        // One command, whose Undo text names the fact and the ledger.
        QUndoStack *stack = document->undoStack();
        QCOMPARE(stack->count(), 1);
        auto *undoAction = window.findChild<QAction *>(QStringLiteral("undoAction"));
        QVERIFY2(undoAction->text().contains(QStringLiteral("→ %1").arg(target)), qPrintable(undoAction->text()));
        QVERIFY2(undoAction->text().endsWith(QStringLiteral("(facts-undo.sqlite)")), qPrintable(undoAction->text()));

        stack->undo();
        QTRY_VERIFY2_WITH_TIMEOUT(undone.count() == 1, qPrintable(lastFailure()), 30000);
        QCOMPARE(undone.last().first().toInt(), 0);
        QTRY_COMPARE_WITH_TIMEOUT(recorded.count(), 2, 30000);
        QCOMPARE(recorded.last().at(1).value<oedit::runs::RunSummary>().activeEdits, 0LL);
        QVERIFY(!window.findChild<QPushButton *>(QStringLiteral("undoEdit"))->isEnabled());

        stack->redo();
        QTRY_VERIFY2_WITH_TIMEOUT(redone.count() == 1, qPrintable(lastFailure()), 30000);
        QCOMPARE(redone.last().first().toInt(), 1);
        QTRY_COMPARE_WITH_TIMEOUT(recorded.count(), 3, 30000);
        const auto back = recorded.last().at(1).value<oedit::runs::RunSummary>();
        QCOMPARE(back.runId, run);
        QCOMPARE(back.activeEdits, 1LL);
        QCOMPARE(edited.count(), 1); // put back, not made again

        // The keyboard: Ctrl+Z undoes, Ctrl+Y redoes.
        window.activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(&window));
        QTest::keyClick(&window, Qt::Key_Z, Qt::ControlModifier);
        QTRY_VERIFY2_WITH_TIMEOUT(undone.count() == 2, qPrintable(lastFailure()), 30000);
        QTest::keyClick(&window, Qt::Key_Y, Qt::ControlModifier);
        QTRY_VERIFY2_WITH_TIMEOUT(redone.count() == 2, qPrintable(lastFailure()), 30000);
        QCOMPARE(redone.last().first().toInt(), 1);

        // Another ledger: the stack empties, so Undo cannot reach the first one.
        document->setLedgerPath(dir.filePath(QStringLiteral("other.sqlite")));
        QCOMPARE(stack->count(), 0);
        QVERIFY(!undoAction->isEnabled());
        QCOMPARE(window.findChild<RunsView *>(QStringLiteral("runsView"))->ledgerPath(),
                 dir.filePath(QStringLiteral("other.sqlite")));
        QCOMPARE(document->sessionRun(), -1LL); // the session still records in the first ledger
        QVERIFY2(failed.isEmpty(), qPrintable(lastFailure()));
        window.close();
    }

    void opensAModelAndPredicts()
    {
        MainWindow window;
        window.setQuietErrors(true);
        QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
        QSignalSpy predicted(window.worker(), &EngineWorker::predicted);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
        QTemporaryDir dir;
        window.findChild<RunsView *>(QStringLiteral("runsView"))->setLedgerPath(dir.filePath(QStringLiteral("facts.sqlite")));
        window.show();
        window.openModel(QStringLiteral(OEDIT_MINI_MODEL_DIR));
        // Spies count answers that arrive before wait() would start, so poll counts.
        QTRY_VERIFY2_WITH_TIMEOUT(opened.count() == 1,
                                  qPrintable(failed.isEmpty() ? QString() : failed.first().first().toString()), 60000);
        QTRY_VERIFY_WITH_TIMEOUT(window.findChild<QPushButton *>(QStringLiteral("predictButton"))->isEnabled(), 5000);

        auto *prompt = window.findChild<QLineEdit *>(QStringLiteral("promptEdit"));
        QVERIFY(prompt != nullptr);
        QTest::keyClicks(prompt, QStringLiteral("The mother tongue of"));
        QTest::keyClick(prompt, Qt::Key_Return);
        QTRY_COMPARE_WITH_TIMEOUT(predicted.count(), 1, 30000);
        auto *table = window.findChild<QTableWidget *>(QStringLiteral("topTokens"));
        QTRY_COMPARE_WITH_TIMEOUT(table->rowCount(), 10, 5000);
        double total = 0;
        for (int row = 0; row < table->rowCount(); ++row)
            total += table->item(row, 1)->text().toDouble();
        QVERIFY(total > 0 && total <= 1.0001);
        QVERIFY(!window.findChild<QLabel *>(QStringLiteral("continuation"))->text().isEmpty());

        // Edit a fact of the mini world through the edit panel, then undo it.
        const auto world = oedit::world::loadWorld(OEDIT_MINI_MODEL_DIR);
        QVERIFY(world.ok());
        const auto &fact = world->facts.front();
        const auto &relation = world->relationOf(fact);
        const std::string newTarget = relation.objects[(fact.object + 1) % relation.objects.size()];
        QSignalSpy edited(window.worker(), &EngineWorker::edited);
        QSignalSpy undone(window.worker(), &EngineWorker::editUndone);
        // The fact's own prompt predicted first: the panel must follow the edit and its undo.
        prompt->clear();
        QTest::keyClicks(prompt, QString::fromStdString(oedit::world::factPrompt(world.value(), fact)));
        QTest::keyClick(prompt, Qt::Key_Return);
        QTRY_COMPARE_WITH_TIMEOUT(predicted.count(), 2, 30000);
        const auto shown = [table] {
            return table->rowCount() ? table->item(0, 0)->text() + table->item(0, 1)->text() : QString();
        };
        QTRY_VERIFY_WITH_TIMEOUT(!shown().isEmpty(), 5000);
        const QString beforeEdit = shown();
        window.findChild<QLineEdit *>(QStringLiteral("editSubject"))->setText(QString::fromStdString(world->subjectName(fact)));
        window.findChild<QComboBox *>(QStringLiteral("editPrompt"))->setCurrentText(QString::fromStdString(relation.templates[0]));
        window.findChild<QLineEdit *>(QStringLiteral("editTarget"))->setText(QString::fromStdString(newTarget));
        window.findChild<QComboBox *>(QStringLiteral("editMethod"))->setCurrentText(QStringLiteral("rome"));
        auto *apply = window.findChild<QPushButton *>(QStringLiteral("applyEdit"));
        QVERIFY(apply->isEnabled());
        QTest::mouseClick(apply, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(edited.count() == 1,
                                  qPrintable(failed.isEmpty() ? QString() : failed.last().first().toString()), 120000);
        const auto outcome = edited.first().first().value<oedit::EditOutcome>();
        QVERIFY(outcome.succeeded());
        auto *probes = window.findChild<QTableWidget *>(QStringLiteral("editProbes"));
        QTRY_VERIFY_WITH_TIMEOUT(probes->rowCount() >= 1, 5000);
        QCOMPARE(probes->item(0, 0)->text(), QStringLiteral("prompt"));
        // The top tokens were predicted again on the edited model, without a click.
        QTRY_COMPARE_WITH_TIMEOUT(predicted.count(), 3, 30000);
        QTRY_VERIFY_WITH_TIMEOUT(table->isEnabled() && shown() != beforeEdit, 5000);
        auto *undo = window.findChild<QPushButton *>(QStringLiteral("undoEdit"));
        QTRY_VERIFY_WITH_TIMEOUT(undo->isEnabled(), 5000);
        QTest::mouseClick(undo, Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(undone.count(), 1, 30000);
        QCOMPARE(undone.first().first().toInt(), 0);
        // And again after the undo: the unedited model's prediction, exactly.
        QTRY_COMPARE_WITH_TIMEOUT(predicted.count(), 4, 30000);
        QTRY_COMPARE_WITH_TIMEOUT(shown(), beforeEdit, 5000);
        QTRY_VERIFY_WITH_TIMEOUT(!undo->isEnabled(), 5000);

        // The same fact edited twice (same key): the panel warns when the new
        // update overlaps an earlier one, and only then.
        auto *warning = window.findChild<QLabel *>(QStringLiteral("editWarning"));
        for (int k = 1; k <= 2; ++k) {
            window.findChild<QLineEdit *>(QStringLiteral("editTarget"))
                ->setText(QString::fromStdString(relation.objects[(fact.object + k) % relation.objects.size()]));
            QTRY_VERIFY_WITH_TIMEOUT(apply->isEnabled(), 5000);
            QTest::mouseClick(apply, Qt::LeftButton);
            QTRY_VERIFY2_WITH_TIMEOUT(edited.count() == 1 + k,
                                      qPrintable(failed.isEmpty() ? QString() : failed.last().first().toString()),
                                      120000);
        }
        const auto second = edited.last().first().value<oedit::EditOutcome>();
        qInfo("second edit of the same fact: |cos| with the first %.3f, of the keys %.3f",
              second.diagnostics.maxAbsCosWithEarlier, second.diagnostics.maxKeyCosWithEarlier);
        QVERIFY(second.diagnostics.maxKeyCosWithEarlier > 0.99); // the same prompt: the same key
        // The spy counts on the worker's thread as the signal is sent; the panel
        // shows the outcome once the GUI thread has run the queued call.
        QTRY_VERIFY2_WITH_TIMEOUT(warning->text().contains(QStringLiteral("key is close to an earlier edit")),
                                  qPrintable(warning->text()), 5000);

        // A word the model never read is refused (quietly here; a dialog offers
        // "Edit Anyway" otherwise) and nothing is edited.
        QSignalSpy refused(window.worker(), &EngineWorker::editRefusedUnfamiliarTarget);
        window.findChild<QLineEdit *>(QStringLiteral("editTarget"))->setText(QStringLiteral("Klingonese"));
        QTRY_VERIFY_WITH_TIMEOUT(apply->isEnabled(), 5000);
        QTest::mouseClick(apply, Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(refused.count(), 1, 30000);
        QCOMPARE(edited.count(), 3);
        auto *diagnostics = window.findChild<QLabel *>(QStringLiteral("editDiagnostics"));
        QTRY_VERIFY2_WITH_TIMEOUT(diagnostics->text().contains(QStringLiteral("Edit not made")) &&
                                      diagnostics->text().contains(QStringLiteral("Klingonese")),
                                  qPrintable(diagnostics->text()), 5000);

        // "Where Does It Live?" traces the entered fact in the Trace tab.
        QSignalSpy traced(window.worker(), &EngineWorker::promptTraced);
        auto *traceFact = window.findChild<QPushButton *>(QStringLiteral("traceFact"));
        QTRY_VERIFY_WITH_TIMEOUT(traceFact->isEnabled(), 5000);
        QTest::mouseClick(traceFact, Qt::LeftButton);
        auto *tabs = window.findChild<QTabWidget *>(QStringLiteral("views"));
        auto *traceView = window.findChild<TraceView *>(QStringLiteral("traceView"));
        QCOMPARE(tabs->currentWidget(), traceView);
        QTRY_VERIFY2_WITH_TIMEOUT(traced.count() == 1,
                                  qPrintable(failed.isEmpty() ? QString() : failed.last().first().toString()), 60000);
        QTRY_VERIFY_WITH_TIMEOUT(!traceView->shownTrace().tokens.empty(), 5000);
        const auto &shownTrace = traceView->shownTrace();
        QCOMPARE(shownTrace.mlp.size(), shownTrace.tokens.size());
        QCOMPARE(shownTrace.attention.size(), shownTrace.tokens.size());
        QCOMPARE(static_cast<int>(shownTrace.hidden.front().size()), shownTrace.layers);
        QVERIFY(shownTrace.subjectLast >= shownTrace.subjectFirst);
        auto *traceSummary = window.findChild<QLabel *>(QStringLiteral("traceSummary"));
        QVERIFY2(traceSummary->text().contains(QStringLiteral("layer")), qPrintable(traceSummary->text()));
        // Undo changes the model: the trace shown is marked stale.
        QTRY_VERIFY_WITH_TIMEOUT(undo->isEnabled(), 5000);
        QTest::mouseClick(undo, Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(traceSummary->text().contains(QStringLiteral("changed since")), 30000);

        // A folder that is not a model gives a message, not a crash, and keeps the model.
        window.openModel(QStringLiteral("/no/such/folder"));
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 30000);
        QVERIFY(failed.last().first().toString().contains(QStringLiteral("/no/such/folder")));
        QVERIFY(window.findChild<QPushButton *>(QStringLiteral("predictButton"))->isEnabled());
        window.close();
    }

    // A 4-edit run with a checkpoint every 2 edits started from the Runs tab
    // into a fresh ledger; its curves and retention matrix; revert to step 2
    // through the undo stack and undo that.
    void runsTabRunsRetentionAndRollback()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        MainWindow window;
        window.setQuietErrors(true);
        QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
        QSignalSpy finished(window.worker(), &EngineWorker::runFinished);
        QSignalSpy reports(window.worker(), &EngineWorker::reportReady);
        QSignalSpy rolledBack(window.worker(), &EngineWorker::rolledBack);
        window.show();
        window.openModel(QStringLiteral(OEDIT_MINI_MODEL_DIR));
        const auto lastFailure = [&failed] { return failed.isEmpty() ? QString() : failed.last().first().toString(); };
        QTRY_VERIFY2_WITH_TIMEOUT(opened.count() == 1, qPrintable(lastFailure()), 60000);

        auto *runs = window.findChild<RunsView *>(QStringLiteral("runsView"));
        QVERIFY(runs != nullptr);
        auto *ledger = window.findChild<QLineEdit *>(QStringLiteral("ledgerPath"));
        ledger->setText(dir.filePath(QStringLiteral("runs.sqlite")));
        QMetaObject::invokeMethod(ledger, "editingFinished");
        QCOMPARE(runs->ledgerPath(), dir.filePath(QStringLiteral("runs.sqlite")));
        window.findChild<QComboBox *>(QStringLiteral("runDataset"))->setCurrentText(QStringLiteral("world"));
        window.findChild<QComboBox *>(QStringLiteral("runMethod"))->setCurrentText(QStringLiteral("rome"));
        window.findChild<QSpinBox *>(QStringLiteral("runEdits"))->setValue(4);
        window.findChild<QSpinBox *>(QStringLiteral("runEvery"))->setValue(2);
        window.findChild<QSpinBox *>(QStringLiteral("runSeed"))->setValue(3);
        window.findChild<QLineEdit *>(QStringLiteral("runLabel"))->setText(QStringLiteral("baseline"));
        auto *start = window.findChild<QPushButton *>(QStringLiteral("startRun"));
        QTRY_VERIFY_WITH_TIMEOUT(start->isEnabled(), 5000);
        // How long the event loop is kept waiting while the run goes (a figure, not a check).
        StallMonitor stalls;
        stalls.start();
        QTest::mouseClick(start, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(finished.count() == 1, qPrintable(lastFailure()), 120000);
        stalls.stop();
        qInfo("longest GUI stall while a 4-edit run went: %.1f ms over %lld ticks of 10 ms (%lld over 100 ms)",
              stalls.longestStallMs(), stalls.ticks(), stalls.stallsOver100Ms());
        QVERIFY(stalls.ticks() > 0); // the event loop ran during the run
        const auto summary = finished.first().at(1).value<oedit::runs::RunSummary>();
        QCOMPARE(summary.status, std::string("finished"));
        QCOMPARE(summary.steps, 4LL);

        // The table lists the run as finished.
        auto *table = window.findChild<QTableWidget *>(QStringLiteral("runsTable"));
        QTRY_COMPARE_WITH_TIMEOUT(table->rowCount(), 1, 10000);
        QCOMPARE(table->item(0, 0)->text().toLongLong(), summary.runId);
        QCOMPARE(table->item(0, 3)->text(), QStringLiteral("finished"));
        QCOMPARE(summary.label, std::string("baseline"));
        QCOMPARE(table->item(0, 7)->text(), QStringLiteral("baseline"));

        // Selecting it draws its curves and its retention matrix.
        table->selectRow(0);
        QTRY_VERIFY_WITH_TIMEOUT(!reports.isEmpty(), 10000);
        const auto report = reports.last().at(1).value<oedit::runs::RunReport>();
        QVERIFY(report.checkpoints.size() >= 2);
        auto *curves = window.findChild<QCustomPlot *>(QStringLiteral("curvePlot"));
        QTRY_VERIFY_WITH_TIMEOUT(curves->graphCount() > 0, 5000);
        for (int i = 0; i < curves->graphCount(); ++i)
            QCOMPARE(curves->graph(i)->dataCount(), static_cast<int>(report.checkpoints.size()));
        QVERIFY(window.findChild<QListWidget *>(QStringLiteral("metricList"))->count() > 0);
        auto *heat = window.findChild<QCustomPlot *>(QStringLiteral("retentionPlot"));
        auto *map = qobject_cast<QCPColorMap *>(heat->plottable(0));
        QVERIFY(map != nullptr);
        QTRY_COMPARE_WITH_TIMEOUT(map->data()->keySize(), static_cast<int>(report.checkpoints.size()), 5000);
        QCOMPARE(map->data()->valueSize(), 4);
        QCOMPARE(map->data()->cell(static_cast<int>(report.checkpoints.size()) - 1, 0),
                 report.checkpoints.back().editSuccess.front().second);

        // The weight-norm growth of the edited layers, with its warning line.
        auto *norms = window.findChild<QCustomPlot *>(QStringLiteral("normPlot"));
        QTRY_VERIFY_WITH_TIMEOUT(norms->graphCount() > 0, 10000);
        QCOMPARE(norms->graph(0)->dataCount(), 5); // step 0 and 4 edits
        QVERIFY(norms->graph(0)->name().contains(QStringLiteral("rome #")));
        QVERIFY2(norms->graph(0)->name().startsWith(QStringLiteral("baseline (rome #")), qPrintable(norms->graph(0)->name()));
        QVERIFY(norms->itemCount() >= 1);
        // A log scale on request; a click on a point selects its edit in History.
        auto *tabsForPlots = window.findChild<QTabWidget *>(QStringLiteral("views"));
        tabsForPlots->setCurrentWidget(window.findChild<RetentionView *>(QStringLiteral("retentionView")));
        window.findChild<QCheckBox *>(QStringLiteral("normLogScale"))->setChecked(true);
        QCOMPARE(norms->yAxis->scaleType(), QCPAxis::stLogarithmic);
        window.findChild<QCheckBox *>(QStringLiteral("normLogScale"))->setChecked(false);
        QCOMPARE(norms->yAxis->scaleType(), QCPAxis::stLinear);
        QTest::qWait(100); // the tab laid out before pixels are computed
        norms->replot();
        const auto point = norms->graph(0)->data()->at(3); // step 3
        QCOMPARE(point->key, 3.0);
        const QPoint at(qRound(norms->xAxis->coordToPixel(point->key)), qRound(norms->yAxis->coordToPixel(point->value)));
        QTest::mouseClick(norms, Qt::LeftButton, Qt::NoModifier, at);
        QTRY_COMPARE_WITH_TIMEOUT(tabsForPlots->currentWidget(), window.findChild<QWidget *>(QStringLiteral("historyView")),
                                  5000);
        auto *historyForPlots = window.findChild<QTableView *>(QStringLiteral("historyTable"));
        QTRY_VERIFY_WITH_TIMEOUT(historyForPlots->selectionModel()->hasSelection(), 5000);
        QCOMPARE(historyForPlots->selectionModel()->selectedRows().first().row(), 2); // steps 1, 2, 3
        // History sorts by a clicked column; the selection follows its edit.
        auto *header = historyForPlots->horizontalHeader();
        const int normColumn = 5; // "Update ‖ΔW‖"
        QVERIFY(historyForPlots->model()->headerData(normColumn, Qt::Horizontal).toString().contains(QStringLiteral("Update")));
        const auto columnValues = [historyForPlots](int column) {
            QList<double> values;
            for (int row = 0; row < historyForPlots->model()->rowCount(); ++row)
                values << historyForPlots->model()->index(row, column).data().toString().remove(QStringLiteral("⚠ ")).toDouble();
            return values;
        };
        header->setSortIndicator(normColumn, Qt::DescendingOrder);
        const auto normValues = columnValues(normColumn);
        QVERIFY2(std::is_sorted(normValues.rbegin(), normValues.rend()), qPrintable(QString::number(normValues.size())));
        QCOMPARE(historyForPlots->model()->index(historyForPlots->selectionModel()->selectedRows().first().row(), 0)
                     .data().toString(), QStringLiteral("3"));
        header->setSortIndicator(0, Qt::AscendingOrder);
        QCOMPARE(columnValues(0), (QList<double>{1, 2, 3, 4}));

        // Exports: the run's metrics as CSV and its weights as a model folder, through the worker.
        QSignalSpy exported(window.worker(), &EngineWorker::exported);
        const QString csv = dir.filePath(QStringLiteral("metrics.csv"));
        window.exportRunCsv(csv);
        QTRY_COMPARE_WITH_TIMEOUT(exported.count(), 1, 10000);
        QFile csvFile(csv);
        QVERIFY(csvFile.open(QIODevice::ReadOnly));
        const QList<QByteArray> lines = csvFile.readAll().split('\n');
        QVERIFY(lines.first().startsWith("step,"));
        QCOMPARE(lines.size() - 1, static_cast<int>(report.checkpoints.size()) + 1); // header, rows, final newline
        const QString modelOut = dir.filePath(QStringLiteral("edited-model"));
        window.exportRunModel(modelOut);
        QTRY_VERIFY2_WITH_TIMEOUT(exported.count() == 2, qPrintable(lastFailure()), 60000);
        QVERIFY(QFileInfo::exists(modelOut + QStringLiteral("/config.json")));
        QVERIFY(QFileInfo::exists(modelOut + QStringLiteral("/model.safetensors")));
        auto *tabs = window.findChild<QTabWidget *>(QStringLiteral("views"));
        tabs->setCurrentWidget(runs);
        const QString tableCsv = dir.filePath(QStringLiteral("runs.csv"));
        QVERIFY(window.exportCurrentTable(tableCsv));
        QFile tableFile(tableCsv);
        QVERIFY(tableFile.open(QIODevice::ReadOnly));
        QVERIFY(tableFile.readAll().startsWith("Run,Method,"));

        // OEDIT_UI_SCREENSHOTS=DIR saves the Runs and Retention tabs as pictures to review.
        const QString shots = qEnvironmentVariable("OEDIT_UI_SCREENSHOTS");
        if (!shots.isEmpty()) {
            for (int i = 0; i < tabs->count(); ++i) {
                tabs->setCurrentIndex(i);
                QTest::qWait(100); // let queued replots land
                window.grab().save(QDir(shots).filePath(tabs->tabText(i).toLower() + QStringLiteral(".png")));
            }
        }

        // The plot exports as PNG, SVG and PDF.
        auto *retention = window.findChild<RetentionView *>(QStringLiteral("retentionView"));
        for (const auto *suffix : {"png", "svg", "pdf"}) {
            const QString file = dir.filePath(QStringLiteral("plot.") + QLatin1String(suffix));
            QVERIFY2(retention->exportPlot(file), suffix);
            QVERIFY(QFileInfo(file).size() > 0);
        }

        // Revert to step 2 through the undo stack, then undo it: the ledger follows.
        QUndoStack *stack = window.document()->undoStack();
        runs->revertSelectedRun(2);
        QCOMPARE(stack->count(), 1);
        QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 1, qPrintable(lastFailure()), 10000);
        const auto revert = rolledBack.first().at(1).value<oedit::runs::RollbackInfo>();
        QCOMPARE(revert.kind, std::string("revert"));
        QCOMPARE(revert.deactivated.size(), size_t(2));
        QTRY_COMPARE_WITH_TIMEOUT(table->item(0, 5)->text(), QStringLiteral("2"), 10000);
        stack->undo();
        QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 2, qPrintable(lastFailure()), 10000);
        QCOMPARE(rolledBack.last().at(1).value<oedit::runs::RollbackInfo>().kind, std::string("redo"));
        QTRY_COMPARE_WITH_TIMEOUT(table->item(0, 5)->text(), QStringLiteral("4"), 10000);
        // Redo reverts again, with a new ledger event.
        stack->redo();
        QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 3, qPrintable(lastFailure()), 10000);
        QTRY_COMPARE_WITH_TIMEOUT(table->item(0, 5)->text(), QStringLiteral("2"), 10000);

        // "Undo Last Rollback" finds that revert in the ledger and undoes it, as a command too.
        auto *undoLast = window.findChild<QPushButton *>(QStringLiteral("undoRollback"));
        QTRY_VERIFY_WITH_TIMEOUT(undoLast->isEnabled(), 5000);
        QTest::mouseClick(undoLast, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 4, qPrintable(lastFailure()), 10000);
        QCOMPARE(stack->count(), 2);
        QTRY_COMPARE_WITH_TIMEOUT(table->item(0, 5)->text(), QStringLiteral("4"), 10000);
        stack->undo(); // takes the edits after step 2 out again
        QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 5, qPrintable(lastFailure()), 10000);
        QTRY_COMPARE_WITH_TIMEOUT(table->item(0, 5)->text(), QStringLiteral("2"), 10000);
        QVERIFY2(failed.isEmpty(), qPrintable(lastFailure()));
        window.close();
    }

    // Two runs in one ledger, compared; a third cancelled midway stays in the table.
    // The Interference tab on a 20-edit ROME run of the mini model: History's
    // "What Weakened It?" ranks the culprits of the first edit's fact, "Its
    // Blast Radius" lists what the top one hurt, and removing it is one
    // undoable rollback of the ledger.
    // The hyperparameters dialog shows the set a method gets for the model,
    // checks overrides as they are typed, and the Facts edit uses them.
    void hyperparametersAreShownCheckedAndUsed()
    {
        const QString model = QStringLiteral(OEDIT_MINI_MODEL_DIR);
        HparamsDialog dialog(QStringLiteral("rome"), model, QString());
        auto *resolved = dialog.findChild<QPlainTextEdit *>(QStringLiteral("hparamsResolved"));
        auto *overrides = dialog.findChild<QPlainTextEdit *>(QStringLiteral("hparamsOverrides"));
        auto *status = dialog.findChild<QLabel *>(QStringLiteral("hparamsStatus"));
        auto *about = dialog.findChild<QLabel *>(QStringLiteral("hparamsAbout"));
        QVERIFY(resolved->toPlainText().contains(QStringLiteral("\"layer\": 1")));
        QVERIFY(about->text().contains(QStringLiteral("ROME")));
        auto *ok = dialog.findChild<QDialogButtonBox *>()->button(QDialogButtonBox::Ok);
        QVERIFY(ok->isEnabled());
        overrides->setPlainText(QStringLiteral("{\"layer\": 99}"));
        QVERIFY2(status->text().contains(QStringLiteral("out of range")), qPrintable(status->text()));
        QVERIFY(!ok->isEnabled());
        overrides->setPlainText(QStringLiteral("{\"layerz\": 1}"));
        QVERIFY2(status->text().contains(QStringLiteral("unknown hyperparameter 'layerz'")), qPrintable(status->text()));
        overrides->setPlainText(QStringLiteral("{\"layer\": 0"));
        QVERIFY2(status->text().contains(QStringLiteral("not valid JSON")), qPrintable(status->text()));
        overrides->setPlainText(QStringLiteral("{\"layer\": 0, \"clamp_norm_factor\": 4.0}"));
        QVERIFY(ok->isEnabled());
        QVERIFY(resolved->toPlainText().contains(QStringLiteral("\"layer\": 0")));
        QCOMPARE(dialog.overrides(), QStringLiteral("{\"layer\": 0, \"clamp_norm_factor\": 4.0}"));

        // The Facts edit panel's button keeps them per method and the edit uses them.
        MainWindow window;
        window.setQuietErrors(true);
        QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
        QSignalSpy edited(window.worker(), &EngineWorker::edited);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
        QTemporaryDir dir;
        window.findChild<RunsView *>(QStringLiteral("runsView"))->setLedgerPath(dir.filePath(QStringLiteral("h.sqlite")));
        window.show();
        window.openModel(model);
        QTRY_VERIFY_WITH_TIMEOUT(opened.count() == 1, 60000);
        auto *button = window.findChild<HparamsButton *>(QStringLiteral("editHparams"));
        QTRY_VERIFY(button->isEnabled());
        QVERIFY(window.findChild<HparamsButton *>(QStringLiteral("runHparams"))->isEnabled());
        window.findChild<QComboBox *>(QStringLiteral("editMethod"))->setCurrentText(QStringLiteral("rome"));
        button->setOverrides(QStringLiteral("rome"), QStringLiteral("{\"layer\": 0}"));
        QVERIFY2(button->text().contains(QStringLiteral("1 changed")), qPrintable(button->text()));
        window.findChild<QComboBox *>(QStringLiteral("editMethod"))->setCurrentText(QStringLiteral("memit"));
        QCOMPARE(button->text(), QStringLiteral("Hyperparameters…"));
        window.findChild<QComboBox *>(QStringLiteral("editMethod"))->setCurrentText(QStringLiteral("rome"));
        const auto world = oedit::world::loadWorld(OEDIT_MINI_MODEL_DIR);
        const auto &fact = world->facts.front();
        const auto &relation = world->relationOf(fact);
        window.findChild<QLineEdit *>(QStringLiteral("editSubject"))->setText(QString::fromStdString(world->subjectName(fact)));
        window.findChild<QComboBox *>(QStringLiteral("editPrompt"))->setCurrentText(QString::fromStdString(relation.templates[0]));
        window.findChild<QLineEdit *>(QStringLiteral("editTarget"))
            ->setText(QString::fromStdString(relation.objects[(fact.object + 1) % relation.objects.size()]));
        auto *apply = window.findChild<QPushButton *>(QStringLiteral("applyEdit"));
        QTRY_VERIFY(apply->isEnabled());
        QTest::mouseClick(apply, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(edited.count() == 1,
                                  qPrintable(failed.isEmpty() ? QString() : failed.last().first().toString()), 120000);
        const auto outcome = edited.first().first().value<oedit::EditOutcome>();
        QCOMPARE(outcome.layers.size(), size_t(1));
        QCOMPARE(outcome.layers.front().layer, 0);
        QVERIFY(outcome.hparamsJson.find("\"layer\":0") != std::string::npos);
        window.close();
    }

    void interferenceTabFindsCulpritsAndRemovesOne()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString db = dir.filePath(QStringLiteral("runs.sqlite"));
        {
            oedit::Engine engine;
            oedit::runs::RunRequest request;
            request.modelDir = OEDIT_MINI_MODEL_DIR;
            request.method = "rome";
            request.edits = 20;
            request.evalEvery = 20;
            request.seed = 3;
            const auto run = engine.startRun(db.toStdString(), request);
            QVERIFY2(run, run.message().c_str());
        }
        MainWindow window;
        window.setQuietErrors(true);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
        QSignalSpy explained(window.worker(), &EngineWorker::factExplained);
        QSignalSpy radius(window.worker(), &EngineWorker::blastRadiusReady);
        QSignalSpy rolledBack(window.worker(), &EngineWorker::rolledBack);
        const auto lastFailure = [&failed] { return failed.isEmpty() ? QString() : failed.last().first().toString(); };
        window.show();
        auto *ledger = window.findChild<QLineEdit *>(QStringLiteral("ledgerPath"));
        ledger->setText(db);
        QMetaObject::invokeMethod(ledger, "editingFinished");
        auto *runsTable = window.findChild<QTableWidget *>(QStringLiteral("runsTable"));
        QTRY_COMPARE_WITH_TIMEOUT(runsTable->rowCount(), 1, 10000);
        runsTable->selectRow(0);
        auto *history = window.findChild<QTableView *>(QStringLiteral("historyTable"));
        QTRY_COMPARE_WITH_TIMEOUT(history->model()->rowCount(), 20, 10000);
        auto *tabs = window.findChild<QTabWidget *>(QStringLiteral("views"));
        tabs->setCurrentWidget(window.findChild<HistoryView *>(QStringLiteral("historyView")));
        history->selectRow(0);
        auto *explain = window.findChild<QPushButton *>(QStringLiteral("historyExplain"));
        QTRY_VERIFY_WITH_TIMEOUT(explain->isEnabled(), 5000);
        QTest::mouseClick(explain, Qt::LeftButton);
        QCOMPARE(tabs->currentWidget(), window.findChild<InterferenceView *>(QStringLiteral("interferenceView")));
        QTRY_VERIFY2_WITH_TIMEOUT(explained.count() == 1, qPrintable(lastFailure()), 120000);
        auto *culprits = window.findChild<QTableWidget *>(QStringLiteral("culpritTable"));
        QTRY_COMPARE_WITH_TIMEOUT(culprits->rowCount(), 10, 5000);
        for (int row = 1; row < culprits->rowCount(); ++row)
            QVERIFY(culprits->item(row - 1, 4)->text().toDouble() <= culprits->item(row, 4)->text().toDouble());
        auto *summary = window.findChild<QLabel *>(QStringLiteral("culpritSummary"));
        QVERIFY(summary->text().contains(QStringLiteral("after 20 edits")));

        auto *blast = window.findChild<QPushButton *>(QStringLiteral("culpritBlastRadius"));
        QTRY_VERIFY_WITH_TIMEOUT(blast->isEnabled(), 5000);
        QTest::mouseClick(blast, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(radius.count() == 1, qPrintable(lastFailure()), 120000);
        QTRY_VERIFY_WITH_TIMEOUT(window.findChild<QTableWidget *>(QStringLiteral("blastRadiusTable"))->rowCount() > 0,
                                 5000);

        // Remove the top culprit, then undo: the ledger follows both.
        culprits->selectRow(0);
        const qint64 edit = culprits->item(0, 1)->text().toLongLong();
        auto *remove = window.findChild<QPushButton *>(QStringLiteral("removeCulprit"));
        QTRY_VERIFY_WITH_TIMEOUT(remove->isEnabled(), 5000);
        QTest::mouseClick(remove, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 1, qPrintable(lastFailure()), 30000);
        const auto active = [&] {
            const auto edits = oedit::runs::listEdits(db.toStdString(), 1);
            for (const auto &e : edits.value())
                if (e.editId == edit)
                    return e.active;
            return true;
        };
        QVERIFY(!active());
        QTRY_VERIFY_WITH_TIMEOUT(summary->text().startsWith(QStringLiteral("(The run changed")), 5000);
        window.document()->undoStack()->undo();
        QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 2, qPrintable(lastFailure()), 30000);
        QVERIFY(active());
    }

    void compareTwoRunsAndCancelOne()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        MainWindow window;
        window.setQuietErrors(true);
        QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
        QSignalSpy finished(window.worker(), &EngineWorker::runFinished);
        QSignalSpy progress(window.worker(), &EngineWorker::progress);
        window.show();
        window.openModel(QStringLiteral(OEDIT_MINI_MODEL_DIR));
        const auto lastFailure = [&failed] { return failed.isEmpty() ? QString() : failed.last().first().toString(); };
        QTRY_VERIFY2_WITH_TIMEOUT(opened.count() == 1, qPrintable(lastFailure()), 60000);
        auto *runs = window.findChild<RunsView *>(QStringLiteral("runsView"));
        runs->setLedgerPath(dir.filePath(QStringLiteral("compare.sqlite")));
        auto *start = window.findChild<QPushButton *>(QStringLiteral("startRun"));
        auto *method = window.findChild<QComboBox *>(QStringLiteral("runMethod"));
        window.findChild<QSpinBox *>(QStringLiteral("runEvery"))->setValue(1);
        window.findChild<QSpinBox *>(QStringLiteral("runEdits"))->setValue(2);
        for (const auto *name : {"rome", "memit"}) {
            method->setCurrentText(QLatin1String(name));
            QTRY_VERIFY_WITH_TIMEOUT(start->isEnabled(), 30000);
            const auto before = finished.count();
            QTest::mouseClick(start, Qt::LeftButton);
            QTRY_VERIFY2_WITH_TIMEOUT(finished.count() == before + 1, qPrintable(lastFailure()), 60000);
        }
        auto *table = window.findChild<QTableWidget *>(QStringLiteral("runsTable"));
        QTRY_COMPARE_WITH_TIMEOUT(table->rowCount(), 2, 10000);
        table->selectAll();
        QCOMPARE(runs->selectedRuns().size(), 2);
        auto *compare = window.findChild<QTableWidget *>(QStringLiteral("compareTable"));
        QTRY_COMPARE_WITH_TIMEOUT(compare->columnCount(), 2, 10000);
        QVERIFY(compare->rowCount() > 0);
        QVERIFY(compare->horizontalHeaderItem(0)->text().contains(QStringLiteral("rome")));
        QVERIFY(compare->horizontalHeaderItem(1)->text().contains(QStringLiteral("memit")));
        auto *curves = window.findChild<QCustomPlot *>(QStringLiteral("curvePlot"));
        QTRY_VERIFY_WITH_TIMEOUT(curves->graphCount() >= 2 && curves->graphCount() % 2 == 0, 5000);
        // One colour per run, the legend names method and run id.
        QVERIFY(curves->graph(0)->pen().color() != curves->graph(curves->graphCount() - 1)->pen().color());
        QVERIFY(curves->graph(0)->name().contains(QStringLiteral("rome #")));

        // The Compare tab: both runs checked, curves overlaid, finals side by side, facts matched.
        auto *compareView = window.findChild<CompareView *>(QStringLiteral("compareView"));
        const QList<qint64> both = {table->item(0, 0)->text().toLongLong(), table->item(1, 0)->text().toLongLong()};
        compareView->checkRuns(both);
        QCOMPARE(compareView->checkedRuns(), both);
        auto *overlaid = window.findChild<QCustomPlot *>(QStringLiteral("compareCurves"));
        QTRY_COMPARE_WITH_TIMEOUT(overlaid->graphCount(), 2, 10000);
        QVERIFY(overlaid->graph(0)->pen().color() != overlaid->graph(1)->pen().color());
        auto *finals = window.findChild<QTableWidget *>(QStringLiteral("compareFinal"));
        QTRY_COMPARE_WITH_TIMEOUT(finals->columnCount(), 2, 10000);
        QVERIFY(finals->rowCount() > 0);
        auto *facts = window.findChild<QTableView *>(QStringLiteral("factDiff"));
        QTRY_COMPARE_WITH_TIMEOUT(facts->model()->columnCount(), 5, 10000); // subject, prompt, target, one per run
        window.findChild<QCheckBox *>(QStringLiteral("onlyDiffering"))->setChecked(false);
        QCOMPARE(facts->model()->rowCount(), 2); // the same seed edits the same two facts
        for (int row = 0; row < facts->model()->rowCount(); ++row)
            for (int column = 3; column < 5; ++column) {
                const QString cell = cellText(facts, row, column);
                QVERIFY2(cell == QStringLiteral("kept") || cell == QStringLiteral("lost"), qPrintable(cell));
            }
        // Every view renders (the message handler fails the test on a warning).
        auto *tabs = window.findChild<QTabWidget *>(QStringLiteral("views"));
        for (int i = 0; i < tabs->count(); ++i) {
            tabs->setCurrentIndex(i);
            QTest::qWait(60);
            QVERIFY(!window.grab().isNull());
        }

        // More edits than the mini world has facts: a message that says so, and Start comes back.
        method->setCurrentText(QStringLiteral("rome"));
        window.findChild<QSpinBox *>(QStringLiteral("runEdits"))->setValue(5000);
        window.findChild<QSpinBox *>(QStringLiteral("runEvery"))->setValue(0);
        QTRY_VERIFY_WITH_TIMEOUT(start->isEnabled(), 30000);
        QTest::mouseClick(start, Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 30000);
        QVERIFY(failed.first().first().toString().contains(QStringLiteral("facts")));
        QTRY_VERIFY_WITH_TIMEOUT(start->isEnabled(), 5000);
        QVERIFY(window.findChild<QProgressBar *>(QStringLiteral("runProgress"))->isHidden());
        failed.clear();

        // A long run cancelled at an early progress report stops early, resumable.
        window.findChild<QSpinBox *>(QStringLiteral("runEdits"))->setValue(300);
        progress.clear();
        QTest::mouseClick(start, Qt::LeftButton);
        auto *cancel = window.findChild<QPushButton *>(QStringLiteral("cancelRun"));
        QVERIFY(!cancel->isHidden()); // (its tab is not the current one)
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() >= 2, 60000);
        QTest::mouseClick(cancel, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(finished.count() == 3, qPrintable(lastFailure()), 60000);
        const auto summary = finished.last().at(1).value<oedit::runs::RunSummary>();
        QCOMPARE(summary.status, std::string("cancelled"));
        QVERIFY(summary.steps < 300);
        QTRY_COMPARE_WITH_TIMEOUT(table->rowCount(), 3, 10000);
        QVERIFY(cancel->isHidden());
        QVERIFY(window.findChild<QLabel *>(QStringLiteral("runRemaining"))->text().contains(QStringLiteral("cancelled")));
        window.close();
    }

    // An edit made in the Facts view is in History at once; revert, undo
    // (Ctrl+Z), redo (Ctrl+Shift+Z) and remove one edit, each through the
    // ledger, with the open model following (a fourth edit then lands as step 4
    // of the same run); a new window on the same ledger shows the same state
    // and Continue Editing loads it into a freshly opened model.
    void factsEditsInHistoryUndoRedoRevertRemove()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString db = dir.filePath(QStringLiteral("history.sqlite"));
        QStringList inEffect;
        qint64 sessionRun = -1;
        const auto world = oedit::world::loadWorld(OEDIT_MINI_MODEL_DIR);
        QVERIFY(world.ok());
        // Edits the next fact of the mini world (every fifth, skipping any the
        // engine refuses) through `window`'s Facts view; false when none was made.
        size_t nextFact = 0;
        QStringList subjects, prompts, targets; // of the edits made, in order
        const auto editNextFact = [&](MainWindow &window, QSignalSpy &edited, QSignalSpy &failed) -> bool {
            auto *apply = window.findChild<QPushButton *>(QStringLiteral("applyEdit"));
            for (; nextFact < world->facts.size() && nextFact < 80; nextFact += 5) {
                const auto &fact = world->facts[nextFact];
                const auto &relation = world->relationOf(fact);
                const QString subject = QString::fromStdString(world->subjectName(fact));
                const QString prompt = QString::fromStdString(relation.templates[0]);
                const QString target =
                    QString::fromStdString(relation.objects[(fact.object + 1) % relation.objects.size()]);
                window.findChild<QLineEdit *>(QStringLiteral("editSubject"))->setText(subject);
                window.findChild<QComboBox *>(QStringLiteral("editPrompt"))->setCurrentText(prompt);
                window.findChild<QLineEdit *>(QStringLiteral("editTarget"))->setText(target);
                window.findChild<QComboBox *>(QStringLiteral("editMethod"))->setCurrentText(QStringLiteral("rome"));
                if (!QTest::qWaitFor([apply] { return apply->isEnabled(); }, 30000))
                    return false;
                const auto edits = edited.count(), answers = edits + failed.count();
                QTest::mouseClick(apply, Qt::LeftButton);
                if (!QTest::qWaitFor([&] { return edited.count() + failed.count() > answers; }, 120000))
                    return false;
                if (edited.count() > edits) {
                    nextFact += 5;
                    subjects << subject;
                    prompts << QString(prompt).replace(QStringLiteral("{}"), subject);
                    targets << target;
                    return true;
                }
            }
            return false;
        };
        // The greedy continuation of `prompt` by `window`'s open model, asked through its worker.
        const auto continuationOf = [](MainWindow &window, QSignalSpy &predicted, const QString &prompt) {
            const auto before = predicted.count();
            Q_EMIT window.predictRequested(prompt, 5);
            if (!QTest::qWaitFor([&] { return predicted.count() > before; }, 30000))
                return QString();
            return QString::fromStdString(predicted.last().at(1).value<oedit::Prediction>().continuation).trimmed();
        };
        QStringList continuations; // of the four edits' prompts by the session's model at the end
        {
            MainWindow window;
            window.setQuietErrors(true);
            QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
            QSignalSpy failed(window.worker(), &EngineWorker::failed);
            QSignalSpy edited(window.worker(), &EngineWorker::edited);
            QSignalSpy recorded(window.document(), &Document::sessionRecorded);
            QSignalSpy rolledBack(window.worker(), &EngineWorker::rolledBack);
            QSignalSpy synced(window.document(), &Document::sessionSynced);
            const auto lastFailure = [&failed] { return failed.isEmpty() ? QString() : failed.last().first().toString(); };
            window.findChild<RunsView *>(QStringLiteral("runsView"))->setLedgerPath(db);
            QVERIFY2(openMini(window, opened), qPrintable(lastFailure()));

            // Three edits of the mini world's facts, each recorded as a step of one run.
            for (int made = 1; made <= 3; ++made) {
                QVERIFY2(editNextFact(window, edited, failed), qPrintable(lastFailure()));
                QTRY_VERIFY2_WITH_TIMEOUT(recorded.count() == made, qPrintable(lastFailure()), 30000);
            }
            failed.clear();
            sessionRun = recorded.last().at(1).value<oedit::runs::RunSummary>().runId;
            QCOMPARE(window.document()->currentRun(), sessionRun);
            QCOMPARE(recorded.last().at(1).value<oedit::runs::RunSummary>().dataset, std::string("manual"));

            // History lists the three edits, in effect.
            auto *history = window.findChild<QTableView *>(QStringLiteral("historyTable"));
            QTRY_COMPARE_WITH_TIMEOUT(history->model()->rowCount(), 3, 10000);
            for (int row = 0; row < 3; ++row) {
                QCOMPARE(cellText(history, row, 0), QString::number(row + 1));
                QVERIFY(cellText(history, row, 1).contains(subjects[row]));
                QCOMPARE(cellText(history, row, 3), QStringLiteral("yes"));
            }
            const auto column = [history](int c) {
                QStringList cells;
                for (int row = 0; row < history->model()->rowCount(); ++row)
                    cells << cellText(history, row, c);
                return cells.join(QLatin1Char(' '));
            };
            // Whether the open model continues edit i's prompt with its new target.
            QSignalSpy predicted(window.worker(), &EngineWorker::predicted);
            const auto predictsTarget = [&](int i) {
                return continuationOf(window, predicted, prompts[i]).startsWith(targets[i]);
            };
            for (int i = 0; i < 3; ++i)
                QVERIFY2(predictsTarget(i), qPrintable(prompts[i] + QStringLiteral(" -> ") + targets[i]));

            // Revert to step 1: the ledger takes steps 2 and 3 out, and the open model follows.
            QUndoStack *stack = window.document()->undoStack();
            history->selectRow(0);
            auto *revert = window.findChild<QPushButton *>(QStringLiteral("historyRevert"));
            QVERIFY(revert->isEnabled());
            QTest::mouseClick(revert, Qt::LeftButton);
            QCOMPARE(stack->count(), 4); // the three Facts edits, then the revert
            QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 1, qPrintable(lastFailure()), 10000);
            QTRY_COMPARE_WITH_TIMEOUT(column(3), QStringLiteral("yes no no"), 10000);
            QTRY_VERIFY_WITH_TIMEOUT(!synced.isEmpty(), 10000);
            QCOMPARE(synced.last().first().toInt(), 1);

            // Ctrl+Z undoes the revert, Ctrl+Shift+Z does it again.
            QCOMPARE(window.findChild<QAction *>(QStringLiteral("undoAction"))->shortcut(),
                     QKeySequence(QKeySequence::Undo));
            QVERIFY(window.findChild<QAction *>(QStringLiteral("redoAction"))
                        ->shortcuts()
                        .contains(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z)));
            // Redo answers Ctrl+Shift+Z and Ctrl+Y, each bound once (a key bound
            // twice is an ambiguous shortcut that never fires).
            const auto redoKeys = window.findChild<QAction *>(QStringLiteral("redoAction"))->shortcuts();
            QCOMPARE(QSet<QKeySequence>(redoKeys.begin(), redoKeys.end()).size(), redoKeys.size());
            QVERIFY(redoKeys.contains(QKeySequence(Qt::CTRL | Qt::Key_Y)));
            window.activateWindow();
            QVERIFY(QTest::qWaitForWindowActive(&window));
            QTest::keyClick(&window, Qt::Key_Z, Qt::ControlModifier);
            QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 2, qPrintable(lastFailure()), 10000);
            QCOMPARE(rolledBack.last().at(1).value<oedit::runs::RollbackInfo>().kind, std::string("redo"));
            QTRY_COMPARE_WITH_TIMEOUT(column(3), QStringLiteral("yes yes yes"), 10000);
            QTRY_COMPARE_WITH_TIMEOUT(synced.last().first().toInt(), 3, 10000);
            QTest::keyClick(&window, Qt::Key_Z, Qt::ControlModifier | Qt::ShiftModifier);
            QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 3, qPrintable(lastFailure()), 10000);
            QTRY_COMPARE_WITH_TIMEOUT(column(3), QStringLiteral("yes no no"), 10000);
            // The History view's Undo button drives the same stack.
            auto *undo = window.findChild<QPushButton *>(QStringLiteral("historyUndo"));
            QTRY_VERIFY_WITH_TIMEOUT(undo->isEnabled(), 5000);
            QTest::mouseClick(undo, Qt::LeftButton);
            QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 4, qPrintable(lastFailure()), 10000);
            QTRY_COMPARE_WITH_TIMEOUT(column(3), QStringLiteral("yes yes yes"), 10000);

            // Remove only the edit at step 2.
            history->selectRow(1);
            auto *remove = window.findChild<QPushButton *>(QStringLiteral("historyRemove"));
            QTRY_VERIFY_WITH_TIMEOUT(remove->isEnabled(), 5000);
            const auto syncsBefore = synced.count();
            QTest::mouseClick(remove, Qt::LeftButton);
            QTRY_VERIFY2_WITH_TIMEOUT(rolledBack.count() == 5, qPrintable(lastFailure()), 10000);
            QCOMPARE(rolledBack.last().at(1).value<oedit::runs::RollbackInfo>().kind, std::string("remove"));
            QTRY_COMPARE_WITH_TIMEOUT(column(3), QStringLiteral("yes no yes"), 10000);
            // The open model loads the run as the ledger now holds it: edits 1 and 3 without edit 2.
            QTRY_VERIFY2_WITH_TIMEOUT(synced.count() > syncsBefore, qPrintable(lastFailure()), 30000);
            QCOMPARE(synced.last().first().toInt(), 2);
            QVERIFY2(!predictsTarget(1), qPrintable(prompts[1]));
            QVERIFY2(predictsTarget(0), qPrintable(prompts[0]));
            QVERIFY2(predictsTarget(2), qPrintable(prompts[2]));

            // The Subspace view follows the run: the two edits in effect, pairwise.
            auto *cos = window.findChild<QCustomPlot *>(QStringLiteral("cosPlot"));
            QTRY_VERIFY_WITH_TIMEOUT(qobject_cast<QCPColorMap *>(cos->plottable(0))->data()->keySize() == 2, 10000);
            auto *map = qobject_cast<QCPColorMap *>(cos->plottable(0));
            QVERIFY(std::abs(map->data()->cell(0, 0) - 1.0) < 1e-9); // an update against itself
            QCOMPARE(window.findChild<QTableWidget *>(QStringLiteral("overlapTable"))->rowCount(), 2);
            QTRY_VERIFY_WITH_TIMEOUT(
                window.findChild<QLabel *>(QStringLiteral("principalAngles"))->text().contains(QStringLiteral("layer")),
                10000);
            auto *tabs = window.findChild<QTabWidget *>(QStringLiteral("views"));
            for (auto *name : {"historyView", "subspaceView"}) {
                tabs->setCurrentWidget(window.findChild<QWidget *>(QLatin1String(name)));
                QTest::qWait(60);
                QVERIFY(!window.grab().isNull());
            }
            QVERIFY2(failed.isEmpty(), qPrintable(lastFailure()));

            // A fourth edit lands as step 4 of the same run, on top of the two in effect
            // (refused facts are skipped).
            QVERIFY2(editNextFact(window, edited, failed), qPrintable(lastFailure()));
            QCOMPARE(edited.last().at(1).toInt(), 3);
            QTRY_VERIFY2_WITH_TIMEOUT(recorded.count() == 4, qPrintable(lastFailure()), 30000);
            const auto fourth = recorded.last().at(1).value<oedit::runs::RunSummary>();
            QCOMPARE(fourth.runId, sessionRun);
            QCOMPARE(fourth.steps, 4LL);
            QCOMPARE(fourth.activeEdits, 3LL);
            QTRY_COMPARE_WITH_TIMEOUT(column(0), QStringLiteral("1 2 3 4"), 10000);
            QTRY_COMPARE_WITH_TIMEOUT(column(3), QStringLiteral("yes no yes yes"), 10000);
            QVERIFY2(!predictsTarget(1), qPrintable(prompts[1]));
            for (const auto &prompt : prompts)
                continuations << continuationOf(window, predicted, prompt);
            inEffect = column(3).split(QLatin1Char(' '));
            window.close();
        }
        // A new window on the same ledger (a restart) shows the same history.
        MainWindow again;
        again.setQuietErrors(true);
        QSignalSpy opened(again.worker(), &EngineWorker::modelOpened);
        QSignalSpy failed(again.worker(), &EngineWorker::failed);
        QSignalSpy synced(again.document(), &Document::sessionSynced);
        QSignalSpy predicted(again.worker(), &EngineWorker::predicted);
        const auto lastFailure = [&failed] { return failed.isEmpty() ? QString() : failed.last().first().toString(); };
        QCOMPARE(again.findChild<RunsView *>(QStringLiteral("runsView"))->ledgerPath(), db);
        QVERIFY2(openMini(again, opened), qPrintable(lastFailure()));
        auto *table = again.findChild<QTableWidget *>(QStringLiteral("runsTable"));
        QTRY_COMPARE_WITH_TIMEOUT(table->rowCount(), 1, 10000);
        QCOMPARE(table->item(0, 0)->text().toLongLong(), sessionRun);
        table->selectRow(0);
        auto *history = again.findChild<QTableView *>(QStringLiteral("historyTable"));
        QTRY_COMPARE_WITH_TIMEOUT(history->model()->rowCount(), int(inEffect.size()), 10000);
        for (int row = 0; row < int(inEffect.size()); ++row)
            QCOMPARE(cellText(history, row, 3), inEffect[row]);

        // Continue Editing loads the run's three edits in effect into the freshly
        // opened model: it continues every edited prompt as the session's model did.
        auto *continueRun = again.findChild<QPushButton *>(QStringLiteral("continueRun"));
        QTRY_VERIFY_WITH_TIMEOUT(continueRun->isEnabled(), 10000);
        QTest::mouseClick(continueRun, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(synced.count() == 1, qPrintable(lastFailure()), 30000);
        QCOMPARE(synced.first().first().toInt(), 3);
        for (int i = 0; i < prompts.size(); ++i)
            QCOMPARE(continuationOf(again, predicted, prompts[i]), continuations[i]);
        QVERIFY2(failed.isEmpty(), qPrintable(lastFailure()));
        // A further edit is appended to that run as step 5 (refused facts are skipped).
        QSignalSpy edited(again.worker(), &EngineWorker::edited);
        QSignalSpy recorded(again.document(), &Document::sessionRecorded);
        const auto recordedBefore = recorded.count();
        QVERIFY2(editNextFact(again, edited, failed), qPrintable(lastFailure()));
        QCOMPARE(edited.last().at(1).toInt(), 4);
        QTRY_VERIFY2_WITH_TIMEOUT(recorded.count() > recordedBefore, qPrintable(lastFailure()), 30000);
        const auto fifth = recorded.last().at(1).value<oedit::runs::RunSummary>();
        QCOMPARE(fifth.runId, sessionRun);
        QCOMPARE(fifth.steps, 5LL);
        QCOMPARE(fifth.activeEdits, 4LL);
        QTRY_COMPARE_WITH_TIMEOUT(history->model()->rowCount(), 5, 10000);
        again.close();
    }

    // Cancel pressed after Start but before the worker takes the run up stops
    // it before it begins; a run cancelled midway resumes to its end.
    void cancelBeforeStartAndResume()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        MainWindow window;
        window.setQuietErrors(true);
        QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
        QSignalSpy finished(window.worker(), &EngineWorker::runFinished);
        QSignalSpy notStarted(window.worker(), &EngineWorker::runNotStarted);
        QSignalSpy progress(window.worker(), &EngineWorker::progress);
        const auto lastFailure = [&failed] { return failed.isEmpty() ? QString() : failed.last().first().toString(); };
        const QString db = dir.filePath(QStringLiteral("cancel.sqlite"));
        window.findChild<RunsView *>(QStringLiteral("runsView"))->setLedgerPath(db);
        QVERIFY2(openMini(window, opened), qPrintable(lastFailure()));
        window.findChild<QComboBox *>(QStringLiteral("runMethod"))->setCurrentText(QStringLiteral("rome"));
        window.findChild<QSpinBox *>(QStringLiteral("runEdits"))->setValue(40);
        window.findChild<QSpinBox *>(QStringLiteral("runEvery"))->setValue(0);
        auto *start = window.findChild<QPushButton *>(QStringLiteral("startRun"));
        auto *cancel = window.findChild<QPushButton *>(QStringLiteral("cancelRun"));
        QTRY_VERIFY_WITH_TIMEOUT(start->isEnabled(), 10000);

        // Hold the worker busy, so the run waits in its queue.
        QSemaphore entered, gate;
        QMetaObject::invokeMethod(
            window.worker(), [&entered, &gate] {
                entered.release();
                gate.acquire();
            },
            Qt::QueuedConnection);
        QVERIFY(entered.tryAcquire(1, 10000));
        QTest::mouseClick(start, Qt::LeftButton);
        QVERIFY(!cancel->isHidden());
        QTest::mouseClick(cancel, Qt::LeftButton);
        gate.release();
        QTRY_COMPARE_WITH_TIMEOUT(notStarted.count(), 1, 30000);
        QVERIFY(notStarted.first().at(1).toString().contains(QStringLiteral("cancelled")));
        QVERIFY(finished.isEmpty());
        QVERIFY(!QFileInfo::exists(db)); // nothing was written
        QTRY_VERIFY_WITH_TIMEOUT(start->isEnabled(), 5000);
        QVERIFY(cancel->isHidden());

        // The next run is not touched by that cancel; cancelled midway, then resumed.
        progress.clear();
        QTest::mouseClick(start, Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() >= 2, 60000);
        QTest::mouseClick(cancel, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(finished.count() == 1, qPrintable(lastFailure()), 60000);
        const auto cancelled = finished.last().at(1).value<oedit::runs::RunSummary>();
        QCOMPARE(cancelled.status, std::string("cancelled"));
        QVERIFY(cancelled.steps >= 1 && cancelled.steps < 40);
        auto *table = window.findChild<QTableWidget *>(QStringLiteral("runsTable"));
        QTRY_COMPARE_WITH_TIMEOUT(table->rowCount(), 1, 10000);
        table->selectRow(0);
        auto *resume = window.findChild<QPushButton *>(QStringLiteral("resumeRun"));
        QTRY_VERIFY_WITH_TIMEOUT(resume->isEnabled(), 10000);
        QTest::mouseClick(resume, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(finished.count() == 2, qPrintable(lastFailure()), 300000);
        const auto resumed = finished.last().at(1).value<oedit::runs::RunSummary>();
        QCOMPARE(resumed.runId, cancelled.runId);
        QCOMPARE(resumed.status, std::string("finished"));
        QCOMPARE(resumed.steps, 40LL);
        QTRY_COMPARE_WITH_TIMEOUT(table->item(0, 3)->text(), QStringLiteral("finished"), 10000);
        QVERIFY(!resume->isEnabled());
        QVERIFY2(failed.isEmpty(), qPrintable(lastFailure()));
        window.close();
    }
};

QTEST_MAIN(TestUi)
#include "tst_ui.moc"
