// The checkpoint metric suite on the mini model (slow): the numbers of an
// unedited model make sense (edits not yet in effect fail, neighbours and
// unedited facts are known, perplexity and fluency are finite), and a short
// ROME run through the runner stores the full suite at every checkpoint.
#include "eval/edit_metrics.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "store/ledger.h"
#include "run/rebuild.h"
#include "run/runner.h"

#include <torch/torch.h>

#include <QTemporaryDir>
#include <QtTest>

#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace oedit;

namespace {

// Rows from the evaluator (eval::Metric) or from the ledger (store::Metric).
template <typename Metric>
std::map<std::string, double> runLevel(const std::vector<Metric> &metrics)
{
    std::map<std::string, double> out;
    for (const auto &metric : metrics)
        if (!metric.edit)
            out[metric.name] = metric.value;
    return out;
}

} // namespace

class TestEditMetricsMini : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { torch::set_num_threads(1); }

    void ngramEntropyOfKnownTexts()
    {
        QCOMPARE(eval::ngramEntropy("a a a a a a"), 0.0); // one bigram, one trigram
        // "a b c d": bigrams 3 distinct (log2 3), trigrams 2 distinct (1 bit).
        const double expected = (2.0 / 3.0 * std::log2(3.0) + 4.0 / 3.0 * 1.0) / 2.0;
        QVERIFY(std::abs(eval::ngramEntropy("a b c d") - expected) < 1e-12);
        QCOMPARE(eval::ngramEntropy(""), 0.0);
    }

    void greedyBatchMatchesGenerate()
    {
        model::Transformer model(model::loadModelConfig(OEDIT_MINI_MODEL_DIR),
                                 model::loadStateDict(OEDIT_MINI_MODEL_DIR, torch::kFloat32));
        auto tokenizer = model::loadTokenizer(OEDIT_MINI_MODEL_DIR);
        const std::vector<std::vector<int64_t>> prompts = {tokenizer->encodeForModel("The"),
                                                           tokenizer->encodeForModel("In the city of the old river")};
        const auto batched = eval::greedyBatch(model, prompts, 6, tokenizer->eosId().value_or(0));
        for (size_t i = 0; i < prompts.size(); ++i)
            QVERIFY(batched[i] == model.generate(prompts[i], 6));
    }

    void unEditedModel()
    {
        model::Transformer model(model::loadModelConfig(OEDIT_MINI_MODEL_DIR),
                                 model::loadStateDict(OEDIT_MINI_MODEL_DIR, torch::kFloat32));
        auto tokenizer = model::loadTokenizer(OEDIT_MINI_MODEL_DIR);
        auto world = world::loadWorld(OEDIT_MINI_MODEL_DIR);
        QVERIFY(world.ok());
        std::vector<eval::EvaluatedEdit> rows;
        for (const auto &request : run::worldRequests(world.value(), 6, 3))
            rows.push_back({static_cast<int64_t>(rows.size()) + 1, request});
        eval::EditMetricsOptions options;
        options.unrelatedFacts = 40;
        options.heldoutPassages = 16;
        options.fluencyPrompts = 4;
        eval::EditEvaluator evaluator(world.value(), options);
        const auto base = run::captureBaseWeights(model);
        const auto metrics = evaluator.evaluate(model, *tokenizer, rows, &base);
        const auto m = runLevel(metrics);
        for (const char *name : {"ES", "EM", "PS", "PM", "NS", "NM", "score", "token_acc", "gen_EM", "unedited_acc",
                                 "heldout_ppl", "fluency", "active_edits"})
            QVERIFY2(m.count(name), name);
        qInfo("unedited: ES %.2f PS %.2f NS %.2f gen_EM %.2f unedited_acc %.2f ppl %.2f fluency %.2f", m.at("ES"),
              m.at("PS"), m.at("NS"), m.at("gen_EM"), m.at("unedited_acc"), m.at("heldout_ppl"), m.at("fluency"));
        // The model knows the true facts: no edit holds yet.
        QCOMPARE(m.at("ES"), 0.0);
        QVERIFY(m.at("EM") < 0);
        QCOMPARE(m.at("gen_EM"), 0.0);
        QVERIFY(m.at("NS") >= 0.8);
        QVERIFY(m.at("unedited_acc") >= 0.8);
        QVERIFY(std::isfinite(m.at("heldout_ppl")) && m.at("heldout_ppl") > 1.0);
        QVERIFY(m.at("fluency") > 0);
        QCOMPARE(m.at("active_edits"), 6.0);
        // The sample leaves out the facts edited so far.
        QVERIFY(m.at("unedited_n") >= 34.0 && m.at("unedited_n") <= 40.0);
        // A data-set case that is also a world fact (a model trained with
        // --dataset) leaves the sample when edited, like a world fact does.
        {
            eval::EditMetricsOptions all = options;
            all.unrelatedFacts = static_cast<int>(world->facts.size());
            eval::EditEvaluator withCases(world.value(), all);
            for (const auto &row : rows)
                withCases.addCaseProbes(row.request.subject, row.request.prompt, {});
            const auto counted = runLevel(withCases.evaluate(model, *tokenizer, rows, &base));
            QCOMPARE(counted.at("unedited_n"), static_cast<double>(world->facts.size() - rows.size()));
        }
        // No layer differs from the base: no norm or condition rows.
        for (const auto &metric : metrics)
            QVERIFY(metric.name.rfind("delta_norm_", 0) != 0);
        int successRows = 0;
        for (const auto &metric : metrics)
            successRows += metric.name == "edit_success" && metric.edit ? 1 : 0;
        QCOMPARE(successRows, 6);
        // The rows in their stored order: run-level first, then one retention row per edit, by edit.
        std::vector<std::string> names;
        for (const auto &metric : metrics)
            if (!metric.edit)
                names.push_back(metric.name);
        QCOMPARE(names, (std::vector<std::string>{"ES", "EM", "PS", "PM", "NS", "NM", "score", "token_acc",
                                                  "para_token_acc", "gen_EM", "unedited_acc", "unedited_n",
                                                  "heldout_ppl", "fluency", "active_edits", "eval_seconds"}));
        for (size_t i = 0; i < rows.size(); ++i) {
            const auto &row = metrics[metrics.size() - rows.size() + i];
            QCOMPARE(row.name, std::string("edit_success"));
            QCOMPARE(row.edit, std::optional<int64_t>(rows[i].id));
        }
    }

    void runnerStoresTheSuite()
    {
        QTemporaryDir dir;
        store::Ledger ledger(dir.filePath(QStringLiteral("runs.sqlite")).toStdString());
        run::RunnerOptions o;
        o.modelDir = OEDIT_MINI_MODEL_DIR;
        o.method = std::getenv("OEDIT_METRICS_METHOD") ? std::getenv("OEDIT_METRICS_METHOD") : "rome";
        o.edits = 4;
        o.evalEvery = 2;
        o.seed = 4;
        o.cacheDir = dir.filePath(QStringLiteral("cache")).toStdString();
        const auto started = std::chrono::steady_clock::now();
        const auto result = run::startRun(ledger, o);
        QCOMPARE(result.status, std::string("finished"));
        const auto checkpoints = ledger.checkpoints(result.runId);
        QCOMPARE(checkpoints.size(), size_t(2));
        const auto metrics = ledger.metrics(checkpoints.back().id);
        const auto m = runLevel(metrics);
        qInfo("rome, 4 edits: ES %.2f PS %.2f NS %.2f score %.2f gen_EM %.2f unedited_acc %.2f ppl %.2f (%.1f s)",
              m.at("ES"), m.at("PS"), m.at("NS"), m.at("score"), m.at("gen_EM"), m.at("unedited_acc"),
              m.at("heldout_ppl"),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        QVERIFY(m.at("ES") >= 0.75);
        QVERIFY(m.count("score") && m.count("fluency") && m.count("heldout_ppl"));
        bool haveNorm = false, haveCond = false;
        for (const auto &[name, value] : m) {
            haveNorm = haveNorm || (name.rfind("delta_norm_L", 0) == 0 && value > 0);
            haveCond = haveCond || (name.rfind("cond_L", 0) == 0 && value >= 1.0);
        }
        QVERIFY(haveNorm && haveCond);
        int successRows = 0;
        for (const auto &metric : metrics)
            successRows += metric.name == "edit_success" && metric.edit ? 1 : 0;
        QCOMPARE(successRows, 4);
    }
};

QTEST_GUILESS_MAIN(TestEditMetricsMini)
#include "tst_edit_metrics_mini.moc"
