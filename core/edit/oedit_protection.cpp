// O-Edit's protection policy: protected bases, capacity policies, and the
// subspaces grown from the applied updates (see oedit_protection.h).
#include "edit/oedit_protection.h"

#include "edit/closed_forms.h"
#include "edit/editor.h"
#include "edit/registry.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace oedit::edit {

torch::Tensor OEditLayerState::editBasis() const
{
    if (blocks.empty())
        return deltaTotal.defined() ? torch::zeros({deltaTotal.size(0), 0}, torch::kDouble) : torch::Tensor();
    return torch::cat(blocks, 1);
}

int64_t OEditLayerState::editRank() const
{
    int64_t r = 0;
    for (const auto &b : blocks)
        r += b.size(1);
    return r;
}

torch::Tensor OEditLayerState::keyBasis() const
{
    if (keyBlocks.empty())
        return deltaTotal.defined() ? torch::zeros({deltaTotal.size(1), 0}, torch::kDouble) : torch::Tensor();
    return torch::cat(keyBlocks, 1);
}

int64_t OEditLayerState::keyRank() const
{
    int64_t r = 0;
    for (const auto &b : keyBlocks)
        r += b.size(1);
    return r;
}

namespace {

// U_S = [edit basis, implicit basis] capped at `cap` columns, for either side.
// The ablation knobs protect_edits / protect_implicit leave one part out of U_S
// (the edit basis is still grown: capacity reports and rollback use it).
ProtectedBasis combinedProtection(const nlohmann::json &hp, const torch::Tensor &editBasis, int64_t width, int64_t cap,
                                  const torch::Tensor &implicitBasis, const torch::Tensor &implicitEnergy,
                                  const std::string &droppedNote)
{
    ProtectedBasis p;
    const bool edits = hp.value("protect_edits", true) && editBasis.defined() && editBasis.size(1) > 0;
    const auto E = edits ? editBasis : torch::zeros({width, 0}, torch::kDouble);
    p.remaining = cap - E.size(1);
    int64_t dropped = 0;
    p.basis = protectedBasis(E, hp.value("protect_implicit", true) ? implicitBasis : torch::Tensor(), implicitEnergy,
                             cap, &dropped)
                  .to(torch::kFloat);
    if (dropped > 0)
        p.note = droppedNote + ": " + std::to_string(dropped) + " weakest directions dropped to keep room for edits";
    return p;
}

// The vector an edit adds to V_E at a layer: its key when the record keeps one.
torch::Tensor keySideVector(const std::map<int64_t, torch::Tensor> &keys, const LayerUpdate &update)
{
    const auto found = keys.find(update.layer);
    return found == keys.end() ? update.left : found->second;
}

const std::string kRefuse = "refuse";

} // namespace

int64_t OEditProtection::rankCap(const nlohmann::json &hp, int64_t width)
{
    return std::clamp<int64_t>(static_cast<int64_t>(std::floor(hp.value("rank_cap_fraction", 0.75) * double(width))), 1,
                               width);
}

bool OEditProtection::usesInputSide(const nlohmann::json &hparams)
{
    return hparams.value("side", std::string("output")) != "output" ||
           hparams.value("capacity_policy", std::string()) == "input";
}

ProtectedBasis OEditProtection::outputBasis(const nlohmann::json &hp, int64_t layer, int64_t d,
                                            const ImplicitGram &gram)
{
    auto &state = m_layers[layer];
    const int64_t cap = rankCap(hp, d);
    if (!state.implicitBasis.defined()) {
        auto basis = energyBasis(gram(layer), hp.value("eps_I", 0.95), cap);
        state.implicitBasis = basis.first.to(torch::kFloat);
        state.implicitEnergy = basis.second.to(torch::kFloat);
    }
    return combinedProtection(hp, state.editBasis(), d, cap, state.implicitBasis, state.implicitEnergy,
                              "layer " + std::to_string(layer) + " implicit knowledge");
}

