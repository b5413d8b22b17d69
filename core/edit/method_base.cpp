// Pieces the editing methods share (see method_base.h).
#include "edit/method_base.h"

#include "edit/closed_forms.h"
#include "edit/value_optimisation.h"

#include <algorithm>
#include <cmath>

namespace oedit::edit {

void noteCosWithHistory(EditContext &context, int64_t layer, const LayerUpdate &update, EditDiagnostics &diagnostics)
{
    const double leftNorm = update.rankOne() ? update.left.norm().item<double>() : 0.0;
    for (const auto &entry : context.history(layer)) {
        const auto &earlier = entry.second;
        diagnostics.maxAbsCosWithEarlier =
            std::max(diagnostics.maxAbsCosWithEarlier, std::abs(update.cosWith(earlier)));
        if (leftNorm > 0 && earlier.rankOne()) {
            const double norms = leftNorm * earlier.left.norm().item<double>();
            if (norms > 0)
                diagnostics.maxKeyCosWithEarlier =
                    std::max(diagnostics.maxKeyCosWithEarlier,
                             std::abs(torch::dot(update.left, earlier.left).item<double>()) / norms);
        }
    }
}

torch::Tensor choleskyFor(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples)
{
    auto &L = context.derived("cholesky-L" + std::to_string(layer) + "-n" + std::to_string(samples));
    if (!L.defined()) {
        L = ridgedCholesky(C);
        if (!L.defined())
            L = torch::empty({0}, torch::kDouble); // marks "tried": not positive definite
    }
    return L.numel() ? L : torch::Tensor();
}

void LocateEditMethod::prepare(model::Transformer &model, const model::Tokenizer &tokenizer, EditContext &context)
{
    const int64_t samples = m_hparams.value("mom2_n_samples", 0);
    for (const auto layer : statLayers()) {
        const auto &C = context.secondMoment(model, tokenizer, layer, samples);
        prepareLayer(context, C, layer, samples);
    }
    if (protects())
        for (const auto layer : editLayers())
            context.implicitGram(model, tokenizer, layer, m_hparams.value("implicit_n_samples", 1000));
    prefixesFor(context, model, tokenizer, m_hparams);
}

void LocateEditMethod::prepareLayer(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples)
{
    if (m_hparams.value("mom2_adjustment", true))
        choleskyFor(context, C, layer, samples);
}

double LocateEditMethod::orthogonalityWeight() const
{
    return projects() && !m_hparams.value("keep_loss", true) ? 0.0 : m_hparams.value("lambda_o", 1.0);
}

OEditProtection::ImplicitGram LocateEditMethod::implicitGram(EditContext &context, const model::Transformer &model,
                                                             const model::Tokenizer &tokenizer) const
{
    const int64_t samples = m_hparams.value("implicit_n_samples", 1000);
    return [&context, &model, &tokenizer, samples](int64_t layer) -> const torch::Tensor & {
        return context.implicitGram(model, tokenizer, layer, samples);
    };
}

EditResult beginEdit(const std::string &method, const nlohmann::json &hparams, model::Transformer &model,
                     const model::Tokenizer &tokenizer, const EditRequest &request, const EditContext &context)
{
    validateRequest(model, tokenizer, request, !context.options().editSatisfiedTargets);
    torch::manual_seed(hparams.value("seed", 0));
    EditResult result;
    result.method = method;
    result.hparams = hparams;
    result.request = request;
    return result;
}

EditResult LocateEditMethod::begin(model::Transformer &model, const model::Tokenizer &tokenizer,
                                   const EditRequest &request, const EditContext &context)
{
    return beginEdit(m_name, m_hparams, model, tokenizer, request, context);
}

void LocateEditMethod::finish(EditResult &result, const ValueOutcome &value, EditContext &context)
{
    result.diagnostics.lossCurve = value.lossCurve;
    result.diagnostics.finalTargetNll = value.finalNll;
    result.diagnostics.valueShiftNorm = value.delta.norm().item<double>();
    result.id = context.nextEditId();
}

} // namespace oedit::edit
