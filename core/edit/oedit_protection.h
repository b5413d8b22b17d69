// O-Edit's protection of earlier knowledge as a policy that the ROME and MEMIT
// bases both use. It owns the run's O-Edit state: per layer the edit
// subspaces U_E (value side) and V_E (key side) grown from the applied
// updates, the implicit-knowledge bases, the sum of the applied updates, and
// per edit the record of how it grew them (so a rollback can regrow them).
//
// Before an edit it builds the protected basis U_S = [U_E, U~_I] of a layer
// (or V_S on the key side) and applies the capacity policy when the layer is
// full (rank_cap_fraction of its width used by edits):
//   relax  - this edit keeps the soft orthogonality loss only, no projection;
//   spread - (single layer) the edit moves to the first of spread_layers with room;
//   input  - (single layer) the edit is made on the input side instead;
//   refuse - EditError, nothing changes.
// The input side has one rule: refuse throws, every other policy makes the
// edit without projecting it.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace oedit::edit {

struct EditResult;
struct EditDiagnostics;
struct LayerUpdate;

// How a method uses O-Edit's protected subspace.
enum class SubspaceMode {
    Off,        // none (ROME, MEMIT, AlphaEdit, fine-tuning)
    Loss,       // O-Edit: the orthogonality loss on the learnt value
    Projection, // O-Edit+: delta and DeltaW projected off U_S (the loss too unless keep_loss is false)
};

// O-Edit's state for one layer. Output side: U_E spans the updates' column
// (value) directions, U_I the implicit knowledge in the residual stream.
// Input side: V_E spans the updates' row (key) directions, V_I the keys the
// layer mostly sees (top eigenvectors of C); an update with DeltaW V = 0 is
// Frobenius-orthogonal to every earlier update whatever its value side.
struct OEditLayerState {
    torch::Tensor deltaTotal;             // [d, d_k] sum of applied updates
    std::vector<int64_t> blockOwner;      // edit id of each column block of U_E
    std::vector<torch::Tensor> blocks;    // [d, r_i] orthonormal, mutually orthogonal
    torch::Tensor implicitBasis;          // U_I [d, q], columns by decreasing energy (undefined until computed)
    torch::Tensor implicitEnergy;         // [q] eigenvalues of sum_j G_j G_j^T
    std::vector<int64_t> keyBlockOwner;   // edit id of each column block of V_E
    std::vector<torch::Tensor> keyBlocks; // [d_k, r_i] orthonormal, mutually orthogonal
    torch::Tensor implicitKeyBasis;       // V_I [d_k, q] (undefined until an input-side edit needs it)
    torch::Tensor implicitKeyEnergy;      // [q] eigenvalues of C

    torch::Tensor editBasis() const; // U_E [d, r] (r may be 0)
    int64_t editRank() const;
    torch::Tensor keyBasis() const; // V_E [d_k, r] (r may be 0)
    int64_t keyRank() const;
};

// The protected basis of one layer for one edit, and what the capacity policy did.
struct ProtectedBasis {
    torch::Tensor basis;    // U_S (or V_S), float32 [width, r]
    int64_t remaining = -1; // edit directions left before this edit
    bool relaxed = false;   // the layer is full: no projection (soft loss only)
    std::string note;       // what the capacity policy did, empty when nothing happened
};

// The applied updates per layer in run order, as (edit id, update).
using UpdateHistory = std::map<int64_t, std::vector<std::pair<int64_t, LayerUpdate>>>;

class OEditProtection {
public:
    // eps_E of an edit whose hyperparameters do not name one (how much of each update U_E keeps).
    static constexpr double kDefaultEnergy = 0.99;
    // sum_j G_j G_j^T of a layer (EditContext::implicitGram), asked only while U_I is unknown.
    using ImplicitGram = std::function<const torch::Tensor &(int64_t layer)>;

    OEditLayerState &layer(int64_t layer) { return m_layers[layer]; }
    const std::map<int64_t, OEditLayerState> &layers() const { return m_layers; }

    // At most floor(rank_cap_fraction * width) directions, 1..width.
    static int64_t rankCap(const nlohmann::json &hp, int64_t width);
    // The run uses the input side (side 'input'/'both' or capacity_policy 'input').
    static bool usesInputSide(const nlohmann::json &hp);

