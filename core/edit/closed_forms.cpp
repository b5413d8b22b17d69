#include "edit/closed_forms.h"

#include "edit/editor.h"

#include <cmath>
#include <string>

namespace oedit::edit {

namespace {

torch::Tensor f64(const torch::Tensor &t)
{
    return t.detach().to(torch::kCPU, torch::kDouble);
}

void requireShape(bool ok, const std::string &what)
{
    if (!ok)
        throw EditError("closed form: " + what);
}

// A tiny ridge (relative to C's mean diagonal) so a rank-deficient C from a
// short corpus still solves; small enough not to change a well-conditioned one.
torch::Tensor ridged(const torch::Tensor &C)
{
    const auto n = C.size(0);
    const double scale = std::max(C.diagonal().mean().item<double>(), 1e-12);
    return C + 1e-6 * scale * torch::eye(n, C.options());
}

} // namespace

torch::Tensor ridgedCholesky(const torch::Tensor &C)
{
    requireShape(C.dim() == 2 && C.size(0) == C.size(1), "C must be square");
    const auto result = torch::linalg_cholesky_ex(ridged(f64(C)));
    if (std::get<1>(result).item<int64_t>() != 0)
        return {};
    return std::get<0>(result);
}

std::pair<torch::Tensor, torch::Tensor> romeRankOne(const torch::Tensor &C, const torch::Tensor &kStar,
                                                    const torch::Tensor &kBare, const torch::Tensor &residual,
                                                    bool mom2Adjustment, const torch::Tensor &choleskyOfC)
{
    requireShape(kStar.dim() == 1 && kBare.sizes() == kStar.sizes() && residual.dim() == 1,
                 "ROME expects vectors k*, k and a residual");
    auto u = f64(kStar);
    if (mom2Adjustment && choleskyOfC.defined()) {
        requireShape(choleskyOfC.dim() == 2 && choleskyOfC.size(0) == u.size(0), "the Cholesky factor must be [d_k, d_k]");
        u = torch::cholesky_solve(u.unsqueeze(1), choleskyOfC).squeeze(1);
    } else if (mom2Adjustment) {
        requireShape(C.dim() == 2 && C.size(0) == u.size(0) && C.size(1) == u.size(0), "C must be [d_k, d_k]");
        u = torch::linalg_solve(ridged(f64(C)), u.unsqueeze(1)).squeeze(1);
    }
    u = u / u.norm().clamp_min(1e-30);
    const double ku = torch::dot(f64(kBare), u).item<double>();
    if (std::abs(ku) < 1e-12)
        throw EditError("ROME: the key is orthogonal to its adjusted direction (k . u = 0); the statistics "
                        "may not fit this model");
    const auto right = f64(residual) / ku;
    return {right.to(torch::kFloat), u.to(torch::kFloat)};
}

std::pair<torch::Tensor, torch::Tensor> memitFactors(const torch::Tensor &C, const torch::Tensor &K,
                                                     const torch::Tensor &R, double lambda,
                                                     const torch::Tensor &choleskyOfC)
{
    requireShape(K.dim() == 2 && R.dim() == 2 && K.size(1) == R.size(1) && C.size(0) == K.size(0),
                 "MEMIT expects C [d_k, d_k], K [d_k, n], R [d, n]");
    const auto k = f64(K);
    if (choleskyOfC.defined() && lambda > 0) {
        requireShape(choleskyOfC.dim() == 2 && choleskyOfC.size(0) == k.size(0), "the Cholesky factor must be [d_k, d_k]");
        const auto Y = torch::cholesky_solve(k, choleskyOfC) / lambda; // (lambda C)^-1 K
        const auto n = k.size(1);
        const auto small = torch::eye(n, k.options()) + k.t().matmul(Y);
        return {f64(R), torch::linalg_solve(small, Y.t()).t()}; // Y (I + K^T Y)^-1, small symmetric
    }
    const auto A = lambda * f64(C) + k.matmul(k.t());
    // DeltaW = R K^T A^-1 = R (A^-1 K)^T since A is symmetric.
    const auto adj = torch::linalg_solve(ridged(A), k); // [d_k, n]
    return {f64(R), adj};
}

torch::Tensor memitUpdate(const torch::Tensor &C, const torch::Tensor &K, const torch::Tensor &R, double lambda)
{
    const auto factors = memitFactors(C, K, R, lambda);
    return factors.first.matmul(factors.second.t()).to(torch::kFloat);
}

torch::Tensor nullSpaceProjector(const torch::Tensor &C, double threshold, bool relative)
{
    requireShape(C.dim() == 2 && C.size(0) == C.size(1), "C must be square");
    const auto eig = torch::linalg_eigh(f64(C), "L");
    const auto values = std::get<0>(eig), vectors = std::get<1>(eig);
    const double cut = relative ? threshold * values.max().item<double>() : threshold;
    const auto keep = (values < cut).nonzero().squeeze(1);
    const auto U0 = vectors.index_select(1, keep);
    return U0.matmul(U0.t());
}

std::pair<torch::Tensor, torch::Tensor> alphaEditFactors(const torch::Tensor &P, const torch::Tensor &Cp,
                                                         const torch::Tensor &K, const torch::Tensor &R, double alpha)
{
    requireShape(K.dim() == 2 && R.dim() == 2 && K.size(1) == R.size(1) && P.size(0) == K.size(0),
                 "AlphaEdit expects P [d_k, d_k], K [d_k, n], R [d, n]");
    const auto p = f64(P), k = f64(K);
    const auto n = p.size(0);
    const auto A = p.matmul(k.matmul(k.t()) + f64(Cp)) + alpha * torch::eye(n, p.options());
    // DeltaW^T = A^-1 P K R^T: solve for the n columns of A^-1 P K only.
    const auto left = torch::linalg_solve(A, p.matmul(k)); // [d_k, n]
    return {f64(R), left};
}

torch::Tensor alphaEditUpdate(const torch::Tensor &P, const torch::Tensor &Cp, const torch::Tensor &K,
                              const torch::Tensor &R, double alpha)
{
    const auto factors = alphaEditFactors(P, Cp, K, R, alpha);
    return factors.first.matmul(factors.second.t()).contiguous().to(torch::kFloat);
}

std::pair<torch::Tensor, torch::Tensor> energyBasis(const torch::Tensor &gram, double energy, int64_t maxRank)
{
    const auto eig = torch::linalg_eigh(f64(gram), "L");
    // eigh sorts ascending; flip to decreasing.
    const auto values = std::get<0>(eig).flip({0}).clamp_min(0);
    const auto vectors = std::get<1>(eig).flip({1});
    const double total = values.sum().item<double>();
    int64_t q = 0;
    if (total > 0) {
        const auto cumulative = values.cumsum(0) / total;
        const auto acc = cumulative.accessor<double, 1>();
        while (q < values.size(0) && (q == 0 || acc[q - 1] < energy))
            ++q;
    }
    q = std::min(q, std::max<int64_t>(maxRank, 0));
    return {vectors.narrow(1, 0, q).contiguous(), values.narrow(0, 0, q).contiguous()};
}

torch::Tensor projectOut(const torch::Tensor &U, const torch::Tensor &X)
{
    if (!U.defined() || U.dim() != 2 || U.size(1) == 0)
        return X;
    const auto u = U.to(X.scalar_type());
    if (X.dim() == 1)
        return X - u.matmul(u.t().matmul(X));
    return X - u.matmul(u.t().matmul(X));
}

torch::Tensor growBasis(const torch::Tensor &U, const torch::Tensor &M, double energy)
{
    auto residual = projectOut(U.defined() ? f64(U) : U, f64(M));
    if (residual.dim() == 1)
        residual = residual.unsqueeze(1);
    const double total = residual.pow(2).sum().item<double>();
    const auto d = residual.size(0);
    // Relative as in growBasisRankOne: a residual at rounding level adds nothing.
    if (total <= 1e-24 || total <= 1e-18 * f64(M).pow(2).sum().item<double>())
        return torch::zeros({d, 0}, torch::kDouble);
    const auto svd = torch::svd(residual); // U S V
    const auto S2 = std::get<1>(svd).pow(2);
    const auto cumulative = (S2.cumsum(0) / total).contiguous();
    const auto acc = cumulative.accessor<double, 1>();
    int64_t r = 0;
    while (r < S2.size(0) && (r == 0 || acc[r - 1] < energy) && S2[r].item<double>() > 1e-20 * total)
        ++r;
    auto basis = std::get<0>(svd).narrow(1, 0, r);
    // Re-orthogonalise against U so float error does not accumulate over many edits.
    basis = projectOut(U.defined() ? f64(U) : U, basis);
    return std::get<0>(torch::linalg_qr(basis, "reduced")).contiguous();
}

torch::Tensor growBasisRankOne(const torch::Tensor &U, const torch::Tensor &right, const torch::Tensor &left,
                               double energy)
{
    requireShape(right.dim() == 1 && left.dim() == 1, "a rank-one update has vector factors");
    const auto r = projectOut(U.defined() ? f64(U) : U, f64(right));
    const auto d = r.size(0);
    // One singular value, ||r|| ||left||: the same thresholds as growBasis,
    // whose energy test a single direction always passes.
    (void)energy;
    const double norm = r.norm().item<double>(), total = std::pow(norm * f64(left).norm().item<double>(), 2);
    // Relative test: once U_E spans the whole width (a relaxed layer keeps
    // editing), what is left of `right` is rounding noise, not a direction.
    if (total <= 1e-24 || norm <= 1e-9 * f64(right).norm().item<double>())
        return torch::zeros({d, 0}, torch::kDouble);
    auto basis = (r / norm).unsqueeze(1);
    // Re-orthogonalise against U so float error does not accumulate over many edits.
    basis = projectOut(U.defined() ? f64(U) : U, basis);
    return (basis / basis.norm()).contiguous();
}

torch::Tensor protectedBasis(const torch::Tensor &editBasis, const torch::Tensor &implicitBasis,
                             const torch::Tensor &implicitEnergy, int64_t rankCap, int64_t *droppedImplicit)
{
    const auto E = f64(editBasis);
    const int64_t rE = E.size(1);
    int64_t dropped = 0;
    torch::Tensor S = E;
    if (implicitBasis.defined() && implicitBasis.size(1) > 0) {
        const auto weighted = f64(implicitBasis) * f64(implicitEnergy).clamp_min(0).sqrt().unsqueeze(0);
        const auto rest = projectOut(E, weighted);
        const auto svd = torch::svd(rest);
        const auto values = std::get<1>(svd);
        const double top = values.numel() ? values.max().item<double>() : 0.0;
        const int64_t available = (values > 1e-8 * std::max(top, 1e-300)).sum().item<int64_t>();
        const int64_t room = std::max<int64_t>(rankCap - rE, 0);
        const int64_t q = std::min(available, room);
        dropped = available - q;
        if (q > 0)
            S = torch::cat({E, std::get<0>(svd).narrow(1, 0, q)}, 1);
    }
    if (droppedImplicit)
        *droppedImplicit = dropped;
    return S.contiguous();
}

double frobeniusCos(const torch::Tensor &A, const torch::Tensor &B)
{
    const auto a = f64(A), b = f64(B);
    const double na = a.norm().item<double>(), nb = b.norm().item<double>();
    if (na == 0 || nb == 0)
        return 0.0;
    return (a * b).sum().item<double>() / (na * nb);
}

double maxCosWithBasisRankOne(const torch::Tensor &U, const torch::Tensor &right)
{
    if (!U.defined() || U.size(1) == 0)
        return 0.0;
    const auto r = f64(right);
    const double n = r.norm().item<double>();
    return n == 0 ? 0.0 : f64(U).t().matmul(r).norm().item<double>() / n;
}

double maxCosWithBasis(const torch::Tensor &U, const torch::Tensor &deltaW)
{
    if (!U.defined() || U.size(1) == 0)
        return 0.0;
    const auto m = f64(deltaW);
    const double n = m.norm().item<double>();
    if (n == 0)
        return 0.0;
    return f64(U).t().matmul(m).norm().item<double>() / n;
}

} // namespace oedit::edit
