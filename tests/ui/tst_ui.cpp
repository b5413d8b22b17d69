// The main window opens offscreen, its views exist, and the engine worker
// answers from its own thread.
#include "mainwindow.h"
#include "retentionview.h"
#include "runsview.h"

#include "oedit/world.h"

#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProgressBar>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QPushButton>
#include <QTableWidget>
#include <QSignalSpy>
#include <QTabWidget>
#include <QtTest>

#include <qcustomplot.h>

class TestUi : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        QCoreApplication::setOrganizationName(QStringLiteral("O-Edit-tests"));
        QCoreApplication::setApplicationName(QStringLiteral("tst_ui"));
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

    void opensAModelAndPredicts()
    {
        MainWindow window;
        window.setQuietErrors(true);
        QSignalSpy opened(window.worker(), &EngineWorker::modelOpened);
        QSignalSpy predicted(window.worker(), &EngineWorker::predicted);
        QSignalSpy failed(window.worker(), &EngineWorker::failed);
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
        auto *undo = window.findChild<QPushButton *>(QStringLiteral("undoEdit"));
        QTRY_VERIFY_WITH_TIMEOUT(undo->isEnabled(), 5000);
        QTest::mouseClick(undo, Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(undone.count(), 1, 30000);
        QCOMPARE(undone.first().first().toInt(), 0);
        QTRY_VERIFY_WITH_TIMEOUT(!undo->isEnabled(), 5000);

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
        auto *start = window.findChild<QPushButton *>(QStringLiteral("startRun"));
        QTRY_VERIFY_WITH_TIMEOUT(start->isEnabled(), 5000);
        QTest::mouseClick(start, Qt::LeftButton);
        QTRY_VERIFY2_WITH_TIMEOUT(finished.count() == 1, qPrintable(lastFailure()), 120000);
        const auto summary = finished.first().at(1).value<oedit::runs::RunSummary>();
        QCOMPARE(summary.status, std::string("finished"));
        QCOMPARE(summary.steps, 4LL);

        // The table lists the run as finished.
        auto *table = window.findChild<QTableWidget *>(QStringLiteral("runsTable"));
        QTRY_COMPARE_WITH_TIMEOUT(table->rowCount(), 1, 10000);
        QCOMPARE(table->item(0, 0)->text().toLongLong(), summary.runId);
        QCOMPARE(table->item(0, 3)->text(), QStringLiteral("finished"));

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

        // OEDIT_UI_SCREENSHOTS=DIR saves the Runs and Retention tabs as pictures to review.
        const QString shots = qEnvironmentVariable("OEDIT_UI_SCREENSHOTS");
        if (!shots.isEmpty()) {
            auto *tabs = window.findChild<QTabWidget *>(QStringLiteral("views"));
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
        QUndoStack *stack = window.undoStack();
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
};

QTEST_MAIN(TestUi)
#include "tst_ui.moc"
