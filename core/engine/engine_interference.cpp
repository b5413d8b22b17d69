// The interference explorer (oedit/interference.h): Engine::explainFact and
// Engine::blastRadius, on a run's weights rebuilt from the ledger.
#include "engine/engine_impl.h"
#include "eval/interference.h"
#include "oedit/interference.h"
#include "run/ledger_codec.h"
#include "run/rebuild.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace oedit {

namespace {

// Every layer's MLP output projection as it was, put back on destruction: the
// analyses change weights one edit at a time and must leave the loaded model
// (the open one, or the one kept for later runs) as they found it.
class KeepWeights {
public:
    explicit KeepWeights(model::Transformer &model) : m_model(model), m_saved(run::captureBaseWeights(model)) {}
    ~KeepWeights()
    {
        for (const auto &[layer, weight] : m_saved)
            m_model.setMlpOutWeight(layer, weight);
    }
    KeepWeights(const KeepWeights &) = delete;
    KeepWeights &operator=(const KeepWeights &) = delete;

private:
    model::Transformer &m_model;
    run::BaseWeights m_saved;
};

// Sets each layer an edit changed to `current` minus the edit's update,
// formed in float64 and rounded once; `restore` puts them back.
class WithoutEdit {
public:
    WithoutEdit(model::Transformer &model, const std::map<int64_t, torch::Tensor> &current,
                const std::vector<edit::LayerUpdate> &updates)
        : m_model(model), m_current(current)
    {
        std::map<int64_t, torch::Tensor> sums;
        for (const auto &update : updates) {
            auto &sum = sums[update.layer];
            const auto delta = update.matrix().to(torch::kDouble);
            sum = sum.defined() ? sum + delta : delta;
        }
        for (const auto &[layer, sum] : sums) {
            const auto &W = current.at(layer);
            model.setMlpOutWeight(layer, (W.to(torch::kCPU, torch::kDouble) - sum).to(W.device(), W.scalar_type()));
            m_layers.push_back(layer);
        }
    }
    ~WithoutEdit()
    {
        for (const auto layer : m_layers)
            m_model.setMlpOutWeight(layer, m_current.at(layer));
    }
    WithoutEdit(const WithoutEdit &) = delete;
    WithoutEdit &operator=(const WithoutEdit &) = delete;

private:
    model::Transformer &m_model;
    const std::map<int64_t, torch::Tensor> &m_current;
    std::vector<int64_t> m_layers;
};

// The loaded model for run `info`, its weights set to the run's active edits.
void requireRunModel(run::LoadedModel &loaded, const store::RunInfo &info)
{
    if (loaded.folderHash() != info.baseModelHash)
        throw store::LedgerError("the model at '" + info.modelPath + "' is not the one run " + std::to_string(info.id) +
                                 " started from (its content hash changed)");
    if (!loaded.tokenizer)
        throw store::LedgerError("the model at '" + info.modelPath + "' has no tokenizer: facts cannot be scored");
}

std::vector<int64_t> targetIds(const model::Tokenizer &tokenizer, const std::string &target)
{
    return tokenizer.encode(" " + target);
}

int64_t padId(const model::Tokenizer &tokenizer)
{
    return tokenizer.eosId().value_or(0);
}

// What the model says instead of `target`: its greedy continuation of the
// same length, or, when that is the target (the fact holds), the most likely
// other first token.
std::vector<int64_t> rivalOf(const model::Transformer &model, const std::vector<int64_t> &prompt,
                             const std::vector<int64_t> &target)
{
    const auto greedy = model.generate(prompt, static_cast<int64_t>(target.size()));
    if (greedy != target && !greedy.empty())
        return greedy;
    torch::NoGradGuard noGrad;
    const auto ids = torch::tensor(prompt, torch::kLong).unsqueeze(0).to(model.device());
    const auto logits = model.forward(ids).index({0, -1}).to(torch::kCPU, torch::kFloat);
    const auto top = std::get<1>(logits.topk(2));
    const int64_t first = top[0].item<int64_t>();
    return {first != target.front() ? first : top[1].item<int64_t>()};
}

struct ScoredFact {
    std::vector<int64_t> prompt, target;
};

// P(target | prompt) (teacher-forced mean) and whether every target token
// is the greedy one, for many facts in batches.
std::vector<std::pair<double, bool>> scoreFacts(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                                const std::vector<ScoredFact> &facts, const ProgressFn &progress,
                                                long long doneBefore, long long total)
{
    std::vector<std::pair<double, bool>> out;
    out.reserve(facts.size());
    constexpr size_t kBatch = 64;
    for (size_t begin = 0; begin < facts.size(); begin += kBatch) {
        const size_t end = std::min(facts.size(), begin + kBatch);
        std::vector<std::vector<int64_t>> prompts, targets;
        for (size_t i = begin; i < end; ++i) {
            prompts.push_back(facts[i].prompt);
            targets.push_back(facts[i].target);
        }
        for (const auto &score : model.scoreContinuations(prompts, targets, padId(tokenizer)))
            out.emplace_back(std::exp(score.meanLogProb()),
                             std::all_of(score.tokenIsArgmax.begin(), score.tokenIsArgmax.end(),
                                         [](bool argmax) { return argmax; }));
        if (progress && !progress(doneBefore + static_cast<long long>(end), total))
            throw store::LedgerError("stopped before the facts were scored");
    }
    return out;
}

} // namespace

