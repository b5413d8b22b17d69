#include "eval/edit_metrics.h"

#include "edit/editor.h"
#include "eval/metric_families.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <tuple>

namespace oedit::eval {

// Teacher-forced probes, packed into as few sequences as possible: two
// single-token continuations of one prompt (the usual new-versus-true
// comparison, world objects being single tokens) share one sequence, read at
// the prompt's last position, which halves the work of a checkpoint.
struct PackedProbes {
    struct Read {
        size_t probe;
        size_t start; // the continuation's first position in the sequence
        std::vector<int64_t> continuation;
    };
    struct Sequence {
        std::vector<int64_t> ids;
        std::vector<Read> reads;
    };
    std::vector<Sequence> sequences;
    size_t count = 0;

    size_t add(std::vector<int64_t> prompt, const std::vector<int64_t> &continuation)
    {
        const size_t start = prompt.size();
        prompt.insert(prompt.end(), continuation.begin(), continuation.end());
        sequences.push_back({std::move(prompt), {{count, start, continuation}}});
        return count++;
    }

    std::pair<size_t, size_t> addPair(std::vector<int64_t> prompt, const std::vector<int64_t> &first,
                                      const std::vector<int64_t> &second)
    {
        if (first.size() != 1 || second.size() != 1) {
            const size_t a = add(prompt, first);
            return {a, add(std::move(prompt), second)};
        }
        const size_t start = prompt.size();
        sequences.push_back({std::move(prompt), {{count, start, first}, {count + 1, start, second}}});
        count += 2;
        return {count - 2, count - 1};
    }
};

namespace {

// Scores every probe in batches of `batchSize` sequences, sorted by length so
// one long prompt does not pad a whole batch.
std::vector<Score> scoreAll(const model::Transformer &model, const PackedProbes &probes, int64_t padId, int batchSize)
{
    torch::NoGradGuard noGrad;
    std::vector<size_t> order(probes.sequences.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return probes.sequences[a].ids.size() < probes.sequences[b].ids.size();
    });
    std::vector<Score> out(probes.count);
    for (size_t begin = 0; begin < order.size(); begin += static_cast<size_t>(batchSize)) {
        const size_t end = std::min(order.size(), begin + static_cast<size_t>(batchSize));
        std::vector<std::vector<int64_t>> batch;
        for (size_t i = begin; i < end; ++i) {
            if (probes.sequences[order[i]].ids.empty())
                throw std::runtime_error("edit metrics: an empty prompt has nothing to condition on");
            batch.push_back(probes.sequences[order[i]].ids);
        }
        const auto padded = model::padBatch(batch, padId);
        const auto logProbs = torch::log_softmax(
                                  model.forward(padded.ids.to(model.device()), padded.mask.to(model.device()))
                                      .to(torch::kFloat),
                                  -1)
                                  .cpu()
                                  .contiguous();
        const auto best = logProbs.argmax(-1).contiguous();
        const auto lp = logProbs.accessor<float, 3>();
        const auto top = best.accessor<int64_t, 2>();
        for (size_t i = begin; i < end; ++i) {
            const auto row = static_cast<int64_t>(i - begin);
            for (const auto &read : probes.sequences[order[i]].reads) {
                auto &score = out[read.probe];
                for (size_t j = 0; j < read.continuation.size(); ++j) {
                    const auto position = static_cast<int64_t>(read.start + j) - 1;
                    const int64_t token = read.continuation[j];
                    score.tokenLogProbs.push_back(lp[row][position][token]);
                    score.tokenIsArgmax.push_back(top[row][position] == token);
                }
                score.firstArgmax = top[row][static_cast<int64_t>(read.start) - 1];
            }
        }
    }
    return out;
}

std::string factKey(const std::string &subject, const std::string &promptTemplate)
{
    return subject + '\n' + promptTemplate;
}

} // namespace

double ngramEntropy(const std::string &text)
{
    std::vector<std::string> words;
    std::istringstream in(text);
    for (std::string word; in >> word;)
        words.push_back(word);
    const double weights[2] = {2.0 / 3.0, 4.0 / 3.0};
    double total = 0;
    for (int n = 2; n <= 3; ++n) {
        std::map<std::vector<std::string>, int64_t> counts;
        int64_t all = 0;
        for (size_t i = 0; i + static_cast<size_t>(n) <= words.size(); ++i) {
            ++counts[std::vector<std::string>(words.begin() + static_cast<long>(i),
                                              words.begin() + static_cast<long>(i) + n)];
            ++all;
        }
        double entropy = 0;
        for (const auto &[gram, count] : counts) {
            const double p = double(count) / double(all);
            entropy -= p * std::log2(p);
        }
        total += weights[n - 2] * entropy;
    }
    return total / 2.0;
}

