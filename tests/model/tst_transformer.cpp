// The transformer's forward pass against an independent reference (the hf-tiny
// fixtures), and the hooks the editors rely on.
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/transformer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace oedit::model;

namespace {

QString fixture(const char *name)
{
    return QStringLiteral(OEDIT_TEST_DATA "/fixtures/hf-tiny/") + QString::fromLatin1(name);
}

Transformer loadFixture(const QString &dir)
{
    const std::string path = dir.toStdString();
    return Transformer(loadModelConfig(path), loadStateDict(path, torch::kFloat32));
}

nlohmann::json expected(const QString &dir)
{
    std::ifstream in((dir + QStringLiteral("/expected.json")).toStdString());
    return nlohmann::json::parse(in);
}

torch::Tensor toTensor(const nlohmann::json &rows)
{
    std::vector<float> flat;
    for (const auto &row : rows)
        for (const auto &value : row)
            flat.push_back(value.get<float>());
    return torch::tensor(flat).view({static_cast<int64_t>(rows.size()), -1});
}

double maxAbsDiff(const torch::Tensor &a, const torch::Tensor &b)
{
    return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

} // namespace

class TestTransformer : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void matchesReference_data()
    {
        QTest::addColumn<QString>("dir");
        QTest::newRow("gpt2 f32") << fixture("gpt2-tiny-f32");
        QTest::newRow("gpt2 bf16") << fixture("gpt2-tiny-bf16");
        QTest::newRow("llama f32 (GQA)") << fixture("llama-tiny-f32");
        QTest::newRow("llama bf16 sharded") << fixture("llama-tiny-bf16-sharded");
    }

    void matchesReference()
    {
        QFETCH(QString, dir);
        const Transformer model = loadFixture(dir);
        const auto reference = expected(dir);
        torch::NoGradGuard noGrad;
        for (const auto &testCase : reference["cases"]) {
            const auto ids = torch::tensor(testCase["input_ids"].get<std::vector<int64_t>>()).unsqueeze(0);
            ForwardHooks hooks;
            hooks.captureMlpKeys = {1};
            hooks.captureMlpValues = {1};
            const auto logits = model.forward(ids, {}, &hooks);
            const double logitError = maxAbsDiff(logits[0], toTensor(testCase["logits"]));
            QVERIFY2(logitError < 1e-4, qPrintable(QStringLiteral("logits differ by %1").arg(logitError)));
            const double keyError = maxAbsDiff(hooks.mlpKeys.at(1)[0], toTensor(testCase["mlp_key_layer1"]));
            QVERIFY2(keyError < 1e-4, qPrintable(QStringLiteral("MLP keys differ by %1").arg(keyError)));
            const double valueError = maxAbsDiff(hooks.mlpValues.at(1)[0], toTensor(testCase["mlp_value_layer1"]));
            QVERIFY2(valueError < 1e-4, qPrintable(QStringLiteral("MLP values differ by %1").arg(valueError)));
        }
    }

    void paddingDoesNotChangeResults_data()
    {
        QTest::addColumn<QString>("dir");
        QTest::addColumn<bool>("padLeft");
        QTest::newRow("gpt2 right") << fixture("gpt2-tiny-f32") << false;
        QTest::newRow("gpt2 left") << fixture("gpt2-tiny-f32") << true;
        QTest::newRow("llama right") << fixture("llama-tiny-f32") << false;
        QTest::newRow("llama left") << fixture("llama-tiny-f32") << true;
    }

    void paddingDoesNotChangeResults()
    {
        QFETCH(QString, dir);
        QFETCH(bool, padLeft);
        const Transformer model = loadFixture(dir);
        torch::NoGradGuard noGrad;
        const std::vector<std::vector<int64_t>> sequences = {{5, 9, 2, 7, 1, 3}, {4, 8}, {11, 12, 13}};
        const Batch batch = padBatch(sequences, 0, padLeft);
        const auto batched = model.forward(batch.ids, batch.mask);
        for (size_t row = 0; row < sequences.size(); ++row) {
            const auto alone = model.forward(torch::tensor(sequences[row]).unsqueeze(0))[0];
            const int64_t n = static_cast<int64_t>(sequences[row].size());
            const int64_t offset = padLeft ? batch.ids.size(1) - n : 0;
            const auto slice = batched[static_cast<int64_t>(row)].slice(0, offset, offset + n);
            QVERIFY2(maxAbsDiff(slice, alone) < 1e-4, qPrintable(QStringLiteral("row %1").arg(row)));
        }
    }

