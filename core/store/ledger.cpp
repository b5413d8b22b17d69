// The edit ledger on SQLite: schema and migrations, edits with their exact
// updates as BLOBs, checkpoints and metrics, rollback events.
#include "store/ledger.h"

#include "store/sqlite_db.h"

#include <sqlite3.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

// The BLOBs are documented as little-endian float32/float64; a big-endian
// build would need a byte swap in encode/decode.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the ledger stores tensors little-endian");

namespace oedit::store {

namespace fs = std::filesystem;

namespace {

// 'OEDT': marks the file as an O-Edit ledger for `file(1)` and for us.
constexpr int64_t kApplicationId = 0x4F454454;

#define OEDIT_NOW "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"

struct Migration {
    int version;
    const char *what;
    const char *sql;
};

// Applied in order inside one transaction; never edit a released step, add one.
const Migration kMigrations[] = {
    {1, "models, runs, edits, updates, checkpoints, metrics",
     "CREATE TABLE schema_version (version INTEGER NOT NULL);"
     "INSERT INTO schema_version (version) VALUES (0);"
     "CREATE TABLE models ("
     "  id INTEGER PRIMARY KEY,"
     "  path TEXT NOT NULL,"
     "  hash TEXT NOT NULL,"
     "  created TEXT NOT NULL DEFAULT " OEDIT_NOW ","
     "  UNIQUE (path, hash));"
     "CREATE TABLE runs ("
     "  id INTEGER PRIMARY KEY,"
     "  model INTEGER REFERENCES models(id),"
     "  method TEXT NOT NULL,"
     "  hparams TEXT NOT NULL CHECK (json_valid(hparams)),"
     "  seed INTEGER NOT NULL,"
     "  dataset TEXT NOT NULL,"
     "  base_hash TEXT NOT NULL,"
     "  created TEXT NOT NULL DEFAULT " OEDIT_NOW ","
     "  status TEXT NOT NULL DEFAULT 'created'"
     "    CHECK (status IN ('created', 'running', 'cancelled', 'failed', 'finished')),"
     "  options TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(options)));"
     "CREATE TABLE edits ("
     "  id INTEGER PRIMARY KEY,"
     "  run INTEGER NOT NULL REFERENCES runs(id),"
     "  step INTEGER NOT NULL CHECK (step >= 1),"
     "  result_id INTEGER NOT NULL,"
     "  method TEXT NOT NULL,"
     "  request TEXT NOT NULL CHECK (json_valid(request)),"
     "  hparams TEXT NOT NULL CHECK (json_valid(hparams)),"
     "  diagnostics TEXT NOT NULL CHECK (json_valid(diagnostics)),"
     "  timings TEXT NOT NULL CHECK (json_valid(timings)),"
     "  created TEXT NOT NULL DEFAULT " OEDIT_NOW ","
     "  UNIQUE (run, step));"
     // kind rank1: a = right [rows], b = left [cols]; dense: a = DeltaW [rows, cols];
     // keys (AlphaEdit's K): a = [rows, cols]. Raw little-endian floats of `dtype`.
     "CREATE TABLE updates ("
     "  id INTEGER PRIMARY KEY,"
     "  edit INTEGER NOT NULL REFERENCES edits(id),"
     "  position INTEGER NOT NULL,"
     "  layer INTEGER NOT NULL,"
     "  kind TEXT NOT NULL CHECK (kind IN ('rank1', 'dense', 'keys')),"
     "  dtype TEXT NOT NULL CHECK (dtype IN ('f32', 'f64')),"
     "  rows INTEGER NOT NULL CHECK (rows >= 0),"
     "  cols INTEGER NOT NULL CHECK (cols >= 0),"
     "  a BLOB NOT NULL,"
     "  b BLOB,"
     "  UNIQUE (edit, position));"
     "CREATE TABLE checkpoints ("
     "  id INTEGER PRIMARY KEY,"
     "  run INTEGER NOT NULL REFERENCES runs(id),"
     "  step INTEGER NOT NULL CHECK (step >= 0),"
     "  created TEXT NOT NULL DEFAULT " OEDIT_NOW ");"
     "CREATE INDEX checkpoints_run ON checkpoints (run, step);"
     "CREATE TABLE metrics ("
     "  id INTEGER PRIMARY KEY,"
     "  checkpoint INTEGER NOT NULL REFERENCES checkpoints(id),"
     "  name TEXT NOT NULL,"
     "  value REAL,"
     "  edit INTEGER REFERENCES edits(id));"
     "CREATE INDEX metrics_checkpoint ON metrics (checkpoint);"},
    {2, "active flags and rollback events",
     "ALTER TABLE edits ADD COLUMN active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1));"
     "CREATE INDEX edits_run_active ON edits (run, active, step);"
     "CREATE TABLE rollback_events ("
     "  id INTEGER PRIMARY KEY,"
     "  run INTEGER NOT NULL REFERENCES runs(id),"
     "  kind TEXT NOT NULL CHECK (kind IN ('revert', 'remove', 'redo')),"
     "  target_step INTEGER,"
     "  target_edit INTEGER REFERENCES edits(id),"
     "  target_event INTEGER REFERENCES rollback_events(id),"
     "  undone_by INTEGER REFERENCES rollback_events(id),"
     "  created TEXT NOT NULL DEFAULT " OEDIT_NOW ");"
     "CREATE INDEX rollback_events_run ON rollback_events (run);"
     "CREATE TABLE rollback_changes ("
     "  event INTEGER NOT NULL REFERENCES rollback_events(id),"
     "  edit INTEGER NOT NULL REFERENCES edits(id),"
     "  active INTEGER NOT NULL CHECK (active IN (0, 1)),"
     "  PRIMARY KEY (event, edit));"},
    {3, "run leases: one writer continues a run at a time",
     "CREATE TABLE run_leases ("
     "  run INTEGER PRIMARY KEY REFERENCES runs(id),"
     "  host TEXT NOT NULL,"
     "  pid INTEGER NOT NULL,"
     "  process_start TEXT NOT NULL,"
     "  since TEXT NOT NULL DEFAULT " OEDIT_NOW ","
     "  heartbeat TEXT NOT NULL DEFAULT " OEDIT_NOW ");"},
};

constexpr int kCurrentVersion = 3;

void applyMigrations(Database &db, int from, int to)
{
    for (const auto &migration : kMigrations) {
        if (migration.version <= from || migration.version > to)
            continue;
        db.exec(migration.sql);
        db.exec("UPDATE schema_version SET version = " + std::to_string(migration.version));
    }
    if (from == 0)
        db.exec("PRAGMA application_id = " + std::to_string(kApplicationId));
}

// SQLite's own errors, re-thrown with the ledger named and a hint for the
// cases a user can act on.
[[noreturn]] void rethrow(const std::string &path, const std::string &what, const std::exception &error)
{
    std::string message = "ledger '" + path + "': " + what + ": " + error.what();
    const std::string text = error.what();
    if (text.find("database is locked") != std::string::npos || text.find("database is busy") != std::string::npos)
        message += " (another process is writing to this ledger; wait for it to finish or use another file)";
    else if (text.find("disk is full") != std::string::npos || text.find("disk I/O error") != std::string::npos)
        message += " (the disk is full or failed: the change was rolled back and the ledger is as it was; free "
                   "space, then go on: `oedit run --resume` continues a run from its last complete step)";
    else if (text.find("attempt to write a readonly database") != std::string::npos)
        message += " (the ledger is read-only here: nothing was changed)";
    else if (text.find("not a database") != std::string::npos || text.find("malformed") != std::string::npos)
        message += " (the file is damaged or not an O-Edit ledger)";
    throw LedgerError(message);
}

template<typename F> auto guarded(const std::string &path, const char *what, F &&body) -> decltype(body())
{
    try {
        return body();
    } catch (const LedgerError &) {
        throw;
    } catch (const SqliteError &error) {
        rethrow(path, what, error);
    } catch (const nlohmann::json::exception &error) {
        throw LedgerError("ledger '" + path + "': " + what + ": a JSON column is damaged (" + error.what() + ")");
    }
}

int64_t scalarInt(Database &db, const std::string &sql)
{
    Statement statement(db, sql);
    return statement.step() ? statement.columnInt(0) : 0;
}

std::optional<int64_t> optionalInt(const Statement &statement, int column)
{
    if (statement.columnIsNull(column))
        return std::nullopt;
    return statement.columnInt(column);
}

void bindOptional(Statement &statement, int index, const std::optional<int64_t> &value)
{
    if (value)
        statement.bind(index, *value);
    else
        statement.bindNull(index);
}

// --- who writes --------------------------------------------------------------

// A process as a lease records it: host, pid and the kernel's start time of
// the pid (so a pid reused by another program after a crash is not taken
// for the holder).
struct ProcessIdentity {
    std::string host;
    int64_t pid = 0;
    std::string start;
};

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or
// empty when the process does not exist or /proc is not there; "zombie" for
// a process that has ended but was not yet reaped by its parent.
std::string processStart(int64_t pid)
{
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!stat || !std::getline(stat, line))
        return {};
    const auto close = line.rfind(')'); // the command name may hold spaces and parentheses
    if (close == std::string::npos)
        return {};
    std::istringstream fields(line.substr(close + 1));
    std::string field;
    for (int index = 3; index <= 22 && fields >> field; ++index) {
        if (index == 3 && (field == "Z" || field == "X"))
            return "zombie";
        if (index == 22)
            return field;
    }
    return {};
}

const ProcessIdentity &thisProcess()
{
    static const ProcessIdentity identity = [] {
        ProcessIdentity p;
        char host[256] = {};
        if (gethostname(host, sizeof host - 1) == 0)
            p.host = host;
        p.pid = static_cast<int64_t>(getpid());
        p.start = processStart(p.pid);
        return p;
    }();
    return identity;
}

// Whether the process a lease names still runs (on this host).
bool processAlive(int64_t pid, const std::string &start)
{
    if (pid <= 0)
        return false;
    if (kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)
        return false;
    const std::string now = processStart(pid);
    if (now == "zombie")
        return false;
    return start.empty() || now.empty() || now == start;
}

// --- tensors as BLOBs -------------------------------------------------------

// The index of the first NaN or infinite element of `t`, or -1.
int64_t firstNonFinite(const StoredTensor &t)
{
    const int64_t n = static_cast<int64_t>(t.bytes.size() / t.elementSize());
    for (int64_t i = 0; i < n; ++i) {
        double value = 0;
        if (t.dtype == "f64") {
            std::memcpy(&value, t.bytes.data() + i * 8, 8);
        } else {
            float single = 0;
            std::memcpy(&single, t.bytes.data() + i * 4, 4);
            value = single;
        }
        if (!std::isfinite(value))
            return i;
    }
    return -1;
}

// Checks a stored tensor's bytes against its dtype and shape, and its values.
void checkTensor(const StoredTensor &t, size_t dimensions, const std::string &where)
{
    if (t.dtype != "f32" && t.dtype != "f64")
        throw LedgerError(where + ": unknown dtype '" + t.dtype + "' (the ledger stores f32 or f64)");
    if (t.shape.size() != dimensions)
        throw LedgerError(where + ": expected " + std::to_string(dimensions) + " dimension(s), got " +
                          std::to_string(t.shape.size()));
    for (const auto size : t.shape)
        if (size < 0)
            throw LedgerError(where + ": negative size in the shape");
    // Checked: a damaged row's shape may multiply past 2^64 (and then wrap
    // to a size its few bytes match).
    uint64_t needed = t.elementSize();
    for (const auto size : t.shape)
        if (__builtin_mul_overflow(needed, static_cast<uint64_t>(size), &needed))
            throw LedgerError(where + ": its shape is too large for any file: the ledger is damaged (restore a copy)");
    if (t.bytes.size() != needed)
        throw LedgerError(where + " holds " + std::to_string(t.bytes.size()) + " bytes but its shape needs " +
                          std::to_string(needed) +
                          ": the ledger is damaged (run `PRAGMA integrity_check`, or restore a copy)");
    // An update that is not a number would turn every weight it touches into
    // NaN: refused on the way in, and reported on the way out.
    const int64_t bad = firstNonFinite(t);
    if (bad >= 0)
        throw LedgerError(where + " holds a value that is not a number (NaN or infinite) at element " +
                          std::to_string(bad) +
                          ": such an update would make the model's outputs NaN; it was not written, or this ledger "
                          "is damaged (restore a copy, or roll the edit back)");
}

StoredTensor readTensor(std::vector<uint8_t> bytes, const std::string &dtype, std::vector<int64_t> shape,
                        const std::string &where)
{
    StoredTensor t;
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.bytes = std::move(bytes);
    checkTensor(t, t.shape.size(), where);
    return t;
}

EditRow readEditRow(const Statement &s)
{
    // Column order of kEditColumns.
    EditRow row;
    row.id = s.columnInt(0);
    row.run = s.columnInt(1);
    row.step = s.columnInt(2);
    row.resultId = s.columnInt(3);
    row.method = s.columnText(4);
    row.request = StoredRequest::fromJson(nlohmann::json::parse(s.columnText(5)));
    row.hparams = nlohmann::json::parse(s.columnText(6));
    row.diagnostics = nlohmann::json::parse(s.columnText(7));
    row.timings = nlohmann::json::parse(s.columnText(8));
    row.created = s.columnText(9);
    row.active = s.columnInt(10) != 0;
    return row;
}

const char *const kEditColumns =
    "id, run, step, result_id, method, request, hparams, diagnostics, timings, created, active";

RunInfo readRun(const Statement &s)
{
    RunInfo run;
    run.id = s.columnInt(0);
    run.modelId = s.columnIsNull(1) ? 0 : s.columnInt(1);
    run.modelPath = s.columnText(2);
    run.method = s.columnText(3);
    run.hparams = nlohmann::json::parse(s.columnText(4));
    run.seed = static_cast<uint64_t>(s.columnInt(5));
    run.dataset = s.columnText(6);
    run.baseModelHash = s.columnText(7);
    run.created = s.columnText(8);
    run.status = s.columnText(9);
    run.options = nlohmann::json::parse(s.columnText(10));
    return run;
}

const char *const kRunSelect =
    "SELECT runs.id, runs.model, COALESCE(models.path, ''), method, hparams, seed, dataset, base_hash, runs.created, "
    "status, options FROM runs LEFT JOIN models ON models.id = runs.model";

bool validStatus(const std::string &status)
{
    return status == "created" || status == "running" || status == "cancelled" || status == "failed" ||
           status == "finished";
}

} // namespace

