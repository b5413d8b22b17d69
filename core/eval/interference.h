// Which edits moved a fact: attribution of a fact's margin to the updates of
// a run, the core of the interference explorer.
//
// A fact is a prompt and two continuations: the target it should say ("old",
// the true object or an earlier edit's new target) and its rival (what the
// model says now, or the runner-up while the fact still holds). Its margin is
// mean log P(old) - mean log P(rival), teacher-forced, so > 0 means the fact
// holds.
//
// Every update an edit made is DeltaW_j = a_j b_j^T (or dense) added to a
// layer's MLP output projection W_l, and the margin's gradient with respect
// to W_l is G_l = sum over positions of g_t k_t^T (g_t the gradient at the
// MLP's output, k_t the projection's input). So the first-order change edit j
// made to the margin is <G_l, DeltaW_j> = a_j^T G_l b_j: one [d, d_k] matrix
// per layer from one forward and backward pass, then two small products per
// update, so all 100,000 edits of a run are ranked in the time of reading
// them. The ranking is first order; "what if this edit were removed" is then
// answered exactly by a forward pass without it (the engine does that).
//
// Torch-level, on the model's device; no state.
#pragma once

#include "edit/editor.h"
#include "model/transformer.h"

#include <map>
#include <vector>

namespace oedit::eval {

struct MarginProbe {
    std::vector<int64_t> prompt; // token ids
    std::vector<int64_t> target; // the continuation the fact should have
    std::vector<int64_t> rival;  // the one it is measured against
};

struct Margin {
    double value = 0;   // mean log P(target) - mean log P(rival)
    double pTarget = 0; // exp(mean log P(target)), as targetProbability
    double pRival = 0;
};

Margin targetMargin(const model::Transformer &model, const MarginProbe &probe, int64_t padId);

// d margin / d W_l as [d, d_k] float64 on the CPU for each of `layers`.
std::map<int64_t, torch::Tensor> marginGradient(const model::Transformer &model, const MarginProbe &probe,
                                                const std::vector<int64_t> &layers, int64_t padId);

// <G_l, DeltaW> for one update (0 when its layer has no gradient).
double firstOrderChange(const std::map<int64_t, torch::Tensor> &gradient, const edit::LayerUpdate &update);

} // namespace oedit::eval
