// The Hugging Face checkpoint reader and writer: fixtures load with the right
// names, shapes and values; configs parse or fail with a message naming the
// problem; save -> load is bit-exact; corrupted files and hostile indexes give
// a CheckpointError (never a crash); a failed save leaves the old files alone.
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/safetensors.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <cstring>
#include <functional>

using namespace oedit::model;

namespace {

std::string fixture(const char *name)
{
    return std::string(OEDIT_TEST_DATA) + "/fixtures/hf-tiny/" + name;
}

// The message of the CheckpointError `action` throws; another exception type
// or none at all is reported as such so the comparison fails visibly.
QString errorOf(const std::function<void()> &action)
{
    try {
        action();
    } catch (const CheckpointError &error) {
        return QString::fromUtf8(error.what());
    } catch (const std::exception &error) {
        return QStringLiteral("wrong exception type: ") + QString::fromUtf8(error.what());
    }
    return QStringLiteral("no exception");
}

QByteArray lengthPrefix(uint64_t length)
{
    QByteArray bytes(8, '\0');
    for (int i = 0; i < 8; ++i, length >>= 8)
        bytes[i] = char(length & 0xff);
    return bytes;
}

// A safetensors file with `header` as its JSON and `dataBytes` zero bytes of data.
QByteArray rawSafetensors(const QByteArray &header, int dataBytes, char fill = '\0')
{
    return lengthPrefix(uint64_t(header.size())) + header + QByteArray(dataBytes, fill);
}

void writeFile(const QString &path, const QByteArray &bytes)
{
    QFile file(path);
    QVERIFY2(file.open(QIODevice::WriteOnly | QIODevice::Truncate), qPrintable(path));
    QCOMPARE(file.write(bytes), qint64(bytes.size()));
}

QByteArray readFile(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

QStringList entries(const QString &dir)
{
    QStringList names = QDir(dir).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot, QDir::Name);
    return names;
}

bool sameBytes(const torch::Tensor &a, const torch::Tensor &b)
{
    return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && a.nbytes() == b.nbytes() &&
           std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.nbytes()) == 0;
}

void copyFolder(const QString &from, const QString &to)
{
    QDir().mkpath(to);
    for (const QString &name : QDir(from).entryList(QDir::Files))
        QVERIFY(QFile::copy(from + "/" + name, to + "/" + name));
}

} // namespace

