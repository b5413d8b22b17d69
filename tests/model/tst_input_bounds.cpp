// Files from elsewhere are bounded before anything is allocated from them:
// each loader refuses a file over its size limit without reading it (the
// oversized files here are sparse, so the test writes almost nothing), and
// sizes read from inside a file (token ids, config sizes, tensor shapes) are
// checked before they size a table. Each case also pins a bug the fuzz
// targets in tests/fuzz found: the message must name the file and the limit.
#include "model/model_config.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"

#include "oedit/datasets.h"
#include "oedit/world.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <stdexcept>

#include <sys/stat.h>

namespace {

bool writeFile(const QString &path, const QByteArray &bytes)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly | QIODevice::Truncate) && file.write(bytes) == bytes.size();
}

// A file of `size` bytes that starts with `head`; the rest is a hole.
bool writeSparse(const QString &path, const QByteArray &head, qint64 size)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly | QIODevice::Truncate) && file.write(head) == head.size() &&
           file.resize(size);
}

QByteArray safetensorsWithHeader(const QByteArray &header)
{
    QByteArray bytes(8, '\0');
    quint64 size = quint64(header.size());
    for (int i = 0; i < 8; ++i, size >>= 8)
        bytes[i] = char(size & 0xff);
    return bytes + header;
}

// The message of what `load` throws, or "" when it does not throw.
template <typename Exception, typename Load>
QString thrownMessage(Load load)
{
    try {
        load();
    } catch (const Exception &error) {
        return QString::fromStdString(error.what());
    }
    return QString();
}

constexpr qint64 kMiB = 1 << 20;

} // namespace

