#include "eval/edit_metrics.h"

#include "edit/editor.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

namespace oedit::eval {

namespace {

// A teacher-forced score, with the model's own top-1 token where the
// continuation starts (what greedy decoding would emit first).
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

// Teacher-forced probes, packed into as few sequences as possible: two
// single-token continuations of one prompt (the usual new-versus-true
// comparison, world objects being single tokens) share one sequence, read at
// the prompt's last position, which halves the work of a checkpoint.
struct Probes {
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

// Scores every probe in batches of `batchSize` sequences, sorted by length so
// one long prompt does not pad a whole batch.
std::vector<Score> scoreAll(const model::Transformer &model, const Probes &probes, int64_t padId, int batchSize)
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

std::vector<store::Metric> EditEvaluator::evaluate(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                                   const std::vector<store::EditRow> &edits,
                                                   const run::BaseWeights *base) const
{
    torch::NoGradGuard noGrad;
    const auto started = std::chrono::steady_clock::now();
    const int64_t padId = tokenizer.eosId().value_or(0);
    const int batch = std::max(1, m_options.batchSize);

    // Every teacher-forced probe of the checkpoint goes into one list, so the
    // batches are full whatever the mix of edits.
    struct EditProbes {
        std::vector<int64_t> prompt;
        std::string target;
        std::optional<size_t> efficacyNew, efficacyTrue;
        std::vector<std::pair<size_t, size_t>> paraphrases; // (new, true)
        std::vector<std::pair<size_t, size_t>> neighbours;  // (true, new)
    };
    Probes probes;
    std::vector<EditProbes> perEdit(edits.size());
    std::set<std::string> editedFacts;
    for (size_t i = 0; i < edits.size(); ++i) {
        const auto &request = edits[i].request;
        auto &p = perEdit[i];
        p.prompt = edit::tokenizePrompt(tokenizer, request.prompt, request.subject).ids;
        p.target = request.targetNew;
        const auto newIds = tokenizer.encode(" " + request.targetNew);
        if (!request.targetTrue)
            continue;
        const auto trueIds = tokenizer.encode(" " + *request.targetTrue);
        std::tie(p.efficacyNew, p.efficacyTrue) = probes.addPair(p.prompt, newIds, trueIds);
        const auto caseIt = m_cases.find(factKey(request.subject, request.prompt));
        if (caseIt != m_cases.end()) {
            // A model trained on the data set knows this case as a world fact:
            // once edited, it is no longer an unedited fact.
            editedFacts.insert(factKey(request.subject, request.prompt));
            for (const auto &text : caseIt->second.paraphrases) {
                std::vector<int64_t> prompt;
                try {
                    prompt = edit::tokenizePrompt(tokenizer, text, request.subject).ids;
                } catch (const edit::EditError &) {
                    prompt = tokenizer.encodeForModel(text); // a paraphrase that spells the subject differently
                }
                if (!prompt.empty())
                    p.paraphrases.push_back(probes.addPair(prompt, newIds, trueIds));
            }
            for (const auto &[text, answer] : caseIt->second.neighbours) {
                const auto prompt = tokenizer.encodeForModel(text);
                if (!prompt.empty() && !answer.empty())
                    p.neighbours.push_back(probes.addPair(prompt, tokenizer.encode(" " + answer), newIds));
            }
            continue;
        }
        const auto *fact = findFact(edit::EditRequest{request.subject, request.prompt, request.targetNew, request.targetTrue});
        if (!fact)
            continue;
        editedFacts.insert(factKey(request.subject, request.prompt));
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
    }
    // The fixed sample of facts, less those edited so far.
    std::vector<size_t> unedited;
    for (size_t f : m_sample) {
        const auto &fact = m_world->facts[f];
        if (editedFacts.count(factKey(m_world->subjectName(fact), m_world->relationOf(fact).templates.at(0))))
            continue;
        unedited.push_back(probes.add(tokenizer.encodeForModel(world::factPrompt(*m_world, fact)),
                                      tokenizer.encode(" " + m_world->objectName(fact))));
    }
    // Held-out text: every token after the first, given the ones before it.
    std::vector<size_t> heldout;
    if (m_world) {
        const int64_t limit = model.config().maxPositions > 0 ? model.config().maxPositions : 1024;
        for (size_t i = 0; i < m_world->generalHeldout.size() &&
                           heldout.size() < static_cast<size_t>(std::max(0, m_options.heldoutPassages));
             ++i) {
            auto ids = tokenizer.encodeForModel(m_world->generalHeldout[i]);
            if (static_cast<int64_t>(ids.size()) > limit)
                ids.resize(static_cast<size_t>(limit));
            if (ids.size() < 2)
                continue;
            heldout.push_back(probes.add({ids.front()}, std::vector<int64_t>(ids.begin() + 1, ids.end())));
        }
    }
    const auto scores = scoreAll(model, probes, padId, batch);

    Mean es, em, ps, pm, ns, nm, tokenAcc, paraTokenAcc;
    std::vector<store::Metric> perEditRows;
    for (size_t i = 0; i < edits.size(); ++i) {
        const auto &p = perEdit[i];
        if (!p.efficacyNew)
            continue;
        const auto &sNew = scores[*p.efficacyNew], &sTrue = scores[*p.efficacyTrue];
        const bool success = sNew.meanLogProb() > sTrue.meanLogProb();
        es.add(success ? 1.0 : 0.0);
        em.add(probability(sNew) - probability(sTrue));
        tokenAcc.add(tokenAccuracy(sNew));
        perEditRows.push_back({"edit_success", success ? 1.0 : 0.0, edits[i].id});
        if (!p.paraphrases.empty()) {
            Mean s, m, t;
            for (const auto &[n, o] : p.paraphrases) {
                s.add(scores[n].meanLogProb() > scores[o].meanLogProb() ? 1.0 : 0.0);
                m.add(probability(scores[n]) - probability(scores[o]));
                t.add(tokenAccuracy(scores[n]));
            }
            ps.add(s.value());
            pm.add(m.value());
            paraTokenAcc.add(t.value());
        }
        if (!p.neighbours.empty()) {
            Mean s, m;
            for (const auto &[o, n] : p.neighbours) {
                s.add(scores[o].meanLogProb() > scores[n].meanLogProb() ? 1.0 : 0.0);
                m.add(probability(scores[o]) - probability(scores[n]));
            }
            ns.add(s.value());
            nm.add(m.value());
        }
    }

    // Generation without teacher forcing: does greedy decoding from the edit
    // prompt spell the new target? A couple of spare tokens let a target the
    // model produces with another tokenisation still count.
    Mean genEm;
    {
        // Greedy decoding's first token is the argmax the scoring already
        // saw; an edit whose first token cannot begin the target has failed,
        // so only the others are decoded further.
        std::vector<size_t> candidates;
        std::vector<std::vector<int64_t>> prompts;
        int64_t longestTarget = 1;
        for (size_t i = 0; i < perEdit.size(); ++i) {
            const auto &p = perEdit[i];
            const auto expected = " " + p.target;
            if (p.efficacyNew) {
                const auto first = tokenizer.decode({scores[*p.efficacyNew].firstArgmax});
                const size_t n = std::min(first.size(), expected.size());
                if (first.empty() || first.compare(0, n, expected, 0, n) != 0) {
                    genEm.add(0.0);
                    continue;
                }
            }
            candidates.push_back(i);
            prompts.push_back(p.prompt);
            longestTarget =
                std::max<int64_t>(longestTarget, static_cast<int64_t>(tokenizer.encode(expected).size()));
        }
        for (size_t begin = 0; begin < prompts.size(); begin += static_cast<size_t>(batch)) {
            const size_t end = std::min(prompts.size(), begin + static_cast<size_t>(batch));
            const auto generated = greedyBatch(
                model, std::vector<std::vector<int64_t>>(prompts.begin() + static_cast<long>(begin),
                                                         prompts.begin() + static_cast<long>(end)),
                longestTarget + 2, padId);
            for (size_t k = begin; k < end; ++k) {
                const auto text = tokenizer.decode(generated[k - begin]);
                const auto expected = " " + perEdit[candidates[k]].target;
                const bool match = text.compare(0, expected.size(), expected) == 0 &&
                                   (text.size() == expected.size() || !std::isalnum(static_cast<unsigned char>(
                                                                          text[expected.size()])));
                genEm.add(match ? 1.0 : 0.0);
            }
        }
    }

    // Fluency: greedy continuations of edit prompts spread over the run.
    Mean fluency;
    if (m_options.fluencyPrompts > 0 && !edits.empty()) {
        const size_t count = std::min(edits.size(), static_cast<size_t>(m_options.fluencyPrompts));
        std::vector<std::vector<int64_t>> prompts;
        std::vector<std::string> texts;
        for (size_t k = 0; k < count; ++k) {
            const size_t i = k * edits.size() / count;
            prompts.push_back(perEdit[i].prompt);
            texts.push_back(edit::filledPrompt(edits[i].request.prompt, edits[i].request.subject));
        }
        const auto generated = greedyBatch(model, prompts, m_options.fluencyTokens, padId);
        for (size_t k = 0; k < count; ++k)
            fluency.add(ngramEntropy(texts[k] + tokenizer.decode(generated[k])));
    }

    std::vector<store::Metric> out;
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
    out.push_back({"token_acc", tokenAcc.value(), std::nullopt});
    if (paraTokenAcc.count)
        out.push_back({"para_token_acc", paraTokenAcc.value(), std::nullopt});
    out.push_back({"gen_EM", genEm.value(), std::nullopt});
    if (!unedited.empty()) {
        Mean acc;
        for (size_t index : unedited)
            acc.add(allArgmax(scores[index]) ? 1.0 : 0.0);
        out.push_back({"unedited_acc", acc.value(), std::nullopt});
        // How many facts that accuracy stands on (the sample less the edited ones).
        out.push_back({"unedited_n", static_cast<double>(unedited.size()), std::nullopt});
    }
    if (!heldout.empty()) {
        double nll = 0;
        int64_t tokens = 0;
        for (size_t index : heldout) {
            for (double logProb : scores[index].tokenLogProbs)
                nll -= logProb;
            tokens += static_cast<int64_t>(scores[index].tokenLogProbs.size());
        }
        out.push_back({"heldout_ppl", std::exp(nll / double(tokens)), std::nullopt});
    }
    if (fluency.count)
        out.push_back({"fluency", fluency.value(), std::nullopt});
    out.push_back({"active_edits", double(edits.size()), std::nullopt});

    // The weights against the original: only layers an edit changed.
    if (base) {
        for (const auto &[layer, W0] : *base) {
            const auto W = model.mlpOutWeight(layer).to(torch::kCPU, torch::kDouble);
            const double norm = (W - W0.to(torch::kDouble)).norm().item<double>();
            if (norm == 0.0)
                continue;
            const auto singular = torch::linalg_svdvals(W);
            const double smallest = singular.min().item<double>();
            out.push_back({"delta_norm_L" + std::to_string(layer), norm, std::nullopt});
            out.push_back({"cond_L" + std::to_string(layer),
                           smallest > 0 ? singular.max().item<double>() / smallest : INFINITY, std::nullopt});
        }
    }
    // What the checkpoint cost, so long runs can budget their schedule.
    out.push_back({"eval_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                   std::nullopt});
    out.insert(out.end(), perEditRows.begin(), perEditRows.end());
    return out;
}

} // namespace oedit::eval