    void interventionAddsToTheMlpOutputAndCarriesGradient()
    {
        const Transformer model = loadFixture(fixture("llama-tiny-f32"));
        const auto ids = torch::tensor(std::vector<int64_t>{3, 14, 15, 9, 2}).unsqueeze(0);
        ForwardHooks plain;
        plain.captureMlpValues = {0};
        const auto before = model.forward(ids, {}, &plain);

        auto delta = torch::randn({model.config().hidden}, torch::requires_grad());
        ForwardHooks edited;
        edited.captureMlpValues = {0};
        edited.interventions.push_back({0, Site::MlpOut, {0}, {2}, delta});
        const auto after = model.forward(ids, {}, &edited);

        const auto change = (edited.mlpValues.at(0) - plain.mlpValues.at(0))[0];
        QVERIFY(maxAbsDiff(change[2], delta.detach()) < 1e-5);
        QVERIFY(change.slice(0, 0, 2).abs().max().item<double>() < 1e-6); // earlier positions untouched
        QVERIFY(maxAbsDiff(before[0].slice(0, 0, 2), after[0].slice(0, 0, 2)) < 1e-5); // causality
        after[0][4].sum().backward();
        QVERIFY(delta.grad().defined());
        QVERIFY(delta.grad().abs().sum().item<double>() > 0);
    }

    // The halves of forward() the value search uses give forward()'s results:
    // resuming at a layer, and recomputing only the positions after a frozen
    // prefix (left padding, an intervention, gradients to it).
    void partialForwardsMatchForward_data()
    {
        QTest::addColumn<QString>("dir");
        QTest::addColumn<QString>("site");
        QTest::newRow("gpt2 mlp") << fixture("gpt2-tiny-f32") << "mlp";
        QTest::newRow("gpt2 block") << fixture("gpt2-tiny-f32") << "block";
        QTest::newRow("llama (GQA) mlp") << fixture("llama-tiny-f32") << "mlp";
        QTest::newRow("llama (GQA) block") << fixture("llama-tiny-f32") << "block";
    }
    void partialForwardsMatchForward()
    {
        QFETCH(QString, dir);
        QFETCH(QString, site);
        const Transformer model = loadFixture(dir);
        const std::vector<std::vector<int64_t>> sequences = {{5, 9, 2, 7, 1, 3}, {4, 8, 6}, {11, 12, 13, 14}};
        const Batch batch = padBatch(sequences, 0, /*padLeft=*/true);
        const int64_t T = batch.ids.size(1), layer = 1, start = T - 3;
        const Site where = site == "mlp" ? Site::MlpOut : Site::BlockOut;
        const std::vector<int64_t> rows = {0, 1, 2}, positions = {T - 2, T - 3, T - 2};
        auto withDelta = [&](const torch::Tensor &delta, int64_t offset) {
            ForwardHooks hooks;
            std::vector<int64_t> shifted;
            for (const auto p : positions)
                shifted.push_back(p - offset);
            hooks.interventions.push_back({layer, where, rows, shifted, delta});
            return hooks;
        };
        const auto delta = torch::randn({model.config().hidden});
        auto fullHooks = withDelta(delta, 0);
        const auto full = model.forward(batch.ids, batch.mask, &fullHooks).detach();

        ForwardHooks keyHooks;
        keyHooks.captureMlpKeys = {layer};
        model.forward(batch.ids, batch.mask, &keyHooks);
        QVERIFY2(maxAbsDiff(model.mlpKeysAt(batch.ids, batch.mask, layer), keyHooks.mlpKeys.at(layer)) < 1e-5,
                 "mlpKeysAt");

        auto resumedHooks = withDelta(delta, 0);
        const auto resumed = model.headLogits(
            model.forwardFrom(layer, model.residualBefore(batch.ids, batch.mask, layer), batch.mask, &resumedHooks));
        QVERIFY2(maxAbsDiff(resumed, full) < 1e-4, "forwardFrom");

        const auto frozen = model.freezePrefix(batch.ids, batch.mask, layer, start);
        auto suffixDelta = delta.clone().set_requires_grad(true);
        auto suffixHooks = withDelta(suffixDelta, start);
        const auto suffix = model.headLogits(model.forwardSuffix(frozen, &suffixHooks));
        QCOMPARE(suffix.size(1), T - start);
        QVERIFY2(maxAbsDiff(suffix.detach(), full.narrow(1, start, T - start)) < 1e-4, "forwardSuffix");

        // The gradient reaching delta is the full pass's.
        auto fullDelta = delta.clone().set_requires_grad(true);
        auto gradHooks = withDelta(fullDelta, 0);
        model.forward(batch.ids, batch.mask, &gradHooks).narrow(1, start, T - start).pow(2).sum().backward();
        suffix.pow(2).sum().backward();
        QVERIFY(fullDelta.grad().abs().sum().item<double>() > 0);
        QVERIFY2(maxAbsDiff(suffixDelta.grad(), fullDelta.grad()) < 1e-3 * fullDelta.grad().abs().max().item<double>(),
                 "gradient");
    }