// V_S = [V_E, V~_I] in key space, V_I the top eigenvectors of C (the keys the
// layer mostly sees, GPM-style), capped like U_S at rank_cap_fraction of the key width.
ProtectedBasis OEditProtection::inputBasis(const nlohmann::json &hp, int64_t layer, const torch::Tensor &C)
{
    auto &state = m_layers[layer];
    const int64_t dk = C.size(0), cap = rankCap(hp, dk);
    if (!state.implicitKeyBasis.defined()) {
        auto basis = energyBasis(C, hp.value("eps_I_input", 0.5), cap);
        state.implicitKeyBasis = basis.first.to(torch::kFloat);
        state.implicitKeyEnergy = basis.second.to(torch::kFloat);
    }
    return combinedProtection(hp, state.keyBasis(), dk, cap, state.implicitKeyBasis, state.implicitKeyEnergy,
                              "layer " + std::to_string(layer) + " input side keys");
}

std::pair<int64_t, ProtectedBasis> OEditProtection::placeOutput(const nlohmann::json &hp, int64_t layer, int64_t d,
                                                                const ImplicitGram &gram)
{
    auto protection = outputBasis(hp, layer, d, gram);
    if (protection.remaining > 0)
        return {layer, protection};
    const std::string policy = hp.value("capacity_policy", "relax");
    const std::string full =
        "layer " + std::to_string(layer) + " is full (" + std::to_string(rankCap(hp, d)) + " edit directions)";
    if (policy == kRefuse)
        throw EditError(full + ": the capacity policy is 'refuse'; roll back edits, raise "
                               "rank_cap_fraction or choose another policy");
    if (policy == "input") {
        protection.relaxed = true;
        protection.note = full + "; this edit is made on the input side";
    } else if (policy == "spread") {
        for (const auto &next : hp.value("spread_layers", std::vector<int64_t>{})) {
            auto candidate = outputBasis(hp, next, d, gram);
            if (candidate.remaining > 0) {
                candidate.note = full + "; edit moved to layer " + std::to_string(next);
                return {next, candidate};
            }
        }
        throw EditError(full + " and so are the spread_layers: roll back edits or raise rank_cap_fraction");
    } else {
        protection.relaxed = true;
        protection.note = full + ": exact orthogonality relaxed to the soft loss for this edit";
    }
    return {layer, protection};
}

ProtectedBasis OEditProtection::placeInput(const nlohmann::json &hp, int64_t layer, const torch::Tensor &C)
{
    auto protection = inputBasis(hp, layer, C);
    if (protection.remaining <= 0) {
        const std::string full = "the input side of layer " + std::to_string(layer) + " is full (" +
                                 std::to_string(rankCap(hp, C.size(0))) + " key directions)";
        if (hp.value("capacity_policy", "") == kRefuse)
            throw EditError(full + ": the capacity policy is 'refuse'; roll back edits or raise rank_cap_fraction");
        protection.relaxed = true;
        protection.note = full + ": this edit is not projected";
    }
    return protection;
}

OEditProtection::LayerSet OEditProtection::placeLayers(const nlohmann::json &hp, const std::vector<int64_t> &layers,
                                                       int64_t d, const ImplicitGram &gram)
{
    LayerSet set;
    std::vector<torch::Tensor> parts;
    for (const auto layer : layers) {
        auto &protection = set.layers[layer];
        protection = outputBasis(hp, layer, d, gram);
        if (protection.remaining <= 0) {
            const std::string policy = hp.value("capacity_policy", "relax");
            const std::string full = "layer " + std::to_string(layer) + " is full";
            if (policy == kRefuse)
                throw EditError(full + ": the capacity policy is 'refuse'; roll back edits, raise "
                                       "rank_cap_fraction or choose another policy");
            // MEMIT spreads by itself; a full layer gets the soft loss only.
            protection.relaxed = true;
            protection.note = full + ": exact orthogonality relaxed to the soft loss";
        }
        if (!protection.relaxed)
            parts.push_back(protection.basis);
    }
    if (!parts.empty()) {
        const auto all = torch::cat(parts, 1).to(torch::kDouble);
        const auto svd = torch::svd(all);
        const int64_t r = (std::get<1>(svd) > 1e-6).sum().item<int64_t>();
        set.unionBasis = std::get<0>(svd).narrow(1, 0, r).to(torch::kFloat).contiguous();
    }
    return set;
}

int64_t OEditProtection::remainingAfter(const ProtectedBasis &p, int64_t layer, const LayerUpdate &update, double eps)
{
    // Rank one: from the factors, not from the [d, d_k] matrix (an SVD of it costs more than the edit).
    const auto U = m_layers[layer].editBasis();
    const auto grown =
        update.rankOne() ? growBasisRankOne(U, update.right, update.left, eps) : growBasis(U, update.matrix(), eps);
    return std::max<int64_t>(p.remaining - grown.size(1), 0);
}

