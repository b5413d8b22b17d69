// ROME: one layer's MLP output projection gets the rank-one update that maps
// the subject's key k* to the learnt value v* = v + delta, with the key side
// C^-1 k* (mom2_adjustment) so keys the layer often sees move little.
// On this base O-Edit(+) protects U_S on the value side and, for O-Edit+,
// V_S on the key side (side 'input' or 'both').
#include "edit/closed_forms.h"
#include "edit/method_base.h"
#include "edit/registry.h"
#include "edit/value_optimisation.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace oedit::edit {

namespace {

std::string percent(double share)
{
    return std::to_string(static_cast<int>(std::lround(100 * share))) + "%";
}

class RomeMethod : public LocateEditMethod {
public:
    using LocateEditMethod::LocateEditMethod;

    EditResult edit(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                    EditContext &context) override
    {
        const auto start = Clock::now();
        EditResult result = begin(model, tokenizer, request, context);
        int64_t layer = m_hparams["layer"];
        auto &policy = context.protection();

        // O-Edit: pick the layer (capacity policy) and its protected basis.
        const std::string side = m_hparams.value("side", std::string("output"));
        bool valueSide = protects() && side != "input";
        ProtectedBasis protection;
        const double statBefore = context.statisticsSeconds();
        if (valueSide)
            std::tie(layer, protection) =
                policy.placeOutput(m_hparams, layer, model.config().hidden, implicitGram(context, model, tokenizer));
        const bool keySide = protects() && (side == "input" || side == "both" ||
                                            (protection.relaxed && m_hparams.value("capacity_policy", "") == "input"));
        if (keySide && side != "both")
            valueSide = false; // the input side alone: the value is learnt as the base method learns it
        const bool mom2 = m_hparams.value("mom2_adjustment", true);
        torch::Tensor C, choleskyOfC;
        double factorSeconds = 0; // the Cholesky factor, computed on the first edit of the run
        if (mom2 || keySide) {
            const int64_t samples = m_hparams.value("mom2_n_samples", 0);
            C = context.secondMoment(model, tokenizer, layer, samples);
            const auto factorStart = Clock::now();
            if (mom2)
                choleskyOfC = choleskyFor(context, C, layer, samples);
            factorSeconds = since(factorStart);
        }
        const auto &prefixes = prefixesFor(context, model, tokenizer, m_hparams);
        result.timings.statistics = context.statisticsSeconds() - statBefore + factorSeconds;

        auto t = Clock::now();
        const auto prompts = keyPrompts(tokenizer, request, prefixes, m_hparams);
        const auto keys = lookupKeys(model, tokenizer, prompts, layer);
        const auto kStar = keys.mean(0), kBare = keys[0];
        result.diagnostics.lookupPosition = prompts[0].lookup;
        result.timings.key = since(t);

        t = Clock::now();
        ValueSpec spec;
        spec.layer = layer;
        spec.site = model::Site::MlpOut;
        if (valueSide) {
            spec.protect = protection.basis;
            spec.lambdaOrth = orthogonalityWeight();
            spec.project = projects() && !protection.relaxed;
        }
        const auto value = optimiseValue(model, tokenizer, request, prefixes, m_hparams, spec);
        result.timings.value = since(t);

        t = Clock::now();
        // (W + DeltaW) k = W k + b + delta: the residual is delta itself.
        auto factors = romeRankOne(mom2 ? C : torch::Tensor(), kStar, kBare, value.delta, mom2, choleskyOfC);
        if (spec.project)
            factors.first = projectOut(protection.basis, factors.first);
        ProtectedBasis keyProtection;
        if (keySide) {
            keyProtection = policy.placeInput(m_hparams, layer, C);
            if (!keyProtection.relaxed) {
                const double kept =
                    projectKeySide(keyProtection.basis, factors.second, kBare, m_hparams.value("input_ridge", 0.01));
                if (kept < 0.99)
                    keyProtection.note += (keyProtection.note.empty() ? "" : "; ") +
                                          std::string("input side: the update keeps ") + percent(kept) +
                                          " of its effect on the edit's key";
            }
        }
        LayerUpdate update;
        update.layer = layer;
        update.right = factors.first;
        update.left = factors.second;
        const auto M = update.matrix();
        result.layers.push_back(update);
        result.diagnostics.updateNorms.push_back(M.norm().item<double>());
        noteCosWithHistory(context, layer, update, result.diagnostics);
        const double eps = m_hparams.value("eps_E", 0.99);
        if (valueSide) {
            // Rank one: work on the factors, not on the [d, d_k] matrix (an SVD of it costs more than the edit).
            result.diagnostics.maxAbsCosWithProtected = maxCosWithBasisRankOne(protection.basis, update.right);
            result.diagnostics.protectedRank = protection.basis.size(1);
            result.diagnostics.remainingCapacity = policy.remainingAfter(protection, layer, update, eps);
        }
        if (keySide) {
            result.diagnostics.maxAbsCosWithProtected = std::max(
                result.diagnostics.maxAbsCosWithProtected, maxCosWithBasisRankOne(keyProtection.basis, update.left));
            result.diagnostics.protectedRank = std::max(result.diagnostics.protectedRank, keyProtection.basis.size(1));
            // V_E grows from the edit's key (kept with the result for rollback), or from the update's key side.
            const bool keysBasis = m_hparams.value("input_edit_basis", std::string("updates")) == "keys";
            const auto key = kBare.detach().to(torch::kCPU, torch::kFloat);
            if (keysBasis)
                result.keys[layer] = key.unsqueeze(1);
            const int64_t left =
                policy.keyRemainingAfter(keyProtection, layer, keysBasis ? key : update.left, update.right, eps);
            result.diagnostics.remainingCapacity =
                valueSide && !protection.relaxed ? std::min(result.diagnostics.remainingCapacity, left) : left;
        }
        if (protects())
            result.diagnostics.capacityNote = protection.note +
                                              (!protection.note.empty() && !keyProtection.note.empty() ? "; " : "") +
                                              keyProtection.note;
        result.timings.update = since(t);
        finish(result, value, context);
        result.timings.total = since(start);
        return result;
    }

protected:
    std::vector<int64_t> editLayers() const override
    {
        std::vector<int64_t> layers = {m_hparams["layer"].get<int64_t>()};
        if (protects())
            for (const auto &l : m_hparams.value("spread_layers", std::vector<int64_t>{}))
                layers.push_back(l);
        return layers;
    }
};

} // namespace

std::unique_ptr<EditMethod> makeRome(const MethodInfo &info, const nlohmann::json &hparams)
{
    return std::make_unique<RomeMethod>(info.name, info.subspace);
}

} // namespace oedit::edit
