// The editing methods' defining properties on toy tensors (no trained model):
// closed forms, O-Edit+ orthogonality and capacity, apply/unapply, and the
// input checks that must fire before any weight changes.
#include "edit/closed_forms.h"
#include "edit/editor.h"
#include "model/transformer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace oedit;
using namespace oedit::edit;

namespace {

double maxAbs(const torch::Tensor &t)
{
    return t.abs().max().item<double>();
}

torch::Tensor randomSpd(int64_t n, int64_t rank, double noise = 1e-6)
{
    const auto A = torch::randn({n, rank}, torch::kDouble);
    return A.matmul(A.t()) / double(rank) + noise * torch::eye(n, torch::kDouble);
}

model::ModelConfig toyConfig()
{
    model::ModelConfig c;
    c.family = model::Family::Gpt2;
    c.modelType = "gpt2";
    c.vocabSize = 257;
    c.hidden = 16;
    c.layers = 2;
    c.heads = 2;
    c.kvHeads = 2;
    c.intermediate = 32;
    c.maxPositions = 64;
    c.activation = "gelu_new";
    return c;
}

// A byte-level BPE with the 256 byte tokens and no merges: every character is
// one token, enough to exercise prompt handling without a trained tokenizer.
void writeByteTokenizer(const QString &dir)
{
    std::vector<int> bytes;
    for (int b = '!'; b <= '~'; ++b)
        bytes.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b)
        bytes.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b)
        bytes.push_back(b);
    std::vector<int> chars = bytes;
    int extra = 0;
    for (int b = 0; b < 256; ++b)
        if (std::find(bytes.begin(), bytes.end(), b) == bytes.end()) {
            bytes.push_back(b);
            chars.push_back(256 + extra++);
        }
    nlohmann::json vocab;
    for (size_t i = 0; i < bytes.size(); ++i) {
        std::string utf8;
        const int cp = chars[i];
        if (cp < 0x80) {
            utf8 += char(cp);
        } else {
            utf8 += char(0xC0 | (cp >> 6));
            utf8 += char(0x80 | (cp & 0x3F));
        }
        vocab[utf8] = bytes[i];
    }
    vocab["<|endoftext|>"] = 256;
    std::ofstream((dir + "/vocab.json").toStdString()) << vocab.dump();
    std::ofstream((dir + "/merges.txt").toStdString()) << "#version: 0.2\n";
}

EditResult rankOneResult(int64_t id, int64_t layer, const torch::Tensor &right, const torch::Tensor &left,
                         const std::string &method = "oedit+")
{
    EditResult r;
    r.id = id;
    r.method = method;
    r.hparams = {{"eps_E", 0.99}};
    LayerUpdate u;
    u.layer = layer;
    u.right = right.to(torch::kFloat);
    u.left = left.to(torch::kFloat);
    r.layers.push_back(u);
    return r;
}

} // namespace

