// Norm maths of edited weights: how far a layer moved from its base weights
// (||W - W0||), its condition number, and the growth of ||W_k|| / ||W_0||
// over a run. Free functions on tensors; no ledger, no model. Float64 on the
// CPU whatever the inputs' dtype and device.
//
// Threads: pure functions, any thread. Failure: libtorch errors for
// mismatched shapes.
#pragma once

#include "edit/editor.h"
#include "eval/metric.h"

namespace oedit::eval {

// ||A||_F in float64.
double frobeniusNorm(const torch::Tensor &A);

// ||W - W0||_F in float64.
double deltaNorm(const torch::Tensor &W, const torch::Tensor &W0);

// sigma_max / sigma_min of W in float64; infinity when W is singular.
double conditionNumber(const torch::Tensor &W);

// ||W0 + sum||_F / ||W0||_F, with the sum of updates in float64; 1 when W0 is
// zero. `base` is W0 in any dtype.
double relativeNorm(const torch::Tensor &base, const torch::Tensor &sum);

// Adds an update to the float64 running sum of its layer (the first update of
// a layer starts the sum).
void accumulate(LayerWeights &sums, const edit::LayerUpdate &update);

} // namespace oedit::eval
