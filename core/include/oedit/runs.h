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
    std::string label;             // a free name for scripts that find their runs again (bench/results.py)
    // Where the run computes. Empty: the open model's device and dtype (the
    // CPU in float32 when a model folder has to be loaded); otherwise "cpu",
    // "cuda" or "cuda:N", and float32, bfloat16 or float16.
    std::string device;
    std::string dtype;
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
    std::string label;         // as given to startRun; empty when none
    unsigned long long seed = 0;
    std::string modelPath;
    std::string hparamsJson; // the resolved hyperparameters the run uses
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

// Starting and resuming runs, their norm growth and export need a model and
// are Engine calls (oedit/engine.h). The calls here only read the ledger or
// flip its flags.
// These refuse a ledger file that does not exist rather than create one.
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

// --- Read-only views of a run for the workbench (History, Subspace, Compare).

// One edit of a run as stored: its request, whether it is in effect, and the
// diagnostics its method recorded (O-Edit(+) fill the protected-subspace ones).
struct EditEntry {
    long long editId = 0; // ledger-wide
    long long step = 0;   // 1, 2, ... in the run
    std::string method;
    std::string subject, prompt, targetNew, targetTrue;
    bool active = true;
    std::string created;  // ISO 8601, UTC
    double seconds = 0;   // the edit's compute time (its timings' total)
    double maxAbsCosWithProtected = 0; // largest |cos| of the update with the protected basis
    long long protectedRank = 0;       // rank of the protected basis used (max over layers)
    long long remainingCapacity = -1;  // edit directions left after it (-1: not O-Edit)
    double updateNorm = 0;     // ||DeltaW||_F of its update, all layers together
    double valueShiftNorm = 0; // ||delta||, the value shift its optimisation found (0 for ft)
    double keyOverlap = 0;     // largest |cos| of its key with an earlier edit's key (near 1: the same place)
    // Its update norm is over ten times the run's median: an edit that may have
    // disabled the model (Gupta et al., "Rebuilding ROME", 2024).
    bool outlier = false;
};
// Every edit of the run, inactive ones included, in step order.
Expected<std::vector<EditEntry>> listEdits(const std::string &db, long long runId);

// How the updates of a run's active edits sit against each other, from the
// updates stored in the ledger. n = edits.size(); matrices are n x n row-major.
struct SubspaceReport {
    long long runId = 0;
    std::string method;
    long long activeEdits = 0;     // active edits in the run (edits holds the latest maxEdits of them)
    std::vector<EditEntry> edits;  // the edits compared, in step order
    std::vector<long long> layers; // the edited layers, ascending
    std::vector<long long> width;  // per layer: its output width d (rows of the MLP output projection)
    // |cos|_F between two edits' updates: over all layers as one vector, and
    // per layer (NaN where either edit leaves the layer alone).
    std::vector<double> combined;
    std::vector<std::vector<double>> perLayer;
    // Per layer: the rank of the space the compared edits' output directions
    // span, and the orthogonality residual, the largest cosine of a principal
    // angle between the output spaces of two different edits (0: orthogonal).
    std::vector<long long> editRank;
    std::vector<double> residual;
    long long protectedRank = 0;  // the latest compared edit's protected rank (0 for other methods)
};
// Reads at most `maxEdits` (the latest) active edits' updates. Fails for an
// unknown run or ledger.
Expected<SubspaceReport> subspaceReport(const std::string &db, long long runId, long long maxEdits = 100);

// The principal angles (degrees, ascending) between the output spaces of two
// edits' updates, per layer both edited.
struct PrincipalAngles {
    long long editA = 0, editB = 0;
    std::vector<long long> layers;
    std::vector<std::vector<double>> degrees;
};
Expected<PrincipalAngles> principalAngles(const std::string &db, long long editA, long long editB);

// ||W_k||_F / ||W_0||_F of each edited layer after each step k of the run
// (the run's active edits up to k, as the ledger holds them now; steps with
// no active edit repeat the previous value): Engine::normGrowth.
struct NormSeries {
    long long layer = 0;
    double baseNorm = 0;              // ||W_0||_F
    std::vector<long long> steps;     // 0, then each step of the run
    std::vector<double> relative;     // ||W_k|| / ||W_0||, 1 at step 0
};

// The same fact (subject, prompt and new target) across runs: per run, in the
// order asked, 1 when its last checkpoint scored the edit kept, 0 lost, -1
// when that run did not edit the fact or did not score it.
struct FactComparison {
    std::string subject, prompt, targetNew;
    std::vector<int> kept;
};
Expected<std::vector<FactComparison>> compareFacts(const std::string &db, const std::vector<long long> &runIds);

} // namespace oedit::runs