std::vector<std::vector<int64_t>> greedyBatch(const model::Transformer &model,
                                              const std::vector<std::vector<int64_t>> &prompts, int64_t maxNewTokens,
                                              int64_t padId)
{
    torch::NoGradGuard noGrad;
    std::vector<std::vector<int64_t>> out(prompts.size());
    if (prompts.empty() || maxNewTokens <= 0)
        return out;
    size_t longest = 0;
    for (const auto &prompt : prompts) {
        if (prompt.empty())
            throw std::runtime_error("greedyBatch: an empty prompt has nothing to condition on");
        longest = std::max(longest, prompt.size());
    }
    // Left padding lines up the last tokens, so one argmax column serves all rows.
    const auto batch = model::padBatch(prompts, padId, /*padLeft=*/true);
    auto ids = batch.ids, mask = batch.mask;
    int64_t steps = maxNewTokens;
    if (model.config().maxPositions > 0)
        steps = std::min<int64_t>(steps, model.config().maxPositions - static_cast<int64_t>(longest));
    for (int64_t step = 0; step < steps; ++step) {
        const auto logits = model.forward(ids.to(model.device()), mask.to(model.device()));
        const auto next = logits.select(1, -1).argmax(-1).cpu().to(torch::kLong);
        for (size_t i = 0; i < prompts.size(); ++i)
            out[i].push_back(next[static_cast<int64_t>(i)].item<int64_t>());
        ids = torch::cat({ids, next.unsqueeze(1)}, 1);
        mask = torch::cat({mask, torch::ones({mask.size(0), 1}, mask.options())}, 1);
    }
    return out;
}

EditEvaluator::EditEvaluator(std::optional<world::World> world, EditMetricsOptions options)
    : m_world(std::move(world)), m_options(options)
{
    if (!m_world)
        return;
    for (size_t i = 0; i < m_world->facts.size(); ++i) {
        const auto &fact = m_world->facts[i];
        m_factIndex.emplace(factKey(m_world->subjectName(fact), m_world->relationOf(fact).templates.at(0)), i);
    }
    // A seeded shuffle, fixed for the evaluator's life, so every checkpoint
    // of a run (and of a resumed run) looks at the same facts.
    std::vector<size_t> all(m_world->facts.size());
    std::iota(all.begin(), all.end(), size_t(0));
    std::mt19937_64 random(m_options.sampleSeed);
    for (size_t i = 0; i + 1 < all.size(); ++i)
        std::swap(all[i], all[i + random() % (all.size() - i)]);
    all.resize(std::min(all.size(), static_cast<size_t>(std::max(0, m_options.unrelatedFacts))));
    m_sample = all;
}

void EditEvaluator::addCaseProbes(const std::string &subject, const std::string &promptTemplate, CaseProbes probes)
{
    m_cases[factKey(subject, promptTemplate)] = std::move(probes);
}

const world::Fact *EditEvaluator::findFact(const edit::EditRequest &request) const
{
    if (!m_world)
        return nullptr;
    const auto it = m_factIndex.find(factKey(request.subject, request.prompt));
    return it == m_factIndex.end() ? nullptr : &m_world->facts[it->second];
}

