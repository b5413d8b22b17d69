// MEMIT and the MEMIT base of O-Edit / O-Edit+ (see memit.h).
#include "edit/memit.h"

#include "edit/closed_forms.h"
#include "edit/registry.h"
#include "edit/value_optimisation.h"

#include <algorithm>
#include <cmath>

namespace oedit::edit {

void MemitMethod::layerStatistics(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples,
                                  torch::Tensor &statistic, torch::Tensor &cholesky)
{
    statistic = C;
    cholesky = choleskyFor(context, C, layer, samples);
}

std::pair<torch::Tensor, torch::Tensor> MemitMethod::solve(EditContext &context, const model::Transformer &model,
                                                           int64_t layer, const torch::Tensor &statistic,
                                                           const torch::Tensor &cholesky, const torch::Tensor &K,
                                                           const torch::Tensor &R, EditResult &result)
{
    return memitFactors(statistic, K, R, m_hparams.value("mom2_update_weight", 15000.0), cholesky);
}

EditResult MemitMethod::edit(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                             EditContext &context)
{
    const auto start = Clock::now();
    EditResult result = begin(model, tokenizer, request, context);
    const auto layers = editLayers();
    const int64_t last = layers.back();
    const double statBefore = context.statisticsSeconds();
    auto &policy = context.protection();

    OEditProtection::LayerSet protections;
    if (protects())
        protections =
            policy.placeLayers(m_hparams, layers, model.config().hidden, implicitGram(context, model, tokenizer));
    std::map<int64_t, torch::Tensor> stats, cholesky; // C or what the solve uses instead, and C's Cholesky factor
    const int64_t samples = m_hparams.value("mom2_n_samples", 0);
    double factorSeconds = 0; // factorisations, computed on the first edit of the run
    for (const auto layer : layers) {
        const auto &C = context.secondMoment(model, tokenizer, layer, samples);
        const auto factorStart = Clock::now();
        layerStatistics(context, C, layer, samples, stats[layer], cholesky[layer]);
        factorSeconds += since(factorStart);
    }
    const auto &prefixes = prefixesFor(context, model, tokenizer, m_hparams);
    result.timings.statistics = context.statisticsSeconds() - statBefore + factorSeconds;

    auto t = Clock::now();
    ValueSpec spec;
    spec.layer = last;
    spec.site = model::Site::BlockOut;
    if (protects()) {
        spec.protect = protections.unionBasis;
        spec.lambdaOrth = orthogonalityWeight();
        spec.project = projects() && protections.unionBasis.defined();
    }
    const auto value = optimiseValue(model, tokenizer, request, prefixes, m_hparams, spec);
    const auto z = value.vInit + value.delta;
    result.timings.value = since(t);

    const auto prompts = keyPrompts(tokenizer, request, prefixes, m_hparams);
    result.diagnostics.lookupPosition = prompts[0].lookup;
    // Layers change while we go (later residuals depend on earlier
    // updates); the originals come back by copy, so edit() leaves no trace.
    std::map<int64_t, torch::Tensor> originals;
    for (const auto layer : layers)
        originals[layer] = model.mlpOutWeight(layer);
    try {
        for (size_t i = 0; i < layers.size(); ++i) {
            const int64_t layer = layers[i];
            t = Clock::now();
            const auto keys = lookupKeys(model, tokenizer, prompts, layer);
            // MEMIT: half the bare prompt, half the mean over prefixed prompts.
            const auto k = keys.size(0) > 1 ? 0.5 * (keys[0] + keys.narrow(0, 1, keys.size(0) - 1).mean(0)) : keys[0];
            const auto K = k.unsqueeze(1);
            result.timings.key += since(t);
            t = Clock::now();
            torch::Tensor h;
            {
                torch::NoGradGuard noGrad;
                const auto ids = torch::tensor(prompts[0].ids, torch::kLong).unsqueeze(0);
                if (last + 1 < model.config().layers) { // the block's output enters the next layer
                    h = model.residualBefore(ids, {}, last + 1)[0][prompts[0].lookup].to(torch::kCPU, torch::kFloat);
                } else {
                    model::ForwardHooks hooks;
                    hooks.captureBlockOut = {last};
                    model.forward(ids, {}, &hooks);
                    h = hooks.blockOut.at(last)[0][prompts[0].lookup].to(torch::kCPU, torch::kFloat);
                }
            }
            const auto R = ((z - h) / double(layers.size() - i)).unsqueeze(1);
            // DeltaW = first * second^T, rank n = 1 here
            auto factors = solve(context, model, layer, stats[layer], cholesky[layer], K, R, result);
            const ProtectedBasis *p = nullptr;
            if (protects())
                p = &protections.layers.at(layer);
            // O-Edit+: (I - U U^T) DeltaW only touches the value-side factor.
            if (projects() && !p->relaxed)
                factors.first = projectOut(p->basis, factors.first);
            LayerUpdate update;
            update.layer = layer;
            if (factors.first.size(1) == 1) {
                update.right = factors.first.squeeze(1).to(torch::kFloat);
                update.left = factors.second.squeeze(1).to(torch::kFloat);
            } else {
                update.dense = factors.first.matmul(factors.second.t()).to(torch::kFloat);
            }
            const auto M = update.matrix();
            result.layers.push_back(update);
            result.diagnostics.updateNorms.push_back(M.norm().item<double>());
            noteCosWithHistory(context, layer, update, result.diagnostics);
            if (protects()) {
                const double eps = m_hparams.value("eps_E", 0.99);
                result.diagnostics.maxAbsCosWithProtected = std::max(
                    result.diagnostics.maxAbsCosWithProtected,
                    update.rankOne() ? maxCosWithBasisRankOne(p->basis, update.right) : maxCosWithBasis(p->basis, M));
                result.diagnostics.protectedRank = std::max(result.diagnostics.protectedRank, p->basis.size(1));
                const int64_t left = policy.remainingAfter(*p, layer, update, eps);
                result.diagnostics.remainingCapacity = result.diagnostics.remainingCapacity < 0
                                                           ? left
                                                           : std::min(result.diagnostics.remainingCapacity, left);
                if (!p->note.empty())
                    result.diagnostics.capacityNote += (result.diagnostics.capacityNote.empty() ? "" : "; ") + p->note;
            }
            const auto W = model.mlpOutWeight(layer);
            model.setMlpOutWeight(layer, W + M.to(W.device(), W.scalar_type()));
            result.timings.update += since(t);
        }
    } catch (...) {
        for (const auto &[layer, W] : originals)
            model.setMlpOutWeight(layer, W);
        throw;
    }
    for (const auto &[layer, W] : originals)
        model.setMlpOutWeight(layer, W);
    finish(result, value, context);
    result.timings.total = since(start);
    return result;
}

std::unique_ptr<EditMethod> makeMemit(const MethodInfo &info, const nlohmann::json &hparams)
{
    return std::make_unique<MemitMethod>(info.name, info.subspace);
}

} // namespace oedit::edit
