// The runs facade (oedit/runs.h) over the ledger and the runner.
#include "run/ledger_codec.h"
#include "oedit/runs.h"
#include "oedit/ledger_access.h"
#include "oedit/merge.h"

#include "engine/engine_impl.h"
#include "run/loaded_model.h"
#include "run/runner.h"

#include "eval/norms.h"
#include "eval/subspace.h"
#include "store/ledger.h"
#include "store/ledger_merge.h"
#include "run/rebuild.h"
#include "run/runner.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/transformer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

namespace oedit::runs {

namespace {

namespace fs = std::filesystem;


RunSummary summarize(store::Ledger &ledger, const store::RunInfo &info)
{
    RunSummary s;
    s.runId = info.id;
    s.method = info.method;
    s.dataset = info.dataset;
    s.status = info.status;
    s.created = info.created;
    s.planned = info.options.contains("plan") ? static_cast<long long>(info.options.at("plan").size()) : 0;
    s.steps = ledger.lastStep(info.id);
    s.activeEdits = ledger.activeEditCount(info.id);
    s.label = info.options.value("label", std::string());
    s.seed = info.seed;
    s.modelPath = info.modelPath;
    s.hparamsJson = info.hparams.dump();
    return s;
}

RollbackInfo convert(const store::RollbackEvent &event)
{
    RollbackInfo out;
    out.eventId = event.id;
    out.kind = event.kind;
    out.targetStep = event.targetStep;
    out.targetEdit = event.targetEdit;
    out.targetEvent = event.targetEvent;
    out.undoneBy = event.undoneBy;
    out.deactivated.assign(event.deactivated.begin(), event.deactivated.end());
    out.activated.assign(event.activated.begin(), event.activated.end());
    out.created = event.created;
    return out;
}

nlohmann::json eventJson(const RollbackInfo &event)
{
    nlohmann::json j = {{"event_id", event.eventId},       {"kind", event.kind},
                        {"deactivated", event.deactivated}, {"activated", event.activated},
                        {"created", event.created}};
    if (event.targetStep)
        j["to_step"] = *event.targetStep;
    if (event.targetEdit)
        j["removed_edit"] = *event.targetEdit;
    if (event.targetEvent)
        j["undid_event"] = *event.targetEvent;
    j["undone_by"] = event.undoneBy ? nlohmann::json(*event.undoneBy) : nlohmann::json(nullptr);
    return j;
}

// JSON has no infinity (a singular matrix's condition number): null instead.
nlohmann::json number(double value)
{
    return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

} // namespace

// The commands that only read or flip flags must not leave an empty ledger
// behind a mistyped path, so they insist the file is there.
std::unique_ptr<store::Ledger> openExisting(const std::string &db)
{
    std::error_code error;
    if (db.empty())
        throw store::LedgerError("no ledger given (--db FILE)");
    if (!fs::is_regular_file(db, error))
        throw store::LedgerError("no ledger at '" + db + "' (the file does not exist; `oedit run --db " + db +
                                 "` creates one)");
    return std::make_unique<store::Ledger>(db);
}


std::string RunReport::toJson() const
{
    nlohmann::json curve = nlohmann::json::array();
    std::map<long long, nlohmann::json> retention;
    for (size_t c = 0; c < checkpoints.size(); ++c) {
        nlohmann::json point = {{"step", checkpoints[c].step}};
        for (const auto &[name, value] : checkpoints[c].metrics)
            point[name] = number(value);
        curve.push_back(point);
        for (const auto &[edit, success] : checkpoints[c].editSuccess) {
            auto &row = retention[edit];
            if (row.is_null())
                row = nlohmann::json::array();
            // Null where the edit was not in effect (or not yet made) at a checkpoint.
            while (row.size() < c)
                row.push_back(nullptr);
            row.push_back(success);
        }
    }
    nlohmann::json retentionJson = nlohmann::json::object();
    for (auto &[edit, row] : retention) {
        while (row.size() < checkpoints.size())
            row.push_back(nullptr);
        retentionJson[std::to_string(edit)] = row;
    }
    nlohmann::json rollbackJson = nlohmann::json::array();
    for (const auto &event : rollbacks)
        rollbackJson.push_back(eventJson(event));
    nlohmann::json out = {{"run_id", run.runId},
                          {"method", run.method},
                          {"dataset", run.dataset},
                          {"status", run.status},
                          {"planned", run.planned},
                          {"edits", run.steps},
                          {"active_edits", run.activeEdits},
                          {"final", curve.empty() ? nlohmann::json::object() : curve.back()},
                          {"curve", curve},
                          {"checkpoint_steps", nlohmann::json::array()},
                          {"retention", retentionJson},
                          {"rollbacks", rollbackJson}};
    for (const auto &checkpoint : checkpoints)
        out["checkpoint_steps"].push_back(checkpoint.step);
    if (!run.message.empty())
        out["message"] = run.message;
    return out.dump();
}

std::string toJson(const RollbackInfo &event)
{
    return eventJson(event).dump();
}

Expected<LedgerAccess> ledgerAccess(const std::string &db)
{
    return guarded([&]() -> Expected<LedgerAccess> {
        const auto ledger = openExisting(db);
        LedgerAccess access;
        access.readOnly = ledger->readOnly();
        access.reason = ledger->readOnlyReason();
        return access;
    });
}

std::string MergeResult::toJson() const
{
    nlohmann::json out = {{"into", into}, {"created", created}, {"sources", nlohmann::json::array()}};
    for (const auto &source : sources)
        out["sources"].push_back({{"path", source.path},
                                  {"added", source.added},
                                  {"already_present", source.alreadyPresent},
                                  {"edits", source.edits},
                                  {"checkpoints", source.checkpoints},
                                  {"rollbacks", source.rollbacks},
                                  {"warnings", source.warnings}});
    return out.dump();
}

Expected<MergeResult> mergeLedgers(const std::string &into, const std::vector<std::string> &sources)
{
    return guarded([&]() -> Expected<MergeResult> {
        const auto summary = store::mergeLedgers(into, sources);
        MergeResult out;
        out.into = summary.target;
        out.created = summary.created;
        for (const auto &source : summary.sources) {
            MergedLedger merged;
            merged.path = source.path;
            merged.added.assign(source.added.begin(), source.added.end());
            merged.alreadyPresent.assign(source.alreadyPresent.begin(), source.alreadyPresent.end());
            merged.edits = source.edits;
            merged.checkpoints = source.checkpoints;
            merged.rollbacks = source.rollbacks;
            merged.warnings = source.warnings;
            out.sources.push_back(std::move(merged));
        }
        return out;
    });
}

Expected<std::vector<RunSummary>> listRuns(const std::string &db)
{
    return guarded([&]() -> Expected<std::vector<RunSummary>> {
        auto ledger = openExisting(db);
        std::vector<RunSummary> out;
        for (const auto &info : ledger->runs())
            out.push_back(summarize(*ledger, info));
        return out;
    });
}

Expected<RunReport> runReport(const std::string &db, long long runId)
{
    return guarded([&]() -> Expected<RunReport> {
        auto ledger = openExisting(db);
        RunReport report;
        report.run = summarize(*ledger, ledger->run(runId));
        for (const auto &row : ledger->checkpoints(runId)) {
            Checkpoint checkpoint;
            checkpoint.step = row.step;
            for (const auto &metric : ledger->metrics(row.id)) {
                if (metric.edit) {
                    if (metric.name == "edit_success")
                        checkpoint.editSuccess.emplace_back(*metric.edit, metric.value);
                } else {
                    checkpoint.metrics.emplace_back(metric.name, metric.value);
                }
            }
            report.checkpoints.push_back(std::move(checkpoint));
        }
        for (const auto &event : ledger->rollbackEvents(runId))
            report.rollbacks.push_back(convert(event));
        return report;
    });
}

Expected<RollbackInfo> rollback(const std::string &db, const RollbackRequest &request)
{
    return guarded([&]() -> Expected<RollbackInfo> {
        const int given = int(request.toStep.has_value()) + int(request.removeEdit.has_value()) +
                          int(request.undoEvent.has_value());
        if (given != 1)
            return Status::failure("give exactly one of --to-step K, --remove-edit E and --undo EVENT");
        auto ledger = openExisting(db);
        const auto info = ledger->run(request.runId); // throws for an unknown run
        if (info.status == "running")
            return Status::failure("run " + std::to_string(request.runId) +
                                   " is marked running (in progress, or killed: resume it first, or wait)");
        if (request.toStep) {
            if (*request.toStep < 0 || *request.toStep >= ledger->lastStep(request.runId))
                return Status::failure("--to-step " + std::to_string(*request.toStep) + " is outside run " +
                                       std::to_string(request.runId) + ", which has steps 1.." +
                                       std::to_string(ledger->lastStep(request.runId)) +
                                       " (give a step before the last one; 0 reverts every edit)");
            return convert(ledger->revertToStep(request.runId, *request.toStep));
        }
        if (request.removeEdit) {
            const auto row = ledger->editRow(*request.removeEdit);
            if (row.run != request.runId)
                return Status::failure("edit " + std::to_string(*request.removeEdit) + " belongs to run " +
                                       std::to_string(row.run) + ", not to run " + std::to_string(request.runId));
            return convert(ledger->removeEdit(request.runId, *request.removeEdit));
        }
        const auto event = ledger->rollbackEvent(*request.undoEvent);
        if (event.run != request.runId)
            return Status::failure("rollback event " + std::to_string(*request.undoEvent) + " belongs to run " +
                                   std::to_string(event.run) + ", not to run " + std::to_string(request.runId));
        return convert(ledger->undoRollback(*request.undoEvent));
    });
}

std::string toCsv(const RunReport &report)
{
    std::vector<std::string> columns;
    for (const auto &checkpoint : report.checkpoints)
        for (const auto &[name, value] : checkpoint.metrics)
            if (std::find(columns.begin(), columns.end(), name) == columns.end())
                columns.push_back(name);
    std::string out = "step";
    for (const auto &column : columns)
        out += "," + column;
    out += "\n";
    for (const auto &checkpoint : report.checkpoints) {
        out += std::to_string(checkpoint.step);
        std::map<std::string, double> values(checkpoint.metrics.begin(), checkpoint.metrics.end());
        for (const auto &column : columns) {
            out += ",";
            const auto it = values.find(column);
            if (it != values.end()) {
                char text[40];
                std::snprintf(text, sizeof text, "%.10g", it->second);
                out += text;
            }
        }
        out += "\n";
    }
    return out;
}

// ---------------------------------------------------------------------------
// Read-only views for the workbench

namespace {

EditEntry entryOf(const store::EditRow &row)
{
    EditEntry e;
    e.editId = row.id;
    e.step = row.step;
    e.method = row.method;
    e.subject = row.request.subject;
    e.prompt = row.request.prompt;
    e.targetNew = row.request.targetNew;
    e.targetTrue = row.request.targetTrue.value_or(std::string());
    e.active = row.active;
    e.created = row.created;
    if (row.timings.is_object())
        e.seconds = row.timings.value("total", 0.0);
    if (row.diagnostics.is_object()) {
        e.maxAbsCosWithProtected = row.diagnostics.value("max_abs_cos_with_protected", 0.0);
        e.protectedRank = row.diagnostics.value("protected_rank", int64_t(0));
        e.remainingCapacity = row.diagnostics.value("remaining_capacity", int64_t(-1));
        double squares = 0;
        for (const double norm : row.diagnostics.value("update_norms", std::vector<double>{}))
            squares += norm * norm;
        e.updateNorm = std::sqrt(squares);
        e.valueShiftNorm = row.diagnostics.value("value_shift_norm", row.diagnostics.value("delta_norm", 0.0));
        e.keyOverlap = row.diagnostics.value("max_key_cos_with_earlier", 0.0);
    }
    return e;
}

// Flags the edits whose update norm is over ten times the run's median.
void flagOutliers(std::vector<EditEntry> &edits)
{
    std::vector<double> norms;
    for (const auto &e : edits)
        if (e.updateNorm > 0)
            norms.push_back(e.updateNorm);
    if (norms.size() < 5) // too few to say what is usual
        return;
    std::nth_element(norms.begin(), norms.begin() + static_cast<long>(norms.size() / 2), norms.end());
    const double median = norms[norms.size() / 2];
    for (auto &e : edits)
        e.outlier = median > 0 && e.updateNorm > 10 * median;
}

} // namespace

Expected<std::vector<EditEntry>> listEdits(const std::string &db, long long runId)
{
    return guarded([&]() -> Expected<std::vector<EditEntry>> {
        auto ledger = openExisting(db);
        ledger->run(runId); // throws for an unknown run
        std::vector<EditEntry> out;
        for (const auto &row : ledger->listEdits(runId))
            out.push_back(entryOf(row));
        flagOutliers(out);
        return out;
    });
}

Expected<SubspaceReport> subspaceReport(const std::string &db, long long runId, long long maxEdits)
{
    return guarded([&]() -> Expected<SubspaceReport> {
        if (maxEdits < 1)
            return Status::failure("maxEdits must be at least 1");
        auto ledger = openExisting(db);
        const auto info = ledger->run(runId);
        auto rows = ledger->activeEdits(runId);
        SubspaceReport report;
        report.runId = runId;
        report.method = info.method;
        report.activeEdits = static_cast<long long>(rows.size());
        if (static_cast<long long>(rows.size()) > maxEdits)
            rows.erase(rows.begin(), rows.end() - maxEdits);
        const int64_t n = static_cast<int64_t>(rows.size());
        std::vector<std::map<int64_t, edit::LayerUpdate>> updates(rows.size());
        std::set<int64_t> layers;
        for (size_t i = 0; i < rows.size(); ++i) {
            report.edits.push_back(entryOf(rows[i]));
            for (auto &update : run::loadUpdate(*ledger, rows[i].id)) {
                layers.insert(update.layer);
                updates[i][update.layer] = std::move(update);
            }
        }
        if (!report.edits.empty())
            report.protectedRank = report.edits.back().protectedRank;
        const double nan = std::numeric_limits<double>::quiet_NaN();
        auto combinedDot = torch::zeros({n, n}, torch::kDouble);
        for (const auto layer : layers) {
            std::vector<int64_t> members;
            std::vector<const edit::LayerUpdate *> inLayer;
            for (int64_t i = 0; i < n; ++i) {
                const auto it = updates[static_cast<size_t>(i)].find(layer);
                if (it != updates[static_cast<size_t>(i)].end()) {
                    members.push_back(i);
                    inLayer.push_back(&it->second);
                }
            }
            const auto layerReport = eval::layerSubspace(inLayer);
            const size_t m = members.size();
            std::vector<double> cosines(static_cast<size_t>(n * n), nan);
            for (size_t a = 0; a < m; ++a)
                for (size_t b = 0; b < m; ++b)
                    cosines[static_cast<size_t>(members[a] * n + members[b])] = layerReport.cosines[a * m + b];
            auto sum = combinedDot.accessor<double, 2>();
            auto g = layerReport.gram.accessor<double, 2>();
            for (size_t a = 0; a < m; ++a)
                for (size_t b = 0; b < m; ++b)
                    sum[members[a]][members[b]] += g[a][b];
            report.layers.push_back(layer);
            report.width.push_back(layerReport.width);
            report.perLayer.push_back(std::move(cosines));
            report.editRank.push_back(layerReport.editRank);
            report.residual.push_back(layerReport.residual);
        }
        report.combined = eval::absCosines(combinedDot);
        return report;
    });
}

Expected<PrincipalAngles> principalAngles(const std::string &db, long long editA, long long editB)
{
    return guarded([&]() -> Expected<PrincipalAngles> {
        auto ledger = openExisting(db);
        PrincipalAngles out;
        out.editA = editA;
        out.editB = editB;
        std::map<int64_t, torch::Tensor> basesA;
        for (const auto &update : run::loadUpdate(*ledger, editA))
            basesA[update.layer] = eval::outputBasis(update);
        for (const auto &update : run::loadUpdate(*ledger, editB)) {
            const auto it = basesA.find(update.layer);
            if (it == basesA.end())
                continue;
            const auto b = eval::outputBasis(update);
            auto degrees = eval::principalAnglesDegrees(it->second, b);
            out.layers.push_back(update.layer);
            out.degrees.push_back(std::move(degrees));
        }
        if (out.layers.empty())
            return Status::failure("edits " + std::to_string(editA) + " and " + std::to_string(editB) +
                                   " change no layer in common: they have no angles to compare");
        return out;
    });
}

Expected<std::vector<FactComparison>> compareFacts(const std::string &db, const std::vector<long long> &runIds)
{
    return guarded([&]() -> Expected<std::vector<FactComparison>> {
        auto ledger = openExisting(db);
        std::vector<FactComparison> out;
        std::map<std::string, size_t> rowOf; // subject \x1f prompt \x1f target -> row
        for (size_t r = 0; r < runIds.size(); ++r) {
            ledger->run(runIds[r]); // throws for an unknown run
            std::map<int64_t, double> lastScore;
            const auto checkpoints = ledger->checkpoints(runIds[r]);
            if (!checkpoints.empty())
                for (const auto &metric : ledger->metrics(checkpoints.back().id))
                    if (metric.edit && metric.name == "edit_success")
                        lastScore[*metric.edit] = metric.value;
            for (const auto &row : ledger->listEdits(runIds[r])) {
                const std::string key = row.request.subject + '\x1f' + row.request.prompt + '\x1f' + row.request.targetNew;
                auto it = rowOf.find(key);
                if (it == rowOf.end()) {
                    FactComparison fact;
                    fact.subject = row.request.subject;
                    fact.prompt = row.request.prompt;
                    fact.targetNew = row.request.targetNew;
                    fact.kept.assign(runIds.size(), -1);
                    it = rowOf.emplace(key, out.size()).first;
                    out.push_back(std::move(fact));
                }
                const auto score = lastScore.find(row.id);
                if (score != lastScore.end())
                    out[it->second].kept[r] = score->second > 0.5 ? 1 : 0;
            }
        }
        return out;
    });
}

} // namespace oedit::runs

// ---------------------------------------------------------------------------
// The calls that need a model: on the engine's open model, or on another
// folder the engine loads once through the same code.

namespace oedit {

namespace fs = std::filesystem;

run::LoadedModel &Engine::Impl::modelFor(const std::string &modelDir, const std::string &device,
                                         const std::string &dtype)
{
    const auto parsedDevice = parseDevice(device.empty() ? "cpu" : device);
    if (!parsedDevice)
        throw store::LedgerError(parsedDevice.message());
    const auto parsedDtype = parseDtype(dtype.empty() ? "float32" : dtype);
    if (!parsedDtype)
        throw store::LedgerError(parsedDtype.message());
    const bool openFolder = open && (modelDir.empty() || open->isFolder(modelDir));
    // An empty device or dtype means "as the open model has it".
    const bool sameAsOpen = openFolder &&
                            (device.empty() || parsedDevice.value().str() == open->model->device().str()) &&
                            (dtype.empty() || parsedDtype.value() == open->model->dtype());
    if (sameAsOpen)
        return *open;
    if (modelDir.empty() && !open)
        throw store::LedgerError("no model is open and the request names no model folder");
    const std::string folder = modelDir.empty() ? open->dir : modelDir;
    if (parsedDevice.value().is_cpu() && parsedDtype.value() != torch::kFloat32)
        throw store::LedgerError("dtype " + dtype + " is meant for CUDA; on the CPU use float32");
    const std::string deviceName = parsedDevice.value().str();
    const std::string dtypeName = model::torchDtypeName(parsedDtype.value());
    if (other && other->isFolder(folder) && otherDevice == deviceName && otherDtype == dtypeName)
        return *other;
    std::error_code ec;
    if (!fs::is_directory(folder, ec))
        throw store::LedgerError("the model folder '" + folder + "' does not exist or is not a folder");
    other.reset(); // one extra model at a time
    try {
        other = run::loadModel(folder, parsedDevice.value(), parsedDtype.value());
    } catch (const std::exception &error) {
        throw store::LedgerError("cannot load the model '" + folder + "': " + error.what());
    }
    otherDevice = deviceName;
    otherDtype = dtypeName;
    return *other;
}


Expected<runs::RunSummary> Engine::startRun(const std::string &db, const runs::RunRequest &request,
                                            const ProgressFn &progress)
{
    return runs::guarded([&]() -> Expected<runs::RunSummary> {
        if (db.empty())
            return Status::failure("no ledger given (--db FILE)");
        if (request.modelDir.empty() && !d->open)
            return Status::failure("no model is open: open a model or name its folder in the request");
        run::RunnerOptions options;
        options.dataset = request.dataset;
        options.method = request.method;
        options.edits = request.edits;
        options.evalEvery = request.evalEvery;
        options.seed = request.seed;
        options.cacheDir = request.cacheDir;
        options.label = request.label;
        if (!request.hparamsJson.empty()) {
            try {
                options.overrides = nlohmann::json::parse(request.hparamsJson);
            } catch (const std::exception &error) {
                return Status::failure(std::string("the hyperparameters are not valid JSON: ") + error.what());
            }
            if (!options.overrides.is_object())
                return Status::failure("the hyperparameters must be a JSON object");
        }
        const auto parent = fs::absolute(db).parent_path();
        std::error_code error;
        if (!fs::is_directory(parent, error))
            return Status::failure("cannot create the ledger '" + db + "': the folder '" + parent.string() +
                                   "' does not exist");
        store::Ledger ledger(db);
        run::RunnerCallbacks callbacks;
        callbacks.progress = progress;
        const auto result = withRunModel(*d, request.modelDir, request.device, request.dtype,
                                         [&](run::LoadedModel &model) {
                                             options.modelDir = model.dir;
                                             return run::startRun(ledger, model, options, callbacks);
                                         });
        auto summary = runs::summarize(ledger, ledger.run(result.runId));
        summary.message = result.message;
        return summary;
    });
}

Expected<runs::RunSummary> Engine::resumeRun(const std::string &db, long long runId, const ProgressFn &progress,
                                             const std::string &device, const std::string &dtype)
{
    return runs::guarded([&]() -> Expected<runs::RunSummary> {
        auto ledger = runs::openExisting(db);
        const auto info = ledger->run(runId);
        run::RunnerCallbacks callbacks;
        callbacks.progress = progress;
        const auto result = withRunModel(*d, info.modelPath, device, dtype, [&](run::LoadedModel &model) {
            return run::resumeRun(*ledger, model, runId, callbacks);
        });
        auto summary = runs::summarize(*ledger, ledger->run(result.runId));
        summary.message = result.message;
        return summary;
    });
}

Expected<runs::RollbackInfo> Engine::rollback(const std::string &db, const runs::RollbackRequest &request)
{
    auto event = runs::rollback(db, request);
    if (!event || !d->session || !d->session->isAttachedRun(db, request.runId))
        return event;
    // The open model follows its session's run (read through the session's own connection).
    return runs::guarded([&]() -> Expected<runs::RollbackInfo> {
        d->session->follow(event.value().eventId);
        return event;
    });
}

Expected<long long> Engine::exportRun(const std::string &db, long long runId, std::optional<long long> step,
                                      const std::string &outDir)
{
    return runs::guarded([&]() -> Expected<long long> {
        if (outDir.empty())
            return Status::failure("no output folder given (--out DIR)");
        std::error_code error;
        if (fs::exists(outDir, error) && (!fs::is_directory(outDir, error) || !fs::is_empty(outDir, error)))
            return Status::failure("'" + outDir + "' exists and is not an empty folder: choose a new folder");
        auto ledger = runs::openExisting(db);
        const auto info = ledger->run(runId);
        const auto last = ledger->lastStep(runId);
        if (step && (*step < 0 || *step > last))
            return Status::failure("--step " + std::to_string(*step) + " is outside run " + std::to_string(runId) +
                                   ", which has steps 0.." + std::to_string(last));
        return withRunModel(*d, info.modelPath, "", "", [&](run::LoadedModel &loaded) -> Expected<long long> {
            if (loaded.folderHash() != info.baseModelHash)
                return Status::failure("the model at '" + info.modelPath + "' is not the one run " +
                                       std::to_string(runId) + " started from (its content hash changed)");
            auto &model = *loaded.model;
            const auto included = run::rebuildWeights(model, loaded.base, *ledger, runId, step);
            // Written beside the target and renamed, so a failure leaves no half folder.
            const fs::path target = fs::absolute(outDir);
            const fs::path temporary = target.parent_path() / ("." + target.filename().string() + ".partial");
            fs::remove_all(temporary);
            try {
                model::saveCheckpoint(temporary.string(), model.config(), model.weights(), torch::kFloat32);
                for (const char *name : {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer.model",
                                         "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                                         "world.json", "general_train.txt", "general_heldout.txt"}) {
                    const fs::path source = fs::path(info.modelPath) / name;
                    if (fs::exists(source))
                        fs::copy_file(source, temporary / name);
                }
                if (fs::exists(target))
                    fs::remove(target); // empty, checked above
                fs::rename(temporary, target);
            } catch (...) {
                fs::remove_all(temporary, error);
                throw;
            }
            return static_cast<long long>(included);
        });
    });
}

Expected<std::vector<runs::NormSeries>> Engine::normGrowth(const std::string &db, long long runId,
                                                           const ProgressFn &progress)
{
    return runs::guarded([&]() -> Expected<std::vector<runs::NormSeries>> {
        auto ledger = runs::openExisting(db);
        const auto info = ledger->run(runId);
        const long long total = ledger->activeEditCount(runId);
        std::vector<runs::NormSeries> out;
        if (total == 0)
            return out;
        // The base weights the engine already holds for the run's model (the
        // open one, or the one kept from an earlier call): nothing is loaded twice.
        auto &loaded = d->modelFor(info.modelPath, "", "");
        if (loaded.folderHash() != info.baseModelHash)
            return Status::failure("the model at '" + info.modelPath + "' is not the one run " +
                                   std::to_string(runId) + " started from (its content hash changed)");
        // One trajectory per edited layer, fed every update in step order,
        // streamed from one query.
        std::map<int64_t, eval::NormTrajectory> trajectories;
        long long read = 0;
        const bool complete = ledger->forEachActiveUpdate(runId, [&](int64_t step, store::StoredUpdate &&stored) {
            const auto update = run::fromStoredUpdate(stored);
            auto it = trajectories.find(update.layer);
            if (it == trajectories.end())
                it = trajectories.emplace(update.layer, eval::NormTrajectory(loaded.base.at(update.layer))).first;
            it->second.add(step, update);
            return !progress || ++read % 1000 != 0 || progress(read, total);
        });
        if (!complete)
            return Status::failure("stopped before the norms of run " + std::to_string(runId) + " were complete");
        // Every step 0..last for every layer: 1 before the layer's first edit,
        // the previous value at steps that did not change it.
        const auto lastStep = ledger->lastStep(runId);
        for (auto &[layer, trajectory] : trajectories) {
            runs::NormSeries series;
            series.layer = layer;
            series.baseNorm = trajectory.baseNorm();
            series.steps.reserve(static_cast<size_t>(lastStep + 1));
            series.relative.reserve(static_cast<size_t>(lastStep + 1));
            const auto norms = trajectory.norms();
            size_t next = 0;
            double value = 1.0;
            for (int64_t step = 0; step <= lastStep; ++step) {
                for (; next < norms.size() && norms[next].first <= step; ++next)
                    value = series.baseNorm > 0 ? norms[next].second / series.baseNorm : 1.0;
                series.steps.push_back(step);
                series.relative.push_back(value);
            }
            out.push_back(std::move(series));
        }
        std::sort(out.begin(), out.end(), [](const runs::NormSeries &a, const runs::NormSeries &b) { return a.layer < b.layer; });
        return out;
    });
}


} // namespace oedit