    // U_S of `layer` ([d, r], d = hidden width); U_I comes from eps_I of the
    // implicit Gram matrix on first use. No capacity policy.
    ProtectedBasis outputBasis(const nlohmann::json &hp, int64_t layer, int64_t d, const ImplicitGram &gram);
    // V_S of `layer` in key space; V_I from eps_I_input of C ([d_k, d_k]) on first use. No capacity policy.
    ProtectedBasis inputBasis(const nlohmann::json &hp, int64_t layer, const torch::Tensor &C);

    // One edited layer (ROME base), output side: U_S of `layer`, or, when it is
    // full, what capacity_policy says (relax, input: relaxed with a note;
    // spread: the first of spread_layers with room; refuse: EditError).
    // Returns the layer the edit goes to and its basis.
    std::pair<int64_t, ProtectedBasis> placeOutput(const nlohmann::json &hp, int64_t layer, int64_t d,
                                                   const ImplicitGram &gram);
    // Input side of `layer`: V_S, relaxed with a note when full (EditError under 'refuse').
    ProtectedBasis placeInput(const nlohmann::json &hp, int64_t layer, const torch::Tensor &C);
    // Several edited layers (MEMIT base): U_S per layer, a full layer relaxed
    // (EditError under 'refuse'), and an orthonormal basis of the union of the
    // layers' bases that are not relaxed (undefined when there is none): delta
    // lives in the residual stream every edited layer writes to.
    struct LayerSet {
        std::map<int64_t, ProtectedBasis> layers;
        torch::Tensor unionBasis;
    };
    LayerSet placeLayers(const nlohmann::json &hp, const std::vector<int64_t> &layers, int64_t d,
                         const ImplicitGram &gram);

    // Edit directions left in `layer` after `update` grows U_E with energy eps (never below 0).
    int64_t remainingAfter(const ProtectedBasis &p, int64_t layer, const LayerUpdate &update, double eps);
    // The same for V_E grown from `keyVector` (the edit's key or the update's key-side factor).
    int64_t keyRemainingAfter(const ProtectedBasis &p, int64_t layer, const torch::Tensor &keyVector,
                              const torch::Tensor &right, double eps);

    // Bookkeeping of applied updates (results of methods that protect a subspace;
    // others are ignored). Exact inverses of each other.
    void recordApplied(const EditResult &result);
    void recordUnapplied(const EditResult &result);
    // A rollback in two halves: forget() drops a removed edit from the sums and
    // records, restore() adds a restored one back; then regrow() rebuilds U_E
    // and V_E from the history (keeping per layer the blocks of the first
    // keep[layer] entries, 0 when absent).
    void forget(const EditResult &result);
    void restore(const EditResult &result);
    void regrow(const UpdateHistory &history, const std::map<int64_t, size_t> &keep = {});

    // The state into / out of an archive; `index` is the archive's JSON index
    // (entries "oeditEnergy", "oeditKeys", "oedit"). read() needs the history
    // already read (older files are completed from it).
    void write(torch::serialize::OutputArchive &archive, nlohmann::json &index) const;
    void read(torch::serialize::InputArchive &archive, const nlohmann::json &index, const UpdateHistory &history);
    void clear();

private:
    // How an applied edit grew the subspaces: its eps_E and whether its run uses
    // the input side (only then is V_E kept: growing it costs a projection on
    // the d_k-wide key side per edit).
    struct Record {
        double energy = kDefaultEnergy;
        bool keySide = false;
        // input_edit_basis 'keys': the edit's key per layer, what V_E grows
        // from (empty: V_E grows from the update's key-side factor).
        std::map<int64_t, torch::Tensor> keys;
    };
    static Record recordFor(const EditResult &result);

    std::map<int64_t, OEditLayerState> m_layers;
    std::map<int64_t, Record> m_records;
};

// DeltaW = right left^T with its key side moved off V: left <- s (I - V V^T) left.
// Dividing by (P left).k to keep DeltaW k exactly blows up when k lies mostly
// in V (keys of different subjects are close), so s solves the ridge problem
// min (s a - b)^2 + ridge b^2 s^2 with a = (P left).k, b = left.k instead.
// Returns the share of DeltaW k kept (s a / b, at most 1).
double projectKeySide(const torch::Tensor &V, torch::Tensor &left, const torch::Tensor &key, double ridge);

} // namespace oedit::edit
