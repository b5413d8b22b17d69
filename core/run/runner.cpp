// The sequential runner: plan, edit, record, evaluate on schedule, resume.
#include "run/ledger_codec.h"
#include "run/runner.h"

#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/datasets.h"
#include "run/live_weights.h"
#include "run/rebuild.h"
#include "eval/edit_metrics.h"

#include <filesystem>
#include <random>

namespace oedit::run {

namespace fs = std::filesystem;

std::vector<edit::EditRequest> worldRequests(const world::World &world, int64_t count, uint64_t seed)
{
    // Facts whose relation has another object to move to.
    std::vector<size_t> editable;
    for (size_t i = 0; i < world.facts.size(); ++i)
        if (world.relationOf(world.facts[i]).objects.size() > 1)
            editable.push_back(i);
    if (count < 1)
        throw store::LedgerError("the number of edits must be at least 1");
    if (static_cast<size_t>(count) > editable.size())
        throw store::LedgerError("the world has " + std::to_string(editable.size()) + " editable facts, fewer than the " +
                          std::to_string(count) + " edits asked for");
    std::mt19937_64 random(seed);
    std::vector<edit::EditRequest> out;
    for (int64_t i = 0; i < count; ++i) {
        // A partial Fisher-Yates shuffle: distinct facts, in a seeded order.
        const size_t j = static_cast<size_t>(i) + random() % (editable.size() - static_cast<size_t>(i));
        std::swap(editable[static_cast<size_t>(i)], editable[j]);
        const auto &fact = world.facts[editable[static_cast<size_t>(i)]];
        const auto &relation = world.relationOf(fact);
        size_t other = random() % (relation.objects.size() - 1);
        if (other >= static_cast<size_t>(fact.object))
            ++other; // skip the true object
        out.push_back(
            {world.subjectName(fact), relation.templates.at(0), relation.objects[other], world.objectName(fact)});
    }
    return out;
}

std::vector<store::Metric> efficacyMetrics(const EvalInput &input)
{
    torch::NoGradGuard noGrad;
    std::vector<store::Metric> out;
    const int64_t padId = input.tokenizer.eosId().value_or(0);
    int64_t successes = 0, counted = 0;
    constexpr size_t kBatch = 64;
    for (size_t begin = 0; begin < input.edits.size(); begin += kBatch) {
        const size_t end = std::min(input.edits.size(), begin + kBatch);
        std::vector<std::vector<int64_t>> prompts, continuations;
        std::vector<size_t> rows;
        for (size_t i = begin; i < end; ++i) {
            const auto &request = input.edits[i].request;
            if (!request.targetTrue)
                continue;
            const auto prompt = edit::tokenizePrompt(input.tokenizer, request.prompt, request.subject).ids;
            prompts.push_back(prompt);
            continuations.push_back(input.tokenizer.encode(" " + request.targetNew));
            prompts.push_back(prompt);
            continuations.push_back(input.tokenizer.encode(" " + *request.targetTrue));
            rows.push_back(i);
        }
        if (rows.empty())
            continue;
        const auto scores = input.model.scoreContinuations(prompts, continuations, padId);
        for (size_t r = 0; r < rows.size(); ++r) {
            const bool success = scores[2 * r].meanLogProb() > scores[2 * r + 1].meanLogProb();
            successes += success ? 1 : 0;
            ++counted;
            out.push_back({"edit_success", success ? 1.0 : 0.0, input.edits[rows[r]].id});
        }
    }
    out.insert(out.begin(), {"ES", counted ? double(successes) / double(counted) : 0.0, std::nullopt});
    out.insert(out.begin() + 1, {"active_edits", double(input.edits.size()), std::nullopt});
    return out;
}

namespace {

// Everything a run needs in memory: the borrowed model, and what the run owns.
struct Session {
    LoadedModel &loaded;
    model::Transformer &model;
    const model::Tokenizer &tokenizer;
    std::unique_ptr<edit::EditMethod> method;
    std::unique_ptr<edit::EditContext> context;
    LiveWeights weights;
    std::unique_ptr<eval::EditEvaluator> evaluator; // world runs: paraphrases and neighbours from the world

