// The engine facade's editing calls: one edit in (EditSpec), a complete
// outcome out (EditOutcome), the run of the open model kept in Engine::Impl.
// Everything that can throw is caught here; no exception leaves these calls.
#include "engine/engine_impl.h"
#include "oedit/probe_counts.h"
#include "store/ledger.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unordered_set>

namespace oedit {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char *kRunFormat = "oedit-run";
constexpr int kRunFormatVersion = 1;
// Greedy continuation shown before and after an edit: enough for an object
// and the words after it, short enough to cost little next to the edit.
constexpr int64_t kContinuationTokens = 8;
// Neighbours probed per edit: enough for a share that means something, few
// enough that probing costs little next to the edit.
constexpr size_t kNeighbourProbes = 10;

double since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string trim(const std::string &s)
{
    const auto b = s.find_first_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

struct WorldMatch {
    const world::Fact *fact = nullptr;
    int templateIndex = 0;
};

// The world fact whose subject is `subject` and one of whose templates gives
// the same prompt text; none when the edit is about something else.
std::optional<WorldMatch> matchWorldFact(const world::World &w, const std::string &subject, const std::string &prompt)
{
    const int s = w.subjectIndex(subject);
    if (s < 0)
        return std::nullopt;
    const std::string filled = trim(edit::filledPrompt(prompt, subject));
    for (const auto &fact : w.facts) {
        if (fact.subject != s)
            continue;
        const auto &templates = w.relationOf(fact).templates;
        for (size_t t = 0; t < templates.size(); ++t)
            if (trim(world::fillTemplate(templates[t], subject)) == filled)
                return WorldMatch{&fact, static_cast<int>(t)};
    }
    return std::nullopt;
}

struct ProbePlan {
    EditOutcome::Probe probe;
    std::vector<int64_t> ids;
};

// The prompt, and for a world fact every paraphrase (the relation's other
// templates) and up to kNeighbourProbes neighbours (other subjects of the
// same relation, those with the same object first: the edit should not move
// them).
std::vector<ProbePlan> planProbes(const model::Tokenizer &tokenizer, const edit::EditRequest &request,
                                  const std::string &oldTarget, const world::World *w,
                                  const std::optional<WorldMatch> &match)
{
    std::vector<ProbePlan> plans;
    ProbePlan prompt;
    prompt.probe.kind = "prompt";
    prompt.probe.text = edit::filledPrompt(request.prompt, request.subject);
    prompt.probe.oldTarget = oldTarget;
    prompt.ids = edit::tokenizePrompt(tokenizer, request.prompt, request.subject).ids;
    plans.push_back(std::move(prompt));
    if (!w || !match)
        return plans;
    const auto &fact = *match->fact;
    const auto &relation = w->relationOf(fact);
    // Every other phrasing of the relation: does the edit generalise?
    for (size_t t = 0; t < relation.templates.size(); ++t) {
        if (static_cast<int>(t) == match->templateIndex)
            continue;
        const auto &paraphrase = relation.templates[t];
        ProbePlan plan;
        plan.probe.kind = "paraphrase";
        plan.probe.text = world::fillTemplate(paraphrase, request.subject);
        plan.probe.oldTarget = oldTarget;
        plan.ids = edit::tokenizePrompt(tokenizer, paraphrase, request.subject).ids;
        plans.push_back(std::move(plan));
    }
    // Neighbours: other subjects with the same relation, those sharing the
    // fact's object first (the edit should not move them to the new one).
    std::vector<const world::Fact *> neighbours;
    for (int subject : fact.neighbours) {
        if (neighbours.size() >= kNeighbourProbes)
            break;
        for (const auto &other : w->facts)
            if (other.subject == subject && other.relation == fact.relation) {
                neighbours.push_back(&other);
                break;
            }
    }
    if (neighbours.empty())
        for (const auto &other : w->facts)
            if (other.relation == fact.relation && other.subject != fact.subject) {
                neighbours.push_back(&other);
                break;
            }
    const auto &form = relation.templates[static_cast<size_t>(match->templateIndex)];
    for (const world::Fact *neighbour : neighbours) {
        const auto &name = w->subjectName(*neighbour);
        ProbePlan plan;
        plan.probe.kind = "neighbour";
        plan.probe.text = world::fillTemplate(form, name);
        plan.probe.oldTarget = w->objectName(*neighbour);
        plan.ids = edit::tokenizePrompt(tokenizer, form, name).ids;
        plans.push_back(std::move(plan));
    }
    return plans;
}

std::string greedyContinuation(const model::Transformer &model, const model::Tokenizer &tokenizer,
                               const std::vector<int64_t> &ids)
{
    torch::NoGradGuard noGrad;
    const auto generated = model.generate(ids, kContinuationTokens, 1, tokenizer.eosId());
    std::vector<int64_t> text;
    for (int64_t id : generated) {
        if (tokenizer.eosId() && id == *tokenizer.eosId())
            break;
        text.push_back(id);
    }
    return tokenizer.decode(text);
}

// Scores every probe into its before (after == false) or after fields.
void scoreProbes(const model::Transformer &model, const model::Tokenizer &tokenizer, const std::string &targetNew,
                 std::vector<ProbePlan> &plans, bool after)
{
    torch::NoGradGuard noGrad;
    const auto targetIds = tokenizer.encode(" " + targetNew);
    for (auto &plan : plans) {
        auto &p = plan.probe;
        const auto score = model.scoreContinuations({plan.ids}, {targetIds}, tokenizer.eosId().value_or(0)).at(0);
        std::vector<double> pieces;
        for (double logProb : score.tokenLogProbs)
            pieces.push_back(std::exp(logProb));
        const bool top = !score.tokenIsArgmax.empty() &&
                         std::all_of(score.tokenIsArgmax.begin(), score.tokenIsArgmax.end(), [](bool b) { return b; });
        const double pOld = p.oldTarget.empty() ? -1.0 : edit::targetProbability(model, tokenizer, plan.ids, p.oldTarget);
        const auto continuation = greedyContinuation(model, tokenizer, plan.ids);
        (after ? p.newAfter : p.newBefore) = std::exp(score.meanLogProb());
        (after ? p.pieceProbsAfter : p.pieceProbsBefore) = std::move(pieces);
        (after ? p.newIsTopAfter : p.newIsTopBefore) = top;
        (after ? p.oldAfter : p.oldBefore) = pOld;
        (after ? p.continuationAfter : p.continuationBefore) = continuation;
    }
}

// The words of `text` without the punctuation around them, lower-cased.
std::vector<std::string> wordsOf(const std::string &text)
{
    std::vector<std::string> words;
    std::string word;
    auto flush = [&] {
        const auto begin = std::find_if(word.begin(), word.end(), [](unsigned char c) { return std::isalnum(c); });
        const auto end = std::find_if(word.rbegin(), word.rend(), [](unsigned char c) { return std::isalnum(c); });
        if (begin != word.end())
            words.emplace_back(begin, end.base());
        word.clear();
    };
    for (unsigned char c : text) {
        if (std::isspace(c))
            flush();
        else
            word += static_cast<char>(std::tolower(c));
    }
    flush();
    return words;
}

// The words of `target` that appear nowhere in what a world model was trained
// on (its names, prompts, objects and general text): it has no meaning for
// them, only for the fragments the tokenizer spells them with.
std::vector<std::string> wordsNeverRead(const world::World &w, const std::string &target)
{
    std::vector<std::string> unknown;
    const auto wanted = wordsOf(target);
    if (wanted.empty())
        return unknown;
    std::unordered_set<std::string> known;
    auto add = [&](const std::string &text) {
        for (auto &word : wordsOf(text))
            known.insert(std::move(word));
    };
    for (const auto &subject : w.subjects)
        add(subject.name);
    for (const auto &relation : w.relations) {
        for (const auto &object : relation.objects)
            add(object);
        for (const auto &form : relation.templates)
            add(form);
    }
    for (const auto &line : w.generalTrain)
        add(line);
    for (const auto &word : wanted)
        if (!known.count(word) && std::find(unknown.begin(), unknown.end(), word) == unknown.end())
            unknown.push_back(word);
    return unknown;
}

std::vector<std::string> piecesOf(const model::Tokenizer &tokenizer, const std::string &target)
{
    std::vector<std::string> pieces;
    for (int64_t id : tokenizer.encode(" " + target))
        pieces.push_back(tokenizer.decode({id}));
    return pieces;
}

std::string joinedPieces(const std::vector<std::string> &pieces)
{
    std::string out;
    for (const auto &piece : pieces)
        out += (out.empty() ? "" : " · ") + trim(piece);
    return out;
}

// The object the model names now: its greedy continuation up to the first
// punctuation, at most three words ("South America", "violin").
std::string answerFromContinuation(const std::string &continuation)
{
    std::string text = continuation.substr(0, continuation.find_first_of(".,;:\n"));
    std::string out;
    int words = 0;
    size_t at = 0;
    while (words < 3) {
        const auto begin = text.find_first_not_of(" \t", at);
        if (begin == std::string::npos)
            break;
        const auto end = text.find_first_of(" \t", begin);
        out += (out.empty() ? "" : " ") + text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
        ++words;
        if (end == std::string::npos)
            break;
        at = end;
    }
    return out;
}

// Numerical rank of a dense update, or -1 when it would cost more than the
// edit (large layers of real models).
int denseRank(const torch::Tensor &M)
{
    if (std::min(M.size(0), M.size(1)) > 1024 || M.numel() > (int64_t(16) << 20))
        return -1;
    // The eigenvalues of the smaller Gram matrix are the squared singular
    // values: a few milliseconds where an SVD of M takes ~100 ms.
    const auto m = M.to(torch::kDouble);
    const auto gram = M.size(0) <= M.size(1) ? m.matmul(m.t()) : m.t().matmul(m);
    const auto lambda = torch::linalg_eigvalsh(gram);
    const double top = lambda.numel() ? lambda.max().item<double>() : 0.0;
    if (top <= 0)
        return 0;
    // float32 rounding of a rank-r matrix leaves singular values ~1e-7 of the
    // largest; 1e-4 (1e-8 in squares) separates those from real directions.
    return static_cast<int>((lambda > 1e-8 * top).sum().item<int64_t>());
}

// Clears the context's progress callback on every way out of a call (the
// callback may refer to the caller's stack).
class ProgressScope {
public:
    ProgressScope(edit::EditContext &context, const ProgressFn &progress) : m_context(context)
    {
        m_context.setProgress(progress);
    }
    ~ProgressScope() { m_context.setProgress({}); }
    ProgressScope(const ProgressScope &) = delete;
    ProgressScope &operator=(const ProgressScope &) = delete;

private:
    edit::EditContext &m_context;
};

nlohmann::json editIds(const std::vector<edit::EditResult> &applied)
{
    nlohmann::json ids = nlohmann::json::array();
    for (const auto &result : applied)
        ids.push_back(result.id);
    return ids;
}

// What saveEditState returns: enough for a ledger to record without reading the file.
nlohmann::json runSummary(const std::vector<edit::EditResult> &applied, const edit::EditContext &context,
                          int64_t hidden)
{
    nlohmann::json layers = nlohmann::json::array();
    for (const auto &[layer, state] : context.oeditLayers())
        layers.push_back({{"layer", layer}, {"edit_rank", state.editRank()}});
    return {{"edits", applied.size()}, {"edit_ids", editIds(applied)}, {"hidden", hidden}, {"oedit_layers", layers}};
}

} // namespace

std::vector<std::string> editMethods()
{
    return edit::editMethodNames();
}

ProbeCounts countProbes(const EditOutcome &outcome)
{
    ProbeCounts counts;
    for (const auto &probe : outcome.probes) {
        if (probe.kind == "paraphrase") {
            ++counts.paraphrases;
            counts.paraphrasesSayingNew += probe.newIsTopAfter ? 1 : 0;
        } else if (probe.kind == "neighbour") {
            ++counts.neighbours;
            counts.neighboursKeepingOwn += probe.oldAfter > probe.newAfter ? 1 : 0;
        }
    }
    return counts;
}

bool EditOutcome::succeeded() const
{
    return !probes.empty() && probes.front().newIsTopAfter;
}

std::string EditOutcome::toJson() const
{
    nlohmann::json layersJson = nlohmann::json::array();
    for (const auto &l : layers)
        layersJson.push_back({{"layer", l.layer}, {"norm", l.norm}, {"kind", l.kind}, {"rank", l.rank}});
    nlohmann::json probesJson = nlohmann::json::array();
    for (const auto &p : probes) {
        nlohmann::json probe = {{"kind", p.kind},
                                {"text", p.text},
                                {"p_new_before", p.newBefore},
                                {"p_new_after", p.newAfter},
                                {"continuation_before", p.continuationBefore},
                                {"continuation_after", p.continuationAfter},
                                {"piece_probs_before", p.pieceProbsBefore},
                                {"piece_probs_after", p.pieceProbsAfter},
                                {"new_is_top_before", p.newIsTopBefore},
                                {"new_is_top_after", p.newIsTopAfter}};
        if (!p.oldTarget.empty()) {
            probe["old_target"] = p.oldTarget;
            probe["p_old_before"] = p.oldBefore;
            probe["p_old_after"] = p.oldAfter;
        }
        probesJson.push_back(probe);
    }
    nlohmann::json hparams;
    try {
        hparams = nlohmann::json::parse(hparamsJson.empty() ? "{}" : hparamsJson);
    } catch (const std::exception &) {
        hparams = hparamsJson;
    }
    const auto &g = diagnostics;
    return nlohmann::json{{"id", id},
                          {"method", method},
                          {"subject", subject},
                          {"prompt", prompt},
                          {"target_new", targetNew},
                          {"target_pieces", targetPieces},
                          {"old_target", oldTarget},
                          {"old_target_source", oldTargetSource},
                          {"succeeded", succeeded()},
                          {"hparams", hparams},
                          {"layers", layersJson},
                          {"probes", probesJson},
                          {"diagnostics",
                           {{"loss_curve", g.lossCurve},
                            {"steps", g.lossCurve.size()},
                            {"final_target_nll", g.finalTargetNll},
                            {"value_shift_norm", g.valueShiftNorm},
                            {"max_abs_cos_with_earlier", g.maxAbsCosWithEarlier},
                            {"max_key_cos_with_earlier", g.maxKeyCosWithEarlier},
                            {"max_abs_cos_with_protected", g.maxAbsCosWithProtected},
                            {"protected_rank", g.protectedRank},
                            {"remaining_capacity", g.remainingCapacity},
                            {"capacity_note", g.capacityNote}}},
                          {"timings",
                           {{"statistics", timings.statistics},
                            {"key", timings.key},
                            {"value", timings.value},
                            {"update", timings.update},
                            {"apply", timings.apply},
                            {"probes", timings.probes},
                            {"total", timings.total}}}}
        .dump(2);
}

Expected<EditOutcome> Engine::applyEdit(const EditSpec &spec, const ProgressFn &progress)
{
    if (!d->open)
        return Status::failure("no model is open: open a model folder first");
    if (!d->tokenizer())
        return Status::failure("the model in '" + d->path() + "' has no tokenizer, so text prompts cannot be encoded");
    const auto start = Clock::now();
    auto &model = *d->model();
    const auto &tokenizer = *d->tokenizer();
    auto &session = *d->session;
    bool applied = false;
    try {
        // 1. Everything that can be checked without computing: method,
        // hyperparameters (names, types, layers), request against the model.
        nlohmann::json overrides = nlohmann::json::object();
        if (!trim(spec.hparamsJson).empty()) {
            try {
                overrides = nlohmann::json::parse(spec.hparamsJson);
            } catch (const std::exception &e) {
                return Status::failure("the hyperparameters are not valid JSON (" + std::string(e.what()) +
                                       "): give an object such as {\"layer\": 2}");
            }
            if (!overrides.is_object())
                return Status::failure("the hyperparameters must be a JSON object of name: value, such as "
                                       "{\"layer\": 2}");
        }
        auto method = edit::createEditMethod(spec.method, overrides, model.config());

        edit::EditRequest request{spec.subject, spec.prompt, spec.targetNew, spec.targetTrue};
        const world::World *w = d->open->world();
        const auto match = w ? matchWorldFact(*w, spec.subject, spec.prompt) : std::nullopt;
        EditOutcome outcome;
        if (spec.targetTrue && !trim(*spec.targetTrue).empty()) {
            outcome.oldTarget = trim(*spec.targetTrue);
            outcome.oldTargetSource = "given";
        } else if (match) {
            outcome.oldTarget = w->objectName(*match->fact);
            outcome.oldTargetSource = "world";
            request.targetTrue = outcome.oldTarget;
        } else {
            request.targetTrue.reset();
        }
        edit::validateRequest(model, tokenizer, request);
        outcome.targetPieces = piecesOf(tokenizer, spec.targetNew);
        if (w && !spec.allowUnfamiliarTarget) {
            const auto unknown = wordsNeverRead(*w, spec.targetNew);
            if (!unknown.empty())
                return Status::failure(
                    "'" + trim(spec.targetNew) + "' is not a word this model has read: '" + unknown.front() +
                        "' appears nowhere in its world or training text, and its tokenizer spells the target from " +
                        std::to_string(outcome.targetPieces.size()) + " fragments (" +
                        joinedPieces(outcome.targetPieces) +
                        ") it has no meaning for. One edit cannot teach a new word: the model would most likely say "
                        "neither the old object nor this. Choose a word of its world (one of the relation's objects), "
                        "or edit anyway (the workbench asks; oedit edit --allow-unfamiliar-target). Nothing was changed",
                    FailureKind::UnfamiliarTarget);
        }

        if (session.hasContext() && !spec.statisticsText.empty() && spec.statisticsText != session.statisticsText())
            return Status::failure("this run takes its statistics from '" +
                                   (session.statisticsText().empty() ? d->path() + "/general_train.txt"
                                                                     : session.statisticsText()) +
                                   "'; open the model again to start a run with another text");
        auto &context = session.context(spec.statisticsText);
        ProgressScope progressScope(context, progress);

        // 2. The prompts to watch, scored on the unedited weights.
        auto t = Clock::now();
        auto plans = planProbes(tokenizer, request, outcome.oldTarget, w, match);
        scoreProbes(model, tokenizer, spec.targetNew, plans, false);
        if (outcome.oldTarget.empty()) {
            const auto answer = answerFromContinuation(plans.front().probe.continuationBefore);
            if (!answer.empty() && answer != trim(spec.targetNew)) {
                outcome.oldTarget = answer;
                outcome.oldTargetSource = "model";
                plans.front().probe.oldTarget = answer;
                scoreProbes(model, tokenizer, spec.targetNew, plans, false);
            } else {
                outcome.oldTargetSource = "none";
            }
        }
        outcome.timings.probes = since(t);

        // 3. Statistics (cached after the first time), then the update; the
        // weights do not change until applyEdit below.
        t = Clock::now();
        method->prepare(model, tokenizer, context);
        outcome.timings.statistics = since(t);
        auto computed = method->edit(model, tokenizer, request, context);

        // On the model, and appended to the ledger run when attached.
        t = Clock::now();
        outcome.ledgerEditId = session.commit(std::move(computed));
        outcome.runId = session.runId();
        applied = true;
        outcome.timings.apply = since(t);
        const auto &result = session.applied().back();

        t = Clock::now();
        scoreProbes(model, tokenizer, spec.targetNew, plans, true);
        outcome.timings.probes += since(t);

        outcome.id = static_cast<int>(result.id);
        outcome.method = result.method;
        outcome.hparamsJson = result.hparams.dump();
        outcome.subject = spec.subject;
        outcome.prompt = spec.prompt;
        outcome.targetNew = spec.targetNew;
        for (size_t i = 0; i < result.layers.size(); ++i) {
            const auto &update = result.layers[i];
            EditOutcome::Layer layer;
            layer.layer = static_cast<int>(update.layer);
            layer.norm = i < result.diagnostics.updateNorms.size() ? result.diagnostics.updateNorms[i]
                                                                   : update.matrix().norm().item<double>();
            layer.kind = update.rankOne() ? "rank-one" : "dense";
            layer.rank = update.rankOne() ? 1 : denseRank(update.dense);
            outcome.layers.push_back(layer);
        }
        const auto &g = result.diagnostics;
        outcome.diagnostics.lossCurve = g.lossCurve;
        outcome.diagnostics.finalTargetNll = g.finalTargetNll;
        outcome.diagnostics.valueShiftNorm = g.valueShiftNorm;
        outcome.diagnostics.maxAbsCosWithEarlier = g.maxAbsCosWithEarlier;
        outcome.diagnostics.maxKeyCosWithEarlier = g.maxKeyCosWithEarlier;
        outcome.diagnostics.maxAbsCosWithProtected = g.maxAbsCosWithProtected;
        outcome.diagnostics.protectedRank = g.protectedRank;
        outcome.diagnostics.remainingCapacity = g.remainingCapacity;
        outcome.diagnostics.capacityNote = g.capacityNote;
        outcome.timings.statistics += result.timings.statistics;
        outcome.timings.key = result.timings.key;
        outcome.timings.value = result.timings.value;
        outcome.timings.update = result.timings.update;
        for (auto &plan : plans)
            outcome.probes.push_back(std::move(plan.probe));
        outcome.timings.total = since(start);
        return outcome;
    } catch (const std::exception &e) {
        // Only an applied edit changed anything; take it out again.
        if (applied) {
            try {
                session.undo();
            } catch (const std::exception &inner) {
                return Status::failure(std::string("the edit failed (") + e.what() +
                                       ") and could not be taken out again (" + inner.what() +
                                       "): open the model again before going on");
            }
        }
        if (dynamic_cast<const edit::EditCancelled *>(&e))
            return Status::failure("cancelled: the edit was not made and the model is unchanged");
        if (dynamic_cast<const edit::EditError *>(&e))
            return Status::failure(e.what());
        return Status::failure(std::string("the edit failed: ") + e.what());
    }
}

Status Engine::undoLastEdit()
{
    if (!d->open)
        return Status::failure("no model is open: nothing to undo");
    if (!d->session->canUndo())
        return Status::failure("this run has no edit to undo");
    try {
        d->session->undo();
        return Status::success();
    } catch (const std::exception &e) {
        return Status::failure(std::string("undo failed: ") + e.what());
    }
}

Status Engine::redoEdit()
{
    if (!d->open)
        return Status::failure("no model is open: nothing to redo");
    if (!d->session->canRedo())
        return Status::failure("there is no undone edit to redo");
    try {
        d->session->redo();
        return Status::success();
    } catch (const std::exception &e) {
        return Status::failure(std::string("redo failed: ") + e.what());
    }
}

int Engine::editCount() const
{
    return d->session ? static_cast<int>(d->session->editCount()) : 0;
}

Status Engine::attachLedger(const std::string &db, long long runId)
{
    if (!d->open)
        return Status::failure("no model is open: open the model the run was made on first");
    if (db.empty())
        return Status::failure("no ledger given: choose a ledger file");
    try {
        d->session->attach(db, runId);
        return Status::success();
    } catch (const std::exception &e) {
        if (runId == 0)
            return Status::failure("cannot record the session in '" + db + "': " + e.what());
        return Status::failure("cannot load run " + std::to_string(runId) + " of '" + db + "': " + e.what());
    }
}

void Engine::detachLedger()
{
    if (d->session)
        d->session->detach();
}

Engine::SessionInfo Engine::session() const
{
    SessionInfo info;
    if (!d->session)
        return info;
    info.db = d->session->ledgerPath();
    info.runId = d->session->runId();
    info.edits = static_cast<int>(d->session->editCount());
    info.canUndo = d->session->canUndo();
    info.canRedo = d->session->canRedo();
    return info;
}

Expected<std::string> Engine::saveEditState(const std::string &path) const
{
    if (!d->open)
        return Status::failure("no model is open: there is no run to save");
    const auto &applied = d->session->applied();
    const fs::path target(path);
    const fs::path temporary = target.string() + ".partial";
    try {
        torch::serialize::OutputArchive archive;
        const std::string index =
            nlohmann::json{{"format", kRunFormat},
                           {"version", kRunFormatVersion},
                           {"model", d->path()},
                           {"statistics_text", d->session->statisticsText()},
                           {"edit_ids", editIds(applied)}}
                .dump();
        archive.write("index", torch::from_blob(const_cast<char *>(index.data()),
                                                {static_cast<int64_t>(index.size())}, torch::kUInt8)
                                   .clone());
        const edit::EditContext empty;
        const edit::EditContext &context = d->session->hasContext() ? d->session->context() : empty;
        torch::serialize::OutputArchive state;
        context.writeState(state);
        archive.write("state", state);
        for (size_t i = 0; i < applied.size(); ++i) {
            torch::serialize::OutputArchive nested;
            applied[i].write(nested);
            archive.write("edit." + std::to_string(i), nested);
        }
        std::error_code ec;
        if (!target.parent_path().empty())
            fs::create_directories(target.parent_path(), ec);
        // Through a temporary beside it and a rename: never half a file at `path`.
        archive.save_to(temporary.string());
        fs::rename(temporary, target);
        return runSummary(applied, context, d->model()->config().hidden).dump();
    } catch (const std::exception &e) {
        std::error_code ec;
        fs::remove(temporary, ec);
        return Status::failure("cannot save the run to '" + path + "': " + e.what());
    }
}

SavedRunFile readSavedRunFile(const std::string &path)
{
    SavedRunFile file;
    file.archive = std::make_shared<torch::serialize::InputArchive>();
    auto &archive = *file.archive;
    archive.load_from(path);
    torch::Tensor raw;
    archive.read("index", raw);
    file.index = nlohmann::json::parse(
        std::string(static_cast<const char *>(raw.data_ptr()), static_cast<size_t>(raw.numel())));
    const auto ids = file.index.value("edit_ids", std::vector<int64_t>{});
    for (size_t i = 0; i < ids.size(); ++i) {
        torch::serialize::InputArchive nested;
        archive.read("edit." + std::to_string(i), nested);
        file.edits.push_back(edit::EditResult::read(nested));
    }
    return file;
}

Status Engine::loadEditState(const std::string &path)
{
    if (!d->open)
        return Status::failure("no model is open: open the model the run was made on first");
    // Read and check everything before touching the weights.
    std::vector<edit::EditResult> saved;
    std::unique_ptr<edit::EditContext> context;
    std::string statisticsText;
    try {
        std::error_code ec;
        if (!fs::is_regular_file(path, ec))
            return Status::failure("the run file '" + path + "' does not exist");
        auto file = readSavedRunFile(path);
        const auto &index = file.index;
        if (index.value("format", std::string()) != kRunFormat)
            return Status::failure("'" + path + "' is not a saved editing run");
        if (index.value("version", 0) != kRunFormatVersion)
            return Status::failure("'" + path + "' is a run of format version " +
                                   std::to_string(index.value("version", 0)) + "; this build reads version " +
                                   std::to_string(kRunFormatVersion));
        saved = std::move(file.edits);
        for (const auto &result : saved)
            run::checkFits(*d->model(), result);
        statisticsText = index.value("statistics_text", std::string());
        context = d->session->newContext(statisticsText);
        torch::serialize::InputArchive state;
        file.archive->read("state", state);
        context->readState(state);
        for (const auto &[layer, layerState] : context->oeditLayers())
            if (layer < 0 || layer >= d->model()->config().layers ||
                (layerState.deltaTotal.defined() && layerState.deltaTotal.size(0) != d->model()->config().hidden))
                return Status::failure("the run in '" + path + "' was made on a model of other shapes");
    } catch (const std::exception &e) {
        return Status::failure("cannot read the run '" + path + "': " + e.what());
    }
    try {
        d->session->replace(std::move(saved), std::move(context), statisticsText);
        return Status::success();
    } catch (const std::exception &e) {
        return Status::failure(std::string("restoring the run failed: ") + e.what() +
                               ": open the model again before going on");
    }
}

} // namespace oedit
