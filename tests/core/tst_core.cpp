// Qt-free smoke of the engine facade: this suite includes only oedit/*.h, so it
// proves the facade works without any torch or Qt type leaking through it.
#include "oedit/engine.h"

#include <QTemporaryDir>
#include <QtTest>

namespace {
std::string fixture(const QString &name)
{
    return (QStringLiteral(OEDIT_TEST_DATA "/fixtures/hf-tiny/") + name).toStdString();
}
} // namespace

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

    void opensHuggingFaceFolders_data()
    {
        QTest::addColumn<QString>("folder");
        QTest::addColumn<QString>("family");
        QTest::addColumn<int>("hidden");
        QTest::addColumn<int>("kvHeads");
        QTest::newRow("gpt2 f32") << QStringLiteral("gpt2-tiny-f32") << QStringLiteral("gpt2") << 16 << 4;
        QTest::newRow("gpt2 bf16") << QStringLiteral("gpt2-tiny-bf16") << QStringLiteral("gpt2") << 16 << 4;
        QTest::newRow("llama") << QStringLiteral("llama-tiny-f32") << QStringLiteral("llama") << 32 << 2;
        QTest::newRow("llama sharded") << QStringLiteral("llama-tiny-bf16-sharded") << QStringLiteral("llama") << 32 << 2;
    }

    void opensHuggingFaceFolders()
    {
        QFETCH(QString, folder);
        QFETCH(QString, family);
        const std::string path = fixture(folder);
        QFETCH(int, hidden);
        QFETCH(int, kvHeads);
        oedit::Engine engine;
        QVERIFY(!engine.hasModel());
        const oedit::Status opened = engine.openModel(path);
        QVERIFY2(opened.ok(), opened.message().c_str());
        const oedit::ModelInfo info = engine.modelInfo();
        QCOMPARE(QString::fromStdString(info.family), family);
        QCOMPARE(info.hidden, hidden);
        QCOMPARE(info.kvHeads, kvHeads);
        QCOMPARE(info.layers, 2);
        QCOMPARE(QString::fromStdString(info.dtype), QStringLiteral("float32"));
        QCOMPARE(QString::fromStdString(info.device), QStringLiteral("cpu"));
        QVERIFY(info.parameters > 0);
        // No tokenizer ships with the fixtures: text prompts are refused clearly.
        const auto prediction = engine.predict("hello", 5, 3);
        QVERIFY(!prediction.ok());
        QVERIFY(prediction.message().find("tokenizer") != std::string::npos);
    }

    void badOpenRequestsKeepThePreviousModel_data()
    {
        QTest::addColumn<QString>("folder");
        QTest::addColumn<QString>("device");
        QTest::addColumn<QString>("dtype");
        QTest::addColumn<QString>("mentions");
        QTest::newRow("missing folder") << QStringLiteral("/no/such/model") << "cpu" << "float32" << "/no/such/model";
        QTest::newRow("folder without weights") << QStringLiteral(OEDIT_TEST_DATA "/core") << "cpu" << "float32"
                                                << "safetensors";
        QTest::newRow("unknown dtype") << QString::fromStdString(fixture(QStringLiteral("gpt2-tiny-f32"))) << "cpu" << "float8" << "float8";
        QTest::newRow("half precision on the CPU") << QString::fromStdString(fixture(QStringLiteral("gpt2-tiny-f32"))) << "cpu" << "bfloat16" << "CUDA";
        QTest::newRow("unknown device") << QString::fromStdString(fixture(QStringLiteral("gpt2-tiny-f32"))) << "tpu" << "float32" << "tpu";
    }

    void badOpenRequestsKeepThePreviousModel()
    {
        QFETCH(QString, folder);
        QFETCH(QString, device);
        QFETCH(QString, dtype);
        QFETCH(QString, mentions);
        oedit::Engine engine;
        QVERIFY(engine.openModel(fixture(QStringLiteral("llama-tiny-f32"))).ok());
        oedit::OpenOptions options;
        options.device = device.toStdString();
        options.dtype = dtype.toStdString();
        const oedit::Status opened = engine.openModel(folder.toStdString(), options);
        QVERIFY(!opened.ok());
        QVERIFY2(QString::fromStdString(opened.message()).contains(mentions), opened.message().c_str());
        QVERIFY(engine.hasModel());
        QCOMPARE(QString::fromStdString(engine.modelInfo().family), QStringLiteral("llama"));
    }

    void savedModelReopensIdentically()
    {
        oedit::Engine engine;
        QVERIFY(engine.openModel(fixture(QStringLiteral("gpt2-tiny-bf16"))).ok());
        QTemporaryDir dir;
        const std::string target = dir.filePath(QStringLiteral("saved")).toStdString();
        const oedit::Status saved = engine.saveModel(target);
        QVERIFY2(saved.ok(), saved.message().c_str());
        oedit::Engine reopened;
        QVERIFY(reopened.openModel(target).ok());
        QCOMPARE(reopened.modelInfo().parameters, engine.modelInfo().parameters);
        // Saving over the folder the model came from is refused.
        oedit::Engine fromSaved;
        QVERIFY(fromSaved.openModel(target).ok());
        QVERIFY(!fromSaved.saveModel(target).ok());
    }
};

QTEST_GUILESS_MAIN(TestCore)
#include "tst_core.moc"
