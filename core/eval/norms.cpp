#include "eval/norms.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace oedit::eval {

double frobeniusNorm(const torch::Tensor &A)
{
    return A.to(torch::kDouble).norm().item<double>();
}

double deltaNorm(const torch::Tensor &W, const torch::Tensor &W0)
{
    return (W.to(torch::kCPU, torch::kDouble) - W0.to(torch::kCPU, torch::kDouble)).norm().item<double>();
}

double conditionNumber(const torch::Tensor &W)
{
    const auto singular = torch::linalg_svdvals(W.to(torch::kCPU, torch::kDouble), c10::nullopt);
    const double smallest = singular.min().item<double>();
    return smallest > 0 ? singular.max().item<double>() / smallest : INFINITY;
}

namespace {

// sum of squares in float64 of a float32 matrix.
double squaredNorm(const torch::Tensor &W)
{
    return W.to(torch::kDouble).square().sum().item<double>();
}

} // namespace

NormTrajectory::NormTrajectory(const torch::Tensor &base, int64_t blockColumns)
    : m_weights(base.to(torch::kCPU, torch::kFloat).clone()), m_blockColumns(std::max<int64_t>(1, blockColumns))
{
    m_squaredNorm = squaredNorm(m_weights);
    m_baseNorm = std::sqrt(m_squaredNorm);
}

void NormTrajectory::add(int64_t step, const edit::LayerUpdate &update)
{
    if (update.rankOne()) {
        m_right.push_back(update.right.to(torch::kCPU, torch::kFloat).reshape({-1}));
        m_left.push_back(update.left.to(torch::kCPU, torch::kFloat).reshape({-1}));
        m_steps.push_back(step);
        if (static_cast<int64_t>(m_right.size()) >= m_blockColumns)
            flush();
        return;
    }
    flush();
    m_weights += update.matrix();
    m_squaredNorm = squaredNorm(m_weights);
    record(step, m_squaredNorm);
}

void NormTrajectory::flush()
{
    if (m_right.empty())
        return;
    const auto U = torch::stack(m_right, 1); // [d, B]
    const auto V = torch::stack(m_left, 1);  // [d_k, B]
    // (U^T W_s V)_ii without the [B, B] product: rows of U^T W_s times columns of V.
    const auto own = (torch::mm(U.t(), m_weights) * V.t()).sum(1).to(torch::kDouble);
    const auto gram = (torch::mm(U.t(), U) * torch::mm(V.t(), V)).to(torch::kDouble);
    const auto earlier = gram.tril(-1).sum(1);
    const auto increments = (2.0 * (own + earlier) + gram.diagonal()).contiguous();
    const auto *increment = increments.data_ptr<double>();
    double squared = m_squaredNorm;
    for (size_t i = 0; i < m_steps.size(); ++i) {
        squared += increment[i];
        record(m_steps[i], squared);
    }
    m_weights.addmm_(U, V.t());
    m_squaredNorm = squaredNorm(m_weights);
    // The exact norm replaces the last column's running value.
    record(m_steps.back(), m_squaredNorm);
    m_right.clear();
    m_left.clear();
    m_steps.clear();
}

void NormTrajectory::record(int64_t step, double squaredNorm)
{
    const double norm = std::sqrt(std::max(0.0, squaredNorm));
    if (!m_norms.empty() && m_norms.back().first == step)
        m_norms.back().second = norm;
    else
        m_norms.emplace_back(step, norm);
}

std::vector<std::pair<int64_t, double>> NormTrajectory::norms()
{
    flush();
    return m_norms;
}

} // namespace oedit::eval