int64_t OEditProtection::keyRemainingAfter(const ProtectedBasis &p, int64_t layer, const torch::Tensor &keyVector,
                                           const torch::Tensor &right, double eps)
{
    const auto grown = growBasisRankOne(m_layers[layer].keyBasis(), keyVector, right, eps);
    return std::max<int64_t>(p.remaining - grown.size(1), 0);
}

// V_E must hold what earlier edits read, so that DeltaW_new k_old = 0 keeps
// their values: their keys. The update's key-side factor C^-1 k points
// elsewhere whenever C is not a multiple of I, and protecting it leaves the
// earlier edits exposed ('updates', kept for comparison).
OEditProtection::Record OEditProtection::recordFor(const EditResult &result)
{
    Record record{result.hparams.value("eps_E", kDefaultEnergy), usesInputSide(result.hparams), {}};
    if (record.keySide && result.hparams.value("input_edit_basis", std::string("updates")) == "keys")
        for (const auto &[layer, K] : result.keys)
            record.keys[layer] = K.to(torch::kDouble).mean(1);
    return record;
}

void OEditProtection::recordApplied(const EditResult &result)
{
    if (!protectsSubspace(result.method))
        return;
    for (const auto &update : result.layers) {
        const auto M = update.matrix();
        auto &state = m_layers[update.layer];
        if (!state.deltaTotal.defined())
            state.deltaTotal = torch::zeros_like(M);
        state.deltaTotal += M;
        const auto record = recordFor(result);
        const double energy = record.energy;
        const bool keySide = record.keySide;
        m_records[result.id] = record;
        // Rank one: from the factors, without an SVD of the [d, d_k] matrix.
        const auto block = update.rankOne() ? growBasisRankOne(state.editBasis(), update.right, update.left, energy)
                                            : growBasis(state.editBasis(), M, energy);
        if (block.size(1) > 0) {
            state.blocks.push_back(block);
            state.blockOwner.push_back(result.id);
        }
        // V_E: the same on the key side (the transpose's column space).
        if (keySide) {
            const auto keyBlock =
                update.rankOne()
                    ? growBasisRankOne(state.keyBasis(), keySideVector(record.keys, update), update.right, energy)
                    : growBasis(state.keyBasis(), M.t(), energy);
            if (keyBlock.size(1) > 0) {
                state.keyBlocks.push_back(keyBlock);
                state.keyBlockOwner.push_back(result.id);
            }
        }
    }
}

void OEditProtection::recordUnapplied(const EditResult &result)
{
    if (protectsSubspace(result.method))
        for (const auto &update : result.layers) {
            auto &state = m_layers[update.layer];
            if (state.deltaTotal.defined())
                state.deltaTotal -= update.matrix();
            // U_E is the concatenation of per-edit blocks, each orthogonal to the
            // earlier ones, so dropping this edit's block leaves an orthonormal basis.
            for (size_t i = state.blocks.size(); i-- > 0;)
                if (state.blockOwner[i] == result.id) {
                    state.blocks.erase(state.blocks.begin() + static_cast<long>(i));
                    state.blockOwner.erase(state.blockOwner.begin() + static_cast<long>(i));
                }
            for (size_t i = state.keyBlocks.size(); i-- > 0;)
                if (state.keyBlockOwner[i] == result.id) {
                    state.keyBlocks.erase(state.keyBlocks.begin() + static_cast<long>(i));
                    state.keyBlockOwner.erase(state.keyBlockOwner.begin() + static_cast<long>(i));
                }
        }
    m_records.erase(result.id);
}

void OEditProtection::forget(const EditResult &result)
{
    for (const auto &update : result.layers)
        if (protectsSubspace(result.method) && m_layers[update.layer].deltaTotal.defined())
            m_layers[update.layer].deltaTotal -= update.matrix();
    m_records.erase(result.id);
}

void OEditProtection::restore(const EditResult &result)
{
    if (!protectsSubspace(result.method))
        return;
    for (const auto &update : result.layers) {
        auto &state = m_layers[update.layer];
        const auto M = update.matrix();
        if (!state.deltaTotal.defined())
            state.deltaTotal = torch::zeros_like(M);
        state.deltaTotal += M;
        m_records[result.id] = recordFor(result);
    }
}

