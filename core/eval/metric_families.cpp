#include "eval/metric_families.h"

#include "eval/edit_metrics.h"
#include "eval/norms.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace oedit::eval {

namespace {

double probability(const Score &score)
{
    return std::exp(score.meanLogProb());
}

bool allArgmax(const Score &score)
{
    return std::all_of(score.tokenIsArgmax.begin(), score.tokenIsArgmax.end(), [](bool top) { return top; });
}

double tokenAccuracy(const Score &score)
{
    if (score.tokenIsArgmax.empty())
        return 0.0;
    return double(std::count(score.tokenIsArgmax.begin(), score.tokenIsArgmax.end(), true)) /
           double(score.tokenIsArgmax.size());
}

// Does the first score beat the second (mean log-probability per token)?
double beats(const Score &a, const Score &b)
{
    return a.meanLogProb() > b.meanLogProb() ? 1.0 : 0.0;
}

// Running mean of per-edit means (CounterFact averages within a case first).
struct Mean {
    double sum = 0;
    int64_t count = 0;
    void add(double value)
    {
        sum += value;
        ++count;
    }
    double value() const { return count ? sum / double(count) : 0.0; }
};

} // namespace

std::vector<Metric> probabilityMetrics(const EditScores &input)
{
    const auto &scores = input.scores;
    Mean es, em, ps, pm, ns, nm;
    for (const auto &p : input.edits) {
        if (!p.efficacyNew)
            continue;
        const auto &sNew = scores[*p.efficacyNew], &sTrue = scores[*p.efficacyTrue];
        es.add(beats(sNew, sTrue));
        em.add(probability(sNew) - probability(sTrue));
        if (!p.paraphrases.empty()) {
            Mean s, m;
            for (const auto &[n, o] : p.paraphrases) {
                s.add(beats(scores[n], scores[o]));
                m.add(probability(scores[n]) - probability(scores[o]));
            }
            ps.add(s.value());
            pm.add(m.value());
        }
        if (!p.neighbours.empty()) {
            Mean s, m;
            for (const auto &[o, n] : p.neighbours) {
                s.add(beats(scores[o], scores[n]));
                m.add(probability(scores[o]) - probability(scores[n]));
            }
            ns.add(s.value());
            nm.add(m.value());
        }
    }
    std::vector<Metric> out;
    out.push_back({"ES", es.value(), std::nullopt});
    out.push_back({"EM", em.value(), std::nullopt});
    if (ps.count) {
        out.push_back({"PS", ps.value(), std::nullopt});
        out.push_back({"PM", pm.value(), std::nullopt});
    }
    if (ns.count) {
        out.push_back({"NS", ns.value(), std::nullopt});
        out.push_back({"NM", nm.value(), std::nullopt});
    }
    if (ps.count && ns.count) {
        const double a = es.value(), b = ps.value(), c = ns.value();
        const double score = (a > 0 && b > 0 && c > 0) ? 3.0 / (1.0 / a + 1.0 / b + 1.0 / c) : 0.0;
        out.push_back({"score", score, std::nullopt});
    }
    return out;
}

std::vector<Metric> tokenAccuracyMetrics(const EditScores &input)
{
    Mean tokenAcc, paraTokenAcc;
    for (const auto &p : input.edits) {
        if (!p.efficacyNew)
            continue;
        tokenAcc.add(tokenAccuracy(input.scores[*p.efficacyNew]));
        if (!p.paraphrases.empty()) {
            Mean t;
            for (const auto &pair : p.paraphrases)
                t.add(tokenAccuracy(input.scores[pair.first]));
            paraTokenAcc.add(t.value());
        }
    }
    std::vector<Metric> out;
    out.push_back({"token_acc", tokenAcc.value(), std::nullopt});
    if (paraTokenAcc.count)
        out.push_back({"para_token_acc", paraTokenAcc.value(), std::nullopt});
    return out;
}

std::vector<Metric> retentionRows(const EditScores &input, const std::vector<int64_t> &ids)
{
    std::vector<Metric> out;
    for (size_t i = 0; i < input.edits.size(); ++i) {
        const auto &p = input.edits[i];
        if (p.efficacyNew)
            out.push_back({"edit_success", beats(input.scores[*p.efficacyNew], input.scores[*p.efficacyTrue]), ids[i]});
    }
    return out;
}

std::vector<Metric> generationMetrics(const GenerationInput &input)
{
    const auto &tokenizer = input.tokenizer;
    const auto &perEdit = input.edits.edits;
    const size_t batch = static_cast<size_t>(std::max(1, input.batchSize));
    Mean genEm;
    // Greedy decoding's first token is the argmax the scoring already saw; an
    // edit whose first token cannot begin the target has failed, so only the
    // others are decoded further.
    std::vector<size_t> candidates;
    std::vector<std::vector<int64_t>> prompts;
    int64_t longestTarget = 1;
    for (size_t i = 0; i < perEdit.size(); ++i) {
        const auto &p = perEdit[i];
        const auto expected = " " + p.target;
        if (p.efficacyNew) {
            const auto first = tokenizer.decode({input.edits.scores[*p.efficacyNew].firstArgmax});
            const size_t n = std::min(first.size(), expected.size());
            if (first.empty() || first.compare(0, n, expected, 0, n) != 0) {
                genEm.add(0.0);
                continue;
            }
        }
        candidates.push_back(i);
        prompts.push_back(p.prompt);
        longestTarget = std::max<int64_t>(longestTarget, static_cast<int64_t>(tokenizer.encode(expected).size()));
    }
    // A couple of spare tokens let a target the model produces with another
    // tokenisation still count.
    for (size_t begin = 0; begin < prompts.size(); begin += batch) {
        const size_t end = std::min(prompts.size(), begin + batch);
        const auto generated = greedyBatch(input.model,
                                           std::vector<std::vector<int64_t>>(prompts.begin() + static_cast<long>(begin),
                                                                             prompts.begin() + static_cast<long>(end)),
                                           longestTarget + 2, input.padId);
        for (size_t k = begin; k < end; ++k) {
            const auto text = tokenizer.decode(generated[k - begin]);
            const auto expected = " " + perEdit[candidates[k]].target;
            const bool match =
                text.compare(0, expected.size(), expected) == 0 &&
                (text.size() == expected.size() || !std::isalnum(static_cast<unsigned char>(text[expected.size()])));
            genEm.add(match ? 1.0 : 0.0);
        }
    }
    return {{"gen_EM", genEm.value(), std::nullopt}};
}