class TestEdit : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init() { torch::manual_seed(7); }

    void romeMapsKeyToTarget_data()
    {
        QTest::addColumn<bool>("mom2");
        QTest::newRow("with C^-1 adjustment") << true;
        QTest::newRow("plain key") << false;
    }
    void romeMapsKeyToTarget()
    {
        QFETCH(bool, mom2);
        const auto W = torch::randn({6, 10}, torch::kDouble);
        const auto C = randomSpd(10, 10, 1e-2);
        const auto kStar = torch::randn({10}, torch::kDouble), vStar = torch::randn({6}, torch::kDouble);
        const auto kBare = kStar + 0.1 * torch::randn({10}, torch::kDouble);
        const auto factors = romeRankOne(C, kStar, kBare, vStar - W.matmul(kBare), mom2);
        const auto edited = W + torch::outer(factors.first, factors.second).to(torch::kDouble);
        QVERIFY(maxAbs(edited.matmul(kBare) - vStar) < 1e-4);
        QCOMPARE(factors.second.norm().item<double>(), 1.0);
        if (mom2) // u is C^-1 k*, not k*
            QVERIFY(std::abs(frobeniusCos(factors.second, kStar)) < 0.999);
    }

    void memitReachesTargetsWithSmallLambda()
    {
        const auto C = randomSpd(12, 12, 1e-2);
        const auto K = torch::randn({12, 3}, torch::kDouble), R = torch::randn({5, 3}, torch::kDouble);
        const auto M = memitUpdate(C, K, R, 1e-6).to(torch::kDouble);
        QVERIFY(maxAbs(M.matmul(K) - R) < 1e-3);
        // A large lambda keeps the update small: C dominates K K^T.
        QVERIFY(memitUpdate(C, K, R, 1e7).norm().item<double>() < 1e-2 * M.norm().item<double>());
    }

    // The fast paths give the plain closed forms' results: solves with a
    // cached Cholesky factor of C (ROME, MEMIT by the push-through identity),
    // MEMIT/AlphaEdit as factors, and O-Edit's bookkeeping on rank-one factors.
    void factoredFormsMatchPlainOnes()
    {
        const int64_t d = 7, dk = 14;
        const auto C = randomSpd(dk, dk, 1e-2);
        const auto L = ridgedCholesky(C);
        QVERIFY(L.defined());
        const auto kStar = torch::randn({dk}, torch::kDouble), kBare = kStar + 0.1 * torch::randn({dk}, torch::kDouble);
        const auto residual = torch::randn({d}, torch::kDouble);
        const auto plain = romeRankOne(C, kStar, kBare, residual, true);
        const auto cached = romeRankOne(C, kStar, kBare, residual, true, L);
        QVERIFY(maxAbs(torch::outer(plain.first, plain.second) - torch::outer(cached.first, cached.second)) < 1e-5);

        const auto K = torch::randn({dk, 1}, torch::kDouble), R = torch::randn({d, 1}, torch::kDouble);
        const auto M = memitUpdate(C, K, R, 20.0).to(torch::kDouble);
        const auto factors = memitFactors(C, K, R, 20.0, L);
        QVERIFY(maxAbs(factors.first.matmul(factors.second.t()) - M) < 1e-6 * std::max(1.0, maxAbs(M)));
        const auto P = nullSpaceProjector(C, 0.5, true), Cp = randomSpd(dk, 2);
        const auto A = alphaEditFactors(P, Cp, K, R, 10.0);
        QVERIFY(maxAbs(A.first.matmul(A.second.t()) - alphaEditUpdate(P, Cp, K, R, 10.0).to(torch::kDouble)) < 1e-5);

        // Rank one: U_E grows by the same direction, |cos| with a basis is the same.
        const auto U = std::get<0>(torch::linalg_qr(torch::randn({d, 3}, torch::kDouble), "reduced"));
        const auto right = torch::randn({d}, torch::kDouble), left = torch::randn({dk}, torch::kDouble);
        const auto dense = growBasis(U, torch::outer(right, left), 0.99);
        const auto fast = growBasisRankOne(U, right, left, 0.99);
        QCOMPARE(fast.size(1), dense.size(1));
        QVERIFY(std::abs(std::abs(fast.t().matmul(dense).item<double>()) - 1.0) < 1e-9);
        QVERIFY(std::abs(maxCosWithBasisRankOne(U, right) - maxCosWithBasis(U, torch::outer(right, left))) < 1e-9);
        // A direction already in U adds nothing.
        QCOMPARE(growBasisRankOne(U, U.select(1, 0), left, 0.99).size(1), 0L);
        // A basis that spans the whole width (a relaxed layer editing on) grows
        // no further, whatever the scale of the update: no rounding-noise columns.
        const auto full = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kDouble), "reduced"));
        QCOMPARE(growBasisRankOne(full, 1e6 * right, 1e6 * left, 0.99).size(1), 0L);
        QCOMPARE(growBasis(full, 1e6 * torch::outer(right, left), 0.99).size(1), 0L);
    }

    // Convention: W is [d, d_k], v = W k. AlphaEdit's update satisfies
    // DeltaW (I - P) = 0 with P the projector onto C's near null space, so keys
    // in C's high-variance directions (the preserved knowledge) map as before.
    void alphaEditVanishesOnPreservedSubspace()
    {
        const int64_t dk = 16, d = 6;
        // Ten eigenvalues in [1, 2], six near zero: a 6-dimensional null space.
        const auto Q = std::get<0>(torch::linalg_qr(torch::randn({dk, dk}, torch::kDouble), "reduced"));
        const auto spectrum =
            torch::cat({torch::full({6}, 1e-8, torch::kDouble), 1 + torch::rand({10}, torch::kDouble)});
        const auto C = Q.matmul(torch::diag(spectrum)).matmul(Q.t());
        const auto P = nullSpaceProjector(C, 2e-2, true);
        QCOMPARE(static_cast<int>(std::lround(P.trace().item<double>())), 6);
        const auto K = torch::randn({dk, 2}, torch::kDouble), R = torch::randn({d, 2}, torch::kDouble);
        const auto Cp = randomSpd(dk, 3);
        const auto M = alphaEditUpdate(P, Cp, K, R, 10.0).to(torch::kDouble);
        const auto Pperp = torch::eye(dk, torch::kDouble) - P;
        QVERIFY(M.norm().item<double>() > 1e-3);
        QVERIFY(M.matmul(Pperp).norm().item<double>() < 1e-5 * M.norm().item<double>());
        // Preserved keys (samples from C's range) do not move.
        const auto top = Q.narrow(1, 6, 10);
        QVERIFY(M.matmul(top).norm().item<double>() < 1e-5 * M.norm().item<double>());
    }

    void energyBasisCapturesEnergy()
    {
        const auto G = randomSpd(10, 10);
        const auto basis = energyBasis(G, 0.9, 10);
        const auto eig = std::get<0>(torch::linalg_eigh(G, "L"));
        const double captured = basis.second.sum().item<double>() / eig.sum().item<double>();
        QVERIFY(captured >= 0.9);
        QVERIFY(maxAbs(basis.first.t().matmul(basis.first) - torch::eye(basis.first.size(1), torch::kDouble)) < 1e-9);
        QCOMPARE(energyBasis(G, 0.9, 2).first.size(1), 2L);
    }

    // O-Edit+'s post-projection against U_S = [U_E, U~_I]: every update is
    // orthogonal (|cos| <= 1e-4) to each earlier update and to the protected basis.
    void oeditPlusUpdatesAreOrthogonal()
    {
        const int64_t d = 12, dk = 20, layer = 0;
        EditContext context;
        auto &state = context.oeditLayer(layer);
        const auto implicit = energyBasis(randomSpd(d, 4), 0.95, 9);
        state.implicitBasis = implicit.first.to(torch::kFloat);
        state.implicitEnergy = implicit.second.to(torch::kFloat);
        std::vector<torch::Tensor> applied;
        for (int64_t t = 1; t <= 6; ++t) {
            const auto U_S =
                protectedBasis(state.editBasis().defined() ? state.editBasis() : torch::zeros({d, 0}, torch::kDouble),
                               state.implicitBasis, state.implicitEnergy, 9);
            // Updates share a direction on purpose (a repeated target object).
            const auto right = projectOut(U_S, (torch::randn({d}) + torch::ones({d})).to(torch::kDouble));
            const auto result = rankOneResult(t, layer, right, torch::randn({dk}));
            const auto M = result.layers[0].matrix();
            QVERIFY(maxCosWithBasis(U_S, M) <= 1e-4);
            for (const auto &earlier : applied)
                QVERIFY2(std::abs(frobeniusCos(M, earlier)) <= 1e-4, "update not orthogonal to an earlier one");
            context.recordApplied(result);
            applied.push_back(M);
            QCOMPARE(context.oeditLayer(layer).editRank(), t);
        }
        QVERIFY(maxAbs(state.deltaTotal - torch::stack(applied).sum(0)) < 1e-5);
    }

    // Capacity: with d = 8 and rank_cap 0.75 d = 6, six rank-one edits fill the
    // layer; implicit directions give way first; unapplying frees room again.
    void capacityAccounting()
    {
        const int64_t d = 8, cap = 6;
        EditContext context;
        auto &state = context.oeditLayer(1);
        const auto implicit = energyBasis(randomSpd(d, 5), 0.9999, cap);
        state.implicitBasis = implicit.first.to(torch::kFloat);
        state.implicitEnergy = implicit.second.to(torch::kFloat);
        const int64_t q = state.implicitBasis.size(1);
        QCOMPARE(q, 5L);
        std::vector<EditResult> results;
        for (int64_t t = 1; t <= cap; ++t) {
            const auto UE = state.blocks.empty() ? torch::zeros({d, 0}, torch::kDouble) : state.editBasis();
            int64_t dropped = -1;
            const auto U_S = protectedBasis(UE, state.implicitBasis, state.implicitEnergy, cap, &dropped);
            QVERIFY(U_S.size(1) <= cap);
            // Implicit directions dropped once edit + implicit exceed the cap
            // (what is left of U_I outside U_E has rank min(q, d - r_E)).
            const int64_t rE = t - 1, available = std::min(q, d - rE);
            QCOMPARE(dropped, available - std::min(available, cap - rE));
            QCOMPARE(U_S.size(1), std::min(cap, rE + available));
            const auto right = projectOut(UE, torch::randn({d}, torch::kDouble));
            results.push_back(rankOneResult(t, 1, right, torch::randn({4})));
            context.recordApplied(results.back());
            QCOMPARE(cap - state.editRank(), cap - t);
        }
        QCOMPARE(state.editRank(), cap); // full: remaining capacity 0
        context.recordUnapplied(results[2]);
        QCOMPARE(state.editRank(), cap - 1);
        const auto UE = state.editBasis();
        QVERIFY(maxAbs(UE.t().matmul(UE) - torch::eye(cap - 1, torch::kDouble)) < 1e-9);
    }

    void applyUnapplyIsExact()
    {
        auto config = toyConfig();
        model::Transformer model(config, model::initialWeights(config, 3));
        const auto before0 = model.mlpOutWeight(0), before1 = model.mlpOutWeight(1);
        EditResult result = rankOneResult(1, 0, torch::randn({16}), torch::randn({32}), "rome");
        LayerUpdate dense;
        dense.layer = 1;
        dense.dense = 0.3 * torch::randn({16, 32});
        result.layers.push_back(dense);
        EditContext context;
        applyEdit(model, result, &context);
        QVERIFY(maxAbs(model.mlpOutWeight(0) - before0 - result.layers[0].matrix()) < 1e-6);
        QVERIFY(maxAbs(model.mlpOutWeight(0) - before0) > 1e-3);
        unapplyEdit(model, result, &context);
        QVERIFY(maxAbs(model.mlpOutWeight(0) - before0) <= 1e-6);
        QVERIFY(maxAbs(model.mlpOutWeight(1) - before1) <= 1e-6);
        QVERIFY(context.history(0).empty());
        // A result for a layer the model lacks changes nothing.
        EditResult bad = result;
        bad.layers[1].layer = 5;
        QVERIFY_THROWS_EXCEPTION(EditError, applyEdit(model, bad));
        QVERIFY(maxAbs(model.mlpOutWeight(0) - before0) <= 1e-6);
    }

    void resultAndStateRoundTrip()
    {
        QTemporaryDir dir;
        EditResult result = rankOneResult(4, 0, torch::randn({6}), torch::randn({9}));
        result.request = {"Ada Lovelace", "{} was born in", "Paris", std::string("London")};
        result.diagnostics.lossCurve = {3.0, 1.0, 0.1};
        result.diagnostics.remainingCapacity = 3;
        const auto path = dir.filePath("edit.pt").toStdString();
        result.save(path);
        const auto loaded = EditResult::load(path);
        QCOMPARE(loaded.id, 4L);
        QCOMPARE(loaded.request.targetTrue.value(), std::string("London"));
        QCOMPARE(loaded.diagnostics.lossCurve.size(), size_t(3));
        QCOMPARE(loaded.hparams.dump(), result.hparams.dump());
        QVERIFY(torch::equal(loaded.layers[0].matrix(), result.layers[0].matrix()));

        EditContext context;
        context.oeditLayer(0).implicitBasis = torch::eye(6).narrow(1, 0, 2);
        context.oeditLayer(0).implicitEnergy = torch::ones({2});
        context.recordApplied(result);
        const auto statePath = dir.filePath("state.pt").toStdString();
        context.saveState(statePath);
        EditContext resumed;
        resumed.loadState(statePath);
        QCOMPARE(resumed.oeditLayer(0).editRank(), 1L);
        QVERIFY(torch::equal(resumed.oeditLayer(0).deltaTotal, context.oeditLayer(0).deltaTotal));
        QCOMPARE(resumed.history(0).size(), size_t(1));
        QCOMPARE(resumed.nextEditId(), 5L);
        // Rolling back after a resume restores the empty state.
        resumed.recordUnapplied(result);
        QCOMPARE(resumed.oeditLayer(0).editRank(), 0L);
        QVERIFY(maxAbs(resumed.oeditLayer(0).deltaTotal) < 1e-7);
    }

    void hparamValidation_data()
    {
        QTest::addColumn<QString>("method");
        QTest::addColumn<QString>("overrides");
        QTest::addColumn<QString>("message");
        QTest::newRow("unknown method") << "frobnicate"
                                        << "{}"
                                        << "unknown editing method 'frobnicate'";
        QTest::newRow("unknown name") << "rome"
                                      << R"({"learning_rate": 1})"
                                      << "unknown hyperparameter 'learning_rate'";
        QTest::newRow("wrong type") << "rome"
                                    << R"({"v_lr": "fast"})"
                                    << "'v_lr' must be a number";
        QTest::newRow("layer out of range") << "rome"
                                            << R"({"layer": 9})"
                                            << "layer 9 is out of range";
        QTest::newRow("memit layer out of range") << "memit"
                                                  << R"({"layers": [0, 7]})"
                                                  << "layers 7 is out of range";
        QTest::newRow("bad base") << "oedit+"
                                  << R"({"base": "ft"})"
                                  << "base 'ft' is not supported";
        QTest::newRow("bad policy") << "oedit"
                                    << R"({"capacity_policy": "hope"})"
                                    << "capacity_policy 'hope'";
    }
    void hparamValidation()
    {
        QFETCH(QString, method);
        QFETCH(QString, overrides);
        QFETCH(QString, message);
        try {
            resolveHparams(method.toStdString(), nlohmann::json::parse(overrides.toStdString()), toyConfig());
            QFAIL("no error");
        } catch (const EditError &e) {
            QVERIFY2(std::string(e.what()).find(message.toStdString()) != std::string::npos, e.what());
        }
    }

    void hparamDefaultsForEveryMethod()
    {
        for (const auto &name : editMethodNames()) {
            const auto hp = resolveHparams(name, nlohmann::json::object(), toyConfig());
            QVERIFY2(hp.contains("seed"), name.c_str());
            const auto method = createEditMethod(name, {{"seed", 3}}, toyConfig());
            QCOMPARE(method->name(), name);
            QCOMPARE(method->hparams()["seed"].get<int>(), 3);
        }
        // Presets: a 12-layer GPT-2 gets ROME's layer 5.
        auto big = toyConfig();
        big.layers = 12;
        QCOMPARE(resolveHparams("rome", {}, big)["layer"].get<int>(), 5);
    }

    void lookupPosition()
    {
        QTemporaryDir dir;
        writeByteTokenizer(dir.path());
        const auto tokenizer = model::loadTokenizer(dir.path().toStdString());
        // One token per byte: "The home of " is 12 bytes, the subject 3 more.
        auto p = tokenizePrompt(*tokenizer, "The home of {} is", "Ada");
        QCOMPARE(p.lookup, 14L);
        QCOMPARE(tokenizer->decode(p.ids), std::string("The home of Ada is"));
        p = tokenizePrompt(*tokenizer, "The home of Ada is", "Ada");
        QCOMPARE(p.lookup, 14L);
        p = tokenizePrompt(*tokenizer, "{} is", "Ada", "Hello. ");
        QCOMPARE(p.lookup, 9L);
    }

    // Bad input is rejected before any weight changes, for every method.
    void badInputChangesNothing_data()
    {
        QTest::addColumn<QString>("method");
        QTest::addColumn<QString>("subject");
        QTest::addColumn<QString>("prompt");
        QTest::addColumn<QString>("target");
        QTest::addColumn<QString>("message");
        for (const auto &name : editMethodNames()) {
            const QByteArray tag = QByteArray::fromStdString(name);
            QTest::newRow(tag + " subject missing") << QString::fromStdString(name) << "Ada"
                                                    << "The home of Bob is"
                                                    << "Paris"
                                                    << "is not in the prompt";
            QTest::newRow(tag + " empty target") << QString::fromStdString(name) << "Ada"
                                                 << "{} lives in"
                                                 << " "
                                                 << "target is empty";
        }
    }
    void badInputChangesNothing()
    {
        QFETCH(QString, method);
        QFETCH(QString, subject);
        QFETCH(QString, prompt);
        QFETCH(QString, target);
        QFETCH(QString, message);
        QTemporaryDir dir;
        writeByteTokenizer(dir.path());
        const auto tokenizer = model::loadTokenizer(dir.path().toStdString());
        auto config = toyConfig();
        model::Transformer model(config, model::initialWeights(config, 5));
        const auto before0 = model.mlpOutWeight(0), before1 = model.mlpOutWeight(1);
        EditContext context;
        auto editor = createEditMethod(method.toStdString(), {}, config);
        try {
            editor->edit(model, *tokenizer, {subject.toStdString(), prompt.toStdString(), target.toStdString(), {}},
                         context);
            QFAIL("no error");
        } catch (const EditError &e) {
            QVERIFY2(std::string(e.what()).find(message.toStdString()) != std::string::npos, e.what());
        }
        QVERIFY(torch::equal(model.mlpOutWeight(0), before0));
        QVERIFY(torch::equal(model.mlpOutWeight(1), before1));
        QCOMPARE(context.statisticsComputed(), 0L);
    }
};

QTEST_GUILESS_MAIN(TestEdit)
#include "tst_edit.moc"