// U_E (and V_E) from the history, as recordApplied would grow them edit by
// edit, into one preallocated [width, width] matrix instead of concatenating
// the blocks for every edit. Blocks owned by the first `keep` entries are
// those the same edits grew before, so they stay and growth resumes after
// them: removing a late edit costs little, an early one a regrowth bounded by
// the width (growth stops once the basis spans the layer).
void OEditProtection::regrow(const UpdateHistory &histories, const std::map<int64_t, size_t> &keep)
{
    static const std::vector<std::pair<int64_t, LayerUpdate>> kNone;
    for (auto &[layer, state] : m_layers) {
        if (!state.deltaTotal.defined()) {
            state.blocks.clear();
            state.blockOwner.clear();
            state.keyBlocks.clear();
            state.keyBlockOwner.clear();
            continue;
        }
        const auto foundHistory = histories.find(layer);
        const auto &history = foundHistory == histories.end() ? kNone : foundHistory->second;
        const auto found = keep.find(layer);
        const size_t from = found == keep.end() ? 0 : std::min(found->second, history.size());
        std::set<int64_t> kept;
        for (size_t i = 0; i < from; ++i)
            kept.insert(history[i].first);
        for (const bool keySide : {false, true}) {
            const int64_t width = state.deltaTotal.size(keySide ? 1 : 0);
            auto &blocks = keySide ? state.keyBlocks : state.blocks;
            auto &owners = keySide ? state.keyBlockOwner : state.blockOwner;
            // Blocks are in history order: keep the leading ones the unchanged entries own.
            size_t keepBlocks = 0;
            while (keepBlocks < owners.size() && kept.count(owners[keepBlocks]))
                ++keepBlocks;
            blocks.resize(keepBlocks);
            owners.resize(keepBlocks);
            bool anyKeySide = false;
            for (size_t i = from; i < history.size() && !anyKeySide; ++i) {
                const auto record = m_records.find(history[i].first);
                anyKeySide = record != m_records.end() && record->second.keySide;
            }
            if (keySide && !anyKeySide)
                continue; // nothing after the kept part grows V_E
            auto U = torch::zeros({width, width}, torch::kDouble);
            int64_t rank = 0;
            for (const auto &block : blocks) {
                U.narrow(1, rank, block.size(1)).copy_(block);
                rank += block.size(1);
            }
            for (size_t i = from; i < history.size(); ++i) {
                const auto &[id, update] = history[i];
                const auto record = m_records.find(id);
                if (record == m_records.end() || (keySide && !record->second.keySide))
                    continue; // not an O-Edit edit (or not one that keeps V_E)
                if (rank >= width)
                    break; // the basis spans the layer: nothing can grow it
                const double energy = record->second.energy;
                const auto current = U.narrow(1, 0, rank);
                const auto block =
                    update.rankOne() ? (keySide ? growBasisRankOne(current, keySideVector(record->second.keys, update),
                                                                   update.right, energy)
                                                : growBasisRankOne(current, update.right, update.left, energy))
                                     : growBasis(current, keySide ? update.matrix().t() : update.matrix(), energy);
                const int64_t added = std::min<int64_t>(block.size(1), width - rank);
                if (added <= 0)
                    continue;
                U.narrow(1, rank, added).copy_(block.narrow(1, 0, added));
                rank += added;
                blocks.push_back(block.narrow(1, 0, added).clone());
                owners.push_back(id);
            }
        }
    }
}

void OEditProtection::clear()
{
    m_layers.clear();
    m_records.clear();
}

void OEditProtection::write(torch::serialize::OutputArchive &archive, nlohmann::json &index) const
{
    for (const auto &[id, record] : m_records) {
        index["oeditEnergy"].push_back({id, record.energy, record.keySide});
        for (const auto &[layer, key] : record.keys) {
            archive.write("oeditKey." + std::to_string(id) + "." + std::to_string(layer), key);
            index["oeditKeys"].push_back({id, layer});
        }
    }
    for (const auto &[layer, state] : m_layers) {
        const std::string p = "oedit." + std::to_string(layer) + ".";
        nlohmann::json entry;
        entry["layer"] = layer;
        entry["owners"] = state.blockOwner;
        entry["hasTotal"] = state.deltaTotal.defined();
        entry["hasImplicit"] = state.implicitBasis.defined();
        if (state.deltaTotal.defined())
            archive.write(p + "total", state.deltaTotal);
        if (state.implicitBasis.defined()) {
            archive.write(p + "implicit", state.implicitBasis);
            archive.write(p + "implicitEnergy", state.implicitEnergy);
        }
        for (size_t i = 0; i < state.blocks.size(); ++i)
            archive.write(p + "block." + std::to_string(i), state.blocks[i]);
        entry["keyOwners"] = state.keyBlockOwner;
        for (size_t i = 0; i < state.keyBlocks.size(); ++i)
            archive.write(p + "keyBlock." + std::to_string(i), state.keyBlocks[i]);
        entry["hasImplicitKeys"] = state.implicitKeyBasis.defined();
        if (state.implicitKeyBasis.defined()) {
            archive.write(p + "implicitKeys", state.implicitKeyBasis);
            archive.write(p + "implicitKeyEnergy", state.implicitKeyEnergy);
        }
        index["oedit"].push_back(entry);
    }
}

