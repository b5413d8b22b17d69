// The subspace, principal-angle and norm maths behind the workbench's
// subspace and norm views, and the model-free metric families, on toy tensors
// whose answers are known by hand (no trained model, no ledger).
#include "eval/metric_families.h"
#include "eval/norms.h"
#include "eval/subspace.h"

#include <torch/torch.h>

#include <QtTest>

#include <cmath>
#include <limits>
#include <map>

Q_DECLARE_METATYPE(std::vector<double>)

using namespace oedit;
using namespace oedit::eval;

namespace {

torch::Tensor unit(int64_t n, int64_t i)
{
    auto v = torch::zeros({n}, torch::kDouble);
    v[i] = 1.0;
    return v;
}

edit::LayerUpdate rankOne(const torch::Tensor &right, const torch::Tensor &left, int64_t layer = 0)
{
    edit::LayerUpdate u;
    u.layer = layer;
    u.right = right.to(torch::kFloat);
    u.left = left.to(torch::kFloat);
    return u;
}

edit::LayerUpdate dense(const torch::Tensor &matrix, int64_t layer = 0)
{
    edit::LayerUpdate u;
    u.layer = layer;
    u.dense = matrix.to(torch::kFloat);
    return u;
}

// Columns as an orthonormal basis [d, k].
torch::Tensor basis(const std::vector<torch::Tensor> &columns)
{
    return torch::stack(columns, 1);
}

double maxAbs(const torch::Tensor &t)
{
    return t.abs().max().item<double>();
}

Score scored(std::vector<double> logProbs, std::vector<bool> argmax = {})
{
    Score s;
    s.tokenLogProbs = std::move(logProbs);
    s.tokenIsArgmax = argmax.empty() ? std::vector<bool>(s.tokenLogProbs.size(), false) : std::move(argmax);
    return s;
}

std::map<std::string, double> byName(const std::vector<Metric> &metrics)
{
    std::map<std::string, double> out;
    for (const auto &m : metrics)
        out[m.name] = m.value;
    return out;
}

} // namespace