std::string runs::FactExplanation::toJson() const
{
    nlohmann::json culpritsJson = nlohmann::json::array();
    for (const auto &c : culprits) {
        nlohmann::json j = {{"edit_id", c.editId}, {"step", c.step},           {"method", c.method},
                            {"subject", c.subject}, {"prompt", c.prompt},      {"target_new", c.targetNew},
                            {"first_order", c.firstOrder}, {"exact", c.exact}};
        if (c.exact) {
            j["margin_without"] = c.marginWithout;
            j["p_target_without"] = c.pTargetWithout;
            j["p_rival_without"] = c.pRivalWithout;
        }
        culpritsJson.push_back(j);
    }
    return nlohmann::json{{"run_id", runId},
                          {"text", text},
                          {"target", target},
                          {"rival", rival},
                          {"holds", holds},
                          {"margin", margin},
                          {"p_target", pTarget},
                          {"p_rival", pRival},
                          {"base_margin", baseMargin},
                          {"base_p_target", basePTarget},
                          {"base_p_rival", basePRival},
                          {"active_edits", activeEdits},
                          {"culprits", culpritsJson}}
        .dump();
}

std::string runs::BlastRadius::toJson() const
{
    nlohmann::json hurtJson = nlohmann::json::array();
    for (const auto &f : hurt)
        hurtJson.push_back({{"kind", f.kind},
                            {"edit_id", f.editId},
                            {"text", f.text},
                            {"target", f.target},
                            {"p_with", f.pWith},
                            {"p_without", f.pWithout},
                            {"recalled_with", f.recalledWith},
                            {"recalled_without", f.recalledWithout}});
    return nlohmann::json{{"run_id", runId}, {"edit_id", editId},          {"step", step},
                          {"text", text},    {"target_new", targetNew},    {"facts_scored", factsScored},
                          {"lost", lost},    {"hurt", hurtJson}}
        .dump();
}

