// The edit ledger: one SQLite file that is the source of truth for sequential
// editing runs. It holds the models a run started from, the runs (method,
// hyperparameters, seed, data set, base-model hash, status), every edit in
// order with its request and diagnostics, the exact update of every edited
// layer (float tensors as raw little-endian BLOBs with their shape), the
// evaluation checkpoints with their metric rows, and the rollback events.
//
// Weights are never stored: the weights of a run at a step are the base model
// plus the updates of the run's active edits up to that step (see rebuild.h).
// A rollback only flips edits' active flags, and is itself an event that can
// be undone, so nothing is ever deleted.
//
// The ledger keeps its own row types (EditRecord, StoredUpdate, raw tensor
// bytes): it knows nothing of the editing methods, and run/ledger_codec.h
// converts between these rows and the methods' EditResult.
//
// Ownership and threads: a Ledger owns one SQLite connection and may be used
// by one thread at a time (open another Ledger on the same file for another
// thread or process; WAL lets readers run beside the one writer).
//
// Failure: every call throws LedgerError with a message that names the ledger
// file or the row that was wrong and what to do. Each change runs in one RAII
// transaction, so a failure (or a kill) in the middle leaves the ledger as it
// was before the call: never half an edit, never a half-applied rollback.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace oedit::store {

class Database;

class LedgerError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What createRun needs. Hyperparameters are the full resolved set; `options`
// holds what the runner needs to resume (planned edits, evaluation schedule, ...).
struct RunSpec {
    std::string method;
    nlohmann::json hparams = nlohmann::json::object();
    uint64_t seed = 0;
    std::string dataset; // "world", a file path, or "manual"
    std::string modelPath;
    std::string baseModelHash;
    nlohmann::json options = nlohmann::json::object();
};

// An edit request as stored (JSON: subject, prompt, target_new, target_true).
struct StoredRequest {
    std::string subject;
    std::string prompt;
    std::string targetNew;
    std::optional<std::string> targetTrue;

    nlohmann::json toJson() const;
    static StoredRequest fromJson(const nlohmann::json &json);
};

// A tensor as stored: raw little-endian floats of `dtype` ("f32" or "f64")
// in row-major order, and its shape.
struct StoredTensor {
    std::string dtype = "f32";
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;

    size_t elementSize() const { return dtype == "f64" ? 8 : 4; }
    int64_t count() const; // the product of the shape (1 for a scalar)
};

// One row of an edit's updates. kind "rank1": a = the value-side factor
// [rows], b = the key-side factor [cols] (DeltaW = a b^T); "dense": a = DeltaW
// [rows, cols]; "keys": a = the keys the edit was computed from [d_k, n],
// kept for methods whose state needs them back on rollback.
struct StoredUpdate {
    int64_t layer = 0;
    std::string kind;
    StoredTensor a;
    StoredTensor b; // rank1 only
};

// Everything appendEdit records of one edit.
struct EditRecord {
    int64_t resultId = 0; // the editing context's id of the edit (O-Edit's block owner)
    std::string method;
    nlohmann::json hparams = nlohmann::json::object();
    StoredRequest request;
    nlohmann::json diagnostics = nlohmann::json::object();
    nlohmann::json timings = nlohmann::json::object();
    std::vector<StoredUpdate> updates; // layer updates in order, then keys rows
};

struct RunInfo {
    int64_t id = 0;
    int64_t modelId = 0;
    std::string modelPath;
    std::string method;
    nlohmann::json hparams;
    uint64_t seed = 0;
    std::string dataset;
    std::string baseModelHash;
    std::string created; // ISO 8601, UTC
    std::string status;  // created | running | cancelled | failed | finished
    nlohmann::json options;
};

// One edit of a run, without its tensors (loadEdit/loadUpdate read those).
struct EditRow {
    int64_t id = 0; // ledger-wide edit id
    int64_t run = 0;
    int64_t step = 0;     // 1, 2, ... in the order edits were appended; never reused
    int64_t resultId = 0; // EditResult::id (the EditContext's id, O-Edit block owner)
    std::string method;
    StoredRequest request;
    nlohmann::json hparams;
    nlohmann::json diagnostics;
    nlohmann::json timings;
    std::string created;
    bool active = true;
};