class TestSubspace : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { torch::manual_seed(7); }

    // Updates with orthogonal value-side factors overlap nowhere, whatever
    // their keys: |cos| 0 off the diagonal, 1 on it, no residual, two directions.
    void orthogonalRankOneUpdates()
    {
        const auto key = torch::randn({5}, torch::kDouble);
        const auto a = rankOne(3.0 * unit(4, 0), key), b = rankOne(-2.0 * unit(4, 1), key);
        const auto report = layerSubspace({&a, &b});
        QCOMPARE(report.cosines.size(), size_t(4));
        QVERIFY(std::abs(report.cosines[0] - 1.0) < 1e-12);
        QVERIFY(std::abs(report.cosines[3] - 1.0) < 1e-12);
        QCOMPARE(report.cosines[1], 0.0);
        QCOMPARE(report.cosines[2], 0.0);
        QCOMPARE(report.residual, 0.0);
        QCOMPARE(report.editRank, int64_t(2));
        QCOMPARE(report.width, int64_t(4));
    }

    // The same direction twice (scaled, sign flipped) is one direction: |cos| 1.
    void identicalRankOneUpdates()
    {
        const auto r = torch::randn({6}, torch::kDouble), l = torch::randn({3}, torch::kDouble);
        const auto a = rankOne(r, l), b = rankOne(-0.5 * r, l);
        const auto report = layerSubspace({&a, &b});
        for (const double c : report.cosines)
            QVERIFY2(std::abs(c - 1.0) < 1e-6, qPrintable(QString::number(c)));
        QVERIFY(std::abs(report.residual - 1.0) < 1e-6);
        QVERIFY(report.residual <= 1.0); // capped
        QCOMPARE(report.editRank, int64_t(1));
    }

    // Dense updates take the pairwise path: one shared column direction.
    void denseUpdatesShareADirection()
    {
        const auto A = torch::outer(unit(4, 0), torch::randn({3}, torch::kDouble)) +
                       torch::outer(unit(4, 1), torch::randn({3}, torch::kDouble));
        const auto B = torch::outer(unit(4, 1), torch::randn({3}, torch::kDouble)) +
                       torch::outer(unit(4, 2), torch::randn({3}, torch::kDouble));
        const auto a = dense(A), b = dense(B);
        const auto report = layerSubspace({&a, &b});
        QVERIFY(std::abs(report.residual - 1.0) < 1e-6); // e_1 lies in both output spaces
        QCOMPARE(report.editRank, int64_t(3));           // span{e_0, e_1, e_2}
        QCOMPARE(report.width, int64_t(4));
        const auto Ua = outputBasis(a);
        QCOMPARE(Ua.size(1), int64_t(2));
        QVERIFY(maxAbs(torch::matmul(Ua.t(), Ua) - torch::eye(2, torch::kDouble)) < 1e-10);
        QVERIFY(maxAbs(Ua.narrow(0, 2, 2)) < 1e-6); // inside span{e_0, e_1}
    }

    void outputBasisOfZeroUpdatesIsEmpty()
    {
        QCOMPARE(outputBasis(rankOne(torch::zeros({4}, torch::kDouble), unit(3, 0))).size(1), int64_t(0));
        QCOMPARE(outputBasis(dense(torch::zeros({4, 3}, torch::kDouble))).size(1), int64_t(0));
        const auto empty = torch::zeros({4, 0}, torch::kDouble);
        QCOMPARE(largestCos(empty, basis({unit(4, 0)})), 0.0);
        QVERIFY(principalAnglesDegrees(empty, basis({unit(4, 0)})).empty());
    }

    void principalAnglesOfKnownPlanes_data()
    {
        QTest::addColumn<int>("which");
        QTest::addColumn<std::vector<double>>("expected");
        QTest::newRow("same plane") << 0 << std::vector<double>{0.0, 0.0};
        QTest::newRow("one line shared, one orthogonal") << 1 << std::vector<double>{0.0, 90.0};
        QTest::newRow("one line shared, one at 45") << 2 << std::vector<double>{0.0, 45.0};
        QTest::newRow("orthogonal planes") << 3 << std::vector<double>{90.0, 90.0};
    }

    void principalAnglesOfKnownPlanes()
    {
        QFETCH(int, which);
        QFETCH(std::vector<double>, expected);
        const int64_t d = 4;
        const auto e0 = unit(d, 0), e1 = unit(d, 1), e2 = unit(d, 2), e3 = unit(d, 3);
        const auto a = basis({e0, e1});
        const std::vector<torch::Tensor> others = {basis({e1, e0}), basis({e0, e2}),
                                                   basis({e0, (e1 + e2) / std::sqrt(2.0)}), basis({e2, e3})};
        const auto degrees = principalAnglesDegrees(a, others[static_cast<size_t>(which)]);
        QCOMPARE(degrees.size(), expected.size());
        for (size_t i = 0; i < degrees.size(); ++i)
            QVERIFY2(std::abs(degrees[i] - expected[i]) < 1e-6, qPrintable(QString::number(degrees[i])));
        QVERIFY(std::is_sorted(degrees.begin(), degrees.end()));
        // largestCos is the cosine of the smallest angle.
        QVERIFY(std::abs(largestCos(a, others[static_cast<size_t>(which)]) -
                         std::cos(expected.front() * M_PI / 180.0)) < 1e-9);
    }

    void numericalRankIgnoresNoiseBelowTolerance()
    {
        const auto M = torch::matmul(torch::randn({8, 2}, torch::kDouble), torch::randn({2, 6}, torch::kDouble));
        QCOMPARE(numericalRank(M), int64_t(2));
        QCOMPARE(numericalRank(M + 1e-10 * torch::randn({8, 6}, torch::kDouble)), int64_t(2));
        // Noise well above 1e-6 of the largest singular value is a direction.
        QCOMPARE(numericalRank(M + 1e-1 * torch::randn({8, 6}, torch::kDouble)), int64_t(6));
        QCOMPARE(numericalRank(torch::zeros({3, 3}, torch::kDouble)), int64_t(0));
        QCOMPARE(numericalRank(torch::zeros({3, 0}, torch::kDouble)), int64_t(0));
    }

    // The factored Gram of rank-one updates is the dense one, and a mix of
    // rank-one and dense updates takes the dense path to the same numbers.
    void frobeniusGramMatchesDense()
    {
        std::vector<edit::LayerUpdate> updates;
        for (int i = 0; i < 4; ++i)
            updates.push_back(rankOne(torch::randn({5}, torch::kDouble), torch::randn({3}, torch::kDouble)));
        std::vector<const edit::LayerUpdate *> pointers;
        std::vector<torch::Tensor> flat;
        for (const auto &u : updates) {
            pointers.push_back(&u);
            flat.push_back(u.matrix().to(torch::kDouble).reshape({-1}));
        }
        const auto F = torch::stack(flat);
        const auto expected = torch::matmul(F, F.t());
        const auto gram = frobeniusGram(pointers);
        QCOMPARE(gram.scalar_type(), torch::kDouble);
        // The factors' products are exact in float64; the dense matrices carry one float32 rounding.
        QVERIFY(maxAbs(gram - expected) < 1e-6 * maxAbs(expected));
        const auto mixedDense = dense(updates[2].matrix());
        pointers[2] = &mixedDense;
        QVERIFY(maxAbs(frobeniusGram(pointers) - expected) < 1e-9 * maxAbs(expected));
        // And the cosines are the Frobenius cosines of the matrices.
        const auto cosines = absCosines(gram);
        const double c01 = updates[0].cosWith(updates[1]);
        QVERIFY(std::abs(cosines[1] - std::abs(c01)) < 1e-6);
    }

    void absCosinesOfAGram()
    {
        const auto G = torch::tensor({4.0, -2.0, 0.0, -2.0, 1.0, 0.0, 0.0, 0.0, 0.0}, torch::kDouble).reshape({3, 3});
        const auto c = absCosines(G);
        QCOMPARE(c, (std::vector<double>{1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0})); // a zero update: 0
    }

    void frobeniusNormInFloat64()
    {
        const auto W0 = torch::randn({4, 3}, torch::kFloat);
        QCOMPARE(frobeniusNorm(W0), W0.to(torch::kDouble).norm().item<double>());
    }

    // The blocked trajectory against W_t formed step by step, with blocks
    // smaller than the run (so block boundaries fall inside steps), several
    // updates in one step, a dense update between rank-one ones, and steps
    // with no update of the layer (absent from the answer).
    void normTrajectoryMatchesTheWeightsFormedStepByStep()
    {
        torch::manual_seed(7);
        const auto W0 = torch::randn({6, 4}, torch::kFloat);
        auto W = W0.to(torch::kDouble);
        NormTrajectory trajectory(W0, 3);
        QCOMPARE(trajectory.baseNorm(), W.norm().item<double>());
        std::map<int64_t, double> expected;
        const std::vector<int64_t> steps = {1, 1, 2, 3, 3, 3, 5, 6, 6, 7, 9, 10, 10, 10, 10, 11};
        for (size_t i = 0; i < steps.size(); ++i) {
            edit::LayerUpdate update;
            if (i == 8) {
                update.dense = torch::randn({6, 4}, torch::kFloat);
            } else {
                // Large factors in a few steps, so the norm moves by orders of magnitude.
                const double scale = i % 5 == 0 ? 30.0 : 0.5;
                update = rankOne(torch::randn({6}, torch::kDouble) * scale, torch::randn({4}, torch::kDouble));
            }
            // In float64 from the factors (matrix() rounds the product to float32).
            W += update.rankOne() ? torch::outer(update.right.to(torch::kDouble), update.left.to(torch::kDouble))
                                  : update.dense.to(torch::kDouble);
            trajectory.add(steps[i], update);
            expected[steps[i]] = W.norm().item<double>();
        }
        const auto norms = trajectory.norms();
        QCOMPARE(norms.size(), expected.size());
        for (const auto &[step, norm] : norms) {
            QVERIFY2(expected.count(step), qPrintable(QString::number(step)));
            // float32 products (the engine's precision): about 1e-6 relative.
            QVERIFY2(std::abs(norm - expected.at(step)) <= 1e-5 * expected.at(step),
                     qPrintable(QStringLiteral("step %1: %2 vs %3").arg(step).arg(norm).arg(expected.at(step))));
        }
        // Asking again adds nothing and changes nothing.
        QCOMPARE(trajectory.norms(), norms);
    }

    void deltaNormAndConditionNumber()
    {
        const auto W0 = torch::diag(torch::tensor({3.0, 2.0, 1.0}, torch::kDouble));
        QCOMPARE(deltaNorm(W0, W0), 0.0);
        const auto W = W0 + torch::outer(unit(3, 0), unit(3, 1)) * 2.0;
        QVERIFY(std::abs(deltaNorm(W, W0.to(torch::kFloat)) - 2.0) < 1e-12);
        QVERIFY(std::abs(conditionNumber(W0) - 3.0) < 1e-12);
        QCOMPARE(conditionNumber(torch::diag(torch::tensor({1.0, 0.0}, torch::kDouble))),
                 std::numeric_limits<double>::infinity());
    }

    // The model-free families on hand-made scores.
    void probabilityAndRetentionFamilies()
    {
        // Edit 0 holds (new beats true), edit 1 does not; edit 1 has no
        // paraphrase, edit 0 one that holds; both have a neighbour, kept by edit 0 only.
        const std::vector<Score> scores = {
            scored({-0.1}, {true}), scored({-2.0}),         // 0: efficacy new, true
            scored({-3.0}),         scored({-0.2}, {true}), // 1: efficacy new, true
            scored({-0.5}, {true}), scored({-1.5}),         // 0: paraphrase new, true
            scored({-0.3}),         scored({-0.9}),         // 0: neighbour true, new
            scored({-2.5}),         scored({-0.4}),         // 1: neighbour true, new
        };
        std::vector<EditProbes> edits(3);
        edits[0].efficacyNew = 0;
        edits[0].efficacyTrue = 1;
        edits[0].paraphrases = {{4, 5}};
        edits[0].neighbours = {{6, 7}};
        edits[1].efficacyNew = 2;
        edits[1].efficacyTrue = 3;
        edits[1].neighbours = {{8, 9}};
        // edits[2]: no true target, so not judged
        const EditScores input{scores, edits};
        const auto rows = probabilityMetrics(input);
        std::vector<std::string> names;
        for (const auto &row : rows)
            names.push_back(row.name);
        QCOMPARE(names, (std::vector<std::string>{"ES", "EM", "PS", "PM", "NS", "NM", "score"}));
        const auto m = byName(rows);
        QCOMPARE(m.at("ES"), 0.5);
        QCOMPARE(m.at("PS"), 1.0);
        QCOMPARE(m.at("NS"), 0.5);
        QVERIFY(std::abs(m.at("score") - 3.0 / (2.0 + 1.0 + 2.0)) < 1e-12);
        const double em = ((std::exp(-0.1) - std::exp(-2.0)) + (std::exp(-3.0) - std::exp(-0.2))) / 2.0;
        QVERIFY(std::abs(m.at("EM") - em) < 1e-12);

        const auto accuracy = byName(tokenAccuracyMetrics(input));
        QCOMPARE(accuracy.at("token_acc"), 0.5);
        QCOMPARE(accuracy.at("para_token_acc"), 1.0);

        const auto retention = retentionRows(input, {11, 12, 13});
        QCOMPARE(retention.size(), size_t(2));
        QCOMPARE(retention[0].edit, std::optional<int64_t>(11));
        QCOMPARE(retention[0].value, 1.0);
        QCOMPARE(retention[1].edit, std::optional<int64_t>(12));
        QCOMPARE(retention[1].value, 0.0);
    }

    void efficacyOnlyWithoutProbes()
    {
        const std::vector<Score> scores = {scored({-0.1}), scored({-2.0})};
        std::vector<EditProbes> edits(1);
        edits[0].efficacyNew = 0;
        edits[0].efficacyTrue = 1;
        std::vector<std::string> names;
        for (const auto &row : probabilityMetrics({scores, edits}))
            names.push_back(row.name);
        QCOMPARE(names, (std::vector<std::string>{"ES", "EM"}));
    }

    void uneditedAndHeldoutFamilies()
    {
        const std::vector<Score> scores = {scored({-0.1, -0.2}, {true, true}), scored({-0.1, -0.3}, {true, false}),
                                           scored({std::log(0.5), std::log(0.25)})};
        const std::vector<size_t> sample = {0, 1}, passages = {2}, none;
        const auto unedited = uneditedMetrics({scores, sample});
        QCOMPARE(unedited.size(), size_t(2));
        QCOMPARE(unedited[0].name, std::string("unedited_acc"));
        QCOMPARE(unedited[0].value, 0.5);
        QCOMPARE(unedited[1].name, std::string("unedited_n"));
        QCOMPARE(unedited[1].value, 2.0);
        QVERIFY(uneditedMetrics({scores, none}).empty());
        const auto heldout = heldoutMetrics({scores, passages});
        QCOMPARE(heldout.size(), size_t(1));
        QVERIFY(std::abs(heldout[0].value - std::sqrt(8.0)) < 1e-12); // exp of the mean NLL (ln 2 + ln 4) / 2
        QVERIFY(heldoutMetrics({scores, none}).empty());
    }

    // The families run in the order of the stored rows.
    void familiesInStoredOrder()
    {
        std::vector<std::string> names;
        for (const auto &family : metricFamilies())
            names.push_back(family.name);
        QCOMPARE(names, (std::vector<std::string>{"probability", "token_accuracy", "generation", "unedited", "heldout",
                                                  "fluency", "active_edits", "weights", "eval_seconds", "retention"}));
    }
};

QTEST_GUILESS_MAIN(TestSubspace)
#include "tst_subspace.moc"