Expected<runs::FactExplanation> Engine::explainFact(const std::string &db, const runs::FactQuery &query,
                                                    const ProgressFn &progress)
{
    return runs::guarded([&]() -> Expected<runs::FactExplanation> {
        if (query.target.empty())
            return Status::failure("no target given: name what the fact should say (--target)");
        auto ledger = runs::openExisting(db);
        const auto info = ledger->run(query.runId);
        return withRunModel(*d, info.modelPath, "", "", [&](run::LoadedModel &loaded) -> Expected<runs::FactExplanation> {
            requireRunModel(loaded, info);
            auto &model = *loaded.model;
            const auto &tokenizer = *loaded.tokenizer;
            KeepWeights keep(model);
            run::rebuildWeights(model, loaded.base, *ledger, query.runId);
            const auto current = run::captureBaseWeights(model); // the run's weights now

            eval::MarginProbe probe;
            probe.prompt = edit::tokenizePrompt(tokenizer, query.prompt, query.subject).ids;
            probe.target = targetIds(tokenizer, query.target);
            if (probe.target.empty())
                return Status::failure("the target '" + query.target + "' has no tokens");
            probe.rival = rivalOf(model, probe.prompt, probe.target);

            runs::FactExplanation out;
            out.runId = query.runId;
            out.text = edit::filledPrompt(query.prompt, query.subject);
            out.target = query.target;
            out.rival = tokenizer.decode(probe.rival);
            const auto now = eval::targetMargin(model, probe, padId(tokenizer));
            out.margin = now.value;
            out.pTarget = now.pTarget;
            out.pRival = now.pRival;
            out.holds = now.value > 0;

            // Rank every active edit by the first-order change it made.
            std::vector<int64_t> layers;
            for (const auto &entry : loaded.base)
                layers.push_back(entry.first);
            const auto gradient = eval::marginGradient(model, probe, layers, padId(tokenizer));
            const auto edits = ledger->listEdits(query.runId, /*activeOnly=*/true);
            out.activeEdits = static_cast<long long>(edits.size());
            std::unordered_map<int64_t, double> change; // step -> first-order margin change
            long long read = 0;
            const bool complete =
                ledger->forEachActiveUpdate(query.runId, [&](int64_t step, store::StoredUpdate &&stored) {
                    change[step] += eval::firstOrderChange(gradient, run::fromStoredUpdate(stored));
                    return !progress || ++read % 500 != 0 || progress(static_cast<long long>(change.size()),
                                                                       out.activeEdits);
                });
            if (!complete)
                return Status::failure("stopped before the edits of run " + std::to_string(query.runId) +
                                       " were ranked");
            std::vector<const store::EditRow *> ranked;
            for (const auto &row : edits)
                ranked.push_back(&row);
            std::stable_sort(ranked.begin(), ranked.end(), [&](const store::EditRow *a, const store::EditRow *b) {
                return change[a->step] < change[b->step];
            });
            std::vector<const store::EditRow *> chosen(
                ranked.begin(), ranked.begin() + std::min<size_t>(ranked.size(), std::max(0, query.exactTop)));
            for (const long long id : query.whatIf) {
                const auto found = std::find_if(edits.begin(), edits.end(),
                                                [&](const store::EditRow &row) { return row.id == id; });
                if (found == edits.end())
                    return Status::failure("edit " + std::to_string(id) + " is not an active edit of run " +
                                           std::to_string(query.runId) + ": nothing to remove");
                if (std::find(chosen.begin(), chosen.end(), &*found) == chosen.end())
                    chosen.push_back(&*found);
            }
            for (const auto *row : chosen) {
                runs::Culprit culprit;
                culprit.editId = row->id;
                culprit.step = row->step;
                culprit.method = row->method;
                culprit.subject = row->request.subject;
                culprit.prompt = row->request.prompt;
                culprit.targetNew = row->request.targetNew;
                culprit.firstOrder = change[row->step];
                {
                    WithoutEdit without(model, current, run::loadUpdate(*ledger, row->id));
                    const auto margin = eval::targetMargin(model, probe, padId(tokenizer));
                    culprit.marginWithout = margin.value;
                    culprit.pTargetWithout = margin.pTarget;
                    culprit.pRivalWithout = margin.pRival;
                }
                culprit.exact = true;
                out.culprits.push_back(culprit);
            }
            // The same fact on the unedited model.
            for (const auto &[layer, W] : loaded.base)
                model.setMlpOutWeight(layer, W);
            const auto base = eval::targetMargin(model, probe, padId(tokenizer));
            out.baseMargin = base.value;
            out.basePTarget = base.pTarget;
            out.basePRival = base.pRival;
            return out;
        });
    });
}