struct Metric {
    std::string name;
    double value = 0;
    std::optional<int64_t> edit; // the edit it is about (retention rows), or none for run-level metrics
};

struct CheckpointRow {
    int64_t id = 0;
    int64_t run = 0;
    int64_t step = 0;
    std::string created;
};

// A rollback as recorded: `deactivated`/`activated` are the edit ids whose
// active flag it changed (a revert or remove only deactivates; a redo, which
// undoes an earlier event, only re-activates).
struct RollbackEvent {
    int64_t id = 0;
    int64_t run = 0;
    std::string kind;                   // revert | remove | redo
    std::optional<int64_t> targetStep;  // revert: the step reverted to
    std::optional<int64_t> targetEdit;  // remove: the edit removed
    std::optional<int64_t> targetEvent; // redo: the event undone
    std::optional<int64_t> undoneBy;    // the redo event that undid this one
    std::string created;
    std::vector<int64_t> deactivated;
    std::vector<int64_t> activated;
};

// Who holds a run's lease: the process continuing the run (see RunLease).
struct LeaseHolder {
    std::string host;
    int64_t pid = 0;
    std::string since; // ISO 8601, UTC
    std::string heartbeat; // the holder's last write to the run
};

struct IntegrityReport {
    bool ok = true;
    std::vector<std::string> problems; // empty when ok
};

class Ledger {
public:
    // The schema this build writes. Older files are migrated on open.
    static int currentSchemaVersion();

    // Opens or creates the ledger at `path` (":memory:" for tests). An older
    // schema is migrated in one transaction, after a copy of the file is kept
    // beside it (`<path>.v<N>.bak`). Throws LedgerError for a file that is not
    // an O-Edit ledger or is damaged, or a locked file.
    //
    // Opened read-only, for viewing, and never written (readOnly() says why;
    // every change throws LedgerError with that reason): on request
    // (`readOnly`), when the file or its folder is not writable, and when the
    // file has a newer schema than this build writes (it is never migrated
    // down; columns this build does not know are ignored).
    explicit Ledger(const std::string &path, bool readOnly = false);
    ~Ledger();
    Ledger(const Ledger &) = delete;
    Ledger &operator=(const Ledger &) = delete;

    const std::string &path() const { return m_path; }
    int schemaVersion();
    // Empty when the ledger can be written; otherwise why it was opened read-only.
    const std::string &readOnlyReason() const { return m_readOnlyReason; }
    bool readOnly() const { return !m_readOnlyReason.empty(); }
    // The backup copy made before this open migrated the file, or empty.
    const std::string &migrationBackup() const { return m_backup; }

    // Run leases: one writer continues a run at a time. takeRunLease records
    // this process as the run's writer; from then on, until releaseRunLease
    // (or the process ends), every change to the run through another process
    // is refused with a message naming the holder. A lease whose holder is
    // gone (same host, the process no longer exists) is taken over; a lease
    // held from another host is taken over once its heartbeat (its holder's
    // last write to the run) is older than kLeaseStaleMinutes. Throws
    // LedgerError when a live writer holds it, or this process already does.
    static constexpr int kLeaseStaleMinutes = 15;
    void takeRunLease(int64_t runId);
    void releaseRunLease(int64_t runId); // no-op when this process does not hold it
    std::optional<LeaseHolder> runLease(int64_t runId);

    int64_t createRun(const RunSpec &spec);
    RunInfo run(int64_t runId); // throws for an unknown id
    std::vector<RunInfo> runs();
    void setRunStatus(int64_t runId, const std::string &status);

