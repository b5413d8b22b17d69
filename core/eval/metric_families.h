// The checkpoint metrics, one free function per family, and the list that
// EditEvaluator::evaluate runs in order. Each family reads the probes that
// the evaluator scored once for the whole checkpoint (teacher-forced, batched
// together whatever the mix of edits) and, for generation and fluency, the
// model. The list's order is the order of the metric rows a checkpoint
// stores; see edit_metrics.h for the rows themselves.
//
// Threads: the functions borrow the model for the call, on the caller's
// thread. Failure: std::runtime_error from the model for malformed input.
#pragma once

#include "eval/metric.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

#include <chrono>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace oedit::eval {

// A teacher-forced score of one continuation, with the model's own top-1
// token where the continuation starts (what greedy decoding would emit first).
struct Score {
    std::vector<double> tokenLogProbs;
    std::vector<bool> tokenIsArgmax;
    int64_t firstArgmax = -1;

    double meanLogProb() const
    {
        return tokenLogProbs.empty()
                   ? 0.0
                   : std::accumulate(tokenLogProbs.begin(), tokenLogProbs.end(), 0.0) / double(tokenLogProbs.size());
    }
};

// Where one edit's probes sit in the checkpoint's list of scores.
struct EditProbes {
    std::vector<int64_t> prompt;                        // the edit prompt's tokens: generation starts here
    std::string target;                                 // the new target
    std::optional<size_t> efficacyNew, efficacyTrue;    // none without a true target: efficacy cannot be judged
    std::vector<std::pair<size_t, size_t>> paraphrases; // (new, true)
    std::vector<std::pair<size_t, size_t>> neighbours;  // (true, new)
};

// The scored probes of the edits in effect, in the edits' order.
struct EditScores {
    const std::vector<Score> &scores;
    const std::vector<EditProbes> &edits;
};

// CounterFact's probability comparisons: ES EM, PS PM (when some edit has
// paraphrases), NS NM (when some edit has neighbours) and their harmonic
// mean "score" (when both). Each edit's paraphrases and neighbours are
// averaged within the edit first.
std::vector<Metric> probabilityMetrics(const EditScores &input);

// zsRE's teacher-forced token accuracy of the new target: token_acc, and
// para_token_acc when some edit has paraphrases.
std::vector<Metric> tokenAccuracyMetrics(const EditScores &input);

// One "edit_success" row (0/1) per edit whose efficacy can be judged, filed
// under the edit's id: the checkpoint's column of the retention matrix.
// `ids` runs parallel to `input.edits`.
std::vector<Metric> retentionRows(const EditScores &input, const std::vector<int64_t> &ids);

// gen_EM: does greedy decoding from the edit prompt, without teacher forcing,
// spell the new target? (Teacher-forced numbers overstate success.)
struct GenerationInput {
    const model::Transformer &model;
    const model::Tokenizer &tokenizer;
    EditScores edits;
    int batchSize = 64;
    int64_t padId = 0;
};
std::vector<Metric> generationMetrics(const GenerationInput &input);

// unedited_acc and unedited_n: how many of a fixed sample of facts not edited
// so far the model still gets right (every answer token its top-1); nothing
// when the sample is empty.
struct ProbeList {
    const std::vector<Score> &scores;
    const std::vector<size_t> &probes; // indices into scores
};
std::vector<Metric> uneditedMetrics(const ProbeList &input);

// heldout_ppl: the perplexity of held-out passages (every token after the
// first, given the ones before); nothing without passages.
std::vector<Metric> heldoutMetrics(const ProbeList &input);

// fluency: ROME's n-gram entropy (ngramEntropy) of greedy continuations of up
// to `prompts` edit prompts spread evenly over the run; nothing when
// `prompts` is 0 or no edit is in effect.
struct FluencyInput {
    const model::Transformer &model;
    const model::Tokenizer &tokenizer;
    const std::vector<EvaluatedEdit> &edits;
    const std::vector<EditProbes> &probes; // parallel to edits
    int prompts = 16;
    int tokens = 24;
    int64_t padId = 0;
};
std::vector<Metric> fluencyMetrics(const FluencyInput &input);

// delta_norm_L<l> and cond_L<l> for each layer of `base` that differs from
// its base weights, in layer order; nothing without base weights.
struct WeightInput {
    const model::Transformer &model;
    const LayerWeights *base = nullptr;
};
std::vector<Metric> weightMetrics(const WeightInput &input);

// Everything the families of one checkpoint read.
struct Checkpoint {
    const model::Transformer &model;
    const model::Tokenizer &tokenizer;
    const std::vector<EvaluatedEdit> &edits;
    const LayerWeights *base = nullptr;
    std::vector<Score> scores;
    std::vector<EditProbes> probes; // parallel to edits
    std::vector<size_t> unedited;   // the unedited-fact sample's probes
    std::vector<size_t> heldout;    // the held-out passages' probes
    int batchSize = 64;
    int fluencyPrompts = 16;
    int fluencyTokens = 24;
    int64_t padId = 0;
    std::chrono::steady_clock::time_point started; // when the checkpoint's evaluation began
};

struct MetricFamily {
    std::string name;
    std::function<std::vector<Metric>(const Checkpoint &)> run;
};

// The families in the order their rows are stored: probability, token
// accuracy, generation, unedited facts, held-out perplexity, fluency,
// active_edits, weights, eval_seconds (what the checkpoint cost, so long
// runs can budget their schedule), retention rows.
const std::vector<MetricFamily> &metricFamilies();

} // namespace oedit::eval
