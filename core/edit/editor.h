// The editing methods behind one interface: an EditRequest goes in, an
// EditResult (the update of every edited layer plus diagnostics) comes out.
// Methods are small strategies (EditMethod) created by name from a registry;
// their hyperparameters are JSON objects whose defaults live in
// resources/hparams/<method>.json.
//
// What each method is and can do is in the registry (edit/registry.h); code
// asks it (protectsSubspace, storesKeys, ...) instead of comparing names.
//
// Ownership and threads: an EditMethod holds only its hyperparameters. The
// per-run state (statistics caches, O-Edit's protection policy with its
// subspaces, AlphaEdit's accumulated keys, the history of applied updates)
// lives in an EditContext owned by the caller; one thread at a time may use a
// context and its model.
//
// Failure: everything here throws EditError with a message that names what
// was wrong and what to do. Input is validated before any weight changes;
// edit() leaves the weights as it found them (MEMIT-style methods change
// layers temporarily and restore them by copy). Weights change only in
// applyEdit/unapplyEdit, which are exact inverses of each other.
#pragma once

#include "edit/oedit_protection.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/status.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace oedit::edit {

class EditError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A progress callback returned false.
class EditCancelled : public EditError {
public:
    EditCancelled() : EditError("cancelled") {}
};

struct EditRequest {
    std::string subject;
    std::string prompt; // with "{}" where the subject goes, or containing the subject literally
    std::string targetNew;
    std::optional<std::string> targetTrue;

    nlohmann::json toJson() const;
    static EditRequest fromJson(const nlohmann::json &json);
};

// The update of one layer's MLP output projection W ([d, d_k], v = W k):
// rank one as factors (DeltaW = right * left^T) or dense.
struct LayerUpdate {
    int64_t layer = 0;
    torch::Tensor right; // [d]     rank one: the value-side factor
    torch::Tensor left;  // [d_k]   rank one: the key-side factor
    torch::Tensor dense; // [d, d_k] when not rank one

    bool rankOne() const { return right.defined() && left.defined(); }
    // DeltaW as [d, d_k] float32 on the CPU; the same bits on every call, so
    // adding and then subtracting it is exact up to float32 rounding of W.
    torch::Tensor matrix() const;
    // <this, other>_F / (||this|| ||other||), 0 when either is zero. Two rank-one
    // updates need no [d, d_k] matrix: (r1 . r2)(l1 . l2) / norms.
    double cosWith(const LayerUpdate &other) const;
};

struct EditDiagnostics {
    std::vector<double> lossCurve;     // total loss per optimisation step
    double finalTargetNll = 0;         // mean target NLL at the last step
    double valueShiftNorm = 0;         // ||delta||: the value shift the optimisation found (not the update's norm)
    std::vector<double> updateNorms;   // ||DeltaW||_F per edited layer
    double maxAbsCosWithEarlier = 0;   // largest |cos|_F with earlier applied updates of the same layer
    double maxKeyCosWithEarlier = 0;   // largest |cos| of the key-side factor with earlier rank-one updates'
                                       // (close keys: the facts share where the layer reads them)
    double maxAbsCosWithProtected = 0; // O-Edit(+): largest |cos| of DeltaW's columns with the protected basis
    int64_t protectedRank = 0;         // O-Edit(+): rank of U_S used for this edit (max over layers)
    int64_t remainingCapacity = -1; // O-Edit(+): edit directions left before the layer fills (min over layers); -1 n/a
    std::string capacityNote;       // what the capacity policy did, empty when nothing happened
    int64_t lookupPosition = 0;     // token index of the subject's last token in the bare prompt
};

struct EditTimings {
    double statistics = 0; // C / implicit basis / templates (0 when cached in the context)
    double key = 0;
    double value = 0;
    double update = 0;
    double total = 0;
};

struct EditResult {
    int64_t id = 0; // assigned by the context, unique within a run
    std::string method;
    nlohmann::json hparams; // the full set used, defaults included
    EditRequest request;
    std::vector<LayerUpdate> layers;
    // The keys K ([d_k, n]) per edited layer of a method that keeps them
    // (storesKeys in the registry): AlphaEdit's, so C_p can take them out again
    // when the edit is unapplied; O-Edit+'s on the input side with
    // input_edit_basis 'keys', what V_E grows from. Saved and loaded with the result.
    std::map<int64_t, torch::Tensor> keys;
    EditDiagnostics diagnostics;
    EditTimings timings;

    // Everything but the tensors, as JSON (hparams, request, diagnostics).
    nlohmann::json summaryJson() const;
    // Tensors and summary in one file (torch archive); load gives an equal result.
    void save(const std::string &path) const;
    static EditResult load(const std::string &path);
    // The same into / out of an archive, so several results can share one
    // file as nested archives (the engine's saved run).
    void write(torch::serialize::OutputArchive &archive) const;
    static EditResult read(torch::serialize::InputArchive &archive);
};