class TestCheckpoint : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void fixturesLoad_data()
    {
        QTest::addColumn<QString>("folder");
        QTest::addColumn<int>("tensorCount");
        QTest::addColumn<bool>("sharded");
        QTest::addColumn<QString>("sample");
        QTest::addColumn<QList<qint64>>("sampleShape");
        // 2 embeddings + 12 per layer x 2 + final LayerNorm weight and bias.
        QTest::newRow("gpt2 f32") << "gpt2-tiny-f32" << 28 << false << "transformer.h.0.attn.c_attn.weight"
                                  << QList<qint64>{16, 48};
        QTest::newRow("gpt2 bf16") << "gpt2-tiny-bf16" << 28 << false << "transformer.h.1.mlp.c_fc.weight"
                                   << QList<qint64>{16, 64};
        // embed + 9 per layer x 2 + final norm + untied head.
        QTest::newRow("llama f32") << "llama-tiny-f32" << 21 << false << "model.layers.1.self_attn.k_proj.weight"
                                   << QList<qint64>{16, 32};
        QTest::newRow("llama bf16 shard 1")
            << "llama-tiny-bf16-sharded" << 21 << true << "model.embed_tokens.weight" << QList<qint64>{64, 32};
        QTest::newRow("llama bf16 shard 2")
            << "llama-tiny-bf16-sharded" << 21 << true << "lm_head.weight" << QList<qint64>{64, 32};
    }
    void fixturesLoad()
    {
        QFETCH(QString, folder);
        QFETCH(int, tensorCount);
        QFETCH(bool, sharded);
        QFETCH(QString, sample);
        QFETCH(QList<qint64>, sampleShape);
        const std::string dir = fixture(folder.toUtf8().constData());

        QVERIFY2(checkCheckpointDir(dir).ok(), checkCheckpointDir(dir).message().c_str());
        const CheckpointFiles files = locateCheckpoint(dir);
        QCOMPARE(files.sharded(), sharded);
        QCOMPARE(int(files.weightFiles.size()), sharded ? 2 : 1);

        const StateDict state = loadStateDict(dir);
        QCOMPARE(int(state.size()), tensorCount);
        for (const auto &[name, tensor] : state) {
            QVERIFY2(tensor.scalar_type() == torch::kFloat32, name.c_str());
            QVERIFY(tensor.is_contiguous());
            QVERIFY(tensor.device().is_cpu());
        }
        const auto found = state.find(sample.toStdString());
        QVERIFY2(found != state.end(), qPrintable(sample));
        const std::vector<int64_t> expected(sampleShape.begin(), sampleShape.end());
        QCOMPARE(found->second.sizes().vec(), expected);

        const ModelConfig config = loadModelConfig(dir);
        QCOMPARE(config.family, folder.startsWith("gpt2") ? Family::Gpt2 : Family::Llama);
    }

    // Values straight from the file bytes (decoded independently in Python):
    // catches offset and byte-order mistakes that shape checks cannot.
    void valuesMatchTheFileBytes()
    {
        const StateDict f32 = loadStateDict(fixture("gpt2-tiny-f32"));
        const auto cAttn = f32.at("transformer.h.0.attn.c_attn.weight");
        QCOMPARE(cAttn[0][0].item<float>(), -0.3890604078769684f);
        QCOMPARE(cAttn[0][1].item<float>(), -1.2206346988677979f);
        QCOMPARE(cAttn[0][2].item<float>(), 0.16111873090267181f);
        QCOMPARE(cAttn[15][47].item<float>(), 0.16753166913986206f);

        const SafetensorsFile bf16File(fixture("gpt2-tiny-bf16") + "/model.safetensors");
        QCOMPARE(bf16File.metadata().at("format"), std::string("pt"));
        const torch::Tensor wte = bf16File.tensor("transformer.wte.weight");
        QVERIFY(wte.scalar_type() == torch::kBFloat16); // kept as stored
        QCOMPARE(wte[0][0].item<float>(), -0.296875f);
        QCOMPARE(wte[0][1].item<float>(), 0.193359375f);
        QCOMPARE(wte[0][2].item<float>(), 0.035400390625f);
        const TensorInfo info = bf16File.info("transformer.wte.weight");
        QCOMPARE(info.dtype, std::string("BF16"));
        QCOMPARE(info.byteSize(), uint64_t(50 * 16 * 2));
    }

    void bf16UpcastsExactly()
    {
        for (const char *folder : {"gpt2-tiny-bf16", "llama-tiny-bf16-sharded"}) {
            const StateDict asStored = loadStateDict(fixture(folder), torch::kBFloat16);
            const StateDict upcast = loadStateDict(fixture(folder), torch::kFloat32);
            QCOMPARE(asStored.size(), upcast.size());
            for (const auto &[name, tensor] : asStored) {
                QVERIFY(tensor.scalar_type() == torch::kBFloat16);
                // bf16 -> f32 is exact, so going back down must give the same bits.
                QVERIFY2(sameBytes(upcast.at(name).to(torch::kBFloat16), tensor), name.c_str());
            }
        }
    }

    void configParses_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<int>("family");
        QTest::addColumn<qint64>("hidden");
        QTest::addColumn<qint64>("heads");
        QTest::addColumn<qint64>("kvHeads");
        QTest::addColumn<qint64>("intermediate");
        QTest::addColumn<bool>("tied");
        QTest::addColumn<bool>("attentionBias");
        QTest::addColumn<qint64>("eos");

        QTest::newRow("gpt2 n_inner null")
            << R"({"model_type":"gpt2","vocab_size":50,"n_embd":16,"n_layer":2,"n_head":4,"n_positions":32,
                  "n_inner":null,"eos_token_id":49})"
            << int(Family::Gpt2) << qint64(16) << qint64(4) << qint64(4) << qint64(64) << true << false << qint64(49);
        QTest::newRow("gpt2 explicit n_inner, untied")
            << R"({"model_type":"gpt2","vocab_size":50,"n_embd":16,"n_layer":2,"n_head":4,"n_positions":32,
                  "n_inner":40,"tie_word_embeddings":false})"
            << int(Family::Gpt2) << qint64(16) << qint64(4) << qint64(4) << qint64(40) << false << false << qint64(-1);
        QTest::newRow("llama defaults")
            << R"({"model_type":"llama","vocab_size":64,"hidden_size":32,"intermediate_size":48,
                  "num_hidden_layers":2,"num_attention_heads":4,"max_position_embeddings":64})"
            << int(Family::Llama) << qint64(32) << qint64(4) << qint64(4) << qint64(48) << false << false << qint64(-1);
        QTest::newRow("mistral gqa")
            << R"({"model_type":"mistral","vocab_size":64,"hidden_size":32,"intermediate_size":48,
                  "num_hidden_layers":2,"num_attention_heads":8,"num_key_value_heads":2,
                  "max_position_embeddings":64,"sliding_window":4096,"eos_token_id":2})"
            << int(Family::Llama) << qint64(32) << qint64(8) << qint64(2) << qint64(48) << false << false << qint64(2);
        QTest::newRow("qwen2 biases, eos list")
            << R"({"model_type":"qwen2","vocab_size":64,"hidden_size":32,"intermediate_size":48,
                  "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
                  "max_position_embeddings":64,"tie_word_embeddings":true,"eos_token_id":[7,9],
                  "rope_scaling":null})"
            << int(Family::Llama) << qint64(32) << qint64(4) << qint64(2) << qint64(48) << true << true << qint64(7);
    }
    void configParses()
    {
        QFETCH(QString, json);
        QFETCH(int, family);
        QFETCH(qint64, hidden);
        QFETCH(qint64, heads);
        QFETCH(qint64, kvHeads);
        QFETCH(qint64, intermediate);
        QFETCH(bool, tied);
        QFETCH(bool, attentionBias);
        QFETCH(qint64, eos);
        const ModelConfig config = parseModelConfig(nlohmann::json::parse(json.toStdString()));
        QCOMPARE(int(config.family), family);
        QCOMPARE(config.hidden, hidden);
        QCOMPARE(config.heads, heads);
        QCOMPARE(config.kvHeads, kvHeads);
        QCOMPARE(config.intermediate, intermediate);
        QCOMPARE(config.tiedHead, tied);
        QCOMPARE(config.attentionBias, attentionBias);
        QCOMPARE(config.eosTokenId, eos);

        // What toJson writes parses back to the same architecture.
        const ModelConfig again = parseModelConfig(toJson(config));
        QCOMPARE(again.modelType, config.modelType);
        QCOMPARE(again.family, config.family);
        QCOMPARE(again.hidden, config.hidden);
        QCOMPARE(again.layers, config.layers);
        QCOMPARE(again.heads, config.heads);
        QCOMPARE(again.kvHeads, config.kvHeads);
        QCOMPARE(again.intermediate, config.intermediate);
        QCOMPARE(again.maxPositions, config.maxPositions);
        QCOMPARE(again.vocabSize, config.vocabSize);
        QCOMPARE(again.normEps, config.normEps);
        QCOMPARE(again.ropeTheta, config.ropeTheta);
        QCOMPARE(again.tiedHead, config.tiedHead);
        QCOMPARE(again.attentionBias, config.attentionBias);
        QCOMPARE(again.mlpBias, config.mlpBias);
        QCOMPARE(again.activation, config.activation);
        QCOMPARE(again.eosTokenId, config.eosTokenId);
    }

    void fixtureConfigs()
    {
        const ModelConfig gpt2 = loadModelConfig(fixture("gpt2-tiny-f32"));
        QCOMPARE(gpt2.modelType, std::string("gpt2"));
        QCOMPARE(gpt2.vocabSize, int64_t(50));
        QCOMPARE(gpt2.hidden, int64_t(16));
        QCOMPARE(gpt2.layers, int64_t(2));
        QCOMPARE(gpt2.heads, int64_t(4));
        QCOMPARE(gpt2.intermediate, int64_t(64));
        QCOMPARE(gpt2.maxPositions, int64_t(32));
        QCOMPARE(gpt2.normEps, 1e-5);
        QCOMPARE(gpt2.activation, std::string("gelu_new"));
        QCOMPARE(gpt2.torchDtype, std::string("float32"));
        QVERIFY(gpt2.tiedHead);

        const ModelConfig llama = loadModelConfig(fixture("llama-tiny-bf16-sharded"));
        QCOMPARE(llama.family, Family::Llama);
        QCOMPARE(llama.hidden, int64_t(32));
        QCOMPARE(llama.intermediate, int64_t(48));
        QCOMPARE(llama.heads, int64_t(4));
        QCOMPARE(llama.kvHeads, int64_t(2));
        QCOMPARE(llama.headDim(), int64_t(8));
        QCOMPARE(llama.normEps, 1e-6);
        QCOMPARE(llama.ropeTheta, 10000.0);
        QCOMPARE(llama.activation, std::string("silu"));
        QCOMPARE(llama.torchDtype, std::string("bfloat16"));
        QVERIFY(!llama.tiedHead);
        QVERIFY(!llama.attentionBias);
    }

    void configErrors_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("expected");
        const QString llama = R"("vocab_size":64,"hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,
                                 "max_position_embeddings":64)";
        QTest::newRow("not an object") << "[1, 2]"
                                       << "must hold a JSON object";
        QTest::newRow("no model_type") << R"({"vocab_size": 5})"
                                       << R"(no "model_type"; supported model types are gpt2, llama, mistral, qwen2)";
        QTest::newRow("unknown model_type") << R"({"model_type": "bert"})"
                                            << R"("bert" is not supported; supported model types are gpt2, llama)";
        QTest::newRow("missing fields") << R"({"model_type":"gpt2","vocab_size":50,"n_layer":2,"n_positions":8})"
                                        << R"(requires "n_embd", "n_head")";
        QTest::newRow("llama missing heads") << "{\"model_type\":\"llama\"," + llama + "}"
                                             << R"(requires "num_attention_heads")";
        QTest::newRow("zero heads") << R"({"model_type":"gpt2","vocab_size":50,"n_embd":16,"n_layer":2,"n_head":0,
                                           "n_positions":32})"
                                    << "n_head = 0 must be positive";
        QTest::newRow("negative size") << R"({"model_type":"gpt2","vocab_size":-5,"n_embd":16,"n_layer":2,
                                              "n_head":4,"n_positions":32})"
                                       << "vocab_size = -5 must be positive";
        QTest::newRow("hidden not divisible by heads")
            << R"({"model_type":"gpt2","vocab_size":50,"n_embd":18,"n_layer":2,"n_head":4,"n_positions":32})"
            << "n_embd = 18 is not divisible by n_head = 4";
        QTest::newRow("heads not divisible by kv heads")
            << "{\"model_type\":\"llama\",\"num_attention_heads\":4,\"num_key_value_heads\":3," + llama + "}"
            << "num_attention_heads = 4 is not divisible by num_key_value_heads = 3";
        QTest::newRow("string size") << R"({"model_type":"gpt2","vocab_size":"50","n_embd":16,"n_layer":2,
                                             "n_head":4,"n_positions":32})"
                                     << R"("vocab_size" must be an integer)";
        QTest::newRow("float size") << R"({"model_type":"gpt2","vocab_size":50.5,"n_embd":16,"n_layer":2,
                                            "n_head":4,"n_positions":32})"
                                    << R"("vocab_size" must be an integer)";
        QTest::newRow("huge size") << R"({"model_type":"gpt2","vocab_size":50,"n_embd":16,"n_layer":2,
                                           "n_head":4,"n_positions":18446744073709551615})"
                                   << "implausibly large";
        QTest::newRow("rope scaling") << "{\"model_type\":\"llama\",\"num_attention_heads\":4,"
                                         "\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8.0}," +
                                             llama + "}"
                                      << "\"rope_scaling\" {\"factor\":8.0,\"type\":\"llama3\"} is not supported";
        QTest::newRow("odd head_dim") << "{\"model_type\":\"mistral\",\"num_attention_heads\":4,\"head_dim\":16," +
                                             llama + "}"
                                      << "\"head_dim\" = 16 differs from hidden_size / num_attention_heads";
        QTest::newRow("zero epsilon") << "{\"model_type\":\"llama\",\"num_attention_heads\":4,\"rms_norm_eps\":0," +
                                             llama + "}"
                                      << "rms_norm_eps = 0";
        QTest::newRow("bool as string") << "{\"model_type\":\"llama\",\"num_attention_heads\":4,"
                                           "\"tie_word_embeddings\":\"yes\"," +
                                               llama + "}"
                                        << "\"tie_word_embeddings\" must be true or false";
    }
    void configErrors()
    {
        QFETCH(QString, json);
        QFETCH(QString, expected);
        const auto parsed = nlohmann::json::parse(json.toStdString());
        const QString message = errorOf([&] { parseModelConfig(parsed); });
        QVERIFY2(message.contains(expected), qPrintable(message));
        QVERIFY2(message.startsWith("config.json"), qPrintable(message));
    }

    void configFileErrors()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string path = dir.path().toStdString();
        QString message = errorOf([&] { loadModelConfig(path); });
        QVERIFY2(message.contains("no config.json in " + dir.path()), qPrintable(message));

        // nlohmann would silently keep the last of two equal keys.
        writeFile(dir.filePath("config.json"), R"({"model_type": "gpt2", "model_type": "llama"})");
        message = errorOf([&] { loadModelConfig(path); });
        QVERIFY2(message.contains(R"(has the key "model_type" twice)"), qPrintable(message));
        QVERIFY2(message.contains(dir.filePath("config.json")), qPrintable(message));

        writeFile(dir.filePath("config.json"), R"({"model_type": "gpt2",)");
        message = errorOf([&] { loadModelConfig(path); });
        QVERIFY2(message.contains("is not valid JSON"), qPrintable(message));

        writeFile(dir.filePath("config.json"), R"({"model_type": "gpt2", "vocab_size": 50})");
        message = errorOf([&] { loadModelConfig(path); });
        QVERIFY2(message.startsWith(dir.filePath("config.json")), qPrintable(message));
        QVERIFY2(message.contains(R"("n_embd", "n_layer", "n_head", "n_positions")"), qPrintable(message));
    }

    void roundTripIsBitExact_data()
    {
        QTest::addColumn<QString>("folder");
        QTest::addColumn<int>("dtype");
        QTest::newRow("gpt2 f32") << "gpt2-tiny-f32" << int(torch::kFloat32);
        QTest::newRow("gpt2 bf16") << "gpt2-tiny-bf16" << int(torch::kBFloat16);
        QTest::newRow("llama f32") << "llama-tiny-f32" << int(torch::kFloat32);
        QTest::newRow("llama sharded bf16 -> single file") << "llama-tiny-bf16-sharded" << int(torch::kBFloat16);
    }
    void roundTripIsBitExact()
    {
        QFETCH(QString, folder);
        QFETCH(int, dtype);
        const auto type = static_cast<torch::ScalarType>(dtype);
        const std::string source = fixture(folder.toUtf8().constData());
        const StateDict original = loadStateDict(source, type);
        const ModelConfig config = loadModelConfig(source);

        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::string out = tmp.filePath("nested/out").toStdString(); // created on demand
        saveCheckpoint(out, config, original, type);
        QCOMPARE(entries(QString::fromStdString(out)), (QStringList{"config.json", "model.safetensors"}));

        const StateDict reloaded = loadStateDict(out, type);
        QCOMPARE(reloaded.size(), original.size());
        for (const auto &[name, tensor] : original) {
            QVERIFY2(reloaded.count(name), name.c_str());
            QVERIFY2(sameBytes(reloaded.at(name), tensor), name.c_str());
        }
        // The file stores the requested dtype, not an upcast copy.
        const SafetensorsFile written(out + "/model.safetensors");
        QCOMPARE(written.info(original.begin()->first).dtype, std::string(type == torch::kBFloat16 ? "BF16" : "F32"));

        const ModelConfig again = loadModelConfig(out);
        QCOMPARE(again.modelType, config.modelType);
        QCOMPARE(again.hidden, config.hidden);
        QCOMPARE(again.kvHeads, config.kvHeads);
        QCOMPARE(again.intermediate, config.intermediate);
        QCOMPARE(again.tiedHead, config.tiedHead);
        QCOMPARE(again.normEps, config.normEps);
        QCOMPARE(again.torchDtype, std::string(type == torch::kBFloat16 ? "bfloat16" : "float32"));
    }

    void writerLayout()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::string path = tmp.filePath("odd.safetensors").toStdString();
        const torch::Tensor matrix = torch::arange(12, torch::kFloat32).reshape({3, 4});
        NamedTensors tensors = {
            {"transposed", matrix.t()}, // not contiguous: written as its contiguous copy
            {"scalar", torch::tensor(2.5, torch::kFloat64)},
            {"empty", torch::zeros({0, 3}, torch::kFloat16)},
            {"ids", torch::tensor({int64_t(1), int64_t(-2), int64_t(3)})},
            {"mask", torch::tensor({true, false, true})},
        };
        writeSafetensors(path, tensors, {{"format", "pt"}, {"note", "written by the test"}});
        QCOMPARE(entries(tmp.path()), QStringList{"odd.safetensors"});

        // The header is padded with spaces so the data starts 8-byte aligned.
        const QByteArray bytes = readFile(tmp.filePath("odd.safetensors"));
        uint64_t headerSize = 0;
        for (int i = 7; i >= 0; --i)
            headerSize = (headerSize << 8) | uint8_t(bytes[i]);
        QCOMPARE(headerSize % 8, uint64_t(0));
        const QByteArray header = bytes.mid(8, int(headerSize));
        QVERIFY(header.startsWith("{\"__metadata__\""));
        QVERIFY(header.trimmed().endsWith('}'));

        const SafetensorsFile file(path);
        QCOMPARE(file.size(), std::size_t(5));
        QCOMPARE(file.names().front(), std::string("transposed")); // data order = given order
        QCOMPARE(file.metadata().at("note"), std::string("written by the test"));
        QVERIFY(torch::equal(file.tensor("transposed"), matrix.t()));
        QVERIFY(file.tensor("transposed").is_contiguous());
        QCOMPARE(file.tensor("scalar").dim(), int64_t(0));
        QCOMPARE(file.tensor("scalar").item<double>(), 2.5);
        QCOMPARE(file.tensor("empty").sizes().vec(), (std::vector<int64_t>{0, 3}));
        QVERIFY(file.tensor("empty").scalar_type() == torch::kHalf);
        QVERIFY(torch::equal(file.tensor("ids"), tensors[3].second));
        QVERIFY(torch::equal(file.tensor("mask"), tensors[4].second));
        QCOMPARE(file.info("ids").dtype, std::string("I64"));
        QCOMPARE(file.info("mask").dtype, std::string("BOOL"));

        QString message = errorOf([&] { file.tensor("nope"); });
        QVERIFY2(message.contains("has no tensor \"nope\""), qPrintable(message));
    }

    void writerRejectsBadInput_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QString>("expected");
        QTest::newRow("duplicate name") << "duplicate"
                                        << "is given twice";
        QTest::newRow("reserved name") << "reserved"
                                       << "reserved";
        QTest::newRow("undefined tensor") << "undefined"
                                          << "undefined";
        QTest::newRow("complex dtype") << "complex"
                                       << "cannot be stored in safetensors";
    }
    void writerRejectsBadInput()
    {
        QFETCH(QString, kind);
        QFETCH(QString, expected);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const torch::Tensor one = torch::ones({2});
        NamedTensors tensors = {{"a", one}};
        if (kind == "duplicate")
            tensors.push_back({"a", one});
        else if (kind == "reserved")
            tensors.push_back({"__metadata__", one});
        else if (kind == "undefined")
            tensors.push_back({"b", torch::Tensor()});
        else
            tensors.push_back({"b", torch::ones({2}, torch::kComplexFloat)});
        const QString message =
            errorOf([&] { writeSafetensors(tmp.filePath("x.safetensors").toStdString(), tensors); });
        QVERIFY2(message.contains(expected), qPrintable(message));
        QVERIFY(entries(tmp.path()).isEmpty()); // neither the file nor a temporary
    }

    void corruptedFiles_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("expected");
        const auto one = [](const QByteArray &entry) { return QByteArray("{\"t\": ") + entry + "}"; };

        QTest::newRow("empty file") << QByteArray() << "too short for the 8-byte header length";
        QTest::newRow("truncated header length") << QByteArray("\x10\x00\x00", 3) << "too short";
        QTest::newRow("header length larger than file")
            << lengthPrefix(1000) + QByteArray("{}") << "header length 1000 bytes is larger than the file (10 bytes)";
        QTest::newRow("header length over the limit")
            << lengthPrefix(uint64_t(1) << 40) + QByteArray("{}") << "exceeds the 100000000-byte limit";
        QTest::newRow("header length 2^64-1") << lengthPrefix(~uint64_t(0)) << "exceeds";
        QTest::newRow("invalid JSON") << rawSafetensors("{\"t\": {\"dtype\": ", 0) << "is not valid JSON";
        QTest::newRow("invalid UTF-8") << rawSafetensors("{\"\xff\xfe\": 1}", 0) << "is not valid JSON";
        QTest::newRow("header not an object")
            << rawSafetensors("[1, 2, 3]", 0) << "the header is a JSON array, not an object of tensors";
        QTest::newRow("entry not an object")
            << rawSafetensors(one("[]"), 0) << "tensor \"t\" is described by a JSON array";
        QTest::newRow("unknown dtype") << rawSafetensors(
                                              one(R"({"dtype": "F12", "shape": [2], "data_offsets": [0, 8]})"), 8)
                                       << "tensor \"t\" has the unknown dtype \"F12\"";
        QTest::newRow("dtype not a string")
            << rawSafetensors(one(R"({"dtype": 4, "shape": [2], "data_offsets": [0, 8]})"), 8)
            << "dtype is not a string";
        QTest::newRow("missing field") << rawSafetensors(one(R"({"dtype": "F32", "shape": [2]})"), 8)
                                       << "tensor \"t\" lacks the field \"data_offsets\"";
        QTest::newRow("extra field") << rawSafetensors(
                                            one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1})"), 8)
                                     << "unexpected field \"x\"";
        QTest::newRow("shape/byte-size mismatch")
            << rawSafetensors(one(R"({"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]})"), 16)
            << "tensor \"t\": shape and dtype F32 need 16 bytes but data_offsets span 8";
        QTest::newRow("offsets past the end")
            << rawSafetensors(one(R"({"dtype": "F32", "shape": [4], "data_offsets": [0, 16]})"), 8)
            << "data_offsets end 16 is past the end of the data buffer (8 bytes)";
        QTest::newRow("offsets far past the end")
            << rawSafetensors(
                   one(R"({"dtype": "U8", "shape": [8], "data_offsets": [18446744073709551608, 18446744073709551615]})"),
                   8)
            << "past the end of the data buffer";
        QTest::newRow("begin after end") << rawSafetensors(
                                                one(R"({"dtype": "F32", "shape": [0], "data_offsets": [8, 0]})"), 8)
                                         << "data_offsets begin 8 is after end 0";
        QTest::newRow("offsets not integers")
            << rawSafetensors(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8]})"), 8)
            << "are not non-negative integers";
        QTest::newRow("three offsets") << rawSafetensors(
                                              one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 9]})"), 8)
                                       << "data_offsets is not an array of two integers";
        QTest::newRow("overlapping tensors")
            << rawSafetensors(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                  "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
                              24)
            << "tensors \"a\" and \"b\" overlap in the data buffer";
        QTest::newRow("same range twice")
            << rawSafetensors(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}})",
                              8)
            << "overlap";
        QTest::newRow("negative dimension")
            << rawSafetensors(one(R"({"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]})"), 16)
            << "tensor \"t\": shape has the negative dimension -1";
        QTest::newRow("fractional dimension")
            << rawSafetensors(one(R"({"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]})"), 8)
            << "is not a non-negative integer";
        QTest::newRow("huge dims whose product overflows")
            << rawSafetensors(
                   one(R"({"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 16]})"), 16)
            << "tensor \"t\": the product of its shape overflows";
        QTest::newRow("byte size overflows")
            << rawSafetensors(one(R"({"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 8]})"), 8)
            << "overflows";
        QTest::newRow("dimension beyond int64")
            << rawSafetensors(one(R"({"dtype": "U8", "shape": [18446744073709551615, 0], "data_offsets": [0, 0]})"), 0)
            << "is too large";
        QTest::newRow("duplicate tensor name")
            << rawSafetensors(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                  "t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                              8)
            << "has the key \"t\" twice";
        QTest::newRow("metadata not strings") << rawSafetensors(R"({"__metadata__": {"format": 1}})", 0)
                                              << "__metadata__ entry \"format\" is not a string";
        QTest::newRow("absurd nesting") << rawSafetensors(QByteArray(100000, '[') + QByteArray(100000, ']'), 0)
                                        << "nested more than";
        QTest::newRow("bool holding 7") << rawSafetensors(
                                               one(R"({"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]})"), 1,
                                               '\x07')
                                        << "is BOOL but holds the byte 7";
        QTest::newRow("dtype without a libtorch type")
            << rawSafetensors(one(R"({"dtype": "U16", "shape": [2], "data_offsets": [0, 4]})"), 4)
            << "has dtype U16, which this build cannot represent";
    }
    void corruptedFiles()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, expected);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString path = tmp.filePath("model.safetensors");
        writeFile(path, bytes);
        // Some problems only show when the tensor is read: read them all.
        const QString message = errorOf([&] {
            const SafetensorsFile file(path.toStdString());
            for (const auto &name : file.names())
                file.tensor(name);
        });
        QVERIFY2(message.contains(expected), qPrintable(message));
        QVERIFY2(message.contains(path), qPrintable(message)); // names the file

        // The folder-level loader reports the same problem.
        const QString viaFolder = errorOf([&] { loadStateDict(tmp.path().toStdString()); });
        QVERIFY2(viaFolder.contains(expected), qPrintable(viaFolder));
    }

    // Beyond the hand-written cases: every truncation of a real file and
    // random byte flips in its header either load or throw CheckpointError.
    void truncatedAndMutatedFilesNeverCrash()
    {
        const QByteArray original = readFile(QString::fromStdString(fixture("gpt2-tiny-f32") + "/model.safetensors"));
        QVERIFY(original.size() > 3000);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString path = tmp.filePath("model.safetensors");
        int loaded = 0;
        int rejected = 0;
        const auto attempt = [&](const QByteArray &bytes) {
            writeFile(path, bytes);
            try {
                const SafetensorsFile file(path.toStdString());
                for (const auto &name : file.names())
                    file.tensor(name);
                ++loaded;
            } catch (const CheckpointError &) {
                ++rejected;
            }
        };
        // All cuts inside the length and the header, then a sample of the data.
        for (int size = 0; size < original.size(); size += size < 2600 ? 1 : 331)
            attempt(original.left(size));
        QCOMPARE(loaded, 0); // every truncation loses bytes some tensor needs
        const int truncations = rejected;

        uint32_t state = 12345; // a fixed LCG: the same cases on every run
        const auto next = [&state] { return state = state * 1664525u + 1013904223u; };
        for (int i = 0; i < 2000; ++i) {
            QByteArray bytes = original;
            const int flips = 1 + int(next() % 3);
            for (int f = 0; f < flips; ++f)
                bytes[int(next() % 2568)] = char(next() & 0xff); // length prefix + header
            attempt(bytes);
        }
        QCOMPARE(loaded + rejected, truncations + 2000);
        QVERIFY(rejected > truncations); // most flips break something
    }

    void shardedIndexErrors_data()
    {
        QTest::addColumn<QString>("tensor");
        QTest::addColumn<QString>("shard"); // "" removes the tensor from the weight map
        QTest::addColumn<QString>("expected");
        QTest::newRow("missing shard") << "lm_head.weight"
                                       << "model-00003-of-00003.safetensors"
                                       << "names the shard model-00003-of-00003.safetensors, but";
        QTest::newRow("parent path") << "lm_head.weight"
                                     << "../model-00002-of-00002.safetensors"
                                     << "must be a plain file name inside the model folder";
        QTest::newRow("absolute path") << "lm_head.weight"
                                       << "/etc/passwd"
                                       << "refusing to read outside the folder";
        QTest::newRow("dot dot") << "lm_head.weight"
                                 << ".."
                                 << "must be a plain file name";
        QTest::newRow("backslash") << "lm_head.weight"
                                   << "..\\x.safetensors"
                                   << "must be a plain file name";
        QTest::newRow("pickle shard") << "lm_head.weight"
                                      << "pytorch_model-00001-of-00002.bin"
                                      << "is a pickle; .bin/.pt pickles are not read because they can execute code";
        QTest::newRow("tensor not in its shard") << "extra.weight"
                                                 << "model-00001-of-00002.safetensors"
                                                 << "places the tensor \"extra.weight\" in "
                                                    "model-00001-of-00002.safetensors, but that shard has no such";
        QTest::newRow("tensor in another shard") << "lm_head.weight"
                                                 << "model-00001-of-00002.safetensors"
                                                 << "\"lm_head.weight\" is stored in model-00002-of-00002.safetensors, "
                                                    "but";
        QTest::newRow("tensor not listed") << "lm_head.weight"
                                           << ""
                                           << "holds the tensor \"lm_head.weight\", which";
    }
    void shardedIndexErrors()
    {
        QFETCH(QString, tensor);
        QFETCH(QString, shard);
        QFETCH(QString, expected);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString dir = tmp.filePath("model");
        copyFolder(QString::fromStdString(fixture("llama-tiny-bf16-sharded")), dir);
        // A file one level up that a '../' shard name would reach.
        QVERIFY(
            QFile::copy(dir + "/model-00002-of-00002.safetensors", tmp.filePath("model-00002-of-00002.safetensors")));

        const QString indexPath = dir + "/model.safetensors.index.json";
        auto index = nlohmann::json::parse(readFile(indexPath).toStdString());
        if (shard.isEmpty())
            index["weight_map"].erase(tensor.toStdString());
        else
            index["weight_map"][tensor.toStdString()] = shard.toStdString();
        writeFile(indexPath, QByteArray::fromStdString(index.dump(1)));

        const QString message = errorOf([&] { loadStateDict(dir.toStdString()); });
        QVERIFY2(message.contains(expected), qPrintable(message));
    }

    void malformedIndex_data()
    {
        QTest::addColumn<QByteArray>("index");
        QTest::addColumn<QString>("expected");
        QTest::newRow("no weight_map") << QByteArray(R"({"metadata": {}})") << "has no \"weight_map\" object";
        QTest::newRow("empty weight_map") << QByteArray(R"({"weight_map": {}})") << "lists no tensors";
        QTest::newRow("shard not a string") << QByteArray(R"({"weight_map": {"a": 3}})") << "not a file name";
        QTest::newRow("duplicate tensor")
            << QByteArray(R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})")
            << "has the key \"a\" twice";
        QTest::newRow("not JSON") << QByteArray("weight_map") << "is not valid JSON";
    }
    void malformedIndex()
    {
        QFETCH(QByteArray, index);
        QFETCH(QString, expected);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        writeFile(tmp.filePath("model.safetensors.index.json"), index);
        const QString message = errorOf([&] { loadStateDict(tmp.path().toStdString()); });
        QVERIFY2(message.contains(expected), qPrintable(message));
    }

    void missingFilesAreExplained()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::string dir = tmp.path().toStdString();
        const QString noWeights = "no model.safetensors or model.safetensors.index.json in " + tmp.path() +
                                  ": a Hugging Face model folder is expected; .bin/.pt pickles are not read because "
                                  "they can execute code";
        QString message = errorOf([&] { loadStateDict(dir); });
        QVERIFY2(message.startsWith(noWeights), qPrintable(message));
        QVERIFY(!checkCheckpointDir(dir).ok());
        QVERIFY(QString::fromStdString(checkCheckpointDir(dir).message()).startsWith(noWeights));

        // A pickle is pointed out, and never opened (its content would not parse anyway).
        writeFile(tmp.filePath("pytorch_model.bin"), QByteArray("\x80\x02}q\x00.", 6));
        message = errorOf([&] { loadStateDict(dir); });
        QVERIFY2(message.startsWith(noWeights) && message.contains("found pytorch_model.bin"), qPrintable(message));

        // Weights but no config.
        QVERIFY(QFile::copy(QString::fromStdString(fixture("gpt2-tiny-f32") + "/model.safetensors"),
                            tmp.filePath("model.safetensors")));
        QCOMPARE(loadStateDict(dir).size(), std::size_t(28));
        const oedit::Status status = checkCheckpointDir(dir);
        QVERIFY(!status.ok());
        QVERIFY2(QString::fromStdString(status.message()).startsWith("no config.json in " + tmp.path()),
                 status.message().c_str());

        message = errorOf([&] { loadStateDict(dir + "/does-not-exist"); });
        QVERIFY2(message.contains("does not exist"), qPrintable(message));
        message = errorOf([&] { loadStateDict(dir + "/model.safetensors"); });
        QVERIFY2(message.contains("is not a folder"), qPrintable(message));
    }

    void failedSaveLeavesOldFilesAndNoTemporary()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString out = tmp.filePath("out");
        const std::string source = fixture("gpt2-tiny-f32");
        const ModelConfig config = loadModelConfig(source);
        StateDict state = loadStateDict(source);
        saveCheckpoint(out.toStdString(), config, state);
        const QStringList written{"config.json", "model.safetensors"};
        QCOMPARE(entries(out), written);
        const QByteArray oldWeights = readFile(out + "/model.safetensors");
        const QByteArray oldConfig = readFile(out + "/config.json");
        QVERIFY(!oldWeights.isEmpty() && !oldConfig.isEmpty());

        const auto unchanged = [&] {
            return entries(out) == written && readFile(out + "/model.safetensors") == oldWeights &&
                   readFile(out + "/config.json") == oldConfig;
        };
        // Scaled weights so a partial overwrite would show.
        StateDict changed;
        for (const auto &[name, tensor] : state)
            changed[name] = tensor * 2;

        StateDict withComplex = changed;
        withComplex["zzz.complex"] = torch::ones({2}, torch::kComplexFloat); // sorted last: fails late
        QString message = errorOf([&] { saveCheckpoint(out.toStdString(), config, withComplex); });
        QVERIFY2(message.contains("cannot be stored in safetensors"), qPrintable(message));
        QVERIFY(unchanged());

        StateDict withUndefined = changed;
        withUndefined["zzz.undefined"] = torch::Tensor();
        message = errorOf([&] { saveCheckpoint(out.toStdString(), config, withUndefined); });
        QVERIFY2(message.contains("\"zzz.undefined\" is undefined"), qPrintable(message));
        QVERIFY(unchanged());

        ModelConfig badConfig = config;
        badConfig.heads = 5;
        message = errorOf([&] { saveCheckpoint(out.toStdString(), badConfig, changed); });
        QVERIFY2(message.contains("n_embd = 16 is not divisible by n_head = 5"), qPrintable(message));
        QVERIFY(unchanged());

        message = errorOf([&] { saveCheckpoint(out.toStdString(), config, StateDict()); });
        QVERIFY2(message.contains("empty state dict"), qPrintable(message));
        QVERIFY(unchanged());

        message = errorOf([&] { saveCheckpoint(out.toStdString(), config, changed, torch::kInt32); });
        QVERIFY2(message.contains("is not a floating-point type"), qPrintable(message));
        QVERIFY(unchanged());

        // A path that is a file is never replaced by a folder.
        message = errorOf([&] { saveCheckpoint((out + "/config.json").toStdString(), config, changed); });
        QVERIFY2(message.contains("exists and is not a folder"), qPrintable(message));
        QVERIFY(unchanged());

        // A failure after the data is written (the rename onto a folder fails):
        // the temporary is removed and the folder in the way is untouched.
        QVERIFY(QDir(out).mkdir("blocked.safetensors"));
        const NamedTensors small = {{"a", torch::ones({4})}};
        message = errorOf([&] { writeSafetensors((out + "/blocked.safetensors").toStdString(), small); });
        QVERIFY2(message.contains("cannot replace"), qPrintable(message));
        QCOMPARE(entries(out), (QStringList{"blocked.safetensors", "config.json", "model.safetensors"}));
        QVERIFY(QFileInfo(out + "/blocked.safetensors").isDir());
        QVERIFY(QDir(out).rmdir("blocked.safetensors"));
        QVERIFY(unchanged());

        // saveCheckpoint checks for such a folder before writing anything.
        const QString other = tmp.filePath("other");
        QVERIFY(QDir().mkpath(other + "/model.safetensors"));
        message = errorOf([&] { saveCheckpoint(other.toStdString(), config, changed); });
        QVERIFY2(message.contains("model.safetensors is a folder; refusing to replace it"), qPrintable(message));
        QCOMPARE(entries(other), QStringList{"model.safetensors"});

        // And a successful save replaces both files, leaving nothing else.
        saveCheckpoint(out.toStdString(), config, changed);
        QCOMPARE(entries(out), written);
        QVERIFY(readFile(out + "/model.safetensors") != oldWeights);
        const StateDict reloaded = loadStateDict(out.toStdString());
        for (const auto &[name, tensor] : changed)
            QVERIFY2(sameBytes(reloaded.at(name), tensor), name.c_str());
    }

    void integerTensorsKeepTheirType()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const ModelConfig config = loadModelConfig(fixture("gpt2-tiny-f32"));
        StateDict state = loadStateDict(fixture("gpt2-tiny-f32"));
        state["transformer.h.0.attn.bias"] = torch::ones({1, 1, 4, 4}, torch::kUInt8).tril();
        saveCheckpoint(tmp.path().toStdString(), config, state, torch::kBFloat16);
        const StateDict reloaded = loadStateDict(tmp.path().toStdString(), torch::kFloat32);
        QVERIFY(reloaded.at("transformer.h.0.attn.bias").scalar_type() == torch::kUInt8);
        QVERIFY(torch::equal(reloaded.at("transformer.h.0.attn.bias"), state.at("transformer.h.0.attn.bias")));
        QVERIFY(reloaded.at("transformer.wte.weight").scalar_type() == torch::kFloat32);
        // bf16 storage rounds: close, but not equal, to the f32 original.
        QVERIFY(torch::allclose(reloaded.at("transformer.wte.weight"), state.at("transformer.wte.weight"), 1e-2, 1e-2));
    }
};

QTEST_GUILESS_MAIN(TestCheckpoint)
#include "tst_checkpoint.moc"
