// The sequential runner: N edits one after another, each recorded in the
// ledger as it is made, evaluated every K edits and at the end, cancellable,
// and resumable after a crash or a kill from what the ledger holds.
//
// The whole plan (every request, in order) is written into the run's options
// before the first edit, so a resume needs nothing but the ledger and the
// model folder: it rebuilds the weights and the method's state from the
// stored updates and carries on at the first step the ledger does not have.
// Each edit is appended in one transaction; a kill loses at most the edit
// being computed (redone on resume) and never duplicates one. A checkpoint
// whose edit landed but whose evaluation did not is evaluated on resume.
//
// Live weights: the runner keeps the float64 sum of every edited layer's
// updates and sets the layer to base + sum after each edit, so the model
// always holds the correctly rounded weights that rebuild.h reproduces from
// the ledger (applying edits one by one in float32 drifts one rounding per edit).
//
// Ownership and threads: the runner loads and owns its model, tokenizer and
// edit context for the call; the caller owns the store::Ledger. One thread.
// Failure: bad input (unknown method, a dataset that does not fit, a model
// that is not the run's base model, more edits than facts) throws
// store::LedgerError/EditError before anything is written. A failing edit mid-run
// stops the run with status "failed" and the message; edits before it stay.
#pragma once

#include "edit/editor.h"
#include "run/loaded_model.h"
#include "store/ledger.h"

#include "oedit/status.h"
#include "oedit/world.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace oedit::run {

struct RunnerOptions {
    std::string modelDir; // the overloads without a LoadedModel load this folder
    std::string dataset = "world"; // "world" (the model's world.json) or a CounterFact/zsRE file
    std::string method = "oedit+";
    nlohmann::json overrides = nlohmann::json::object(); // hyperparameters over the method's defaults
    int64_t edits = 10;
    int64_t evalEvery = 0; // 0: evaluate at the end only
    uint64_t seed = 1;
    std::string cacheDir; // statistics cache; empty: the default
    std::string label;    // stored in the run's options; finds the run again
};

// What an evaluation sees: the model as it is after `step`, and the active
// edits so far (ledger edit ids with their requests), in order.
struct EvalInput {
    const model::Transformer &model;
    const model::Tokenizer &tokenizer;
    int64_t step;
    const std::vector<store::EditRow> &edits;
    const std::map<int64_t, torch::Tensor> *base = nullptr; // the unedited MLP output weights (rebuild.h BaseWeights)
};
using EvaluateFn = std::function<std::vector<store::Metric>(const EvalInput &)>;

struct RunnerCallbacks {
    ProgressFn progress; // (edits done, edits planned); false stops after the current edit ("cancelled")
    EvaluateFn evaluate; // empty: eval::EditEvaluator (the full suite; efficacyMetrics when no world or file loads)
};

struct RunnerResult {
    int64_t runId = 0;
    int64_t steps = 0;       // steps in the ledger (edits appended)
    int64_t activeEdits = 0; // edits in effect
    std::string status;      // running | cancelled | failed | finished
    std::string message;     // why it failed, when it did
};

// Distinct facts drawn with `seed` (mt19937_64), each with a new target drawn
// from its relation's other objects; the canonical template as prompt.
// Throws store::LedgerError when the world has fewer editable facts than `count`.
std::vector<edit::EditRequest> worldRequests(const world::World &world, int64_t count, uint64_t seed);

// Creates a run in `ledger` on `model` and runs it (options.modelDir is not read).
RunnerResult startRun(store::Ledger &ledger, LoadedModel &model, const RunnerOptions &options,
                      const RunnerCallbacks &callbacks = {});
// Continues a run that stopped (cancelled, failed, killed) on `model`, which
// must be the run's base model (its folder's content hash is checked).
RunnerResult resumeRun(store::Ledger &ledger, LoadedModel &model, int64_t runId, const RunnerCallbacks &callbacks = {});
// The same, loading options.modelDir (the run's model folder) on the CPU first.
RunnerResult startRun(store::Ledger &ledger, const RunnerOptions &options, const RunnerCallbacks &callbacks = {});
RunnerResult resumeRun(store::Ledger &ledger, int64_t runId, const RunnerCallbacks &callbacks = {});

// The default evaluation hook until the metrics suite lands: efficacy
// ("ES", the fraction of active edits whose new target is now more probable
// than the true one) and one "edit_success" row (0/1) per edit, the
// checkpoint's column of the retention matrix. Batched.
std::vector<store::Metric> efficacyMetrics(const EvalInput &input);

} // namespace oedit::run