std::vector<Metric> uneditedMetrics(const ProbeList &input)
{
    if (input.probes.empty())
        return {};
    Mean acc;
    for (size_t index : input.probes)
        acc.add(allArgmax(input.scores[index]) ? 1.0 : 0.0);
    // unedited_n: how many facts that accuracy stands on (the sample less the edited ones).
    return {{"unedited_acc", acc.value(), std::nullopt},
            {"unedited_n", static_cast<double>(input.probes.size()), std::nullopt}};
}

std::vector<Metric> heldoutMetrics(const ProbeList &input)
{
    if (input.probes.empty())
        return {};
    double nll = 0;
    int64_t tokens = 0;
    for (size_t index : input.probes) {
        for (double logProb : input.scores[index].tokenLogProbs)
            nll -= logProb;
        tokens += static_cast<int64_t>(input.scores[index].tokenLogProbs.size());
    }
    return {{"heldout_ppl", std::exp(nll / double(tokens)), std::nullopt}};
}

std::vector<Metric> fluencyMetrics(const FluencyInput &input)
{
    if (input.prompts <= 0 || input.edits.empty())
        return {};
    const auto &edits = input.edits;
    const size_t count = std::min(edits.size(), static_cast<size_t>(input.prompts));
    std::vector<std::vector<int64_t>> prompts;
    std::vector<std::string> texts;
    for (size_t k = 0; k < count; ++k) {
        const size_t i = k * edits.size() / count;
        prompts.push_back(input.probes[i].prompt);
        texts.push_back(edit::filledPrompt(edits[i].request.prompt, edits[i].request.subject));
    }
    const auto generated = greedyBatch(input.model, prompts, input.tokens, input.padId);
    Mean fluency;
    for (size_t k = 0; k < count; ++k)
        fluency.add(ngramEntropy(texts[k] + input.tokenizer.decode(generated[k])));
    return {{"fluency", fluency.value(), std::nullopt}};
}

std::vector<Metric> weightMetrics(const WeightInput &input)
{
    std::vector<Metric> out;
    if (!input.base)
        return out;
    // Only layers an edit changed.
    for (const auto &[layer, W0] : *input.base) {
        const auto W = input.model.mlpOutWeight(layer).to(torch::kCPU, torch::kDouble);
        const double norm = deltaNorm(W, W0);
        if (norm == 0.0)
            continue;
        out.push_back({"delta_norm_L" + std::to_string(layer), norm, std::nullopt});
        out.push_back({"cond_L" + std::to_string(layer), conditionNumber(W), std::nullopt});
    }
    return out;
}

const std::vector<MetricFamily> &metricFamilies()
{
    static const std::vector<MetricFamily> families = {
        {"probability",
         [](const Checkpoint &c) {
             return probabilityMetrics({c.scores, c.probes});
         }},
        {"token_accuracy",
         [](const Checkpoint &c) {
             return tokenAccuracyMetrics({c.scores, c.probes});
         }},
        {"generation",
         [](const Checkpoint &c) {
             return generationMetrics({c.model, c.tokenizer, {c.scores, c.probes}, c.batchSize, c.padId});
         }},
        {"unedited",
         [](const Checkpoint &c) {
             return uneditedMetrics({c.scores, c.unedited});
         }},
        {"heldout",
         [](const Checkpoint &c) {
             return heldoutMetrics({c.scores, c.heldout});
         }},
        {"fluency",
         [](const Checkpoint &c) {
             return fluencyMetrics(
                 {c.model, c.tokenizer, c.edits, c.probes, c.fluencyPrompts, c.fluencyTokens, c.padId});
         }},
        {"active_edits",
         [](const Checkpoint &c) {
             return std::vector<Metric>{{"active_edits", double(c.edits.size()), std::nullopt}};
         }},
        {"weights",
         [](const Checkpoint &c) {
             return weightMetrics({c.model, c.base});
         }},
        {"eval_seconds",
         [](const Checkpoint &c) {
             return std::vector<Metric>{
                 {"eval_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - c.started).count(),
                  std::nullopt}};
         }},
        {"retention",
         [](const Checkpoint &c) {
             std::vector<int64_t> ids;
             for (const auto &e : c.edits)
                 ids.push_back(e.id);
             return retentionRows({c.scores, c.probes}, ids);
         }},
    };
    return families;
}

} // namespace oedit::eval
