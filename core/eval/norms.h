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

#include <utility>
#include <vector>

namespace oedit::eval {

// ||A||_F in float64.
double frobeniusNorm(const torch::Tensor &A);

// ||W - W0||_F in float64.
double deltaNorm(const torch::Tensor &W, const torch::Tensor &W0);

// sigma_max / sigma_min of W in float64; infinity when W is singular.
double conditionNumber(const torch::Tensor &W);

// ||W_t||_F after each step of a sequence of updates of one layer, for runs
// of 100,000 edits. Forming W_t and its norm at every step costs three passes
// over a [d, d_k] matrix per edit (70 s for 100,000 edits of the default
// model); here rank-one updates u v^T wait in blocks of `blockColumns`, and
// the squared norm after each one follows from
//   ||W + u v^T||^2 = ||W||^2 + 2 u^T W v + ||u||^2 ||v||^2,
// where u_i^T W v_i, for W the block's start weights plus its earlier columns,
// is (U^T W_s V)_ii + sum_{j<i} (u_i . u_j)(v_j . v_i): two matrix products
// per block. The weights are held in float32, as the engine holds them, and
// the matrix products run in float32 (twice the speed of float64); ||W||^2 is
// summed in float64 and recomputed at every block's end, so rounding does not
// build up over a run (relative error about 1e-6). Dense updates are added as
// they come.
class NormTrajectory {
public:
    explicit NormTrajectory(const torch::Tensor &base, int64_t blockColumns = 256);

    double baseNorm() const { return m_baseNorm; }
    // Adds one update made at `step` (steps never decrease; a step may hold
    // several updates of the layer).
    void add(int64_t step, const edit::LayerUpdate &update);
    // ||W_step||_F after the last update of every step added, in step order.
    std::vector<std::pair<int64_t, double>> norms();

private:
    void flush();
    void record(int64_t step, double squaredNorm);

    torch::Tensor m_weights; // float32, the updates applied so far (pending ones not yet)
    double m_baseNorm = 0;
    double m_squaredNorm = 0; // ||m_weights||^2
    int64_t m_blockColumns;
    std::vector<torch::Tensor> m_right, m_left; // pending rank-one factors, float32
    std::vector<int64_t> m_steps;               // the step of each pending column
    std::vector<std::pair<int64_t, double>> m_norms;
};

} // namespace oedit::eval
