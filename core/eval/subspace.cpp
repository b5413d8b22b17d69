#include "eval/subspace.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace oedit::eval {

torch::Tensor outputBasis(const edit::LayerUpdate &update)
{
    if (update.rankOne()) {
        auto r = update.right.detach().to(torch::kCPU, torch::kDouble).reshape({-1, 1});
        const double norm = r.norm().item<double>();
        return norm > 0 ? r / norm : r.narrow(1, 0, 0);
    }
    const auto M = update.matrix().to(torch::kDouble);
    const auto svd = torch::linalg_svd(M, false, c10::nullopt);
    const auto &U = std::get<0>(svd);
    const auto &S = std::get<1>(svd);
    if (S.numel() == 0 || S.max().item<double>() == 0)
        return U.narrow(1, 0, 0);
    const double tolerance = S.max().item<double>() * 1e-6;
    const int64_t rank = (S > tolerance).sum().item<int64_t>();
    return U.narrow(1, 0, rank);
}

double largestCos(const torch::Tensor &a, const torch::Tensor &b)
{
    if (a.size(1) == 0 || b.size(1) == 0)
        return 0.0;
    return torch::linalg_svdvals(torch::matmul(a.t(), b), c10::nullopt).max().item<double>();
}

std::vector<double> principalAnglesDegrees(const torch::Tensor &a, const torch::Tensor &b)
{
    std::vector<double> degrees;
    if (a.size(1) == 0 || b.size(1) == 0)
        return degrees;
    const auto cosines = torch::linalg_svdvals(torch::matmul(a.t(), b), c10::nullopt);
    for (int64_t i = 0; i < cosines.numel(); ++i)
        // Rounding can put a cosine just above 1: clamp before acos.
        degrees.push_back(std::acos(std::clamp(cosines[i].item<double>(), 0.0, 1.0)) * 57.29577951308232);
    std::sort(degrees.begin(), degrees.end());
    return degrees;
}

int64_t numericalRank(const torch::Tensor &columns)
{
    if (columns.numel() == 0)
        return 0;
    const auto S = torch::linalg_svdvals(columns, c10::nullopt);
    const double top = S.max().item<double>();
    return top > 0 ? (S > top * 1e-6).sum().item<int64_t>() : 0;
}

torch::Tensor frobeniusGram(const std::vector<const edit::LayerUpdate *> &updates)
{
    const int64_t n = static_cast<int64_t>(updates.size());
    bool allRankOne = true;
    for (const auto *u : updates)
        allRankOne = allRankOne && u->rankOne();
    if (allRankOne) {
        // <r_a l_a^T, r_b l_b^T>_F = (r_a . r_b)(l_a . l_b): no [d, d_k] matrix.
        std::vector<torch::Tensor> rights, lefts;
        for (const auto *u : updates) {
            rights.push_back(u->right.detach().to(torch::kCPU, torch::kDouble).reshape({-1}));
            lefts.push_back(u->left.detach().to(torch::kCPU, torch::kDouble).reshape({-1}));
        }
        const auto R = torch::stack(rights), L = torch::stack(lefts);
        return torch::matmul(R, R.t()) * torch::matmul(L, L.t());
    }
    std::vector<torch::Tensor> flat;
    for (const auto *u : updates)
        flat.push_back(u->matrix().to(torch::kDouble).reshape({-1}));
    const auto F = torch::stack(flat);
    return torch::matmul(F, F.t()).reshape({n, n});
}

std::vector<double> absCosines(const torch::Tensor &gram)
{
    const int64_t n = gram.size(0);
    const auto G = gram.to(torch::kCPU, torch::kDouble).contiguous();
    const auto norms = G.diagonal().clamp_min(0).sqrt();
    const auto g = G.accessor<double, 2>();
    const auto nn = norms.accessor<double, 1>();
    std::vector<double> out(static_cast<size_t>(n * n), 0.0);
    for (int64_t a = 0; a < n; ++a)
        for (int64_t b = 0; b < n; ++b) {
            const double denominator = nn[a] * nn[b];
            out[static_cast<size_t>(a * n + b)] =
                denominator > 0 ? std::min(1.0, std::abs(g[a][b]) / denominator) : 0.0;
        }
    return out;
}

double outputOverlap(const std::vector<torch::Tensor> &bases)
{
    double residual = 0;
    bool allRankOne = true;
    for (const auto &basis : bases)
        allRankOne = allRankOne && basis.size(1) == 1;
    if (allRankOne && bases.size() > 1) {
        // One matmul for all pairs: the off-diagonal |r_a . r_b| of unit vectors.
        const auto span = torch::cat(bases, 1);
        auto overlap = torch::matmul(span.t(), span).abs();
        overlap.fill_diagonal_(0);
        return overlap.max().item<double>();
    }
    for (size_t a = 0; a < bases.size(); ++a)
        for (size_t b = a + 1; b < bases.size(); ++b)
            residual = std::max(residual, largestCos(bases[a], bases[b]));
    return residual;
}

LayerSubspace layerSubspace(const std::vector<const edit::LayerUpdate *> &updates)
{
    LayerSubspace out;
    out.gram = frobeniusGram(updates);
    out.cosines = absCosines(out.gram);
    std::vector<torch::Tensor> bases;
    for (const auto *u : updates)
        bases.push_back(outputBasis(*u));
    out.width = updates.front()->rankOne() ? updates.front()->right.numel() : updates.front()->matrix().size(0);
    out.editRank = numericalRank(torch::cat(bases, 1));
    out.residual = std::min(1.0, outputOverlap(bases));
    return out;
}

} // namespace oedit::eval
