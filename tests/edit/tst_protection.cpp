// O-Edit's protection policy (edit/oedit_protection.h) on toy tensors, without
// a model: the protected basis, each capacity policy (relax, spread, input,
// refuse) on a full layer, the input side, several layers (MEMIT base), the
// key-side projection, rollback regrowth, and the registry's capabilities
// including results that keep their keys through save and load.
#include "edit/closed_forms.h"
#include "edit/editor.h"
#include "edit/oedit_protection.h"
#include "edit/registry.h"
#include "oedit/editing.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <QTemporaryDir>
#include <QtTest>

using namespace oedit;
using namespace oedit::edit;

namespace {

constexpr int64_t kD = 8, kDk = 8, kCap = 6; // rank_cap_fraction 0.75 of 8

double maxAbs(const torch::Tensor &t)
{
    return t.numel() ? t.abs().max().item<double>() : 0.0;
}

torch::Tensor randomSpd(int64_t n, int64_t rank, double noise = 1e-6)
{
    const auto A = torch::randn({n, rank}, torch::kDouble);
    return A.matmul(A.t()) / double(rank) + noise * torch::eye(n, torch::kDouble);
}

// ||U^T U - I||_max: 0 for orthonormal columns.
double orthonormalityResidual(const torch::Tensor &U)
{
    const auto u = U.to(torch::kDouble);
    return maxAbs(u.t().matmul(u) - torch::eye(u.size(1), torch::kDouble));
}

nlohmann::json hparams(const std::string &policy, nlohmann::json extra = nlohmann::json::object())
{
    nlohmann::json hp = {{"rank_cap_fraction", 0.75}, {"capacity_policy", policy}, {"eps_E", 0.99}};
    for (const auto &[key, value] : extra.items())
        hp[key] = value;
    return hp;
}

EditResult rankOneResult(int64_t id, int64_t layer, const torch::Tensor &right, const torch::Tensor &left,
                         const std::string &method = "oedit+", const nlohmann::json &hp = {{"eps_E", 0.99}})
{
    EditResult r;
    r.id = id;
    r.method = method;
    r.hparams = hp;
    LayerUpdate u;
    u.layer = layer;
    u.right = right.to(torch::kFloat);
    u.left = left.to(torch::kFloat);
    r.layers.push_back(u);
    return r;
}

// A layer with a known implicit basis (q directions), so no statistics are needed.
void giveImplicitBasis(OEditProtection &policy, int64_t layer, int64_t q)
{
    auto &state = policy.layer(layer);
    const auto implicit = energyBasis(randomSpd(kD, q), 0.9999, q);
    state.implicitBasis = implicit.first.to(torch::kFloat);
    state.implicitEnergy = implicit.second.to(torch::kFloat);
}

// Applies `count` O-Edit+ edits with random (hence independent) directions to `layer`.
std::vector<EditResult> fill(OEditProtection &policy, int64_t layer, int64_t count, int64_t firstId,
                             const nlohmann::json &hp = {{"eps_E", 0.99}})
{
    std::vector<EditResult> results;
    for (int64_t i = 0; i < count; ++i) {
        results.push_back(rankOneResult(firstId + i, layer, torch::randn({kD}, torch::kDouble),
                                        torch::randn({kDk}, torch::kDouble), "oedit+", hp));
        policy.recordApplied(results.back());
    }
    return results;
}

// A Gram provider that must not be asked (the implicit bases are known).
const torch::Tensor &noGram(int64_t layer)
{
    throw std::logic_error("implicit Gram of layer " + std::to_string(layer) + " asked for");
}

} // namespace

