// Sequential editing runs through the facade: start, resume, list, report and
// roll back runs kept in an edit ledger (an SQLite file). What `oedit run`,
// `oedit runs`, `oedit report` and `oedit rollback` are built on.
//
// Plain data and free functions, torch-free and Qt-free. Each call opens the
// ledger for its duration on the caller's thread. No exception crosses: every
// call returns an Expected whose message names the ledger, the run or the
// argument that was wrong. Bad input is refused before anything is written;
// a run that stops (cancel, failure, kill) stays resumable.
#pragma once

#include "oedit/status.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace oedit::runs {

struct RunRequest {
    std::string modelDir;
    std::string dataset = "world"; // "world" (the model's world) or a CounterFact/zsRE file
    std::string method = "oedit+";
    std::string hparamsJson;       // overrides as a JSON object text; empty: the defaults
    long long edits = 10;
    long long evalEvery = 0;       // 0: evaluate at the end only
    unsigned long long seed = 1;
    std::string cacheDir;          // statistics cache; empty: the default
};

struct RunSummary {
    long long runId = 0;
    std::string method;
    std::string dataset;
    std::string status; // created | running | cancelled | failed | finished
    std::string created;
    std::string message; // why a run failed, when the call that ran it saw it fail
    long long planned = 0;     // edits in the plan
    long long steps = 0;       // edits appended
    long long activeEdits = 0; // edits in effect (after rollbacks)
};

// One evaluation checkpoint: run-level metrics in stored order, and each
// edit's success (the checkpoint's column of the retention matrix).
struct Checkpoint {
    long long step = 0;
    std::vector<std::pair<std::string, double>> metrics;
    std::vector<std::pair<long long, double>> editSuccess; // (edit id, 0/1)
};

struct RollbackInfo {
    long long eventId = 0;
    std::string kind; // revert | remove | redo
    std::optional<long long> targetStep, targetEdit, targetEvent, undoneBy;
    std::vector<long long> deactivated, activated;
    std::string created;
};

struct RunReport {
    RunSummary run;
    std::vector<Checkpoint> checkpoints;
    std::vector<RollbackInfo> rollbacks;
    // {"run_id", "method", "status", "edits", "active_edits", "final": {...},
    //  "curve": [{"step", ...}], "retention": {"<edit id>": [per checkpoint]}, "rollbacks": [...]}
    std::string toJson() const;
};

// Creates a run in the ledger at `db` (created when missing) and runs it;
// progress(done, planned) returning false stops it after the current edit
// (status "cancelled", resumable).
Expected<RunSummary> startRun(const std::string &db, const RunRequest &request, const ProgressFn &progress = {});
Expected<RunSummary> resumeRun(const std::string &db, long long runId, const ProgressFn &progress = {});
// These three refuse a ledger file that does not exist rather than create one.
Expected<std::vector<RunSummary>> listRuns(const std::string &db);
Expected<RunReport> runReport(const std::string &db, long long runId);

// Exactly one of toStep, removeEdit, undoEvent.
struct RollbackRequest {
    long long runId = 0;
    std::optional<long long> toStep;
    std::optional<long long> removeEdit;
    std::optional<long long> undoEvent;
};
Expected<RollbackInfo> rollback(const std::string &db, const RollbackRequest &request);

std::string toJson(const RollbackInfo &event);

// The report's curve as CSV: one row per checkpoint, a column per metric
// (the union over checkpoints, in first-seen order; empty where absent).
std::string toCsv(const RunReport &report);

// Writes the weights of run `runId` at `step` (its active edits up to that
// step; all active edits when none) as an ordinary checkpoint folder `outDir`
// (config.json, model.safetensors, the tokenizer and world files of the base
// model). Refuses an `outDir` that exists and is not empty, and a base model
// whose content changed since the run started. Returns the edits included.
Expected<long long> exportRun(const std::string &db, long long runId, std::optional<long long> step,
                              const std::string &outDir);

} // namespace oedit::runs