    void mlpOutWeightUsesOneConvention_data()
    {
        QTest::addColumn<QString>("dir");
        QTest::newRow("gpt2 (Conv1D stored transposed)") << fixture("gpt2-tiny-f32");
        QTest::newRow("llama") << fixture("llama-tiny-f32");
    }

    void mlpOutWeightUsesOneConvention()
    {
        QFETCH(QString, dir);
        Transformer model = loadFixture(dir);
        const auto ids = torch::tensor(std::vector<int64_t>{1, 2, 3, 4}).unsqueeze(0);
        ForwardHooks hooks;
        hooks.captureMlpKeys = {1};
        hooks.captureMlpValues = {1};
        torch::NoGradGuard noGrad;
        model.forward(ids, {}, &hooks);
        const auto W = model.mlpOutWeight(1);
        QCOMPARE(W.size(0), model.config().hidden);
        QCOMPARE(W.size(1), model.mlpKeyWidth());
        // v - b = W k at every position.
        const auto k = hooks.mlpKeys.at(1)[0], v = hooks.mlpValues.at(1)[0];
        const auto predicted = torch::matmul(k, W.t());
        const auto bias = v - predicted;
        QVERIFY(maxAbsDiff(bias[0], bias[3]) < 1e-5); // the remainder is the constant bias

        // A rank-one change of W moves the value by exactly (dW k).
        const auto u = torch::randn({model.config().hidden}), kv = torch::randn({model.mlpKeyWidth()});
        const auto dW = torch::outer(u, kv) * 0.01;
        model.setMlpOutWeight(1, W + dW);
        ForwardHooks after;
        after.captureMlpKeys = {1};
        after.captureMlpValues = {1};
        model.forward(ids, {}, &after);
        const auto expectedValue = v + torch::matmul(k, dW.t());
        QVERIFY(maxAbsDiff(after.mlpValues.at(1)[0], expectedValue) < 1e-5);
        QVERIFY(maxAbsDiff(model.weights().at(model.mlpOutWeightName(1)).to(torch::kFloat).flatten().sum(),
                           (model.config().family == Family::Gpt2 ? (W + dW).t() : (W + dW)).flatten().sum()) < 1e-3);
        QVERIFY_EXCEPTION_THROWN(model.setMlpOutWeight(1, torch::zeros({2, 2})), std::runtime_error);
    }