Expected<runs::BlastRadius> Engine::blastRadius(const std::string &db, long long runId, long long editId, int top,
                                                const ProgressFn &progress)
{
    return runs::guarded([&]() -> Expected<runs::BlastRadius> {
        auto ledger = runs::openExisting(db);
        const auto info = ledger->run(runId);
        const auto row = ledger->editRow(editId);
        if (row.run != runId)
            return Status::failure("edit " + std::to_string(editId) + " belongs to run " + std::to_string(row.run) +
                                   ", not to run " + std::to_string(runId));
        if (!row.active)
            return Status::failure("edit " + std::to_string(editId) +
                                   " is not in effect (rolled back): it changes nothing now");
        return withRunModel(*d, info.modelPath, "", "", [&](run::LoadedModel &loaded) -> Expected<runs::BlastRadius> {
            requireRunModel(loaded, info);
            auto &model = *loaded.model;
            const auto &tokenizer = *loaded.tokenizer;
            KeepWeights keep(model);
            run::rebuildWeights(model, loaded.base, *ledger, runId);
            const auto current = run::captureBaseWeights(model); // the run's weights now

            std::vector<ScoredFact> facts;
            std::vector<runs::AffectedFact> described;
            if (const auto *world = loaded.world()) {
                for (const auto &fact : world->facts) {
                    const auto &relation = world->relationOf(fact);
                    runs::AffectedFact f;
                    f.kind = "world";
                    f.text = world::factPrompt(*world, fact);
                    f.target = world->objectName(fact);
                    facts.push_back({edit::tokenizePrompt(tokenizer, relation.templates[0], world->subjectName(fact)).ids,
                                     targetIds(tokenizer, f.target)});
                    described.push_back(f);
                }
            }
            for (const auto &other : ledger->listEdits(runId, /*activeOnly=*/true)) {
                if (other.id == editId)
                    continue;
                runs::AffectedFact f;
                f.kind = "edit";
                f.editId = other.id;
                f.text = edit::filledPrompt(other.request.prompt, other.request.subject);
                f.target = other.request.targetNew;
                facts.push_back({edit::tokenizePrompt(tokenizer, other.request.prompt, other.request.subject).ids,
                                 targetIds(tokenizer, f.target)});
                described.push_back(f);
            }
            const auto total = static_cast<long long>(facts.size()) * 2;
            const auto with = scoreFacts(model, tokenizer, facts, progress, 0, total);
            std::vector<std::pair<double, bool>> without;
            {
                WithoutEdit removed(model, current, run::loadUpdate(*ledger, editId));
                without = scoreFacts(model, tokenizer, facts, progress, total / 2, total);
            }
            runs::BlastRadius out;
            out.runId = runId;
            out.editId = editId;
            out.step = row.step;
            out.text = edit::filledPrompt(row.request.prompt, row.request.subject);
            out.targetNew = row.request.targetNew;
            out.factsScored = static_cast<long long>(facts.size());
            std::vector<size_t> order;
            for (size_t i = 0; i < facts.size(); ++i) {
                described[i].pWith = with[i].first;
                described[i].recalledWith = with[i].second;
                described[i].pWithout = without[i].first;
                described[i].recalledWithout = without[i].second;
                if (described[i].recalledWithout && !described[i].recalledWith)
                    ++out.lost;
                order.push_back(i);
            }
            std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
                return described[a].pWithout - described[a].pWith > described[b].pWithout - described[b].pWith;
            });
            for (size_t i = 0; i < order.size() && static_cast<int>(i) < std::max(0, top); ++i)
                out.hurt.push_back(described[order[i]]);
            return out;
        });
    });
}

} // namespace oedit