std::vector<Metric> EditEvaluator::evaluate(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                            const std::vector<EvaluatedEdit> &edits, const LayerWeights *base) const
{
    torch::NoGradGuard noGrad;
    const auto started = std::chrono::steady_clock::now();
    const int64_t padId = tokenizer.eosId().value_or(0);
    const int batch = std::max(1, m_options.batchSize);

    // Every teacher-forced probe of the checkpoint goes into one list, so the
    // batches are full whatever the mix of edits.
    PackedProbes probes;
    std::vector<EditProbes> perEdit;
    std::set<std::string> editedFacts;
    for (const auto &edit : edits) {
        const auto &request = edit.request;
        const auto key = factKey(request.subject, request.prompt);
        const auto caseIt = m_cases.find(key);
        const CaseProbes *caseProbes = caseIt == m_cases.end() ? nullptr : &caseIt->second;
        const world::Fact *fact = caseProbes ? nullptr : findFact(request);
        perEdit.push_back(probeEdit(probes, tokenizer, request, caseProbes, fact));
        // A model trained on a data set knows its cases as world facts: once
        // edited, a case is no longer an unedited fact either.
        if (request.targetTrue && (caseProbes || fact))
            editedFacts.insert(key);
    }
    auto unedited = probeUnedited(probes, tokenizer, editedFacts);
    auto heldout = probeHeldout(probes, model, tokenizer);

    Checkpoint checkpoint{model,
                          tokenizer,
                          edits,
                          base,
                          scoreAll(model, probes, padId, batch),
                          std::move(perEdit),
                          std::move(unedited),
                          std::move(heldout),
                          batch,
                          m_options.fluencyPrompts,
                          m_options.fluencyTokens,
                          padId,
                          started};
    std::vector<Metric> out;
    for (const auto &family : metricFamilies()) {
        auto rows = family.run(checkpoint);
        out.insert(out.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
    }
    return out;
}

EditProbes EditEvaluator::probeEdit(PackedProbes &probes, const model::Tokenizer &tokenizer,
                                    const edit::EditRequest &request, const CaseProbes *caseProbes,
                                    const world::Fact *fact) const
{
    EditProbes p;
    p.prompt = edit::tokenizePrompt(tokenizer, request.prompt, request.subject).ids;
    p.target = request.targetNew;
    const auto newIds = tokenizer.encode(" " + request.targetNew);
    if (!request.targetTrue)
        return p;
    const auto trueIds = tokenizer.encode(" " + *request.targetTrue);
    std::tie(p.efficacyNew, p.efficacyTrue) = probes.addPair(p.prompt, newIds, trueIds);
    if (caseProbes) {
        for (const auto &text : caseProbes->paraphrases) {
            std::vector<int64_t> prompt;
            try {
                prompt = edit::tokenizePrompt(tokenizer, text, request.subject).ids;
            } catch (const edit::EditError &) {
                prompt = tokenizer.encodeForModel(text); // a paraphrase that spells the subject differently
            }
            if (!prompt.empty())
                p.paraphrases.push_back(probes.addPair(prompt, newIds, trueIds));
        }
        for (const auto &[text, answer] : caseProbes->neighbours) {
            const auto prompt = tokenizer.encodeForModel(text);
            if (!prompt.empty() && !answer.empty())
                p.neighbours.push_back(probes.addPair(prompt, tokenizer.encode(" " + answer), newIds));
        }
        return p;
    }
    if (!fact)
        return p;
    const auto &relation = m_world->relationOf(*fact);
    for (size_t t = 1; t < relation.templates.size(); ++t) {
        const auto prompt = edit::tokenizePrompt(tokenizer, relation.templates[t], request.subject).ids;
        p.paraphrases.push_back(probes.addPair(prompt, newIds, trueIds));
    }
    for (size_t n = 0; n < fact->neighbours.size() && n < static_cast<size_t>(m_options.neighboursPerEdit); ++n) {
        const auto &neighbour = m_world->subjects.at(static_cast<size_t>(fact->neighbours[n])).name;
        const auto prompt = edit::tokenizePrompt(tokenizer, relation.templates[0], neighbour).ids;
        p.neighbours.push_back(probes.addPair(prompt, trueIds, newIds));
    }
    return p;
}

std::vector<size_t> EditEvaluator::probeUnedited(PackedProbes &probes, const model::Tokenizer &tokenizer,
                                                 const std::set<std::string> &editedFacts) const
{
    // The fixed sample of facts, less those edited so far.
    std::vector<size_t> out;
    for (size_t f : m_sample) {
        const auto &fact = m_world->facts[f];
        if (editedFacts.count(factKey(m_world->subjectName(fact), m_world->relationOf(fact).templates.at(0))))
            continue;
        out.push_back(probes.add(tokenizer.encodeForModel(world::factPrompt(*m_world, fact)),
                                 tokenizer.encode(" " + m_world->objectName(fact))));
    }
    return out;
}

std::vector<size_t> EditEvaluator::probeHeldout(PackedProbes &probes, const model::Transformer &model,
                                                const model::Tokenizer &tokenizer) const
{
    // Held-out text: every token after the first, given the ones before it.
    std::vector<size_t> out;
    if (!m_world)
        return out;
    const int64_t limit = model.config().maxPositions > 0 ? model.config().maxPositions : 1024;
    for (size_t i = 0; i < m_world->generalHeldout.size() &&
                       out.size() < static_cast<size_t>(std::max(0, m_options.heldoutPassages));
         ++i) {
        auto ids = tokenizer.encodeForModel(m_world->generalHeldout[i]);
        if (static_cast<int64_t>(ids.size()) > limit)
            ids.resize(static_cast<size_t>(limit));
        if (ids.size() < 2)
            continue;
        out.push_back(probes.add({ids.front()}, std::vector<int64_t>(ids.begin() + 1, ids.end())));
    }
    return out;
}

} // namespace oedit::eval
