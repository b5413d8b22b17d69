// The main window opens offscreen, its views exist, and the engine worker
// answers from its own thread.
#include "mainwindow.h"

#include "oedit/world.h"

#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTableWidget>
#include <QSignalSpy>
#include <QTabWidget>
#include <QtTest>

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
};

QTEST_MAIN(TestUi)
#include "tst_ui.moc"
