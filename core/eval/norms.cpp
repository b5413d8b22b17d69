#include "eval/norms.h"

#include <torch/torch.h>

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

double relativeNorm(const torch::Tensor &base, const torch::Tensor &sum)
{
    const double baseNorm = frobeniusNorm(base);
    if (!(baseNorm > 0))
        return 1.0;
    const auto W = base.to(torch::kDouble) + sum;
    return W.norm().item<double>() / baseNorm;
}

void accumulate(LayerWeights &sums, const edit::LayerUpdate &update)
{
    auto &sum = sums[update.layer];
    const auto delta = update.matrix().to(torch::kDouble);
    sum = sum.defined() ? sum + delta : delta;
}

} // namespace oedit::eval