int Ledger::currentSchemaVersion()
{
    return kCurrentVersion;
}

void createSchemaForTest(Database &db, int version)
{
    Transaction transaction(db);
    applyMigrations(db, 0, version);
    transaction.commit();
}

Ledger::Ledger(const std::string &path, bool readOnly) : m_path(path)
{
    auto access = Database::Access::ReadWrite;
    if (path != ":memory:") {
        std::error_code ec;
        const auto folder = fs::absolute(path, ec).parent_path().string();
        const bool exists = fs::exists(path, ec);
        if (readOnly) {
            m_readOnlyReason = "it was opened read-only, for viewing";
        } else if (exists && (::access(path.c_str(), W_OK) != 0 || ::access(folder.c_str(), W_OK) != 0)) {
            m_readOnlyReason = ::access(path.c_str(), W_OK) != 0 ? "the file is not writable"
                                                                  : "its folder is not writable";
        }
        if (!m_readOnlyReason.empty()) {
            if (!exists)
                throw LedgerError("ledger '" + path + "' does not exist (nothing to open read-only)");
            access = Database::Access::ReadOnly;
            // WAL readers need the -shm file; a folder that cannot hold one
            // is read as an immutable file.
            if (::access(folder.c_str(), W_OK) != 0 && !fs::exists(path + "-shm", ec))
                access = Database::Access::Immutable;
        }
    }
    try {
        m_db = std::make_unique<Database>(path, access);
    } catch (const SqliteError &error) {
        rethrow(path, "cannot open", error);
    }
    guarded(m_path, "cannot open", [&] { migrate(access != Database::Access::ReadWrite); });
}