void OEditProtection::read(torch::serialize::InputArchive &archive, const nlohmann::json &index,
                           const UpdateHistory &history)
{
    clear();
    for (const auto &entry : index.value("oeditEnergy", nlohmann::json::array()))
        m_records[entry.at(0).get<int64_t>()] = {
            entry.at(1).get<double>(), entry.size() > 2 && entry.at(2).get<bool>(), {}};
    for (const auto &entry : index.value("oeditKeys", nlohmann::json::array())) {
        const int64_t id = entry.at(0).get<int64_t>(), layer = entry.at(1).get<int64_t>();
        torch::Tensor key;
        archive.read("oeditKey." + std::to_string(id) + "." + std::to_string(layer), key);
        m_records[id].keys[layer] = key;
    }
    for (const auto &entry : index.value("oedit", nlohmann::json::array())) {
        const int64_t layer = entry["layer"];
        const std::string p = "oedit." + std::to_string(layer) + ".";
        OEditLayerState state;
        if (entry["hasTotal"].get<bool>())
            archive.read(p + "total", state.deltaTotal);
        if (entry["hasImplicit"].get<bool>()) {
            archive.read(p + "implicit", state.implicitBasis);
            archive.read(p + "implicitEnergy", state.implicitEnergy);
        }
        state.blockOwner = entry["owners"].get<std::vector<int64_t>>();
        for (size_t i = 0; i < state.blockOwner.size(); ++i) {
            torch::Tensor block;
            archive.read(p + "block." + std::to_string(i), block);
            state.blocks.push_back(block);
        }
        // Files written before the input side was kept have no key blocks:
        // they are regrown from the history below.
        state.keyBlockOwner = entry.value("keyOwners", std::vector<int64_t>{});
        for (size_t i = 0; i < state.keyBlockOwner.size(); ++i) {
            torch::Tensor block;
            archive.read(p + "keyBlock." + std::to_string(i), block);
            state.keyBlocks.push_back(block);
        }
        if (entry.value("hasImplicitKeys", false)) {
            archive.read(p + "implicitKeys", state.implicitKeyBasis);
            archive.read(p + "implicitKeyEnergy", state.implicitKeyEnergy);
        }
        m_layers[layer] = state;
    }
    // Files written before the energies were kept: every edit in an O-Edit
    // layer's history grew U_E with the default eps_E.
    if (!index.contains("oeditEnergy"))
        for (const auto &[layer, state] : m_layers)
            if (const auto found = history.find(layer); found != history.end())
                for (const auto &[id, update] : found->second)
                    m_records[id] = {kDefaultEnergy, false, {}};
    bool keysMissing = false;
    for (const auto &entry : index.value("oedit", nlohmann::json::array()))
        keysMissing = keysMissing || !entry.contains("keyOwners");
    if (keysMissing)
        regrow(history);
}

double projectKeySide(const torch::Tensor &V, torch::Tensor &left, const torch::Tensor &key, double ridge)
{
    const auto l = left.to(torch::kDouble).flatten(), k = key.to(torch::kDouble).flatten();
    const double b = l.dot(k).item<double>();
    const auto pl = projectOut(V.to(torch::kDouble), l);
    const double a = pl.dot(k).item<double>();
    const double denominator = a * a + ridge * b * b;
    const double scale = denominator > 0 ? a * b / denominator : 0.0;
    left = (pl * scale).reshape(left.sizes()).to(left.scalar_type());
    return b != 0 ? scale * a / b : 0.0;
}

} // namespace oedit::edit
