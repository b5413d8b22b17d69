// The main window opens offscreen, its views exist, and the engine worker
// answers from its own thread.
#include "mainwindow.h"

#include <QLabel>
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
        QSignalSpy described(window.worker(), &EngineWorker::buildDescribed);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        auto *tabs = window.findChild<QTabWidget *>(QStringLiteral("views"));
        QVERIFY(tabs != nullptr);
        QVERIFY(window.findChild<QWidget *>(QStringLiteral("modelPanel")) != nullptr);
        QCOMPARE(tabs->tabText(0), QStringLiteral("Model"));

        // The worker runs on another thread and fills the model panel.
        QVERIFY(window.worker()->thread() != QThread::currentThread());
        QVERIFY(described.count() > 0 || described.wait(10000));
        const auto panelMentionsTorch = [&window] {
            for (auto *label : window.findChildren<QLabel *>()) {
                if (label->text().contains(QStringLiteral("libtorch")))
                    return true;
            }
            return false;
        };
        QTRY_VERIFY_WITH_TIMEOUT(panelMentionsTorch(), 5000);
        window.close();
    }
};

QTEST_MAIN(TestUi)
#include "tst_ui.moc"
