// Evaluation of a sequential run at a checkpoint, for all edits in effect:
// the CounterFact-style probability comparisons (efficacy, paraphrase
// generalisation, neighbourhood specificity) and their harmonic-mean score,
// zsRE-style token accuracy, generation-based exact match (greedy decoding
// without teacher forcing, because teacher-forced numbers overstate success),
// accuracy on a fixed sample of unedited facts, perplexity of held-out text,
// fluency (n-gram entropy of greedy generations), the norm of each edited
// layer's change and its condition number, and one success row per edit (the
// checkpoint's column of the retention matrix). Each family is one function (metric_families.h).
//
// Paraphrases and neighbours come from the world the edits were drawn from
// (an edit is matched to its fact by subject and canonical template), or from
// the data set's records (addCaseProbes); edits with neither count for
// efficacy only.
//
// evaluate() gathers every teacher-forced probe of the checkpoint and scores
// them in one batched pass; the metric families (metric_families.h) turn the
// scores into rows, in the order of their list.
//
// Ownership and threads: an EditEvaluator holds a copy of the world and the
// probes derived from it; evaluate() borrows the model for the call, on the
// caller's thread. Everything is batched (scoring and generation). It knows
// nothing of the ledger: callers pass EvaluatedEdit values and store the rows.
// Failure: throws std::runtime_error from the model for malformed input.
#pragma once

#include "eval/metric.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

#include "oedit/world.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace oedit::eval {

struct EditProbes;
struct PackedProbes; // the checkpoint's teacher-forced probes, packed for scoring (edit_metrics.cpp)

struct EditMetricsOptions {
    int batchSize = 64;
    int neighboursPerEdit = 5;     // neighbourhood prompts per edit (the first ones of the fact)
    int unrelatedFacts = 100;      // size of the fixed sample of unedited facts (0: skip)
    int heldoutPassages = 64;      // held-out passages for perplexity (0: skip)
    int fluencyPrompts = 16;       // edit prompts generated from for fluency (0: skip)
    int fluencyTokens = 24;        // new tokens per fluency generation
    uint64_t sampleSeed = 20240601; // picks the unedited-fact sample, the same at every checkpoint
};

// ROME's fluency measure for one text: the entropies (bits) of its word
// bigram and trigram distributions, weighted 2/3 and 4/3, averaged.
double ngramEntropy(const std::string &text);

// Batched greedy decoding from left-padded prompts: up to `maxNewTokens` new
// tokens per prompt (fewer when the model's context ends).
std::vector<std::vector<int64_t>> greedyBatch(const model::Transformer &model,
                                              const std::vector<std::vector<int64_t>> &prompts, int64_t maxNewTokens,
                                              int64_t padId);

class EditEvaluator {
public:
    // Without a world only efficacy, generation, fluency and weight metrics are produced.
    explicit EditEvaluator(std::optional<world::World> world = std::nullopt, EditMetricsOptions options = {});

    // Metric rows for the model as it is, the active `edits` in order, and
    // (when given) the base weights for ||W - W0||. Run-level rows first:
    // ES EM PS PM NS NM score token_acc para_token_acc gen_EM unedited_acc
    // unedited_n heldout_ppl fluency active_edits, then
    // delta_norm_L<l>/cond_L<l>, eval_seconds, then
    // one "edit_success" row (0/1) per edit, filed under its EvaluatedEdit::id.
    std::vector<Metric> evaluate(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                 const std::vector<EvaluatedEdit> &edits, const LayerWeights *base = nullptr) const;

    // A data set's own paraphrases and neighbourhood prompts for an edit
    // (CounterFact records carry them); used before the world's.
    struct CaseProbes {
        std::vector<std::string> paraphrases;                      // full prompts containing the subject
        std::vector<std::pair<std::string, std::string>> neighbours; // (full prompt, its own true answer)
    };
    void addCaseProbes(const std::string &subject, const std::string &promptTemplate, CaseProbes probes);

private:
    const world::Fact *findFact(const edit::EditRequest &request) const;
    // Adds an edit's efficacy, paraphrase and neighbourhood probes, from the
    // data set's case when there is one, else from its world fact.
    EditProbes probeEdit(PackedProbes &probes, const model::Tokenizer &tokenizer, const edit::EditRequest &request,
                         const CaseProbes *caseProbes, const world::Fact *fact) const;
    // The unedited-fact sample less `editedFacts` (subject + '\n' + template).
    std::vector<size_t> probeUnedited(PackedProbes &probes, const model::Tokenizer &tokenizer,
                                      const std::set<std::string> &editedFacts) const;
    std::vector<size_t> probeHeldout(PackedProbes &probes, const model::Transformer &model,
                                     const model::Tokenizer &tokenizer) const;

    std::optional<world::World> m_world;
    EditMetricsOptions m_options;
    std::map<std::string, size_t> m_factIndex; // subject + '\n' + canonical template -> fact
    std::vector<size_t> m_sample;              // the fixed unedited-fact sample (fact indices)
    std::map<std::string, CaseProbes> m_cases; // subject + '\n' + prompt template -> the data set's probes
};

} // namespace oedit::eval
