// How well a model knows a world: for every fact, is the object the model's
// top-1 continuation of the canonical prompt and of each paraphrase? A
// multi-token object counts as recalled when every one of its tokens is the
// argmax given the prompt and the object tokens before it (what greedy
// decoding would produce).
#pragma once

#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/status.h"
#include "oedit/world.h"

#include <string>
#include <vector>

namespace oedit::eval {

struct RelationRecall {
    std::string relation;
    int64_t facts = 0;
    int64_t canonicalRecalled = 0;
    int64_t paraphrases = 0;
    int64_t paraphrasesRecalled = 0;
};

struct FactRecall {
    int64_t facts = 0;
    int64_t canonicalRecalled = 0;
    int64_t paraphrases = 0;
    int64_t paraphrasesRecalled = 0;
    int64_t heldOutForm = 0; // see FactRecallSummary::heldOutFormPrompts
    int64_t heldOutFormRecalled = 0;
    std::vector<RelationRecall> relations;
    std::vector<std::string> canonicalMisses; // "prompt -> expected (got ...)" for the first misses

    double canonicalRate() const { return facts ? double(canonicalRecalled) / double(facts) : 0.0; }
    double paraphraseRate() const { return paraphrases ? double(paraphrasesRecalled) / double(paraphrases) : 0.0; }
    double heldOutFormRate() const { return heldOutForm ? double(heldOutFormRecalled) / double(heldOutForm) : 0.0; }
};

// Scores all facts of `world` (or the first `limit` when limit > 0), batched.
// progress(done, total) may cancel; a cancelled run returns what it counted.
FactRecall evaluateFactRecall(const model::Transformer &model, const model::Tokenizer &tokenizer,
                              const world::World &world, int batchSize = 128, int64_t limit = 0,
                              const ProgressFn &progress = {});

} // namespace oedit::eval
