// AlphaEdit: MEMIT with each layer's update projected onto the (near) null
// space of C (P = U_0 U_0^T over C's eigenvalues below nullspace_threshold,
// relative to the largest when nullspace_relative), so the keys the layer
// mostly sees are not moved; C_p accumulates the applied edits' keys, which
// every result keeps so unapplying the edit takes them out again.
#include "edit/closed_forms.h"
#include "edit/memit.h"
#include "edit/registry.h"

namespace oedit::edit {

namespace {

const torch::Tensor &nullSpaceProjectorFor(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples,
                                           double threshold, bool relative)
{
    auto &P = context.derived("nullspace-L" + std::to_string(layer) + "-n" + std::to_string(samples) + "-t" +
                              std::to_string(threshold) + (relative ? "-rel" : "-abs"));
    if (!P.defined())
        P = nullSpaceProjector(C, threshold, relative);
    return P;
}

class AlphaEditMethod : public MemitMethod {
public:
    using MemitMethod::MemitMethod;

protected:
    const torch::Tensor &projector(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples)
    {
        return nullSpaceProjectorFor(context, C, layer, samples, m_hparams.value("nullspace_threshold", 2e-2),
                                     m_hparams.value("nullspace_relative", true));
    }

    void prepareLayer(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples) override
    {
        projector(context, C, layer, samples);
    }

    void layerStatistics(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples,
                         torch::Tensor &statistic, torch::Tensor &cholesky) override
    {
        statistic = projector(context, C, layer, samples);
    }

    std::pair<torch::Tensor, torch::Tensor> solve(EditContext &context, const model::Transformer &model, int64_t layer,
                                                  const torch::Tensor &statistic, const torch::Tensor &cholesky,
                                                  const torch::Tensor &K, const torch::Tensor &R,
                                                  EditResult &result) override
    {
        const auto &Cp = context.alphaEditKeyGram(layer, model.mlpKeyWidth());
        auto factors = alphaEditFactors(statistic, Cp, K, R, m_hparams.value("L2", 10.0));
        result.keys[layer] = K.clone();
        return factors;
    }
};

} // namespace

std::unique_ptr<EditMethod> makeAlphaEdit(const MethodInfo &info, const nlohmann::json &hparams)
{
    return std::make_unique<AlphaEditMethod>(info.name, info.subspace);
}

} // namespace oedit::edit
