// The weights of a model that carries edits, kept exact: the unedited MLP
// output weights, and per edited layer the float64 sum of the updates in
// effect. Each changed layer is set to base + sum, rounded once, so the model
// holds the correctly rounded weights that rebuild.h reproduces from the
// ledger, taking every edit out gives the base bits back, and no rounding
// accumulates over thousands of edits (adding and subtracting in float32 one
// edit at a time drifts one rounding per edit).
//
// Ownership and threads: borrows the base weights (owned by LoadedModel) and
// the model for each call; one thread, the one that owns the model.
// Failure: torch errors for updates whose shapes do not fit (callers check
// shapes first, so weights never change half-way).
#pragma once

#include "edit/editor.h"
#include "run/rebuild.h"

#include <map>
#include <set>
#include <vector>

namespace oedit::run {

class LiveWeights {
public:
    explicit LiveWeights(const BaseWeights &base) : m_base(&base) {}

    // W = base + sum for every layer `result` changes, after adding (sign +1)
    // or taking out (sign -1) its updates.
    void add(model::Transformer &model, const edit::EditResult &result) { change(model, result, 1.0); }
    void subtract(model::Transformer &model, const edit::EditResult &result) { change(model, result, -1.0); }
    // Adds many results at once (a run loaded from the ledger), setting each
    // changed layer once.
    void addAll(model::Transformer &model, const std::vector<const edit::EditResult *> &results);
    // Sets every layer to base + its sum: after someone else (a sequential
    // run on the same model) changed the weights.
    void restore(model::Transformer &model) const;
    // No edit in effect: the model holds exactly the base weights.
    bool empty() const { return m_sums.empty(); }
    const BaseWeights &base() const { return *m_base; }
    const std::map<int64_t, torch::Tensor> &sums() const { return m_sums; }

private:
    void accumulate(const edit::EditResult &result, double sign, std::set<int64_t> &changed);
    void change(model::Transformer &model, const edit::EditResult &result, double sign);
    void setLayer(model::Transformer &model, int64_t layer) const;

    const BaseWeights *m_base;
    std::map<int64_t, torch::Tensor> m_sums;  // float64, on the base weights' device
    std::map<int64_t, int64_t> m_count;        // updates in effect per layer
};

} // namespace oedit::run