Ledger::~Ledger() = default;

void Ledger::requireWritable() const
{
    if (!m_readOnlyReason.empty())
        throw LedgerError("ledger '" + m_path + "' is read-only here (" + m_readOnlyReason +
                          "): nothing was changed. To change it, " +
                          (m_readOnlyReason.find("newer") != std::string::npos
                               ? std::string("use the newer version of O-Edit Workbench that wrote it")
                               : std::string("copy it to a writable folder, or make the file and its folder "
                                             "writable")));
}

void Ledger::migrate(bool readOnly)
{
    auto readVersion = [&]() -> int {
        if (scalarInt(*m_db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'") ==
            0) {
            if (scalarInt(*m_db, "SELECT count(*) FROM sqlite_master") > 0)
                throw LedgerError("'" + m_path +
                                  "' is an SQLite file but not an O-Edit ledger (it has no schema_version table): "
                                  "give a new file name or an existing ledger");
            return 0;
        }
        // Read whole: a damaged or hostile number must not wrap into a known version.
        const int64_t stored = scalarInt(*m_db, "SELECT version FROM schema_version");
        if (stored < 0)
            throw LedgerError("ledger '" + m_path + "' has the schema version " + std::to_string(stored) +
                              ", which no O-Edit Workbench wrote: the file is damaged (restore a copy)");
        return stored > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max() : static_cast<int>(stored);
    };
    const int64_t applicationId = scalarInt(*m_db, "PRAGMA application_id");
    if (applicationId != 0 && applicationId != kApplicationId)
        throw LedgerError("'" + m_path + "' belongs to another application (SQLite application_id " +
                          std::to_string(applicationId) + "), not an O-Edit ledger");
    // A ledger holds tables and indexes only. A view or trigger in a file
    // from elsewhere could make a plain read run forever or write behind
    // our back (a view named `runs` over an endless recursive query).
    if (scalarInt(*m_db, "SELECT count(*) FROM sqlite_master WHERE type IN ('view', 'trigger')") > 0)
        throw LedgerError("'" + m_path +
                          "' holds SQL views or triggers, which no O-Edit ledger has: it was not written by O-Edit "
                          "Workbench or was tampered with; nothing was read from it");
    int version = readVersion();
    if (version > kCurrentVersion) {
        // Never migrated down, never written: a newer build may have changed
        // what the rows mean. Reading goes on with the columns this build knows.
        m_readOnlyReason = "it has schema version " + std::to_string(version) +
                           ", newer than this build of O-Edit Workbench writes (" + std::to_string(kCurrentVersion) +
                           ")";
        m_db->exec("PRAGMA query_only = ON");
        return;
    }
    if (version == kCurrentVersion)
        return;
    if (readOnly) {
        // Version 2 reads as it is (only the leases are missing); version 1
        // lacks columns every read needs.
        if (version < 2 && version > 0)
            throw LedgerError("ledger '" + m_path + "' has the old schema version " + std::to_string(version) +
                              " and " + m_readOnlyReason +
                              ", so it cannot be brought up to date: copy it to a writable folder and open it there");
        return;
    }
    // A copy of the old file first: a migration that a later build regrets
    // can be undone by hand. VACUUM INTO writes a consistent snapshot (WAL
    // included) and cannot run inside the transaction.
    if (version > 0 && m_path != ":memory:") {
        std::string backup = m_path + ".v" + std::to_string(version) + ".bak";
        std::error_code ec;
        for (int n = 1; fs::exists(backup, ec); ++n)
            backup = m_path + ".v" + std::to_string(version) + "." + std::to_string(n) + ".bak";
        Statement copy(*m_db, "VACUUM INTO ?");
        copy.bind(1, backup);
        copy.step();
        m_backup = backup;
    }
    // Re-read under the write lock: another process may have migrated meanwhile.
    Transaction transaction(*m_db);
    version = readVersion();
    if (version < kCurrentVersion) {
        applyMigrations(*m_db, version, kCurrentVersion);
        transaction.commit();
    }
}

bool Ledger::hasLeaseTable()
{
    if (!m_hasLeases)
        m_hasLeases =
            scalarInt(*m_db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'run_leases'") > 0;
    return *m_hasLeases;
}

namespace {

struct LeaseRow {
    LeaseHolder holder;
    std::string processStart;
    double idleMinutes = 0; // since the holder's last write to the run
};

std::optional<LeaseRow> readLease(Database &db, int64_t runId)
{
    Statement select(db, "SELECT host, pid, since, heartbeat, process_start, "
                         "(julianday('now') - julianday(heartbeat)) * 1440.0 FROM run_leases WHERE run = ?");
    select.bind(1, runId);
    if (!select.step())
        return std::nullopt;
    LeaseRow row;
    row.holder = {select.columnText(0), select.columnInt(1), select.columnText(2), select.columnText(3)};
    row.processStart = select.columnText(4);
    row.idleMinutes = select.columnDouble(5);
    return row;
}

// "run R of ledger 'P' is being continued by process N on H (since ..., last write ...)".
std::string heldBy(const std::string &path, int64_t runId, const LeaseHolder &holder)
{
    return "run " + std::to_string(runId) + " of ledger '" + path + "' is being continued by process " +
           std::to_string(holder.pid) + " on " + holder.host + " (since " + holder.since + ", last write " +
           holder.heartbeat + ")";
}

// Parameters 1-4 of a lease row: the run and this process (host, pid, start).
void bindRunAndThisProcess(Statement &statement, int64_t runId)
{
    const auto &me = thisProcess();
    statement.bind(1, runId);
    statement.bind(2, me.host);
    statement.bind(3, me.pid);
    statement.bind(4, me.start);
}

// The holder of `runId`'s lease when it is another process that still runs
// (`mine` tells when it is this one). A lease whose holder is gone, or
// silent for too long on another host, is deleted here: taken over.
std::optional<LeaseHolder> liveOtherHolder(Database &db, int64_t runId, bool &mine)
{
    mine = false;
    const auto lease = readLease(db, runId);
    if (!lease)
        return std::nullopt;
    const auto &me = thisProcess();
    const auto &holder = lease->holder;
    if (holder.host == me.host && holder.pid == me.pid && lease->processStart == me.start) {
        mine = true;
        return std::nullopt;
    }
    const bool alive = holder.host == me.host ? processAlive(holder.pid, lease->processStart)
                                              : lease->idleMinutes < Ledger::kLeaseStaleMinutes;
    if (alive)
        return holder;
    Statement drop(db, "DELETE FROM run_leases WHERE run = ?");
    drop.bind(1, runId);
    drop.step();
    return std::nullopt;
}

} // namespace

void Ledger::requireWriter(int64_t runId)
{
    if (!hasLeaseTable())
        return;
    // No lease row: nobody continues the run, and any writer may change it.
    bool mine = false;
    if (const auto holder = liveOtherHolder(*m_db, runId, mine))
        throw LedgerError(heldBy(m_path, runId, *holder) + ": nothing was changed; wait for it to finish, or use "
                                                           "another run");
    if (mine) {
        Statement renew(*m_db, "UPDATE run_leases SET heartbeat = " OEDIT_NOW " WHERE run = ?");
        renew.bind(1, runId);
        renew.step();
    }
}

void Ledger::takeRunLease(int64_t runId)
{
    requireWritable();
    guarded(m_path, "taking the run's lease", [&] {
        Transaction transaction(*m_db);
        requireRun(runId);
        bool mine = false;
        if (const auto holder = liveOtherHolder(*m_db, runId, mine))
            throw LedgerError(heldBy(m_path, runId, *holder) +
                              ": two writers cannot continue one run; wait for it to finish, or start a new run");
        if (mine)
            throw LedgerError("run " + std::to_string(runId) + " of ledger '" + m_path +
                              "' is already being continued in this process (another window, or the editing "
                              "session): finish that first");
        Statement insert(*m_db, "INSERT INTO run_leases (run, host, pid, process_start) VALUES (?, ?, ?, ?)");
        bindRunAndThisProcess(insert, runId);
        insert.step();
        transaction.commit();
    });
}

void Ledger::releaseRunLease(int64_t runId)
{
    if (readOnly() || !hasLeaseTable())
        return;
    guarded(m_path, "releasing the run's lease", [&] {
        Transaction transaction(*m_db);
        Statement drop(*m_db, "DELETE FROM run_leases WHERE run = ? AND host = ? AND pid = ? AND process_start = ?");
        bindRunAndThisProcess(drop, runId);
        drop.step();
        transaction.commit();
    });
}

std::optional<LeaseHolder> Ledger::runLease(int64_t runId)
{
    return guarded(m_path, "reading the run's lease", [&]() -> std::optional<LeaseHolder> {
        if (!hasLeaseTable())
            return std::nullopt;
        const auto lease = readLease(*m_db, runId);
        if (!lease)
            return std::nullopt;
        return lease->holder;
    });
}

RunLease::RunLease(Ledger &ledger, int64_t runId) : m_ledger(ledger), m_run(runId)
{
    m_ledger.takeRunLease(runId);
}

RunLease::~RunLease()
{
    try {
        m_ledger.releaseRunLease(m_run);
    } catch (...) {
        // A full disk or a lost file: the row stays, and the takeover rule
        // frees it once this process has ended.
    }
}

int Ledger::schemaVersion()
{
    return guarded(m_path, "reading the schema version",
                   [&] { return static_cast<int>(scalarInt(*m_db, "SELECT version FROM schema_version")); });
}

int64_t Ledger::createRun(const RunSpec &spec)
{
    if (spec.method.empty())
        throw LedgerError("ledger '" + m_path + "': a run needs a method name");
    requireWritable();
    return guarded(m_path, "creating a run", [&] {
        Transaction transaction(*m_db);
        std::optional<int64_t> model;
        if (!spec.modelPath.empty() || !spec.baseModelHash.empty()) {
            Statement find(*m_db, "SELECT id FROM models WHERE path = ? AND hash = ?");
            find.bind(1, spec.modelPath);
            find.bind(2, spec.baseModelHash);
            if (find.step()) {
                model = find.columnInt(0);
            } else {
                Statement insert(*m_db, "INSERT INTO models (path, hash) VALUES (?, ?)");
                insert.bind(1, spec.modelPath);
                insert.bind(2, spec.baseModelHash);
                insert.step();
                model = m_db->lastInsertId();
            }
        }
        Statement insert(*m_db, "INSERT INTO runs (model, method, hparams, seed, dataset, base_hash, options) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)");
        bindOptional(insert, 1, model);
        insert.bind(2, spec.method);
        insert.bind(3, spec.hparams.dump());
        insert.bind(4, static_cast<int64_t>(spec.seed));
        insert.bind(5, spec.dataset);
        insert.bind(6, spec.baseModelHash);
        insert.bind(7, spec.options.dump());
        insert.step();
        const int64_t id = m_db->lastInsertId();
        transaction.commit();
        return id;
    });
}

void Ledger::requireRun(int64_t runId)
{
    Statement find(*m_db, "SELECT 1 FROM runs WHERE id = ?");
    find.bind(1, runId);
    if (!find.step())
        throw LedgerError("ledger '" + m_path + "' has no run " + std::to_string(runId) + " (`oedit runs --db " +
                          m_path + "` lists the runs)");
}

RunInfo Ledger::run(int64_t runId)
{
    return guarded(m_path, "reading a run", [&] {
        Statement select(*m_db, std::string(kRunSelect) + " WHERE runs.id = ?");
        select.bind(1, runId);
        if (!select.step())
            requireRun(runId); // throws with the message
        return readRun(select);
    });
}

std::vector<RunInfo> Ledger::runs()
{
    return guarded(m_path, "listing runs", [&] {
        Statement select(*m_db, std::string(kRunSelect) + " ORDER BY runs.id");
        std::vector<RunInfo> out;
        while (select.step())
            out.push_back(readRun(select));
        return out;
    });
}

void Ledger::setRunStatus(int64_t runId, const std::string &status)
{
    if (!validStatus(status))
        throw LedgerError("unknown run status '" + status + "' (created, running, cancelled, failed, finished)");
    requireWritable();
    guarded(m_path, "setting a run's status", [&] {
        Transaction transaction(*m_db);
        requireRun(runId);
        requireWriter(runId);
        Statement update(*m_db, "UPDATE runs SET status = ? WHERE id = ?");
        update.bind(1, status);
        update.bind(2, runId);
        update.step();
        transaction.commit();
    });
}

int64_t Ledger::appendEdit(int64_t runId, const EditRecord &record)
{
    requireWritable();
    return guarded(m_path, "appending an edit", [&] {
        const std::string edit = "edit " + std::to_string(record.resultId);
        // Every row checked before the transaction starts writing.
        bool hasUpdate = false;
        for (const auto &update : record.updates) {
            const std::string where = edit + ", layer " + std::to_string(update.layer);
            if (update.kind == "rank1") {
                checkTensor(update.a, 1, where + " (value-side factor)");
                checkTensor(update.b, 1, where + " (key-side factor)");
                if (update.a.dtype != update.b.dtype)
                    throw LedgerError(where + ": the two rank-one factors must have one dtype");
                hasUpdate = true;
            } else if (update.kind == "dense") {
                checkTensor(update.a, 2, where + " (dense update)");
                hasUpdate = true;
            } else if (update.kind == "keys") {
                checkTensor(update.a, 2, edit + ": the keys of layer " + std::to_string(update.layer));
            } else {
                throw LedgerError(where + ": unknown update kind '" + update.kind + "'");
            }
        }
        if (!hasUpdate)
            throw LedgerError(edit + " has no layer updates: nothing to record");
        Transaction transaction(*m_db);
        requireRun(runId);
        requireWriter(runId);
        Statement next(*m_db, "SELECT COALESCE(MAX(step), 0) + 1 FROM edits WHERE run = ?");
        next.bind(1, runId);
        next.step();
        const int64_t step = next.columnInt(0);
        Statement insert(*m_db, "INSERT INTO edits (run, step, result_id, method, request, hparams, diagnostics, "
                                "timings) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        insert.bind(1, runId);
        insert.bind(2, step);
        insert.bind(3, record.resultId);
        insert.bind(4, record.method);
        insert.bind(5, record.request.toJson().dump());
        insert.bind(6, (record.hparams.is_null() ? nlohmann::json::object() : record.hparams).dump());
        insert.bind(7, (record.diagnostics.is_null() ? nlohmann::json::object() : record.diagnostics).dump());
        insert.bind(8, (record.timings.is_null() ? nlohmann::json::object() : record.timings).dump());
        insert.step();
        const int64_t editId = m_db->lastInsertId();

        Statement row(*m_db, "INSERT INTO updates (edit, position, layer, kind, dtype, rows, cols, a, b) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        int64_t position = 0;
        for (const auto &update : record.updates) {
            const bool rankOne = update.kind == "rank1";
            row.reset();
            row.bind(1, editId);
            row.bind(2, position++);
            row.bind(3, update.layer);
            row.bind(4, update.kind);
            row.bind(5, update.a.dtype);
            row.bind(6, update.a.shape.at(0));
            row.bind(7, rankOne ? update.b.shape.at(0) : update.a.shape.at(1));
            row.bindBlob(8, update.a.bytes.data(), update.a.bytes.size());
            if (rankOne)
                row.bindBlob(9, update.b.bytes.data(), update.b.bytes.size());
            else
                row.bindNull(9);
            row.step();
        }
        transaction.commit();
        return editId;
    });
}

std::vector<EditRow> Ledger::listEdits(int64_t runId, bool activeOnly)
{
    return guarded(m_path, "listing edits", [&] {
        requireRun(runId);
        Statement select(*m_db, std::string("SELECT ") + kEditColumns + " FROM edits WHERE run = ?" +
                                    (activeOnly ? " AND active = 1" : "") + " ORDER BY step");
        select.bind(1, runId);
        std::vector<EditRow> out;
        while (select.step())
            out.push_back(readEditRow(select));
        return out;
    });
}

std::vector<EditRow> Ledger::activeEdits(int64_t runId, std::optional<int64_t> step)
{
    return guarded(m_path, "listing active edits", [&] {
        requireRun(runId);
        Statement select(*m_db, std::string("SELECT ") + kEditColumns +
                                    " FROM edits WHERE run = ? AND active = 1 AND step <= ? ORDER BY step");
        select.bind(1, runId);
        select.bind(2, step.value_or(std::numeric_limits<int64_t>::max()));
        std::vector<EditRow> out;
        while (select.step())
            out.push_back(readEditRow(select));
        return out;
    });
}

EditRow Ledger::editRow(int64_t editId)
{
    return guarded(m_path, "reading an edit", [&] {
        Statement select(*m_db, std::string("SELECT ") + kEditColumns + " FROM edits WHERE id = ?");
        select.bind(1, editId);
        if (!select.step())
            throw LedgerError("ledger '" + m_path + "' has no edit " + std::to_string(editId));
        return readEditRow(select);
    });
}

namespace {

// One row of `updates` from the statement's columns first..first+6 (layer,
// kind, dtype, rows, cols, a, b), its blobs checked against the shape.
StoredUpdate readUpdateRow(Statement &select, int first, int64_t editId)
{
    StoredUpdate update;
    update.layer = select.columnInt(first);
    update.kind = select.columnText(first + 1);
    const auto dtype = select.columnText(first + 2);
    const int64_t rows = select.columnInt(first + 3), cols = select.columnInt(first + 4);
    const std::string where = (update.kind == "keys" ? "the keys of layer " : "the update of layer ") +
                              std::to_string(update.layer) + " of edit " + std::to_string(editId);
    if (update.kind != "rank1" && update.kind != "dense" && update.kind != "keys")
        throw LedgerError(where + ": unknown update kind '" + update.kind +
                          "': the ledger is damaged or from another program");
    if (update.kind == "rank1") {
        update.a = readTensor(select.columnBlob(first + 5), dtype, {rows}, where);
        update.b = readTensor(select.columnBlob(first + 6), dtype, {cols}, where);
    } else {
        update.a = readTensor(select.columnBlob(first + 5), dtype, {rows, cols}, where);
    }
    return update;
}

std::string noUpdateMessage(const std::string &path, int64_t editId)
{
    return "ledger '" + path + "' has no stored update for edit " + std::to_string(editId) +
           " (unknown edit id, or a damaged ledger)";
}

std::vector<StoredUpdate> readUpdates(Database &db, const std::string &path, int64_t editId, bool withKeys)
{
    Statement select(db, std::string("SELECT layer, kind, dtype, rows, cols, a, b FROM updates WHERE edit = ?") +
                             (withKeys ? "" : " AND kind != 'keys'") + " ORDER BY position");
    select.bind(1, editId);
    std::vector<StoredUpdate> out;
    bool hasUpdate = false;
    while (select.step()) {
        out.push_back(readUpdateRow(select, 0, editId));
        hasUpdate = hasUpdate || out.back().kind != "keys";
    }
    if (!hasUpdate)
        throw LedgerError(noUpdateMessage(path, editId));
    return out;
}

} // namespace

std::vector<StoredUpdate> Ledger::loadUpdates(int64_t editId)
{
    return guarded(m_path, "reading an update", [&] { return readUpdates(*m_db, m_path, editId, false); });
}

bool Ledger::forEachActiveUpdate(int64_t runId,
                                 const std::function<bool(int64_t step, StoredUpdate &&update)> &visit)
{
    return guarded(m_path, "reading the run's updates", [&] {
        requireRun(runId);
        // LEFT JOIN: an active edit without any update is damage, not an empty edit.
        Statement select(*m_db, "SELECT edits.id, edits.step, updates.layer, updates.kind, updates.dtype, updates.rows, "
                                "updates.cols, updates.a, updates.b FROM edits LEFT JOIN updates "
                                "ON updates.edit = edits.id AND updates.kind != 'keys' "
                                "WHERE edits.run = ? AND edits.active = 1 ORDER BY edits.step, updates.position");
        select.bind(1, runId);
        while (select.step()) {
            const int64_t editId = select.columnInt(0);
            if (select.columnIsNull(3))
                throw LedgerError(noUpdateMessage(m_path, editId));
            if (!visit(select.columnInt(1), readUpdateRow(select, 2, editId)))
                return false;
        }
        return true;
    });
}

EditRecord Ledger::loadRecord(int64_t editId)
{
    const auto row = editRow(editId);
    EditRecord record;
    record.resultId = row.resultId;
    record.method = row.method;
    record.hparams = row.hparams;
    record.request = row.request;
    record.diagnostics = row.diagnostics;
    record.timings = row.timings;
    record.updates = guarded(m_path, "reading an edit", [&] { return readUpdates(*m_db, m_path, editId, true); });
    return record;
}

int64_t Ledger::lastStep(int64_t runId)
{
    return guarded(m_path, "reading the last step", [&] {
        requireRun(runId);
        Statement select(*m_db, "SELECT COALESCE(MAX(step), 0) FROM edits WHERE run = ?");
        select.bind(1, runId);
        select.step();
        return select.columnInt(0);
    });
}

int64_t Ledger::activeEditCount(int64_t runId)
{
    return guarded(m_path, "counting edits", [&] {
        requireRun(runId);
        Statement select(*m_db, "SELECT count(*) FROM edits WHERE run = ? AND active = 1");
        select.bind(1, runId);
        select.step();
        return select.columnInt(0);
    });
}

namespace {
void insertMetrics(Database &db, int64_t checkpointId, const std::vector<Metric> &metrics)
{
    Statement insert(db, "INSERT INTO metrics (checkpoint, name, value, edit) VALUES (?, ?, ?, ?)");
    for (const auto &metric : metrics) {
        if (metric.name.empty())
            throw LedgerError("a metric needs a name");
        insert.reset();
        insert.bind(1, checkpointId);
        insert.bind(2, metric.name);
        insert.bind(3, metric.value);
        bindOptional(insert, 4, metric.edit);
        insert.step();
    }
}
} // namespace

int64_t Ledger::recordCheckpoint(int64_t runId, int64_t step, const std::vector<Metric> &metrics)
{
    requireWritable();
    return guarded(m_path, "recording a checkpoint", [&] {
        Transaction transaction(*m_db);
        requireRun(runId);
        requireWriter(runId);
        Statement insert(*m_db, "INSERT INTO checkpoints (run, step) VALUES (?, ?)");
        insert.bind(1, runId);
        insert.bind(2, step);
        insert.step();
        const int64_t id = m_db->lastInsertId();
        insertMetrics(*m_db, id, metrics);
        transaction.commit();
        return id;
    });
}

void Ledger::addMetrics(int64_t checkpointId, const std::vector<Metric> &metrics)
{
    requireWritable();
    guarded(m_path, "adding metrics", [&] {
        Transaction transaction(*m_db);
        Statement find(*m_db, "SELECT run FROM checkpoints WHERE id = ?");
        find.bind(1, checkpointId);
        if (!find.step())
            throw LedgerError("ledger '" + m_path + "' has no checkpoint " + std::to_string(checkpointId));
        requireWriter(find.columnInt(0));
        insertMetrics(*m_db, checkpointId, metrics);
        transaction.commit();
    });
}

std::vector<CheckpointRow> Ledger::checkpoints(int64_t runId)
{
    return guarded(m_path, "listing checkpoints", [&] {
        requireRun(runId);
        Statement select(*m_db, "SELECT id, run, step, created FROM checkpoints WHERE run = ? ORDER BY id");
        select.bind(1, runId);
        std::vector<CheckpointRow> out;
        while (select.step())
            out.push_back({select.columnInt(0), select.columnInt(1), select.columnInt(2), select.columnText(3)});
        return out;
    });
}

std::vector<Metric> Ledger::metrics(int64_t checkpointId)
{
    return guarded(m_path, "reading metrics", [&] {
        Statement select(*m_db, "SELECT name, value, edit FROM metrics WHERE checkpoint = ? ORDER BY id");
        select.bind(1, checkpointId);
        std::vector<Metric> out;
        while (select.step())
            out.push_back({select.columnText(0), select.columnDouble(1), optionalInt(select, 2)});
        return out;
    });
}

// --- rollback ---------------------------------------------------------------

RollbackEvent Ledger::recordRollback(int64_t runId, const std::string &kind, std::optional<int64_t> targetStep,
                                     std::optional<int64_t> targetEdit, std::optional<int64_t> targetEvent,
                                     const std::vector<int64_t> &deactivate, const std::vector<int64_t> &activate)
{
    // Runs inside the caller's transaction.
    Statement insert(*m_db, "INSERT INTO rollback_events (run, kind, target_step, target_edit, target_event) "
                            "VALUES (?, ?, ?, ?, ?)");
    insert.bind(1, runId);
    insert.bind(2, kind);
    bindOptional(insert, 3, targetStep);
    bindOptional(insert, 4, targetEdit);
    bindOptional(insert, 5, targetEvent);
    insert.step();
    const int64_t eventId = m_db->lastInsertId();
    Statement change(*m_db, "INSERT INTO rollback_changes (event, edit, active) VALUES (?, ?, ?)");
    Statement flag(*m_db, "UPDATE edits SET active = ? WHERE id = ? AND run = ?");
    auto apply = [&](const std::vector<int64_t> &edits, int64_t active) {
        for (const auto edit : edits) {
            change.reset();
            change.bind(1, eventId);
            change.bind(2, edit);
            change.bind(3, active);
            change.step();
            flag.reset();
            flag.bind(1, active);
            flag.bind(2, edit);
            flag.bind(3, runId);
            flag.step();
        }
    };
    apply(deactivate, 0);
    apply(activate, 1);
    if (targetEvent) {
        Statement undone(*m_db, "UPDATE rollback_events SET undone_by = ? WHERE id = ?");
        undone.bind(1, eventId);
        undone.bind(2, *targetEvent);
        undone.step();
    }
    return rollbackEvent(eventId);
}

RollbackEvent Ledger::revertToStep(int64_t runId, int64_t step)
{
    requireWritable();
    return guarded(m_path, "reverting", [&] {
        Transaction transaction(*m_db);
        requireRun(runId);
        requireWriter(runId);
        if (step < 0)
            throw LedgerError("cannot revert run " + std::to_string(runId) + " to step " + std::to_string(step) +
                              ": steps start at 0 (the base model)");
        Statement select(*m_db, "SELECT id FROM edits WHERE run = ? AND active = 1 AND step > ? ORDER BY step");
        select.bind(1, runId);
        select.bind(2, step);
        std::vector<int64_t> edits;
        while (select.step())
            edits.push_back(select.columnInt(0));
        if (edits.empty())
            throw LedgerError("run " + std::to_string(runId) + " has no active edit after step " +
                              std::to_string(step) + ": nothing to revert");
        auto event = recordRollback(runId, "revert", step, std::nullopt, std::nullopt, edits, {});
        transaction.commit();
        return event;
    });
}

RollbackEvent Ledger::removeEdit(int64_t runId, int64_t editId)
{
    requireWritable();
    return guarded(m_path, "removing an edit", [&] {
        Transaction transaction(*m_db);
        requireRun(runId);
        requireWriter(runId);
        Statement select(*m_db, "SELECT run, active FROM edits WHERE id = ?");
        select.bind(1, editId);
        if (!select.step() || select.columnInt(0) != runId)
            throw LedgerError("run " + std::to_string(runId) + " has no edit " + std::to_string(editId) +
                              " (`oedit report --db " + m_path + " --run " + std::to_string(runId) +
                              "` lists its edits)");
        if (select.columnInt(1) == 0)
            throw LedgerError("edit " + std::to_string(editId) + " of run " + std::to_string(runId) +
                              " is already rolled back");
        auto event = recordRollback(runId, "remove", std::nullopt, editId, std::nullopt, {editId}, {});
        transaction.commit();
        return event;
    });
}

RollbackEvent Ledger::undoRollback(int64_t eventId)
{
    requireWritable();
    return guarded(m_path, "undoing a rollback", [&] {
        Transaction transaction(*m_db);
        const auto event = rollbackEvent(eventId);
        requireWriter(event.run);
        if (event.kind == "redo")
            throw LedgerError("event " + std::to_string(eventId) +
                              " is itself an undo; to take its edits out again, revert or remove them");
        if (event.undoneBy)
            throw LedgerError("rollback event " + std::to_string(eventId) + " was already undone by event " +
                              std::to_string(*event.undoneBy));
        // Only edits still inactive come back (a later rollback may have
        // touched them; what it did stays recorded in its own event).
        std::vector<int64_t> activate;
        Statement state(*m_db, "SELECT active FROM edits WHERE id = ?");
        for (const auto edit : event.deactivated) {
            state.reset();
            state.bind(1, edit);
            if (state.step() && state.columnInt(0) == 0)
                activate.push_back(edit);
        }
        auto redo = recordRollback(event.run, "redo", std::nullopt, std::nullopt, eventId, {}, activate);
        transaction.commit();
        return redo;
    });
}

RollbackEvent Ledger::rollbackEvent(int64_t eventId)
{
    return guarded(m_path, "reading a rollback event", [&] {
        Statement select(*m_db, "SELECT id, run, kind, target_step, target_edit, target_event, undone_by, created "
                                "FROM rollback_events WHERE id = ?");
        select.bind(1, eventId);
        if (!select.step())
            throw LedgerError("ledger '" + m_path + "' has no rollback event " + std::to_string(eventId));
        RollbackEvent event;
        event.id = select.columnInt(0);
        event.run = select.columnInt(1);
        event.kind = select.columnText(2);
        event.targetStep = optionalInt(select, 3);
        event.targetEdit = optionalInt(select, 4);
        event.targetEvent = optionalInt(select, 5);
        event.undoneBy = optionalInt(select, 6);
        event.created = select.columnText(7);
        Statement changes(*m_db, "SELECT rollback_changes.edit, rollback_changes.active FROM rollback_changes "
                                 "JOIN edits ON edits.id = rollback_changes.edit "
                                 "WHERE event = ? ORDER BY edits.step");
        changes.bind(1, eventId);
        while (changes.step())
            (changes.columnInt(1) ? event.activated : event.deactivated).push_back(changes.columnInt(0));
        return event;
    });
}

std::vector<RollbackEvent> Ledger::rollbackEvents(int64_t runId)
{
    std::vector<int64_t> ids = guarded(m_path, "listing rollback events", [&] {
        requireRun(runId);
        Statement select(*m_db, "SELECT id FROM rollback_events WHERE run = ? ORDER BY id");
        select.bind(1, runId);
        std::vector<int64_t> out;
        while (select.step())
            out.push_back(select.columnInt(0));
        return out;
    });
    std::vector<RollbackEvent> out;
    for (const auto id : ids)
        out.push_back(rollbackEvent(id));
    return out;
}

IntegrityReport Ledger::integrityCheck()
{
    return guarded(m_path, "checking integrity", [&] {
        IntegrityReport report;
        {
            Statement check(*m_db, "PRAGMA integrity_check");
            while (check.step()) {
                const auto line = check.columnText(0);
                if (line != "ok")
                    report.problems.push_back("integrity_check: " + line);
            }
        }
        {
            Statement check(*m_db, "PRAGMA foreign_key_check");
            while (check.step())
                report.problems.push_back("foreign key: table " + check.columnText(0) + " row " +
                                          std::to_string(check.columnInt(1)) + " refers to a missing " +
                                          check.columnText(2) + " row");
        }
        {
            Statement check(*m_db, "SELECT edit, layer, kind, dtype, rows, cols, length(a), length(b) FROM updates");
            while (check.step()) {
                const auto dtype = check.columnText(3);
                const int64_t element = dtype == "f64" ? 8 : 4;
                const auto kind = check.columnText(2);
                const int64_t rows = check.columnInt(4), cols = check.columnInt(5);
                const int64_t a = check.columnInt(6), b = check.columnIsNull(7) ? -1 : check.columnInt(7);
                // Checked products: a damaged row's sizes may overflow.
                int64_t rowBytes = 0, colBytes = 0, denseBytes = 0;
                const bool fits = rows >= 0 && cols >= 0 && !__builtin_mul_overflow(rows, element, &rowBytes) &&
                                  !__builtin_mul_overflow(cols, element, &colBytes) &&
                                  !__builtin_mul_overflow(rowBytes, cols, &denseBytes);
                const bool known = (dtype == "f32" || dtype == "f64") &&
                                   (kind == "rank1" || kind == "dense" || kind == "keys");
                const bool good = fits && known &&
                                  (kind == "rank1" ? (a == rowBytes && b == colBytes) : (a == denseBytes && b < 0));
                if (!good)
                    report.problems.push_back("update of layer " + std::to_string(check.columnInt(1)) + " of edit " +
                                              std::to_string(check.columnInt(0)) +
                                              ": BLOB size does not match its shape");
            }
        }
        {
            Statement check(*m_db, "SELECT id FROM edits WHERE NOT EXISTS "
                                   "(SELECT 1 FROM updates WHERE updates.edit = edits.id AND kind != 'keys')");
            while (check.step())
                report.problems.push_back("edit " + std::to_string(check.columnInt(0)) + " has no stored update");
        }
        report.ok = report.problems.empty();
        return report;
    });
}

// --- model hash -------------------------------------------------------------

std::string modelFolderHash(const std::string &modelDir)
{
    constexpr uint64_t kOffset = 1469598103934665603ULL, kPrime = 1099511628211ULL;
    uint64_t h = kOffset;
    auto mix = [&](const void *data, size_t bytes) {
        const auto *p = static_cast<const unsigned char *>(data);
        for (size_t i = 0; i < bytes; ++i) {
            h ^= p[i];
            h *= kPrime;
        }
    };
    std::error_code ec;
    if (!fs::is_directory(modelDir, ec))
        throw LedgerError("model folder '" + modelDir + "' does not exist");
    std::vector<fs::path> files;
    for (const auto &entry : fs::directory_iterator(modelDir, ec)) {
        const auto name = entry.path().filename().string();
        const auto ext = entry.path().extension().string();
        if (entry.is_regular_file() && (name == "config.json" || ext == ".safetensors" || ext == ".bin"))
            files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
        throw LedgerError("model folder '" + modelDir + "' has no config.json or weight files");
    constexpr size_t kChunk = size_t(1) << 20, kSampleAbove = size_t(256) << 20;
    std::vector<char> buffer(kChunk);
    for (const auto &file : files) {
        const auto name = file.filename().string();
        mix(name.data(), name.size());
        const uint64_t size = fs::file_size(file, ec);
        mix(&size, sizeof size);
        std::ifstream in(file, std::ios::binary);
        if (!in)
            throw LedgerError("cannot read '" + file.string() + "' to hash the model");
        // Large files: every 64th MiB-chunk plus the last one.
        const size_t stride = size > kSampleAbove ? 64 * kChunk : kChunk;
        for (uint64_t offset = 0; offset < size; offset += stride) {
            in.seekg(static_cast<std::streamoff>(offset));
            in.read(buffer.data(), static_cast<std::streamsize>(kChunk));
            mix(buffer.data(), static_cast<size_t>(in.gcount()));
            in.clear();
        }
        if (size > kSampleAbove && size > kChunk) {
            in.seekg(static_cast<std::streamoff>(size - kChunk));
            in.read(buffer.data(), static_cast<std::streamsize>(kChunk));
            mix(buffer.data(), static_cast<size_t>(in.gcount()));
        }
    }
    std::ostringstream out;
    out << std::hex;
    out.width(16);
    out.fill('0');
    out << h;
    return out.str();
}

} // namespace oedit::store

namespace oedit::store {

nlohmann::json StoredRequest::toJson() const
{
    nlohmann::json j = {{"subject", subject}, {"prompt", prompt}, {"target_new", targetNew}};
    if (targetTrue)
        j["target_true"] = *targetTrue;
    return j;
}

StoredRequest StoredRequest::fromJson(const nlohmann::json &json)
{
    StoredRequest r;
    r.subject = json.value("subject", std::string());
    r.prompt = json.value("prompt", std::string());
    r.targetNew = json.value("target_new", std::string());
    if (json.contains("target_true"))
        r.targetTrue = json["target_true"].get<std::string>();
    return r;
}

int64_t StoredTensor::count() const
{
    int64_t n = 1;
    for (const auto size : shape)
        if (__builtin_mul_overflow(n, size, &n))
            throw LedgerError("a stored tensor's shape is too large: the ledger is damaged (restore a copy)");
    return n;
}

} // namespace oedit::store