    void scoringMatchesTheLogits()
    {
        const Transformer model = loadFixture(fixture("gpt2-tiny-f32"));
        const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3}, {7, 8}};
        const std::vector<std::vector<int64_t>> targets = {{4, 5}, {9, 10, 11}};
        const auto scores = model.scoreContinuations(prompts, targets, 0);
        QCOMPARE(scores.size(), size_t(2));
        torch::NoGradGuard noGrad;
        for (size_t i = 0; i < prompts.size(); ++i) {
            auto sequence = prompts[i];
            sequence.insert(sequence.end(), targets[i].begin(), targets[i].end());
            const auto logProbs = torch::log_softmax(model.forward(torch::tensor(sequence).unsqueeze(0))[0], -1);
            QCOMPARE(scores[i].tokenLogProbs.size(), targets[i].size());
            for (size_t j = 0; j < targets[i].size(); ++j) {
                const double expectedLogProb =
                    logProbs[static_cast<int64_t>(prompts[i].size() + j - 1)][targets[i][j]].item<double>();
                QVERIFY(std::abs(scores[i].tokenLogProbs[j] - expectedLogProb) < 1e-5);
            }
        }
    }

    void greedyGenerationFollowsTheArgmax()
    {
        const Transformer model = loadFixture(fixture("llama-tiny-f32"));
        const std::vector<int64_t> prompt = {5, 6, 7};
        const auto generated = model.generate(prompt, 6);
        QCOMPARE(generated.size(), size_t(6));
        torch::NoGradGuard noGrad;
        auto sequence = prompt;
        for (int64_t token : generated) {
            const auto next = model.forward(torch::tensor(sequence).unsqueeze(0))[0][-1].argmax().item<int64_t>();
            QCOMPARE(token, next);
            sequence.push_back(token);
        }
        // Sampling is repeatable for a seed and stays inside the vocabulary.
        const auto sampledA = model.generate(prompt, 8, 5, std::nullopt, 42);
        const auto sampledB = model.generate(prompt, 8, 5, std::nullopt, 42);
        QCOMPARE(sampledA, sampledB);
        for (int64_t token : sampledA)
            QVERIFY(token >= 0 && token < model.config().vocabSize);
    }

    void randomCheckpointsRoundTrip_data()
    {
        QTest::addColumn<QString>("modelType");
        QTest::newRow("gpt2") << QStringLiteral("gpt2");
        QTest::newRow("llama") << QStringLiteral("llama");
        QTest::newRow("qwen2 (q/k/v biases)") << QStringLiteral("qwen2");
    }

    void randomCheckpointsRoundTrip()
    {
        QFETCH(QString, modelType);
        ModelConfig config;
        config.family = modelType == QStringLiteral("gpt2") ? Family::Gpt2 : Family::Llama;
        config.modelType = modelType.toStdString();
        config.vocabSize = 40;
        config.hidden = 24;
        config.layers = 3;
        config.heads = 4;
        config.kvHeads = config.family == Family::Gpt2 ? 4 : 2;
        config.intermediate = config.family == Family::Gpt2 ? 96 : 40;
        config.maxPositions = 32;
        config.tiedHead = config.family == Family::Gpt2;
        config.attentionBias = modelType == QStringLiteral("qwen2");
        config.activation = config.family == Family::Gpt2 ? "gelu_new" : "silu";
        config.normEps = 1e-5;

        const auto weights = initialWeights(config, 7);
        const auto again = initialWeights(config, 7);
        for (const auto &[name, tensor] : weights)
            QVERIFY2(torch::equal(tensor, again.at(name)), name.c_str()); // deterministic given the seed

        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string path = dir.filePath(QStringLiteral("model")).toStdString();
        saveCheckpoint(path, config, weights, torch::kFloat32);
        const Transformer original(config, weights);
        const Transformer loaded(loadModelConfig(path), loadStateDict(path, torch::kFloat32));
        QCOMPARE(loaded.parameterCount(), original.parameterCount());

        torch::NoGradGuard noGrad;
        const Batch batch = padBatch({{1, 2, 3, 4, 5}, {6, 7}}, 0);
        const auto logits = loaded.forward(batch.ids, batch.mask);
        QCOMPARE(logits.sizes().vec(), (std::vector<int64_t>{2, 5, config.vocabSize}));
        QVERIFY(torch::equal(logits, original.forward(batch.ids, batch.mask)));
        QVERIFY(torch::equal(logits, loaded.forward(batch.ids, batch.mask))); // repeatable
        QVERIFY(torch::isfinite(logits).all().item<bool>());
    }

    void badInputIsAClearError()
    {
        const Transformer model = loadFixture(fixture("gpt2-tiny-f32"));
        try {
            model.forward(torch::tensor(std::vector<int64_t>{1, 999}).unsqueeze(0));
            QFAIL("an id outside the vocabulary must be refused");
        } catch (const std::runtime_error &error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QStringLiteral("vocabulary")));
        }
        TensorMap incomplete = loadStateDict(fixture("gpt2-tiny-f32").toStdString(), torch::kFloat32);
        incomplete.erase("transformer.h.1.mlp.c_proj.weight");
        try {
            Transformer broken(loadModelConfig(fixture("gpt2-tiny-f32").toStdString()), incomplete);
            QFAIL("a missing tensor must be refused");
        } catch (const std::runtime_error &error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QStringLiteral("transformer.h.1.mlp.c_proj.weight")));
        }
        // A weight stored as integers (a mislabelled dtype) is refused, not cast.
        TensorMap integers = loadStateDict(fixture("gpt2-tiny-f32").toStdString(), torch::kFloat32);
        integers["transformer.ln_f.weight"] = integers["transformer.ln_f.weight"].to(torch::kLong);
        QVERIFY(refusalOf(integers).contains(QStringLiteral("'transformer.ln_f.weight' is stored as Long")));
        // A layer the config does not have: config and weights do not belong together.
        TensorMap extra = loadStateDict(fixture("gpt2-tiny-f32").toStdString(), torch::kFloat32);
        extra["transformer.h.7.ln_1.weight"] = extra["transformer.h.0.ln_1.weight"];
        QVERIFY(refusalOf(extra).contains(QStringLiteral("a tensor of layer 7")));
    }

private:
    static QString refusalOf(const TensorMap &weights)
    {
        try {
            Transformer model(loadModelConfig(fixture("gpt2-tiny-f32").toStdString()), weights);
        } catch (const std::runtime_error &error) {
            return QString::fromUtf8(error.what());
        }
        return QString();
    }
};

QTEST_GUILESS_MAIN(TestTransformer)
#include "tst_transformer.moc"
