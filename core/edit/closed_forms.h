// The closed forms of the editing methods as pure tensor functions, so each
// can be unit-tested on small random matrices without a model. Convention:
// W is [d, d_k] and maps a key k to a value v = W k; DeltaW has W's shape.
// Inputs may be float32 or float64; solves run in float64 and results come
// back as float32 unless said otherwise. Bad shapes throw EditError.
#pragma once

#include <torch/torch.h>

#include <utility>

namespace oedit::edit {

// The lower Cholesky factor of C plus the small ridge every solve here adds
// (1e-6 of C's mean diagonal), float64; undefined when C is not positive
// definite even so. Factor once per layer and run, then each edit's solve
// costs O(d_k^2) instead of O(d_k^3).
torch::Tensor ridgedCholesky(const torch::Tensor &C);

// ROME's rank-one update. u = C^-1 kStar (or kStar without mom2 adjustment),
// normalised; DeltaW = residual u^T / (kBare . u), with residual = v* - W kBare.
// Then (W + DeltaW) kBare = v*. Returns {right = residual / (kBare . u), left = u}.
// With choleskyOfC (ridgedCholesky(C)) the solve uses it instead of factoring C.
std::pair<torch::Tensor, torch::Tensor> romeRankOne(const torch::Tensor &C, const torch::Tensor &kStar,
                                                    const torch::Tensor &kBare, const torch::Tensor &residual,
                                                    bool mom2Adjustment = true,
                                                    const torch::Tensor &choleskyOfC = {});

// MEMIT's least squares for one layer: DeltaW = R K^T (lambda C + K K^T)^-1,
// K [d_k, n], R [d, n].
torch::Tensor memitUpdate(const torch::Tensor &C, const torch::Tensor &K, const torch::Tensor &R, double lambda);

// The same as two factors {R [d, n], A^-1 K [d_k, n]} with DeltaW = first * second^T:
// for a single edit (n = 1) the update is rank one, and the O-Edit bookkeeping
// (projection, |cos|, growing U_E) then costs O(d + d_k) instead of an SVD
// of a [d, d_k] matrix. float64.
// With choleskyOfC (ridgedCholesky(C)), (lambda C + K K^T)^-1 K comes from the
// push-through identity (lambda C)^-1 K (I + K^T (lambda C)^-1 K)^-1: n x n
// work besides two triangular solves.
std::pair<torch::Tensor, torch::Tensor> memitFactors(const torch::Tensor &C, const torch::Tensor &K,
                                                     const torch::Tensor &R, double lambda,
                                                     const torch::Tensor &choleskyOfC = {});

// AlphaEdit's projector onto the (near) null space of C: U_0 U_0^T over the
// eigenvectors with eigenvalue < threshold (times the largest eigenvalue when
// `relative`). float64 [d_k, d_k].
torch::Tensor nullSpaceProjector(const torch::Tensor &C, double threshold, bool relative);

// AlphaEdit's update: DeltaW^T = (P (K K^T + Cp) + alpha I)^-1 P K R^T. Its rows
// lie in range(P), so DeltaW (I - P) = 0: preserved keys (high-variance
// directions of C) are not moved.
torch::Tensor alphaEditUpdate(const torch::Tensor &P, const torch::Tensor &Cp, const torch::Tensor &K,
                              const torch::Tensor &R, double alpha);

// The same as two factors {R [d, n], (P (K K^T + Cp) + alpha I)^-1 P K [d_k, n]}
// with DeltaW = first * second^T. float64.
std::pair<torch::Tensor, torch::Tensor> alphaEditFactors(const torch::Tensor &P, const torch::Tensor &Cp,
                                                         const torch::Tensor &K, const torch::Tensor &R, double alpha);

// Orthonormal basis of the top eigenvectors of a PSD Gram matrix capturing
// `energy` (0..1] of its trace, at most maxRank columns. Returns {basis [n, q]
// float64, eigenvalues [q]} ordered by decreasing eigenvalue.
std::pair<torch::Tensor, torch::Tensor> energyBasis(const torch::Tensor &gram, double energy, int64_t maxRank);

// Left singular vectors of M (after removing span(U) when U has columns)
// capturing `energy` of its squared Frobenius norm: the directions an update
// adds to O-Edit's edit subspace. float64 [d, r] (r may be 0).
torch::Tensor growBasis(const torch::Tensor &U, const torch::Tensor &M, double energy);

// growBasis for a rank-one M = right * left^T without forming M: the one
// direction is right with span(U) removed, kept when it is not negligible.
// Equal to growBasis(U, outer(right, left), energy) up to rounding.
torch::Tensor growBasisRankOne(const torch::Tensor &U, const torch::Tensor &right, const torch::Tensor &left,
                               double energy);

// O-Edit's protected basis U_S = [U_E, U~_I] with U~_I = orth((I - U_E U_E^T) U_I)
// (implicit directions weighted by sqrt(energy), weakest dropped first) and
// rank(U_S) <= rankCap. `droppedImplicit` receives how many implicit
// directions did not fit. float64 [d, r_S].
torch::Tensor protectedBasis(const torch::Tensor &editBasis, const torch::Tensor &implicitBasis,
                             const torch::Tensor &implicitEnergy, int64_t rankCap, int64_t *droppedImplicit = nullptr);

// (I - U U^T) X for X [d] or [d, n]; X unchanged when U has no columns.
torch::Tensor projectOut(const torch::Tensor &U, const torch::Tensor &X);

// <A, B>_F / (||A|| ||B||), 0 when either is zero.
double frobeniusCos(const torch::Tensor &A, const torch::Tensor &B);

// Largest |cos| between the columns' direction of DeltaW (its column space,
// via ||U^T DeltaW|| / ||DeltaW||) and the basis U. 0 when U has no columns.
double maxCosWithBasis(const torch::Tensor &U, const torch::Tensor &deltaW);
// The same for a rank-one DeltaW = right * left^T: ||U^T right|| / ||right||.
double maxCosWithBasisRankOne(const torch::Tensor &U, const torch::Tensor &right);

} // namespace oedit::edit