class TestProtection : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init() { torch::manual_seed(11); }

    void rankCapIsAFractionOfTheWidth()
    {
        QCOMPARE(OEditProtection::rankCap(hparams("relax"), kD), kCap);
        QCOMPARE(OEditProtection::rankCap({{"rank_cap_fraction", 0.01}}, kD), 1L);
        QCOMPARE(OEditProtection::rankCap({{"rank_cap_fraction", 2.0}}, kD), kD);
        QVERIFY(!OEditProtection::usesInputSide({{"side", "output"}, {"capacity_policy", "relax"}}));
        QVERIFY(OEditProtection::usesInputSide({{"side", "both"}}));
        QVERIFY(OEditProtection::usesInputSide({{"capacity_policy", "input"}}));
    }

    // U_S is orthonormal, contains U_E, holds at most the cap, and the implicit
    // basis is computed from the Gram matrix once.
    void outputBasisCombinesEditsAndImplicitKnowledge()
    {
        OEditProtection policy;
        const auto gramMatrix = randomSpd(kD, 3);
        int calls = 0;
        const OEditProtection::ImplicitGram gram = [&](int64_t) -> const torch::Tensor & {
            ++calls;
            return gramMatrix;
        };
        const auto hp = hparams("relax", {{"eps_I", 0.95}});
        auto p = policy.outputBasis(hp, 0, kD, gram);
        QCOMPARE(calls, 1);
        QCOMPARE(p.remaining, kCap);
        QVERIFY(p.basis.size(1) >= 1 && p.basis.size(1) <= 3);
        QVERIFY(orthonormalityResidual(p.basis) < 1e-5);

        fill(policy, 0, 2, 1);
        QCOMPARE(policy.layer(0).editRank(), 2L);
        p = policy.outputBasis(hp, 0, kD, gram);
        QCOMPARE(calls, 1); // U_I is kept
        QCOMPARE(p.remaining, kCap - 2);
        QVERIFY(orthonormalityResidual(p.basis) < 1e-5);
        QVERIFY(p.basis.size(1) <= kCap);
        // U_E lies inside U_S.
        QVERIFY(maxAbs(projectOut(p.basis.to(torch::kDouble), policy.layer(0).editBasis())) < 1e-5);
        // Ablation: without the edit part the remaining capacity is the whole cap.
        const auto implicitOnly = policy.outputBasis(hparams("relax", {{"protect_edits", false}}), 0, kD, gram);
        QCOMPARE(implicitOnly.remaining, kCap);
        QVERIFY(maxAbs(projectOut(implicitOnly.basis.to(torch::kDouble),
                                  policy.layer(0).implicitBasis.to(torch::kDouble))) < 1e-5);
    }

    void placeOutputWithRoomChangesNothing()
    {
        OEditProtection policy;
        giveImplicitBasis(policy, 0, 2);
        fill(policy, 0, 3, 1);
        const auto [layer, p] = policy.placeOutput(hparams("refuse"), 0, kD, noGram);
        QCOMPARE(layer, 0L);
        QVERIFY(!p.relaxed);
        QVERIFY(p.note.empty());
        QCOMPARE(p.remaining, kCap - 3);
    }

    void capacityPolicyOnFullLayer_data()
    {
        QTest::addColumn<QString>("policy");
        QTest::addColumn<bool>("relaxed");
        QTest::addColumn<QString>("note");
        QTest::newRow("relax") << "relax" << true << "exact orthogonality relaxed to the soft loss";
        QTest::newRow("input") << "input" << true << "this edit is made on the input side";
    }
    // A full layer under relax / input: same layer, no projection, and a note that says so.
    void capacityPolicyOnFullLayer()
    {
        QFETCH(QString, policy);
        QFETCH(bool, relaxed);
        QFETCH(QString, note);
        OEditProtection protection;
        giveImplicitBasis(protection, 0, 2);
        fill(protection, 0, kCap, 1);
        QCOMPARE(protection.layer(0).editRank(), kCap);
        const auto [layer, p] = protection.placeOutput(hparams(policy.toStdString()), 0, kD, noGram);
        QCOMPARE(layer, 0L);
        QCOMPARE(p.relaxed, relaxed);
        QCOMPARE(p.remaining, 0L);
        QVERIFY2(QString::fromStdString(p.note).contains(note), p.note.c_str());
        QVERIFY(QString::fromStdString(p.note).startsWith(QStringLiteral("layer 0 is full (6 edit directions)")));
    }

    // spread: the edit moves to the first spread layer with room, skipping full ones.
    void spreadMovesToALayerWithRoom()
    {
        OEditProtection policy;
        for (const int64_t layer : {0, 1, 2})
            giveImplicitBasis(policy, layer, 2);
        fill(policy, 0, kCap, 1);
        fill(policy, 1, kCap, 100);
        fill(policy, 2, 1, 200);
        const auto hp = hparams("spread", {{"spread_layers", {1, 2}}});
        const auto [layer, p] = policy.placeOutput(hp, 0, kD, noGram);
        QCOMPARE(layer, 2L);
        QVERIFY(!p.relaxed);
        QCOMPARE(p.remaining, kCap - 1);
        QVERIFY2(p.note.find("edit moved to layer 2") != std::string::npos, p.note.c_str());
        // The basis is layer 2's: it holds layer 2's edit direction, not layer 0's.
        QVERIFY(maxAbs(projectOut(p.basis.to(torch::kDouble), policy.layer(2).editBasis())) < 1e-5);
        // Every spread layer full: an error, not a silent relaxation.
        fill(policy, 2, kCap - 1, 300);
        QVERIFY_THROWS_EXCEPTION(EditError, policy.placeOutput(hp, 0, kD, noGram));
    }

    // refuse: EditError naming the policy; the state is left as it was.
    void refuseThrowsAndChangesNothing()
    {
        OEditProtection policy;
        giveImplicitBasis(policy, 0, 2);
        fill(policy, 0, kCap, 1);
        const auto before = policy.layer(0).editBasis();
        try {
            policy.placeOutput(hparams("refuse"), 0, kD, noGram);
            QFAIL("refuse did not throw on a full layer");
        } catch (const EditError &e) {
            QVERIFY2(std::string(e.what()).find("the capacity policy is 'refuse'") != std::string::npos, e.what());
        }
        QCOMPARE(policy.layer(0).editRank(), kCap);
        QVERIFY(torch::equal(policy.layer(0).editBasis(), before));
        // The MEMIT base refuses the same way.
        QVERIFY_THROWS_EXCEPTION(EditError, policy.placeLayers(hparams("refuse"), {0}, kD, noGram));
    }

    // The input side: V_S from C, and a full key side relaxed (or refused).
    void inputSideCapacity()
    {
        OEditProtection policy;
        const auto C = randomSpd(kDk, kDk, 1e-3);
        const auto hp = hparams("relax", {{"side", "input"}, {"eps_I_input", 0.5}});
        auto p = policy.placeInput(hp, 0, C);
        QVERIFY(!p.relaxed);
        QCOMPARE(p.remaining, kCap);
        QVERIFY(orthonormalityResidual(p.basis) < 1e-5);
        QVERIFY(policy.layer(0).implicitKeyBasis.defined());
        // V_I captures at least eps_I_input of C's energy.
        const auto VI = policy.layer(0).implicitKeyBasis.to(torch::kDouble);
        QVERIFY(VI.t().matmul(C).matmul(VI).trace().item<double>() >= 0.5 * C.trace().item<double>() - 1e-9);

        fill(policy, 0, kCap, 1, hp); // edits of an input-side run grow V_E
        QCOMPARE(policy.layer(0).keyRank(), kCap);
        p = policy.placeInput(hp, 0, C);
        QVERIFY(p.relaxed);
        QCOMPARE(p.remaining, 0L);
        QVERIFY2(p.note.find("the input side of layer 0 is full (6 key directions): this edit is not projected") !=
                     std::string::npos,
                 p.note.c_str());
        QVERIFY_THROWS_EXCEPTION(EditError, policy.placeInput(hparams("refuse", {{"side", "input"}}), 0, C));
    }

    // An output-side run keeps no V_E (growing it costs a d_k-wide projection per edit).
    void outputSideRunsKeepNoKeyBasis()
    {
        OEditProtection policy;
        fill(policy, 0, 3, 1, {{"eps_E", 0.99}, {"side", "output"}});
        QCOMPARE(policy.layer(0).editRank(), 3L);
        QCOMPARE(policy.layer(0).keyRank(), 0L);
        // Methods that protect nothing leave the state alone.
        policy.recordApplied(rankOneResult(9, 0, torch::randn({kD}), torch::randn({kDk}), "rome"));
        QCOMPARE(policy.layer(0).editRank(), 3L);
    }

    // Several layers (MEMIT base): a full layer is relaxed, the union basis
    // spans the other layers' bases and is orthonormal.
    void layerSetRelaxesFullLayersAndUnitesTheRest()
    {
        OEditProtection policy;
        for (const int64_t layer : {0, 1, 2})
            giveImplicitBasis(policy, layer, 2);
        fill(policy, 0, kCap, 1);
        fill(policy, 1, 2, 100);
        fill(policy, 2, 1, 200);
        const auto set = policy.placeLayers(hparams("relax"), {0, 1, 2}, kD, noGram);
        QVERIFY(set.layers.at(0).relaxed);
        QVERIFY(set.layers.at(0).note.find("layer 0 is full") != std::string::npos);
        QVERIFY(!set.layers.at(1).relaxed && !set.layers.at(2).relaxed);
        QVERIFY(set.unionBasis.defined());
        QVERIFY(orthonormalityResidual(set.unionBasis) < 1e-5);
        const auto U = set.unionBasis.to(torch::kDouble);
        for (const int64_t layer : {1, 2})
            QVERIFY(maxAbs(projectOut(U, set.layers.at(layer).basis.to(torch::kDouble))) < 1e-5);
        // Its rank is that of the two bases together, and it leaves out the relaxed layer's edits.
        const auto both = torch::cat({set.layers.at(1).basis, set.layers.at(2).basis}, 1).to(torch::kDouble);
        QCOMPARE(U.size(1), (torch::linalg_svdvals(both) > 1e-6).sum().item<int64_t>());
        QVERIFY(U.size(1) > set.layers.at(1).basis.size(1));
        // Every layer full: nothing to unite.
        OEditProtection full;
        giveImplicitBasis(full, 0, 2);
        fill(full, 0, kCap, 1);
        QVERIFY(!full.placeLayers(hparams("relax"), {0}, kD, noGram).unionBasis.defined());
    }

    // Capacity after an edit: one less for a new direction, unchanged for one already in U_E.
    void remainingCapacityAfterAnEdit()
    {
        OEditProtection policy;
        giveImplicitBasis(policy, 0, 2);
        const auto applied = fill(policy, 0, 2, 1);
        const auto p = policy.outputBasis(hparams("relax"), 0, kD, noGram);
        const auto fresh =
            rankOneResult(10, 0, projectOut(policy.layer(0).editBasis(), torch::randn({kD}, torch::kDouble)),
                          torch::randn({kDk}, torch::kDouble));
        QCOMPARE(policy.remainingAfter(p, 0, fresh.layers[0], 0.99), p.remaining - 1);
        QCOMPARE(policy.remainingAfter(p, 0, applied[0].layers[0], 0.99), p.remaining);
        // Dense updates count their column space.
        LayerUpdate dense;
        dense.layer = 0;
        dense.dense = projectOut(policy.layer(0).editBasis(), torch::randn({kD, 2}, torch::kDouble))
                          .matmul(torch::randn({2, kDk}, torch::kDouble))
                          .to(torch::kFloat);
        QCOMPARE(policy.remainingAfter(p, 0, dense, 0.9999), p.remaining - 2);
    }

    // The key side projected off V: orthogonal to V, and the share kept of DeltaW k says how much survived.
    void projectKeySideIsOrthogonalAndBounded()
    {
        const auto V = std::get<0>(torch::linalg_qr(torch::randn({kDk, 3}, torch::kDouble)));
        // A key outside V keeps its whole effect.
        const auto key = projectOut(V, torch::randn({kDk}, torch::kDouble));
        torch::Tensor left = key.clone().to(torch::kFloat);
        const double kept = projectKeySide(V, left, key, 0.01);
        QVERIFY(maxAbs(V.t().matmul(left.to(torch::kDouble))) < 1e-5);
        QVERIFY(std::abs(kept - 1.0 / 1.01) < 1e-4);
        // A key mostly inside V: a small, finite update, not a blown-up one.
        const auto inside =
            V.matmul(torch::randn({3}, torch::kDouble)) + 1e-3 * projectOut(V, torch::randn({kDk}, torch::kDouble));
        torch::Tensor left2 = inside.clone().to(torch::kFloat);
        const double kept2 = projectKeySide(V, left2, inside, 0.01);
        QVERIFY(maxAbs(V.t().matmul(left2.to(torch::kDouble))) < 1e-5);
        QVERIFY(kept2 >= 0 && kept2 < 0.1);
        QVERIFY(left2.norm().item<double>() <= inside.norm().item<double>());
    }

    // A rollback (forget, restore, regrow) gives the state that applying the
    // remaining edits to a fresh policy gives.
    void rollbackRegrowsTheSubspaces()
    {
        const auto hp = nlohmann::json{{"eps_E", 0.99}, {"side", "both"}};
        OEditProtection policy, fresh;
        const auto results = fill(policy, 0, 4, 1, hp);
        UpdateHistory history;
        for (const auto &r : results)
            history[0].emplace_back(r.id, r.layers[0]);
        policy.forget(results[1]);
        history[0].erase(history[0].begin() + 1);
        policy.regrow(history, {{0, 1}});
        for (const size_t i : {0, 2, 3})
            fresh.recordApplied(results[i]);
        const auto &a = policy.layer(0), &b = fresh.layer(0);
        QCOMPARE(a.editRank(), 3L);
        QCOMPARE(a.keyRank(), 3L);
        QVERIFY(a.blockOwner == b.blockOwner);
        QVERIFY(maxAbs(a.editBasis() - b.editBasis()) < 1e-9);
        QVERIFY(maxAbs(a.keyBasis() - b.keyBasis()) < 1e-9);
        QVERIFY(maxAbs(a.deltaTotal - b.deltaTotal) < 1e-5);
        // Restoring it brings the rank back.
        policy.restore(results[1]);
        history[0].insert(history[0].begin() + 1, std::make_pair(results[1].id, results[1].layers[0]));
        policy.regrow(history, {{0, 1}});
        QCOMPARE(policy.layer(0).editRank(), 4L);
        QVERIFY(orthonormalityResidual(policy.layer(0).editBasis()) < 1e-9);
    }

    // The policy's state survives an archive, records included (unapply after reading works).
    void stateRoundTrip()
    {
        OEditProtection policy;
        giveImplicitBasis(policy, 0, 2);
        const auto results = fill(policy, 0, 3, 1, {{"eps_E", 0.99}, {"side", "both"}});
        torch::serialize::OutputArchive out;
        nlohmann::json index;
        policy.write(out, index);
        QTemporaryDir dir;
        const auto path = dir.filePath("policy.pt").toStdString();
        const std::string text = index.dump();
        out.write("index",
                  torch::from_blob(const_cast<char *>(text.data()), {static_cast<int64_t>(text.size())}, torch::kUInt8)
                      .clone());
        out.save_to(path);
        torch::serialize::InputArchive in;
        in.load_from(path);
        OEditProtection read;
        UpdateHistory history;
        read.read(in, index, history);
        QCOMPARE(read.layer(0).editRank(), 3L);
        QCOMPARE(read.layer(0).keyRank(), 3L);
        QVERIFY(torch::equal(read.layer(0).implicitBasis, policy.layer(0).implicitBasis));
        read.recordUnapplied(results[2]);
        QCOMPARE(read.layer(0).editRank(), 2L);
        QCOMPARE(read.layer(0).keyRank(), 2L);
    }

    void registryCapabilities()
    {
        QVERIFY(editMethodNames() == (std::vector<std::string>{"ft", "rome", "memit", "alphaedit", "oedit", "oedit+"}));
        for (const auto &name : editMethodNames()) {
            const auto *info = findEditMethod(name);
            QVERIFY(info && info->factory && !info->hparamsFile.empty());
            const auto capabilities = methodCapabilities(name);
            QVERIFY(capabilities.has_value());
            QCOMPARE(capabilities->name, name);
            QCOMPARE(capabilities->protectsSubspace, protectsSubspace(name));
        }
        QVERIFY(!methodCapabilities("frobnicate").has_value());
        QVERIFY(!protectsSubspace("frobnicate"));
        QVERIFY(methodCapabilities("oedit")->protectsSubspace && methodCapabilities("oedit+")->protectsSubspace);
        QVERIFY(!methodCapabilities("rome")->protectsSubspace && !methodCapabilities("alphaedit")->protectsSubspace);
        QVERIFY(methodCapabilities("oedit+")->supportsInputSide && !methodCapabilities("oedit")->supportsInputSide);
        QVERIFY(methodCapabilities("memit")->multiLayer && !methodCapabilities("rome")->multiLayer);
        QCOMPARE(methodCapabilities("oedit+")->displayName, std::string("O-Edit+"));
        // Keys: AlphaEdit always; O-Edit+ only on the input side with input_edit_basis 'keys'.
        QVERIFY(storesKeys("alphaedit", nlohmann::json::object()));
        QVERIFY(!storesKeys("rome", {{"input_edit_basis", "keys"}, {"side", "input"}}));
        QVERIFY(!storesKeys("oedit+", {{"input_edit_basis", "updates"}, {"side", "input"}}));
        QVERIFY(!storesKeys("oedit+", {{"input_edit_basis", "keys"}, {"side", "output"}}));
        QVERIFY(storesKeys("oedit+", {{"input_edit_basis", "keys"}, {"side", "both"}}));
        QVERIFY(storesKeys("oedit+", {{"input_edit_basis", "keys"}, {"capacity_policy", "input"}}));
        QVERIFY(methodCapabilities("oedit+")->storesKeys && methodCapabilities("alphaedit")->storesKeys);
        QVERIFY(!methodCapabilities("oedit")->storesKeys);
    }

    // Every method that keeps keys gets them back from a saved result, and the
    // loaded O-Edit+ result grows the same V_E (from its key) as the original.
    void keysRoundTrip_data()
    {
        QTest::addColumn<QString>("method");
        QTest::addColumn<QString>("hparams");
        QTest::addColumn<bool>("keys");
        QTest::newRow("alphaedit") << "alphaedit"
                                   << R"({"L2": 10.0})" << true;
        QTest::newRow("oedit+ keys basis") << "oedit+"
                                           << R"({"eps_E": 0.99, "side": "input", "input_edit_basis": "keys"})" << true;
        QTest::newRow("oedit+ keys basis, capacity input")
            << "oedit+"
            << R"({"eps_E": 0.99, "side": "output", "capacity_policy": "input", "input_edit_basis": "keys"})" << true;
        QTest::newRow("oedit+ updates basis")
            << "oedit+"
            << R"({"eps_E": 0.99, "side": "input", "input_edit_basis": "updates"})" << false;
        QTest::newRow("rome") << "rome"
                              << R"({})" << false;
    }
    void keysRoundTrip()
    {
        QFETCH(QString, method);
        QFETCH(QString, hparams);
        QFETCH(bool, keys);
        const auto hp = nlohmann::json::parse(hparams.toStdString());
        auto result = rankOneResult(3, 1, torch::randn({kD}), torch::randn({kDk}), method.toStdString(), hp);
        if (keys)
            result.keys[1] = torch::randn({kDk, 1});
        QTemporaryDir dir;
        const auto path = dir.filePath("edit.pt").toStdString();
        result.save(path);
        const auto loaded = EditResult::load(path);
        QCOMPARE(loaded.keys.size(), result.keys.size());
        for (const auto &[layer, K] : result.keys) {
            QVERIFY(loaded.keys.count(layer));
            QVERIFY(torch::equal(loaded.keys.at(layer), K));
        }
        if (!keys || !protectsSubspace(loaded.method))
            return;
        EditContext original, reloaded;
        original.recordApplied(result);
        reloaded.recordApplied(loaded);
        QCOMPARE(reloaded.oeditLayer(1).keyRank(), 1L);
        QVERIFY(maxAbs(reloaded.oeditLayer(1).keyBasis() - original.oeditLayer(1).keyBasis()) < 1e-12);
        // The basis grew from the key, not from the update's key-side factor.
        const auto key = result.keys.at(1).to(torch::kDouble).flatten();
        QVERIFY(maxAbs(projectOut(reloaded.oeditLayer(1).keyBasis(), key)) < 1e-6);
        // AlphaEdit's C_p is unaffected by the reload too (same keys, same gram).
        QVERIFY(torch::equal(reloaded.alphaEditKeyGram(1, kDk), original.alphaEditKeyGram(1, kDk)));
    }
};

QTEST_GUILESS_MAIN(TestProtection)
#include "tst_protection.moc"
