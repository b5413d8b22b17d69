// MEMIT: the learnt value of the last edited layer's block output is spread
// over `layers`, each solving the least squares (lambda C + K K^T) for its
// share of the residual. AlphaEdit derives from it (another statistic and
// solve per layer); O-Edit(+) on base 'memit' adds the protection policy.
#pragma once

#include "edit/method_base.h"

#include <utility>

namespace oedit::edit {

class MemitMethod : public LocateEditMethod {
public:
    using LocateEditMethod::LocateEditMethod;

    EditResult edit(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                    EditContext &context) override;

protected:
    std::vector<int64_t> editLayers() const override { return m_hparams["layers"].get<std::vector<int64_t>>(); }

    // What the layer's solve needs from C: `statistic` (C itself here) and
    // `cholesky` (C's factor, undefined when not positive definite).
    virtual void layerStatistics(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples,
                                 torch::Tensor &statistic, torch::Tensor &cholesky);
    // The update of `layer` as factors {R', K'} with DeltaW = R' K'^T for keys
    // K [d_k, n] and residuals R [d, n]; may keep what unapply needs in `result`.
    virtual std::pair<torch::Tensor, torch::Tensor> solve(EditContext &context, const model::Transformer &model,
                                                          int64_t layer, const torch::Tensor &statistic,
                                                          const torch::Tensor &cholesky, const torch::Tensor &K,
                                                          const torch::Tensor &R, EditResult &result);
};

} // namespace oedit::edit
