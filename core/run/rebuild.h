// Weights and method state from the ledger. The ledger holds no weights, only
// the exact update of every edit, so the weights of a run at step k are the
// base model plus the updates of its active edits up to k. The sum is formed
// in float64 and rounded to the model's dtype once, so rebuilt weights are the
// correctly rounded expectation however many edits a run holds (a run applied
// edit by edit in float32 carries one rounding per edit; the two agree to
// well under 1e-6 on the mini model).
//
// Method state. O-Edit keeps its edit subspace U_E as one orthonormal block
// per edit, each grown from that edit's update after projecting out the
// blocks before it (EditContext::recordApplied). Dropping a block from the
// middle (what recordUnapplied does alone) would leave the later blocks
// orthogonalised against a direction no longer in U_E, so the subspace would
// not be the one the remaining edits span. We therefore regrow U_E instead of
// patching it: the context drops or restores the changed edits (their sums,
// AlphaEdit's C_p, their place in the per-layer history, all O(changed)) and
// then regrows U_E from the updates its history already holds in memory, in
// run order, exactly as recordApplied grew it edit by edit; growth stops once
// U_E spans the layer, so the cost is bounded by the layer width, not by the
// run's length. The result is the state a context would have had if the
// removed edits had never been made, and for a revert it is exactly the state
// the run had at that step. Statistics (C, U_I) come from the base model and
// are left alone.
//
// Ownership and threads: functions borrow the model, the context and the
// ledger for the call, on the caller's thread (the one that owns all three).
// Failure: store::LedgerError / EditError; the weights are checked against the
// stored updates' shapes before any layer changes.
#pragma once

#include "edit/editor.h"
#include "model/transformer.h"
#include "store/ledger.h"

#include <map>
#include <optional>

namespace oedit::run {

// Copies of every layer's MLP output projection ([d, d_k], as mlpOutWeight).
using BaseWeights = std::map<int64_t, torch::Tensor>;
BaseWeights captureBaseWeights(const model::Transformer &model);

// Sets every layer in `base` to base + the active edits of `run` up to
// `step` (all active edits when none). Returns how many edits were added.
int64_t rebuildWeights(model::Transformer &model, const BaseWeights &base, store::Ledger &ledger, int64_t run,
                       std::optional<int64_t> step = std::nullopt);

// The same sum in float64 on the CPU, for checks (tests, `oedit export --verify`).
std::map<int64_t, torch::Tensor> expectedWeights(const BaseWeights &base, store::Ledger &ledger, int64_t run,
                                                 std::optional<int64_t> step = std::nullopt);

// Records the active edits of `run` up to `step` in a context that holds none
// yet (a fresh one, after the method's prepare() on the base model): resume.
void replayEditState(edit::EditContext &context, store::Ledger &ledger, int64_t run,
                     std::optional<int64_t> step = std::nullopt);

// Brings a model (and its context, when given) that held the run's active set
// just before `event` to the active set after it. Without `base`, the changed
// edits' updates are summed in float64 and subtracted or added once per layer
// (fast: cost independent of the run's length; adds one rounding). With
// `base`, each touched layer is rebuilt as base + all active updates, rounded
// once (exact; reads every active update of those layers). The context gets
// EditContext::applyRollback. Everything is read and checked before a weight
// changes.
void applyRollback(model::Transformer &model, edit::EditContext *context, store::Ledger &ledger, const store::RollbackEvent &event,
                   const BaseWeights *base = nullptr);

} // namespace oedit::run