    Session(LoadedModel &m, const model::Tokenizer &t) : loaded(m), model(*m.model), tokenizer(t), weights(m.base) {}
};

const model::Tokenizer &tokenizerOf(LoadedModel &loaded)
{
    if (!loaded.tokenizer)
        throw store::LedgerError("the model in '" + loaded.dir +
                                 "' has no tokenizer, so the run's prompts cannot be encoded");
    return *loaded.tokenizer;
}

// The run starts from the base weights whatever the model held before.
std::unique_ptr<Session> openSession(LoadedModel &loaded, const std::string &method, const nlohmann::json &hparams,
                                     const std::string &cacheDir)
{
    auto s = std::make_unique<Session>(loaded, tokenizerOf(loaded));
    s->weights.restore(s->model);
    s->method = edit::createEditMethod(method, hparams, s->model.config());
    LiveWeights *weights = &s->weights;
    auto options = loaded.contextOptions([weights] { return weights->empty(); });
    options.cacheDir = cacheDir;
    options.editSatisfiedTargets = true; // a planned step never stalls the run
    s->context = std::make_unique<edit::EditContext>(options);
    // Statistics from the unedited weights, as a run started fresh would get them.
    s->method->prepare(s->model, s->tokenizer, *s->context);
    return s;
}

std::vector<edit::EditRequest> planFor(const RunnerOptions &options, const std::string &modelDir)
{
    if (options.dataset == "world") {
        auto world = world::loadWorld(modelDir);
        if (!world)
            throw store::LedgerError("--dataset world needs the model's world.json: " + world.message() +
                              " (give a CounterFact or zsRE file with --dataset FILE instead)");
        return worldRequests(world.value(), options.edits, options.seed);
    }
    auto cases = world::loadEditCases(options.dataset);
    if (!cases)
        throw store::LedgerError(cases.message());
    if (static_cast<int64_t>(cases->size()) < options.edits)
        throw store::LedgerError("'" + options.dataset + "' holds " + std::to_string(cases->size()) +
                          " cases, fewer than the " + std::to_string(options.edits) + " edits asked for");
    std::vector<edit::EditRequest> out;
    for (int64_t i = 0; i < options.edits; ++i) {
        const auto &c = cases.value()[static_cast<size_t>(i)];
        out.push_back({c.subject, c.promptTemplate, c.targetNew, c.targetTrue});
    }
    return out;
}

// The full metric suite for world runs and for runs over a data-set file.
void attachEvaluator(Session &s, const std::string &dataset, const std::string &modelDir)
{
    auto world = world::loadWorld(modelDir);
    if (dataset == "world") {
        if (world)
            s.evaluator = std::make_unique<eval::EditEvaluator>(std::move(world.value()));
        return;
    }
    // A data-set file: its records' paraphrases and neighbourhood prompts;
    // the model's world (a model trained on the data set has one) for the
    // unedited-fact sample and the held-out text.
    auto cases = world::loadEditCases(dataset);
    if (!cases)
        return;
    s.evaluator = std::make_unique<eval::EditEvaluator>(
        world ? std::optional<world::World>(std::move(world.value())) : std::nullopt);
    for (const auto &c : cases.value()) {
        eval::EditEvaluator::CaseProbes probes;
        probes.paraphrases = c.paraphrases;
        for (const auto &neighbour : c.neighbourhood)
            probes.neighbours.emplace_back(neighbour.prompt, neighbour.answer);
        s.evaluator->addCaseProbes(c.subject, c.promptTemplate, std::move(probes));
    }
}

// The evaluator takes plain values, not ledger rows: convert at this edge.
std::vector<store::Metric> evaluateWith(const eval::EditEvaluator &evaluator, const EvalInput &input)
{
    std::vector<eval::EvaluatedEdit> edits;
    for (const auto &row : input.edits)
        edits.push_back({row.id, fromStored(row.request)});
    std::vector<store::Metric> out;
    for (auto &metric : evaluator.evaluate(input.model, input.tokenizer, edits, input.base))
        out.push_back({std::move(metric.name), metric.value, metric.edit});
    return out;
}

bool scheduled(int64_t step, int64_t evalEvery, int64_t total)
{
    return step == total || (evalEvery > 0 && step % evalEvery == 0);
}

void evaluate(store::Ledger &ledger, int64_t runId, Session &s, int64_t step, const RunnerCallbacks &callbacks)
{
    const auto edits = ledger.activeEdits(runId);
    const EvalInput input{s.model, s.tokenizer, step, edits, &s.loaded.base};
    std::vector<store::Metric> metrics;
    if (callbacks.evaluate)
        metrics = callbacks.evaluate(input);
    else if (s.evaluator)
        metrics = evaluateWith(*s.evaluator, input);
    else
        metrics = efficacyMetrics(input);
    ledger.recordCheckpoint(runId, step, metrics);
}

RunnerResult loop(store::Ledger &ledger, int64_t runId, Session &s, const RunnerCallbacks &callbacks)
{
    const auto info = ledger.run(runId);
    std::vector<edit::EditRequest> plan;
    for (const auto &entry : info.options.at("plan"))
        plan.push_back(edit::EditRequest::fromJson(entry));
    const int64_t total = static_cast<int64_t>(plan.size());
    const int64_t evalEvery = info.options.value("eval_every", int64_t(0));
    ledger.setRunStatus(runId, "running");

    RunnerResult result;
    result.runId = runId;
    int64_t step = ledger.lastStep(runId);
    // A scheduled checkpoint lost to a kill between its edit and its evaluation.
    if (step > 0 && scheduled(step, evalEvery, total)) {
        bool have = false;
        for (const auto &checkpoint : ledger.checkpoints(runId))
            have = have || checkpoint.step == step;
        if (!have)
            evaluate(ledger, runId, s, step, callbacks);
    }
    std::string status = "finished";
    while (step < total) {
        if (callbacks.progress && !callbacks.progress(step, total)) {
            status = "cancelled";
            break;
        }
        const auto &request = plan[static_cast<size_t>(step)];
        try {
            const auto edit = s.method->edit(s.model, s.tokenizer, request, *s.context);
            // Nothing non-finite reaches the weights or the ledger: the run
            // stops at this step as failed, resumable from the one before.
            edit::requireFiniteResult(edit);
            s.context->recordApplied(edit);
            s.weights.add(s.model, edit);
            try {
                edit::requireFiniteOutputs(s.model, s.tokenizer, request);
                run::appendEdit(ledger, runId, edit);
            } catch (...) {
                s.context->recordUnapplied(edit);
                s.weights.subtract(s.model, edit);
                throw;
            }
        } catch (const edit::EditCancelled &) {
            status = "cancelled";
            break;
        } catch (const edit::EditError &error) {
            result.message = "step " + std::to_string(step + 1) + " ('" +
                             edit::filledPrompt(request.prompt, request.subject) + "' -> '" + request.targetNew +
                             "'): " + error.what();
            status = "failed";
            break;
        }
        ++step;
        if (scheduled(step, evalEvery, total))
            evaluate(ledger, runId, s, step, callbacks);
    }
    if (status == "finished" && callbacks.progress)
        callbacks.progress(step, total);
    ledger.setRunStatus(runId, status);
    result.status = status;
    result.steps = ledger.lastStep(runId);
    result.activeEdits = ledger.activeEditCount(runId);
    return result;
}

} // namespace

RunnerResult startRun(store::Ledger &ledger, LoadedModel &model, const RunnerOptions &options,
                      const RunnerCallbacks &callbacks)
{
    if (options.edits < 1)
        throw store::LedgerError("the number of edits must be at least 1");
    if (options.evalEvery < 0)
        throw store::LedgerError("--eval-every must be 0 (end only) or a positive number of edits");
    const std::string hash = model.folderHash();
    const auto hparams = edit::resolveHparams(options.method, options.overrides, model.model->config());
    auto session = openSession(model, options.method, hparams, options.cacheDir);
    const auto plan = planFor(options, model.dir);
    attachEvaluator(*session, options.dataset, model.dir);
    store::RunSpec spec;
    spec.method = options.method;
    spec.hparams = hparams;
    spec.seed = options.seed;
    spec.dataset = options.dataset;
    spec.modelPath = fs::absolute(model.dir).string();
    spec.baseModelHash = hash;
    nlohmann::json planJson = nlohmann::json::array();
    for (const auto &request : plan)
        planJson.push_back(request.toJson());
    spec.options = {{"edits", options.edits},
                    {"eval_every", options.evalEvery},
                    {"cache_dir", options.cacheDir},
                    {"label", options.label},
                    {"plan", planJson}};
    const auto runId = ledger.createRun(spec);
    const store::RunLease lease(ledger, runId);
    return loop(ledger, runId, *session, callbacks);
}

RunnerResult resumeRun(store::Ledger &ledger, LoadedModel &model, int64_t runId, const RunnerCallbacks &callbacks)
{
    // First: a run another process is still continuing is not resumed twice.
    const store::RunLease lease(ledger, runId);
    const auto info = ledger.run(runId);
    if (info.status == "finished")
        throw store::LedgerError("run " + std::to_string(runId) + " is finished: nothing to resume");
    if (!info.options.contains("plan"))
        throw store::LedgerError("run " + std::to_string(runId) +
                                 " was not made by the runner (it has no plan to resume)");
    if (model.folderHash() != info.baseModelHash)
        throw store::LedgerError("the model at '" + model.dir + "' is not the one run " + std::to_string(runId) +
                                 " started from (its content hash changed): restore it to resume");
    auto session = openSession(model, info.method, info.hparams, info.options.value("cache_dir", ""));
    // Weights and method state from the ledger, every edit read once.
    std::vector<edit::EditResult> active;
    for (const auto &row : ledger.activeEdits(runId))
        active.push_back(run::loadEdit(ledger, row.id));
    std::vector<const edit::EditResult *> pointers;
    for (const auto &result : active) {
        session->context->recordApplied(result);
        pointers.push_back(&result);
    }
    session->weights.addAll(session->model, pointers);
    attachEvaluator(*session, info.dataset, model.dir);
    return loop(ledger, runId, *session, callbacks);
}

namespace {

std::unique_ptr<LoadedModel> loadForRun(const std::string &modelDir)
{
    try {
        return loadModel(modelDir);
    } catch (const std::exception &error) {
        throw store::LedgerError("cannot load the model '" + modelDir + "': " + error.what());
    }
}

} // namespace

RunnerResult startRun(store::Ledger &ledger, const RunnerOptions &options, const RunnerCallbacks &callbacks)
{
    if (options.edits < 1)
        throw store::LedgerError("the number of edits must be at least 1");
    auto model = loadForRun(options.modelDir);
    return startRun(ledger, *model, options, callbacks);
}

RunnerResult resumeRun(store::Ledger &ledger, int64_t runId, const RunnerCallbacks &callbacks)
{
    const auto info = ledger.run(runId);
    auto model = loadForRun(info.modelPath);
    return resumeRun(ledger, *model, runId, callbacks);
}

} // namespace oedit::run
