// Subspace maths over layer updates: output bases, overlaps (|cos|) of
// updates and of their output spaces, numerical rank, principal angles. Free
// functions on tensors and edit::LayerUpdate; no ledger, no model. Everything
// is float64 on the CPU whatever the inputs' dtype and device.
//
// Threads: pure functions, any thread. Failure: libtorch errors (c10::Error)
// for inconsistent shapes; edit::EditError for an update that holds no tensor.
#pragma once

#include "edit/editor.h"

#include <cstdint>
#include <vector>

namespace oedit::eval {

// An orthonormal basis [d, k] of an update's output (column) space. A
// rank-one update's is its normalised value-side factor; a dense one's the
// left singular vectors above 1e-6 of the largest singular value. A zero
// update has an empty basis [d, 0].
torch::Tensor outputBasis(const edit::LayerUpdate &update);

// The largest |cos| between two subspaces given by orthonormal bases [d, k]:
// the largest singular value of a^T b (the cosine of the smallest principal
// angle); 0 when either is empty.
double largestCos(const torch::Tensor &a, const torch::Tensor &b);

// The principal angles between two subspaces given by orthonormal bases, in
// degrees, ascending; empty when either basis is.
std::vector<double> principalAnglesDegrees(const torch::Tensor &a, const torch::Tensor &b);

// The number of singular values of `columns` above 1e-6 of the largest (0 for
// an empty or zero matrix).
int64_t numericalRank(const torch::Tensor &columns);

// The Frobenius inner products <U_a, U_b>_F of updates of one layer, [n, n].
// Rank-one updates use (r_a . r_b)(l_a . l_b) and never form [d, d_k] matrices.
torch::Tensor frobeniusGram(const std::vector<const edit::LayerUpdate *> &updates);

// |G_ab| / sqrt(G_aa G_bb) of a Gram matrix [n, n], capped at 1, row-major
// n * n; 0 where either diagonal entry is zero.
std::vector<double> absCosines(const torch::Tensor &gram);

// The largest |cos| between the output spaces of two different updates (0
// for fewer than two), from their output bases. Rank-one bases are compared
// all at once; otherwise pair by pair with largestCos.
double outputOverlap(const std::vector<torch::Tensor> &bases);

// One layer's updates compared: what the subspace report draws per layer.
struct LayerSubspace {
    torch::Tensor gram;          // frobeniusGram of the updates
    std::vector<double> cosines; // absCosines(gram), row-major in the updates' order
    int64_t width = 0;           // the output dimension d
    int64_t editRank = 0;        // numerical rank of the span of all output bases
    double residual = 0;         // outputOverlap, capped at 1
};
// `updates` must be non-empty and of one layer.
LayerSubspace layerSubspace(const std::vector<const edit::LayerUpdate *> &updates);

} // namespace oedit::eval