// Options of a context; the cache folder holds statistics across runs.
struct ContextOptions {
    std::string modelDir;   // for the default corpus (general_train.txt) and cache keys
    std::string corpusPath; // text file for statistics; empty: modelDir/general_train.txt
    std::string cacheDir;   // empty: $XDG_CACHE_HOME/oedit-workbench or ~/.cache/oedit-workbench
    ProgressFn progress;    // statistics progress; return false to cancel (EditCancelled)
    // A single edit whose target the model already answers is refused ("nothing
    // to edit"). A sequential run plans its targets up front and earlier edits
    // can move a later fact onto its planned target; the run still edits it
    // (the update raises the target's margin), so the plan never stalls.
    bool editSatisfiedTargets = false;
    // The cache key of the model's weights, when its owner knows them to be the
    // unedited ones it loaded (empty otherwise: the weights are then hashed, so
    // statistics of edited weights never land under the base model's key).
    // Weights rebuilt after edits are taken out are not bit-identical to the
    // base, so hashing them would miss the cache every time.
    std::function<std::string()> modelKey;
    // Statistics already in memory, shared by every context of one loaded model
    // (a new run or a reloaded ledger run reads them instead of the disk).
    std::shared_ptr<std::map<std::string, torch::Tensor>> sharedStatistics;
};

// Per-run state. Statistics are computed on first use from the weights as
// they are then (call prepare() before the first edit to get them from the
// unedited model) and cached on disk keyed by (model hash, layer, corpus hash,
// sample count).
class EditContext {
public:
    explicit EditContext(ContextOptions options = {});

    const ContextOptions &options() const { return m_options; }
    // Replaces the statistics progress callback (the engine sets one per call).
    void setProgress(ProgressFn progress) { m_options.progress = std::move(progress); }

    // C = E[k k^T] at `layer` over `samples` passages of the corpus (0 = all), float64 [d_k, d_k].
    const torch::Tensor &secondMoment(const model::Transformer &model, const model::Tokenizer &tokenizer, int64_t layer,
                                      int64_t samples);
    // sum_j G_j G_j^T for the LM-loss gradient G_j w.r.t. layer's W on passage j, float64 [d, d].
    const torch::Tensor &implicitGram(const model::Transformer &model, const model::Tokenizer &tokenizer, int64_t layer,
                                      int64_t samples);
    // ROME's context prefixes ("" first, then `count` sampled ones ending in ". "), generated once per
    // (count, length, seed) from the model and kept for the run.
    const std::vector<std::string> &contextPrefixes(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                                    int64_t count, int64_t length, uint64_t seed);

    // How statistics were obtained so far (tests check that the second run reads the cache).
    int64_t statisticsComputed() const { return m_computed; }
    int64_t statisticsLoadedFromCache() const { return m_loaded; }
    double statisticsSeconds() const { return m_statisticsSeconds; }

    // Matrices derived from the statistics (a Cholesky factor of C, AlphaEdit's
    // projector), computed by the methods on first use and kept for the run
    // under a key naming what they depend on; undefined until set.
    torch::Tensor &derived(const std::string &key) { return m_derived[key]; }

    // The corpus passages used for statistics (loaded once).
    const std::vector<std::string> &corpus();

    // O-Edit's protection policy with its state (subspaces per layer, per-edit records).
    OEditProtection &protection() { return m_protection; }
    const OEditProtection &protection() const { return m_protection; }
    OEditLayerState &oeditLayer(int64_t layer) { return m_protection.layer(layer); }
    const std::map<int64_t, OEditLayerState> &oeditLayers() const { return m_protection.layers(); }
    torch::Tensor &alphaEditKeyGram(int64_t layer, int64_t dk); // C_p, float64 [d_k, d_k]

    // Updates applied in this run, per layer, in order (for |cos| diagnostics),
    // kept as the results hold them (rank-one factors where they are).
    const std::vector<std::pair<int64_t, LayerUpdate>> &history(int64_t layer);
    int64_t nextEditId() { return ++m_lastId; }
    // New ids start above `id` (a run loaded from the ledger: above every edit
    // it ever had, rolled back ones included, so an undone rollback cannot
    // bring back an edit whose id a newer one took).
    void reserveIdsUpTo(int64_t id) { m_lastId = std::max(m_lastId, id); }

    // Called by applyEdit/unapplyEdit.
    void recordApplied(const EditResult &result);
    void recordUnapplied(const EditResult &result);
    // A rollback in one step: `removed` leave the run, `restored` come back,
    // and `activeOrder` lists the ids in effect afterwards in run order. Sums
    // change by the changed edits only; U_E is regrown from the history in
    // memory (no ledger reads), which costs one projection per O-Edit edit
    // and stops growing once U_E spans the layer. The state equals what
    // applying the active edits in order to a fresh context gives.
    void applyRollback(const std::vector<const EditResult *> &removed,
                       const std::vector<const EditResult *> &restored, const std::vector<int64_t> &activeOrder);

