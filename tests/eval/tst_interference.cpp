// The attribution behind the interference explorer (eval/interference.h) on
// a tiny random GPT-2 in float64: the margin's gradient with respect to each
// layer's MLP output projection against central finite differences, the
// first-order change of rank-one and dense updates against <G, DeltaW>, and
// the margin itself against teacher-forced log-probabilities.
#include "eval/interference.h"
#include "model/model_config.h"
#include "model/transformer.h"

#include <torch/torch.h>

#include <QtTest>

#include <cmath>

using namespace oedit;

namespace {

std::unique_ptr<model::Transformer> tinyModel()
{
    model::ModelConfig config;
    config.family = model::Family::Gpt2;
    config.modelType = "gpt2";
    config.vocabSize = 24;
    config.hidden = 16;
    config.layers = 3;
    config.heads = 2;
    config.kvHeads = 2;
    config.intermediate = 32;
    config.maxPositions = 16;
    config.tiedHead = true;
    config.activation = "gelu_new";
    auto model = std::make_unique<model::Transformer>(config, model::initialWeights(config, 5));
    model->to(torch::kCPU, torch::kDouble);
    return model;
}

eval::MarginProbe probe()
{
    return {{1, 7, 3, 9}, {4}, {5, 6}};
}

// The margin with W_l + scale * direction.
double marginWith(model::Transformer &model, int64_t layer, const torch::Tensor &direction, double scale)
{
    const auto W = model.mlpOutWeight(layer);
    model.setMlpOutWeight(layer, W + scale * direction);
    const double value = eval::targetMargin(model, probe(), 0).value;
    model.setMlpOutWeight(layer, W);
    return value;
}

} // namespace

class TestInterference : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void marginIsTheTeacherForcedDifference()
    {
        auto model = tinyModel();
        const auto margin = eval::targetMargin(*model, probe(), 0);
        const auto scores = model->scoreContinuations({{1, 7, 3, 9}, {1, 7, 3, 9}}, {{4}, {5, 6}}, 0);
        // scoreContinuations reads its log-probabilities in float32.
        QVERIFY(std::abs(margin.value - (scores[0].meanLogProb() - scores[1].meanLogProb())) < 1e-6);
        QVERIFY(std::abs(margin.pTarget - std::exp(scores[0].meanLogProb())) < 1e-6);
        QVERIFY(std::abs(margin.pRival - std::exp(scores[1].meanLogProb())) < 1e-6);
    }

    void gradientMatchesFiniteDifferences()
    {
        auto model = tinyModel();
        const auto gradient = eval::marginGradient(*model, probe(), {0, 1, 2}, 0);
        QCOMPARE(gradient.size(), size_t(3));
        torch::manual_seed(3);
        for (int64_t layer = 0; layer < 3; ++layer) {
            QCOMPARE(gradient.at(layer).sizes(), (std::vector<int64_t>{16, 32}));
            QVERIFY(gradient.at(layer).abs().max().item<double>() > 0);
            for (int trial = 0; trial < 3; ++trial) {
                const auto direction = torch::randn({16, 32}, torch::kDouble);
                const double eps = 1e-4;
                const double numeric =
                    (marginWith(*model, layer, direction, eps) - marginWith(*model, layer, direction, -eps)) / (2 * eps);
                const double analytic = (gradient.at(layer) * direction).sum().item<double>();
                // Not all of the forward pass runs in float64 (a wrong position
                // or layer is off by percents, not by this).
                QVERIFY2(std::abs(numeric - analytic) < 2e-4 * std::max(1.0, std::abs(numeric)),
                         qPrintable(QString("layer %1: %2 vs %3").arg(layer).arg(numeric).arg(analytic)));
            }
        }
    }

    void firstOrderChangePredictsSmallUpdates()
    {
        auto model = tinyModel();
        const auto gradient = eval::marginGradient(*model, probe(), {1}, 0);
        torch::manual_seed(4);
        edit::LayerUpdate rankOne;
        rankOne.layer = 1;
        rankOne.right = 1e-4 * torch::randn({16}, torch::kDouble);
        rankOne.left = torch::randn({32}, torch::kDouble);
        edit::LayerUpdate dense;
        dense.layer = 1;
        dense.dense = 1e-4 * torch::randn({16, 32}, torch::kDouble);
        for (const auto &update : {rankOne, dense}) {
            const auto delta = update.rankOne() ? torch::outer(update.right, update.left) : update.dense;
            const double predicted = eval::firstOrderChange(gradient, update);
            QVERIFY(std::abs(predicted - (gradient.at(1) * delta).sum().item<double>()) < 1e-12);
            const double actual = marginWith(*model, 1, delta, 1.0) - eval::targetMargin(*model, probe(), 0).value;
            QVERIFY2(std::abs(actual - predicted) < 2e-2 * std::abs(predicted),
                     qPrintable(QString("%1 vs %2").arg(actual).arg(predicted)));
        }
        // A layer without a gradient contributes nothing.
        edit::LayerUpdate elsewhere = rankOne;
        elsewhere.layer = 2;
        QCOMPARE(eval::firstOrderChange(gradient, elsewhere), 0.0);
    }

    void refusesAnEmptyProbe()
    {
        auto model = tinyModel();
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, eval::targetMargin(*model, {{1, 2}, {}, {3}}, 0));
    }
};

QTEST_GUILESS_MAIN(TestInterference)
#include "tst_interference.moc"