class TestInputBounds : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void tokenizerIds_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QByteArray>("content");
        QTest::addColumn<QStringList>("expected");
        const QByteArray merges = "\0#version: 0.2\n";
        QTest::newRow("tokenizer.json id 2^31 - 1")
            << "tokenizer.json" << QByteArray(R"({"model": {"type": "BPE", "vocab": {"a": 2147483647}, "merges": []}})")
            << QStringList{"tokenizer.json", "2147483647", "outside [0, 4194304)"};
        QTest::newRow("tokenizer.json fractional id")
            << "tokenizer.json" << QByteArray(R"({"model": {"type": "BPE", "vocab": {"a": 1e300}, "merges": []}})")
            << QStringList{"tokenizer.json", "\"a\"", "not an integer"};
        QTest::newRow("tokenizer.json added token id 2e9")
            << "tokenizer.json"
            << QByteArray(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                              "added_tokens": [{"id": 2000000000, "content": "<x>"}]})")
            << QStringList{"tokenizer.json", "added token \"<x>\"", "outside [0, 4194304)"};
        QTest::newRow("vocab.json id 2^31 - 648")
            << "vocab.json" << QByteArray(R"({"a": 2147483000})")
            << QStringList{"vocab.json", "2147483000", "outside [0, 4194304)"};
        QTest::newRow("vocab.json negative id")
            << "vocab.json" << QByteArray(R"({"a": -1})") << QStringList{"vocab.json", "-1", "outside [0, 4194304)"};
    }
    void tokenizerIds()
    {
        QFETCH(QString, file);
        QFETCH(QByteArray, content);
        QFETCH(QStringList, expected);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(writeFile(dir.filePath(file), content));
        if (file == QLatin1String("vocab.json"))
            QVERIFY(writeFile(dir.filePath(QStringLiteral("merges.txt")), QByteArray("#version: 0.2\n")));
        const QString message = thrownMessage<std::runtime_error>(
            [&] { (void)oedit::model::loadTokenizer(dir.path().toStdString()); });
        QVERIFY2(!message.isEmpty(), "the tokenizer loaded");
        for (const QString &part : expected)
            QVERIFY2(message.contains(part), qPrintable(message));
    }

    void oversizedFiles_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<qint64>("size");
        QTest::addColumn<QStringList>("expected");
        QTest::newRow("tokenizer.json over 128 MiB")
            << "tokenizer.json" << 128 * kMiB + 1
            << QStringList{"tokenizer.json", "134217729 bytes", "134217728-byte limit for tokenizer files"};
        QTest::newRow("vocab.json over 128 MiB")
            << "vocab.json" << 128 * kMiB + 1
            << QStringList{"vocab.json", "134217729 bytes", "134217728-byte limit for tokenizer files"};
        QTest::newRow("config.json over 16 MiB")
            << "config.json" << 16 * kMiB + 1 << QStringList{"config.json", "16777217 bytes", "16777216 bytes"};
        QTest::newRow("data set over 512 MiB")
            << "dataset.json" << 512 * kMiB + 1
            << QStringList{"dataset.json", "536870913 bytes", "536870912-byte limit for data set files"};
        QTest::newRow("world.json over 512 MiB")
            << "world.json" << 512 * kMiB + 1
            << QStringList{"world.json", "536870913 bytes", "536870912-byte limit for world files"};
    }
    void oversizedFiles()
    {
        QFETCH(QString, file);
        QFETCH(qint64, size);
        QFETCH(QStringList, expected);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(writeSparse(dir.filePath(file), "{", size));
        const std::string folder = dir.path().toStdString();
        QString message;
        if (file == QLatin1String("tokenizer.json")) {
            message = thrownMessage<std::runtime_error>([&] { (void)oedit::model::loadTokenizer(folder); });
        } else if (file == QLatin1String("vocab.json")) {
            QVERIFY(writeFile(dir.filePath(QStringLiteral("merges.txt")), QByteArray("#version: 0.2\n")));
            message = thrownMessage<std::runtime_error>([&] { (void)oedit::model::loadTokenizer(folder); });
        } else if (file == QLatin1String("config.json")) {
            message = thrownMessage<oedit::model::CheckpointError>([&] { (void)oedit::model::loadModelConfig(folder); });
        } else if (file == QLatin1String("dataset.json")) {
            const auto cases = oedit::world::loadEditCases(dir.filePath(file).toStdString());
            QVERIFY(!cases);
            message = QString::fromStdString(cases.message());
        } else {
            const auto world = oedit::world::loadWorld(folder);
            QVERIFY(!world);
            message = QString::fromStdString(world.message());
        }
        QVERIFY2(!message.isEmpty(), "the oversized file was accepted");
        for (const QString &part : expected)
            QVERIFY2(message.contains(part), qPrintable(message));
    }

    void notRegularFiles()
    {
        // A device in place of a file is refused, never read until it ends.
        const auto cases = oedit::world::loadEditCases("/dev/zero");
        QVERIFY(!cases);
        QVERIFY2(QString::fromStdString(cases.message()).contains("cannot open data set /dev/zero"),
                 qPrintable(QString::fromStdString(cases.message())));
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(QFile::link(QStringLiteral("/dev/zero"), dir.filePath(QStringLiteral("world.json"))));
        QVERIFY(QFile::link(QStringLiteral("/dev/zero"), dir.filePath(QStringLiteral("config.json"))));
        const auto world = oedit::world::loadWorld(dir.path().toStdString());
        QVERIFY(!world);
        QVERIFY2(QString::fromStdString(world.message()).contains("world.json"),
                 qPrintable(QString::fromStdString(world.message())));
        const QString message = thrownMessage<oedit::model::CheckpointError>(
            [&] { (void)oedit::model::loadModelConfig(dir.path().toStdString()); });
        QVERIFY2(message.contains("config.json") && message.contains("not a regular file"), qPrintable(message));
        // A pipe in place of config.json is refused at once, never waited on
        // for a writer (the test would hang before).
        QTemporaryDir fifoDir;
        const QString fifo = fifoDir.filePath(QStringLiteral("config.json"));
        QVERIFY(::mkfifo(fifo.toLocal8Bit().constData(), 0600) == 0);
        const QString fifoMessage = thrownMessage<oedit::model::CheckpointError>(
            [&] { (void)oedit::model::loadModelConfig(fifoDir.path().toStdString()); });
        QVERIFY2(fifoMessage.contains("not a regular file"), qPrintable(fifoMessage));
    }

    void safetensorsBounds_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<qint64>("sparseSize");
        QTest::addColumn<QStringList>("expected");
        // The header length is checked against the limit before the header is read.
        QByteArray hugeHeader(8, '\0');
        hugeHeader[4] = 1; // 2^32 bytes
        QTest::newRow("header length 2^32") << hugeHeader << 0ll
                                            << QStringList{"header length 4294967296", "100000000-byte limit"};
        QByteArray overLimit(8, '\0');
        const quint64 length = 100000001;
        for (int i = 0; i < 8; ++i)
            overLimit[i] = char((length >> (8 * i)) & 0xff);
        QTest::newRow("header length over the limit, file large enough")
            << overLimit << 100000016ll << QStringList{"header length 100000001", "100000000-byte limit"};
        QTest::newRow("data past the end")
            << safetensorsWithHeader(R"({"t": {"dtype": "F32", "shape": [1024, 1024], "data_offsets": [0, 4194304]}})")
            << 0ll << QStringList{"\"t\"", "past the end of the data buffer"};
        QTest::newRow("zero-size shape whose other dimensions overflow")
            << safetensorsWithHeader(
                   R"({"t": {"dtype": "F32", "shape": [1099511627776, 1099511627776, 0], "data_offsets": [0, 0]}})")
            << 0ll << QStringList{"\"t\"", "overflows a 64-bit size"};
        // Bytes no tensor owns, and text hidden after a NUL in the header (the
        // JSON reader stopped there): a corpus of malformed checkpoints found them.
        QTest::newRow("gap between tensors")
            << safetensorsWithHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                         "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})") +
                   QByteArray(12, '\0')
            << 0ll << QStringList{"bytes 4 to 8", "belong to no tensor"};
        QTest::newRow("trailing bytes")
            << safetensorsWithHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})") +
                   QByteArray(20, '\0')
            << 0ll << QStringList{"the last 16 bytes", "belong to no tensor"};
        QTest::newRow("NUL in the header")
            << safetensorsWithHeader(QByteArray(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})") +
                                     QByteArray(1, '\0') + QByteArray("garbage")) +
                   QByteArray(4, '\0')
            << 0ll << QStringList{"NUL byte at offset"};
        QTest::newRow("shape larger than the data")
            << safetensorsWithHeader(R"({"t": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})")
            << 0ll << QStringList{"\"t\"", "overflows"};
    }
    void safetensorsBounds()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(qint64, sparseSize);
        QFETCH(QStringList, expected);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString path = dir.filePath(QStringLiteral("model.safetensors"));
        QVERIFY(sparseSize > 0 ? writeSparse(path, bytes, sparseSize) : writeFile(path, bytes));
        const QString message = thrownMessage<oedit::model::CheckpointError>(
            [&] { oedit::model::SafetensorsFile file(path.toStdString()); });
        QVERIFY2(!message.isEmpty(), "the file was accepted");
        QVERIFY2(message.contains(path), qPrintable(message));
        for (const QString &part : expected)
            QVERIFY2(message.contains(part), qPrintable(message));
    }

    void configSizes_data()
    {
        QTest::addColumn<QByteArray>("json");
        QTest::addColumn<QString>("expected");
        // Found by fuzz_model_config: 4 * n_embd and head_dim * heads overflowed before validation.
        QTest::newRow("n_embd -2^62") << QByteArray(R"({"model_type": "gpt2", "vocab_size": 10, "n_embd": -4611686018427387904,
                                                       "n_layer": 1, "n_head": 2, "n_positions": 8})")
                                      << "\"n_embd\" = -4611686018427387904 is implausibly large";
        QTest::newRow("head_dim -2^62")
            << QByteArray(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
                              "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 8,
                              "head_dim": -4611686018427387904})")
            << "\"head_dim\" = -4611686018427387904 is implausibly large";
        QTest::newRow("vocab_size 2^31") << QByteArray(R"({"model_type": "gpt2", "vocab_size": 2147483648, "n_embd": 8,
                                                          "n_layer": 1, "n_head": 2, "n_positions": 8})")
                                         << "\"vocab_size\" = 2147483648 is implausibly large";
        // Values that parse but would run the wrong maths or allocate before any tensor is checked.
        const QByteArray gpt2 = R"({"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2,
                                    "n_positions": 8, )";
        const QByteArray llama = R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
                                     "num_hidden_layers": 1, "max_position_embeddings": 8, )";
        QTest::newRow("unknown activation") << gpt2 + R"("activation_function": "relu"})"
                                            << "activation_function = \"relu\" is not supported";
        QTest::newRow("llama gelu") << llama + R"("num_attention_heads": 4, "hidden_act": "gelu"})"
                                    << "hidden_act = \"gelu\" is not supported";
        QTest::newRow("odd head width") << llama + R"("num_attention_heads": 8})" << "head width 1 is odd";
        QTest::newRow("rope_theta below 1") << llama + R"("num_attention_heads": 4, "rope_theta": 1e-300})"
                                            << "is below 1";
        QTest::newRow("epsilon beyond float32") << llama + R"("num_attention_heads": 4, "rms_norm_eps": 1e39})"
                                                << "is not a normalisation epsilon";
        QTest::newRow("a billion layers") << QByteArray(R"({"model_type": "gpt2", "vocab_size": 10, "n_embd": 8,
                                                          "n_layer": 1000000000, "n_head": 2, "n_positions": 8})")
                                          << "more layers than any supported model has";
    }
    void configSizes()
    {
        QFETCH(QByteArray, json);
        QFETCH(QString, expected);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(writeFile(dir.filePath(QStringLiteral("config.json")), json));
        const QString message = thrownMessage<oedit::model::CheckpointError>(
            [&] { (void)oedit::model::loadModelConfig(dir.path().toStdString()); });
        QVERIFY2(message.contains("config.json") && message.contains(expected), qPrintable(message));
    }
};

QTEST_GUILESS_MAIN(TestInputBounds)
#include "tst_input_bounds.moc"
