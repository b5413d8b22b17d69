// Where a model keeps its facts, measured two ways.
//
// Causal tracing (Meng et al., ROME, 2022, section 2): run a prompt with the
// subject's token embeddings corrupted by Gaussian noise, then restore one
// clean activation at a time, a (token, layer) hidden state or a (token,
// layer) MLP output, and read the probability of the true object's first
// token. Averaged over facts and grouped into ROME's token groups (first,
// middle and last subject token, first and further tokens after it, the
// prompt's last token), a model that recalls facts through the subject shows
// MLP effects at the subject's last token in early-to-middle layers.
//
// Linear probing: a softmax regression from the hidden state at the
// subject's last token (the subject's name alone, no prompt around it) to
// the object of one relation, fitted on half the subjects and scored on the
// other half: high accuracy means the attribute is (linearly) encoded in the
// subject's representation, the condition for an edit there to carry over to
// every prompt about it.
//
// Torch-level, single-threaded on the model's device; no state.
#pragma once

#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/status.h"

#include <string>
#include <vector>

namespace oedit::eval {

// One fact to trace: a prompt template with "{}", the subject and the object.
struct TraceCase {
    std::string promptTemplate;
    std::string subject;
    std::string object;
};

// ROME's token groups, in this order.
std::vector<std::string> traceTokenGroups();

struct CausalTraceOptions {
    int samples = 3;         // noise draws per fact
    double noiseFactor = 3.0; // noise std = this times the std of the subjects' input embeddings
    uint64_t seed = 1;
};

struct CausalTrace {
    int64_t layers = 0;
    int64_t facts = 0;   // traced (a fact whose clean top token is not the object's first token is skipped)
    int64_t skipped = 0; // not recalled by the clean model
    double noiseStd = 0;
    double cleanProbability = 0;     // mean P(object) on clean prompts
    double corruptedProbability = 0; // mean P(object) with the subject corrupted
    // [group][layer]: mean P(object) with that activation restored; NaN where
    // no traced fact has a token in the group.
    std::vector<std::vector<double>> hidden;
    std::vector<std::vector<double>> mlp;
    std::vector<int64_t> groupCounts; // facts with a token in each group
};

// Traces `cases` in order; progress(done, total) may cancel (what was traced
// so far is returned). Throws std::runtime_error on a prompt without "{}".
CausalTrace causalTrace(const model::Transformer &model, const model::Tokenizer &tokenizer,
                        const std::vector<TraceCase> &cases, const CausalTraceOptions &options,
                        const ProgressFn &progress = {});

// One prompt traced token by token, for the workbench's trace view: the same
// procedure as causalTrace, with the attention outputs restored too and
// nothing averaged over tokens.
struct PromptTrace {
    std::vector<std::string> tokens; // the prompt's tokens as text
    int64_t subjectFirst = 0, subjectLast = 0;
    std::string object;       // the answer traced: the case's object, or the clean model's top token
    double noiseStd = 0;      // noiseFactor x the std of this subject's input embeddings
    double cleanProbability = 0, corruptedProbability = 0;
    int samples = 0;          // noise draws averaged (fewer than asked when cancelled)
    // [token][layer]: mean P(object) with that one activation restored.
    std::vector<std::vector<double>> hidden, mlp, attention;
};

// Traces one case; an empty object traces the clean model's top next token.
// progress(done, samples) may cancel after any draw (samples() says how many
// were averaged; none gives an empty trace). Throws std::runtime_error on a
// prompt without "{}".
PromptTrace tracePrompt(const model::Transformer &model, const model::Tokenizer &tokenizer, const TraceCase &c,
                        const CausalTraceOptions &options, const ProgressFn &progress = {});

// One relation's probe data: the subjects and their objects (class indices).
struct ProbeRelation {
    std::string relation;
    std::vector<std::string> subjects;
    std::vector<int64_t> objects;
    int64_t classes = 0;
};

struct ProbeScore {
    std::string relation;
    int64_t train = 0, test = 0;
    std::vector<double> accuracy; // per layer (hidden state after each block), held-out subjects
    double majority = 0;          // the most common training object's share of the test subjects
};

// Fits and scores a probe per relation and layer: subjects at even places
// train it, odd places test it. Relations with fewer than 8 subjects are
// left out.
std::vector<ProbeScore> linearProbe(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                    const std::vector<ProbeRelation> &relations, uint64_t seed = 1,
                                    const ProgressFn &progress = {});

} // namespace oedit::eval