    // The run state (O-Edit subspaces, C_p, history, ids) to a file and back;
    // statistics are not saved (they are in the cache).
    void saveState(const std::string &path) const;
    void loadState(const std::string &path);
    // The same into / out of an archive (nested in a larger file).
    void writeState(torch::serialize::OutputArchive &archive) const;
    void readState(torch::serialize::InputArchive &archive);

    std::string cacheDir() const;

private:
    std::string modelHash(const model::Transformer &model);
    std::string corpusHash();
    bool sharedLookup(const std::string &name, torch::Tensor &out) const;
    void sharedStore(const std::string &name, const torch::Tensor &tensor) const;

    ContextOptions m_options;
    std::vector<std::string> m_corpus;
    bool m_corpusLoaded = false;
    std::map<std::string, torch::Tensor> m_stats; // key -> tensor
    std::map<std::string, torch::Tensor> m_derived;
    std::map<std::string, std::vector<std::string>> m_prefixes;
    OEditProtection m_protection;
    std::map<int64_t, torch::Tensor> m_alphaGram;
    UpdateHistory m_history;
    int64_t m_lastId = 0;
    int64_t m_computed = 0, m_loaded = 0;
    double m_statisticsSeconds = 0;
};

// The statistics cache's key for a model's weights as they are now: names,
// shapes and values (large tensors sampled).
std::string weightsHash(const model::Transformer &model);

class EditMethod {
public:
    virtual ~EditMethod() = default;
    virtual std::string name() const = 0;
    const nlohmann::json &hparams() const { return m_hparams; }

    // Computes the update for `request`; weights are unchanged on return, and
    // on failure. Throws EditError for bad input before doing any work.
    virtual EditResult edit(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                            EditContext &context) = 0;

    // Statistics this method will need (C, implicit basis), computed now from
    // the model as it is; call before the first edit of a run.
    virtual void prepare(model::Transformer &model, const model::Tokenizer &tokenizer, EditContext &context) {}

protected:
    nlohmann::json m_hparams;
    friend std::unique_ptr<EditMethod> createEditMethod(const std::string &, const nlohmann::json &,
                                                        const model::ModelConfig &);
};

// "ft", "rome", "memit", "alphaedit", "oedit", "oedit+".
std::vector<std::string> editMethodNames();

// The defaults of `method` for a model of this config (resources/hparams/<method>.json,
// presets applied), overridden by `overrides`. Throws EditError for an unknown
// method, an unknown hyperparameter name (listing the known ones), a value of
// the wrong type, or a layer outside the model.
nlohmann::json resolveHparams(const std::string &method, const nlohmann::json &overrides,
                              const model::ModelConfig &config);
std::unique_ptr<EditMethod> createEditMethod(const std::string &method, const nlohmann::json &overrides,
                                             const model::ModelConfig &config);
// Where resources/hparams is found: $OEDIT_HPARAMS_DIR, the installed share
// folder, then the source tree.
std::string hparamsDirectory();

// W += DeltaW for every layer of `result` (context: recordApplied when given).
void applyEdit(model::Transformer &model, const EditResult &result, EditContext *context = nullptr);
// W -= DeltaW, the exact inverse (context: recordUnapplied).
void unapplyEdit(model::Transformer &model, const EditResult &result, EditContext *context = nullptr);

// Tokens of a prompt with the position of the subject's last token.
struct PromptTokens {
    std::vector<int64_t> ids;
    int64_t lookup = 0;
};
// Splits `prompt` at "{}" (or at the first literal occurrence of `subject`),
// tokenizes prefix (with `contextPrefix` in front), subject and suffix
// separately and concatenates them (BOS first when the tokenizer adds one).
// The space before the subject goes with the subject. Throws EditError when the
// subject is empty or not in the prompt.
PromptTokens tokenizePrompt(const model::Tokenizer &tokenizer, const std::string &prompt, const std::string &subject,
                            const std::string &contextPrefix = {});
// The prompt with the subject filled in.
std::string filledPrompt(const std::string &prompt, const std::string &subject);

// Teacher-forced P(" " + target | prompt) = exp(-mean token NLL).
double targetProbability(const model::Transformer &model, const model::Tokenizer &tokenizer,
                         const std::vector<int64_t> &promptIds, const std::string &target);

// Refuses (EditError) an edit whose result holds a NaN or an infinity before
// it touches the model or the ledger, naming the step that produced it: the
// value optimisation (its loss), the keys, or the closed-form update of a layer.
void requireFiniteResult(const EditResult &result);
// Refuses (EditError) an edit already added to `model` whose outputs on the
// request's prompt are not finite (the update overflowed the weights); the
// caller takes the edit out again before anything is recorded.
void requireFiniteOutputs(const model::Transformer &model, const model::Tokenizer &tokenizer,
                          const EditRequest &request);

// Checks a request against the model before anything changes: subject in the
// prompt, non-empty target, target different from the model's current greedy
// continuation (unless `refuseSatisfied` is false) and from targetTrue.
// Throws EditError.
void validateRequest(const model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                     bool refuseSatisfied = true);

} // namespace oedit::edit