    // Appends `record` as the run's next step, with all of its updates (and
    // keys), in one transaction, after checking every tensor's bytes against
    // its shape. Returns the ledger edit id.
    int64_t appendEdit(int64_t runId, const EditRecord &record);
    // The run's edits in step order (all, or only active ones).
    std::vector<EditRow> listEdits(int64_t runId, bool activeOnly = false);
    // Active edits with step <= `step` (all active ones when no step), in order.
    std::vector<EditRow> activeEdits(int64_t runId, std::optional<int64_t> step = std::nullopt);
    EditRow editRow(int64_t editId);
    // The stored layer updates (without the keys rows), bit for bit as
    // appended; each tensor's size is checked against its shape.
    std::vector<StoredUpdate> loadUpdates(int64_t editId);
    // The stored updates (without keys) of the run's active edits, in step
    // order, handed to `visit` one at a time with their edit's step: one
    // query for a whole run, and a run of 100,000 edits never held at once.
    // `visit` returning false stops the walk (false is returned then).
    bool forEachActiveUpdate(int64_t runId, const std::function<bool(int64_t step, StoredUpdate &&update)> &visit);
    // The whole record (request, hparams, diagnostics, updates, keys).
    EditRecord loadRecord(int64_t editId);
    int64_t lastStep(int64_t runId); // 0 when the run has no edits
    int64_t activeEditCount(int64_t runId);

    // One checkpoint with its metrics, in one transaction.
    int64_t recordCheckpoint(int64_t runId, int64_t step, const std::vector<Metric> &metrics);
    void addMetrics(int64_t checkpointId, const std::vector<Metric> &metrics);
    std::vector<CheckpointRow> checkpoints(int64_t runId);
    std::vector<Metric> metrics(int64_t checkpointId);

    // Rollbacks. Each changes active flags and records itself in one
    // transaction; none changes weights (rebuild.h brings a model along).
    // Deactivates the active edits after `step`. Throws when there are none.
    RollbackEvent revertToStep(int64_t runId, int64_t step);
    // Deactivates one active edit of the run.
    RollbackEvent removeEdit(int64_t runId, int64_t editId);
    // Re-activates what a revert or remove deactivated (those of its edits
    // still inactive), recorded as a `redo` event. An event can be undone once.
    RollbackEvent undoRollback(int64_t eventId);
    RollbackEvent rollbackEvent(int64_t eventId);
    std::vector<RollbackEvent> rollbackEvents(int64_t runId);

    // PRAGMA integrity_check and foreign_key_check, plus the ledger's own
    // invariants (every update's BLOB matches its shape, every edit has updates).
    IntegrityReport integrityCheck();

    Database &database() { return *m_db; }

private:
    void migrate(bool readOnly);
    void requireWritable() const;
    // Inside a write transaction: refuses a change to a run another live
    // process holds the lease of, and renews this process's own heartbeat.
    void requireWriter(int64_t runId);
    bool hasLeaseTable();
    RollbackEvent recordRollback(int64_t runId, const std::string &kind, std::optional<int64_t> targetStep,
                                 std::optional<int64_t> targetEdit, std::optional<int64_t> targetEvent,
                                 const std::vector<int64_t> &deactivate, const std::vector<int64_t> &activate);
    void requireRun(int64_t runId);

    std::string m_path;
    std::unique_ptr<Database> m_db;
    std::string m_readOnlyReason;
    std::string m_backup;
    std::optional<bool> m_hasLeases;
};

// Holds a run's lease for a scope (Ledger::takeRunLease, released by the
// destructor; a release that fails, e.g. on a full disk, is left to the
// takeover rule). The ledger must outlive it.
class RunLease {
public:
    RunLease(Ledger &ledger, int64_t runId);
    ~RunLease();
    RunLease(const RunLease &) = delete;
    RunLease &operator=(const RunLease &) = delete;

private:
    Ledger &m_ledger;
    int64_t m_run;
};

// Schema steps, exposed for tests that build an older ledger: applies the
// migrations up to and including `version` to an empty database.
void createSchemaForTest(Database &db, int version);

// A content hash of a model folder (config.json and the weight files): FNV-1a
// over names, sizes and bytes; files over 256 MiB are sampled (one MiB in 64,
// and the last MiB): different checkpoints differ in far more bytes than that
// skips, and hashing a 14 GB model in full would take a quarter of a minute.
std::string modelFolderHash(const std::string &modelDir);

} // namespace oedit::store
