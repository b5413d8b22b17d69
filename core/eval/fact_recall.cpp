#include "eval/fact_recall.h"

namespace oedit::eval {

namespace {

struct Probe {
    size_t fact;
    bool canonical;
    bool heldOutForm; // the relation's held-out form on a subject never trained with it
    std::vector<int64_t> prompt;
    std::vector<int64_t> object;
};

} // namespace

FactRecall evaluateFactRecall(const model::Transformer &model, const model::Tokenizer &tokenizer,
                              const world::World &world, int batchSize, int64_t limit, const ProgressFn &progress)
{
    FactRecall result;
    result.relations.resize(world.relations.size());
    for (size_t r = 0; r < world.relations.size(); ++r)
        result.relations[r].relation = world.relations[r].id;

    const size_t factCount = limit > 0 ? std::min<size_t>(static_cast<size_t>(limit), world.facts.size())
                                       : world.facts.size();
    std::vector<Probe> probes;
    for (size_t f = 0; f < factCount; ++f) {
        const auto &fact = world.facts[f];
        const auto object = tokenizer.encode(" " + world.objectName(fact));
        const auto &templates = world.relationOf(fact).templates;
        const int heldOut =
            world::heldOutFormTrained(world, fact.subject) ? -1 : world::heldOutFormTemplate(world.relationOf(fact));
        for (size_t t = 0; t < templates.size(); ++t)
            probes.push_back({f, t == 0, static_cast<int>(t) == heldOut,
                              tokenizer.encodeForModel(world::factPrompt(world, fact, static_cast<int>(t))), object});
    }

    const int64_t padId = tokenizer.eosId().value_or(0);
    for (size_t start = 0; start < probes.size(); start += static_cast<size_t>(batchSize)) {
        const size_t end = std::min(probes.size(), start + static_cast<size_t>(batchSize));
        std::vector<std::vector<int64_t>> prompts, objects;
        for (size_t i = start; i < end; ++i) {
            prompts.push_back(probes[i].prompt);
            objects.push_back(probes[i].object);
        }
        const auto scores = model.scoreContinuations(prompts, objects, padId);
        for (size_t i = start; i < end; ++i) {
            const auto &probe = probes[i];
            const auto &score = scores[i - start];
            const bool recalled =
                std::all_of(score.tokenIsArgmax.begin(), score.tokenIsArgmax.end(), [](bool top) { return top; });
            auto &relation = result.relations[world.facts[probe.fact].relation];
            if (probe.canonical) {
                ++result.facts;
                ++relation.facts;
                result.canonicalRecalled += recalled;
                relation.canonicalRecalled += recalled;
                if (!recalled && result.canonicalMisses.size() < 20)
                    result.canonicalMisses.push_back(world::factPrompt(world, world.facts[probe.fact]) + " -> " +
                                                     world.objectName(world.facts[probe.fact]));
            } else {
                ++result.paraphrases;
                ++relation.paraphrases;
                result.paraphrasesRecalled += recalled;
                relation.paraphrasesRecalled += recalled;
            }
            if (probe.heldOutForm) {
                ++result.heldOutForm;
                result.heldOutFormRecalled += recalled;
            }
        }
        if (progress && !progress(static_cast<long long>(end), static_cast<long long>(probes.size())))
            break;
    }
    return result;
}

} // namespace oedit::eval
