// The value optimisation shared by the locate-then-edit methods, and the key
// lookups around it.
#include "edit/value_optimisation.h"

#include <algorithm>
#include <numeric>

namespace oedit::edit {

std::vector<int64_t> targetTokens(const model::Tokenizer &tokenizer, const std::string &target)
{
    auto ids = tokenizer.encode(" " + target);
    if (ids.empty())
        throw EditError("the target '" + target + "' tokenizes to nothing");
    return ids;
}

PromptTokens withLookup(PromptTokens p, const nlohmann::json &hp)
{
    if (hp.value("fact_token", std::string("subject_last")) == "last")
        p.lookup = static_cast<int64_t>(p.ids.size()) - 1;
    return p;
}

torch::Tensor lookupKeys(const model::Transformer &model, const model::Tokenizer &tokenizer,
                         const std::vector<PromptTokens> &prompts, int64_t layer)
{
    torch::NoGradGuard noGrad;
    std::vector<std::vector<int64_t>> ids;
    for (const auto &p : prompts)
        ids.push_back(p.ids);
    const auto batch = model::padBatch(ids, tokenizer.eosId().value_or(0));
    const auto keys = model.mlpKeysAt(batch.ids, batch.mask, layer).to(torch::kCPU, torch::kFloat);
    std::vector<torch::Tensor> rows;
    for (size_t i = 0; i < prompts.size(); ++i)
        rows.push_back(keys[static_cast<int64_t>(i)][prompts[i].lookup]);
    return torch::stack(rows); // [n, d_k]
}

ValueOutcome optimiseValue(const model::Transformer &model, const model::Tokenizer &tokenizer,
                           const EditRequest &request, const std::vector<std::string> &prefixes,
                           const nlohmann::json &hp, const ValueSpec &spec)
{
    const auto target = targetTokens(tokenizer, request.targetNew);
    std::vector<std::vector<int64_t>> sequences;
    std::vector<int64_t> lookups, starts;
    for (const auto &prefix : prefixes) {
        const auto p = withLookup(tokenizePrompt(tokenizer, request.prompt, request.subject, prefix), hp);
        auto seq = p.ids;
        seq.insert(seq.end(), target.begin(), target.end() - 1);
        starts.push_back(static_cast<int64_t>(p.ids.size()) - 1); // logits here predict target[0]
        lookups.push_back(p.lookup);
        sequences.push_back(std::move(seq));
    }
    const int64_t rewriteRows = static_cast<int64_t>(sequences.size());
    // ROME's essence prompt: keeps what the model thinks the subject is.
    const auto essence = withLookup(tokenizePrompt(tokenizer, "{} is a", request.subject), hp);
    sequences.push_back(essence.ids);
    lookups.push_back(essence.lookup);
    // Left padding lines the rows up at their ends: every rewrite row ends
    // with the same prompt suffix and target, so the subject's last token
    // falls at (nearly) one position in all rows. Nothing before the earliest
    // lookup depends on delta (causal attention): those positions are run
    // once (freezePrefix), and each step recomputes only the positions from
    // there on, from spec.layer up.
    const auto batch = model::padBatch(sequences, tokenizer.eosId().value_or(0), /*padLeft=*/true);
    const auto device = model.device();
    const auto ids = batch.ids.to(device), mask = batch.mask.to(device);
    const int64_t length = batch.ids.size(1);
    for (size_t r = 0; r < sequences.size(); ++r) {
        const int64_t shift = length - static_cast<int64_t>(sequences[r].size());
        lookups[r] += shift;
        if (r < starts.size())
            starts[r] += shift;
    }
    const int64_t frozenEnd = *std::min_element(lookups.begin(), lookups.end());
    const auto frozen = model.freezePrefix(ids, mask, spec.layer, frozenEnd);
    std::vector<int64_t> relativeLookups;
    for (const auto lookup : lookups)
        relativeLookups.push_back(lookup - frozenEnd);

    std::vector<int64_t> rows(sequences.size());
    std::iota(rows.begin(), rows.end(), 0);
    const int64_t d = model.config().hidden;
    auto delta = torch::zeros({d}, torch::TensorOptions().dtype(torch::kFloat).device(device)).set_requires_grad(true);
    torch::optim::Adam optimiser({delta}, torch::optim::AdamOptions(hp.value("v_lr", 0.5)));

    // Gather indices of the target tokens: (row, position, token).
    std::vector<int64_t> tRows, tPos, tTok;
    for (int64_t r = 0; r < rewriteRows; ++r)
        for (size_t j = 0; j < target.size(); ++j) {
            tRows.push_back(r);
            tPos.push_back(starts[static_cast<size_t>(r)] + static_cast<int64_t>(j) - frozenEnd);
            tTok.push_back(target[j]);
        }
    // Logits are needed at the target positions and at the essence prompt's
    // lookup (KL) only: the vocabulary projection of every other position is skipped.
    std::vector<int64_t> pickRows = tRows, pickPos = tPos;
    pickRows.push_back(rewriteRows);
    pickPos.push_back(relativeLookups.back());
    const auto longOpts = torch::TensorOptions().dtype(torch::kLong).device(device);
    const auto pickRowsT = torch::tensor(pickRows, longOpts), pickPosT = torch::tensor(pickPos, longOpts),
               tTokT = torch::tensor(tTok, longOpts).unsqueeze(1);
    const int64_t targetCount = static_cast<int64_t>(tTok.size());
    const double perRow = static_cast<double>(target.size());

    const int64_t steps = hp.value("v_num_grad_steps", 25);
    const double stopAt = hp.value("v_loss_stop", 0.05), klFactor = hp.value("kl_factor", 0.0625),
                 weightDecay = hp.value("v_weight_decay", 0.5), clampFactor = hp.value("clamp_norm_factor", 4.0);
    torch::Tensor protect =
        spec.protect.defined() && spec.protect.size(1) > 0 ? spec.protect.to(device) : torch::Tensor();

    ValueOutcome out;
    torch::Tensor klInit;
    double maxNorm = 0;
    torch::AutoGradMode gradMode(true);
    for (int64_t step = 0; step <= steps; ++step) {
        model::ForwardHooks hooks;
        model::Intervention shift;
        shift.layer = spec.layer;
        shift.site = spec.site;
        shift.rows = rows;
        shift.positions = relativeLookups;
        shift.delta = delta;
        hooks.interventions.push_back(shift);
        if (step == 0) {
            if (spec.site == model::Site::MlpOut)
                hooks.captureMlpValues = {spec.layer};
            else
                hooks.captureBlockOut = {spec.layer};
        }
        const auto hidden = model.forwardSuffix(frozen, &hooks);
        const auto logProbs =
            torch::log_softmax(model.headLogits(hidden.index({pickRowsT, pickPosT})).to(torch::kFloat), -1);
        if (step == 0) {
            const auto &captured =
                spec.site == model::Site::MlpOut ? hooks.mlpValues.at(spec.layer) : hooks.blockOut.at(spec.layer);
            out.vInit = captured[0][relativeLookups[0]].detach().to(torch::kCPU, torch::kFloat).clone();
            maxNorm = clampFactor * out.vInit.norm().item<double>();
            klInit = logProbs[targetCount].detach();
        }
        const auto nll =
            -logProbs.narrow(0, 0, targetCount).gather(1, tTokT).sum() / (perRow * static_cast<double>(rewriteRows));
        const auto klNow = logProbs[targetCount];
        const auto kl = (klNow.exp() * (klNow - klInit)).sum();
        const double vNorm2 = std::max(out.vInit.pow(2).sum().item<double>(), 1e-12);
        auto loss = nll + klFactor * kl + weightDecay * delta.norm() / vNorm2;
        // With projection (O-Edit+) delta starts at 0 and is put back into the
        // complement of U_S after every step, where the orthogonality term and
        // its gradient are zero: it only costs time there, so it is skipped.
        if (protect.defined() && spec.lambdaOrth > 0 && !spec.project)
            loss = loss + spec.lambdaOrth * protect.t().matmul(delta).pow(2).sum() / (delta.pow(2).sum() + 1e-12);
        out.lossCurve.push_back(loss.item<double>());
        out.finalNll = nll.item<double>();
        if (out.finalNll < stopAt || step == steps)
            break;
        optimiser.zero_grad();
        loss.backward();
        // O-Edit+: the step can only move delta inside the complement of U_S,
        // so Adam sees the gradient there too. Left in, the protected
        // components inflate Adam's second moments and shrink every useful
        // step; projected, O-Edit+ needs ~10-15% fewer steps (bench_edit).
        if (spec.project && protect.defined()) {
            torch::NoGradGuard noGrad;
            auto g = delta.mutable_grad();
            g.sub_(protect.matmul(protect.t().matmul(g)));
        }
        optimiser.step();
        torch::NoGradGuard noGrad;
        // O-Edit+: exact orthogonality, enforced before the norm clamp.
        if (spec.project && protect.defined())
            delta.sub_(protect.matmul(protect.t().matmul(delta)));
        const double n = delta.norm().item<double>();
        if (n > maxNorm && n > 0)
            delta.mul_(maxNorm / n);
    }
    out.delta = delta.detach().to(torch::kCPU, torch::kFloat).clone();
    return out;
}

std::vector<PromptTokens> keyPrompts(const model::Tokenizer &tokenizer, const EditRequest &request,
                                     const std::vector<std::string> &prefixes, const nlohmann::json &hp)
{
    std::vector<PromptTokens> prompts;
    for (const auto &prefix : prefixes)
        prompts.push_back(withLookup(tokenizePrompt(tokenizer, request.prompt, request.subject, prefix), hp));
    return prompts;
}

const std::vector<std::string> &prefixesFor(EditContext &context, const model::Transformer &model,
                                            const model::Tokenizer &tokenizer, const nlohmann::json &hp)
{
    return context.contextPrefixes(model, tokenizer, hp.value("context_template_count", 5),
                                   hp.value("context_template_length", 5), hp.value("seed", 0));
}

} // namespace oedit::edit
