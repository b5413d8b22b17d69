// Qt-free smoke of the engine facade: this suite includes only oedit/*.h, so it
// proves the facade works without any torch or Qt type leaking through it.
#include "oedit/engine.h"

#include <QtTest>

class TestCore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void buildInfoNamesVersionAndBackend()
    {
        const oedit::BuildInfo info = oedit::Engine::buildInfo();
        QCOMPARE(QString::fromStdString(info.version), QStringLiteral(OEDIT_VERSION_STRING));
        QVERIFY(!info.torchVersion.empty());
        QVERIFY(info.cudaDeviceCount >= 0);
        QVERIFY(info.cudaAvailable == (info.cudaDeviceCount > 0));
    }

    void cpuComputesLikeTheReference()
    {
        const auto check = oedit::Engine::checkDevice("cpu");
        QVERIFY2(check.ok(), check.message().c_str());
        QCOMPARE(QString::fromStdString(check->device), QStringLiteral("cpu"));
        QVERIFY2(check->maxAbsError < 1e-3, qPrintable(QString::number(check->maxAbsError)));
        QVERIFY(check->gflops > 0);
    }

    void badDeviceIsAClearErrorNotACrash()
    {
        const auto check = oedit::Engine::checkDevice("quantum");
        QVERIFY(!check.ok());
        QVERIFY(check.message().find("quantum") != std::string::npos);
    }

    void engineConstructsAndDestroys()
    {
        auto engine = std::make_unique<oedit::Engine>();
        QVERIFY(engine != nullptr);
    }
};

QTEST_GUILESS_MAIN(TestCore)
#include "tst_core.moc"
