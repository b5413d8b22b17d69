// Fuzzes the edit ledger (core/store/ledger.*, sqlite_db.*) with the ledger
// file as untrusted input: a user opens a ledger someone sent, or one a
// crash, a full disk or another tool damaged. The first byte picks the attack:
//
//   even ('F'): the rest of the input is a whole SQLite file, opened with
//               Ledger (which may migrate it);
//   odd ('M'):  the rest is a program of row mutations done with raw SQL
//               (foreign keys off, CHECK constraints ignored, NOT NULL
//               bypassed through the schema) on a valid ledger written with
//               the public API (ledger_sample.h): wrong BLOB sizes and
//               shapes, unknown dtypes and kinds, bad steps, dangling
//               references, invalid JSON, NULLs, other schema versions.
//
// Then every read of the ledger runs: on the open connection (mutations),
// opened read-only (never migrated or written), and opened for writing (which
// migrates an older schema after a backup copy, or opens a newer one for
// viewing). Each must succeed or throw LedgerError; another
// exception, a crash or a sanitizer report is a bug, and so is a loaded
// update whose bytes do not match its dtype and shape (code that turns it into
// a tensor would read past the bytes or allocate from the shape).
#include "fuzz_util.h"
#include "ledger_sample.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <set>
#include <utility>

namespace {

using oedit::store::Ledger;
using oedit::store::LedgerError;
using oedit::store::StoredTensor;
using oedit::store::StoredUpdate;

// The input after the mode byte, read front to back; 0 / empty once used up.
class Reader {
public:
    Reader(const uint8_t *data, size_t size) : m_data(data), m_size(size) {}
    bool empty() const { return m_pos >= m_size; }
    uint8_t byte() { return empty() ? 0 : m_data[m_pos++]; }
    uint64_t u64()
    {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v |= uint64_t(byte()) << (8 * i);
        return v;
    }
    std::string bytes(size_t n)
    {
        n = std::min(n, m_size - std::min(m_pos, m_size));
        std::string out(reinterpret_cast<const char *>(m_data + m_pos), n);
        m_pos += n;
        return out;
    }

private:
    const uint8_t *m_data;
    size_t m_size;
    size_t m_pos = 0;
};

// --- checks on what the reads return ------------------------------------------

// A tensor the ledger hands out must hold exactly the bytes its shape needs.
void checkTensor(const StoredTensor &t, size_t dimensions)
{
    if ((t.dtype != "f32" && t.dtype != "f64") || t.shape.size() != dimensions)
        oedit::fuzz::fail();
    uint64_t bytes = t.dtype == "f64" ? 8 : 4;
    for (const int64_t size : t.shape)
        if (size < 0 || __builtin_mul_overflow(bytes, uint64_t(size), &bytes))
            oedit::fuzz::fail();
    if (bytes != t.bytes.size())
        oedit::fuzz::fail();
}

void checkUpdates(const std::vector<StoredUpdate> &updates)
{
    for (const StoredUpdate &u : updates) {
        if (u.kind == "rank1") {
            checkTensor(u.a, 1);
            checkTensor(u.b, 1);
        } else {
            checkTensor(u.a, 2);
        }
    }
}

// --- the reads -----------------------------------------------------------------

// Ids straight from the tables (when they are readable), so that a run whose
// JSON is damaged does not hide its edits from the reads.
std::vector<int64_t> rawIds(Ledger &ledger, const char *sql)
{
    std::vector<int64_t> ids;
    sqlite3_stmt *stmt = nullptr;
    if (sqlite3_prepare_v2(ledger.database().handle(), sql, -1, &stmt, nullptr) == SQLITE_OK)
        while (ids.size() < 32 && sqlite3_step(stmt) == SQLITE_ROW)
            ids.push_back(sqlite3_column_int64(stmt, 0));
    sqlite3_finalize(stmt);
    return ids;
}

template<typename F> void attempt(F &&body)
{
    try {
        body();
    } catch (const LedgerError &) {
    }
}

void exerciseReads(Ledger &ledger)
{
    std::set<int64_t> runIds, editIds, checkpointIds, eventIds;
    attempt([&] { (void)ledger.schemaVersion(); });
    attempt([&] {
        for (const auto &run : ledger.runs())
            runIds.insert(run.id);
    });
    // One query per table: in a damaged file some of them are missing.
    const std::pair<std::set<int64_t> *, const char *> queries[] = {
        {&runIds, "SELECT id FROM runs"},
        {&runIds, "SELECT DISTINCT run FROM edits"},
        {&editIds, "SELECT id FROM edits"},
        {&editIds, "SELECT DISTINCT edit FROM updates"},
        {&editIds, "SELECT DISTINCT edit FROM rollback_changes"},
        {&checkpointIds, "SELECT id FROM checkpoints"},
        {&checkpointIds, "SELECT DISTINCT checkpoint FROM metrics"},
        {&eventIds, "SELECT id FROM rollback_events"}};
    for (const auto &[ids, sql] : queries)
        for (const int64_t id : rawIds(ledger, sql))
            ids->insert(id);
    runIds.insert(1000); // most likely a missing run
    editIds.insert(0);

    for (const int64_t run : runIds) {
        attempt([&] { (void)ledger.run(run); });
        attempt([&] {
            for (const auto &edit : ledger.listEdits(run))
                editIds.insert(edit.id);
        });
        attempt([&] { (void)ledger.listEdits(run, true); });
        attempt([&] { (void)ledger.activeEdits(run); });
        attempt([&] { (void)ledger.activeEdits(run, 1); });
        attempt([&] { (void)ledger.activeEdits(run, -1); });
        attempt([&] {
            for (const auto &checkpoint : ledger.checkpoints(run))
                checkpointIds.insert(checkpoint.id);
        });
        attempt([&] {
            for (const auto &event : ledger.rollbackEvents(run))
                eventIds.insert(event.id);
        });
        attempt([&] { (void)ledger.activeEdits(run, ledger.lastStep(run)); });
        attempt([&] { (void)ledger.activeEditCount(run); });
        attempt([&] { (void)ledger.runLease(run); });
    }
    for (const int64_t checkpoint : checkpointIds)
        attempt([&] { (void)ledger.metrics(checkpoint); });
    for (const int64_t event : eventIds)
        attempt([&] { (void)ledger.rollbackEvent(event); });
    for (const int64_t edit : editIds) {
        attempt([&] { (void)ledger.editRow(edit); });
        attempt([&] {
            const auto updates = ledger.loadUpdates(edit);
            for (const auto &u : updates)
                if (u.kind == "keys")
                    oedit::fuzz::fail(); // loadUpdates leaves the keys rows out
            checkUpdates(updates);
        });
        attempt([&] { checkUpdates(ledger.loadRecord(edit).updates); });
    }
    attempt([&] {
        const auto report = ledger.integrityCheck();
        if (report.ok != report.problems.empty())
            oedit::fuzz::fail();
    });
}

// --- row mutations -------------------------------------------------------------

struct Column {
    const char *table;
    const char *name;
};

// Every column of the schema (version 3).
constexpr Column kColumns[] = {
    {"models", "path"},          {"models", "hash"},
    {"runs", "model"},           {"runs", "method"},
    {"runs", "hparams"},         {"runs", "seed"},
    {"runs", "dataset"},         {"runs", "base_hash"},
    {"runs", "created"},         {"runs", "status"},
    {"runs", "options"},         {"edits", "run"},
    {"edits", "step"},           {"edits", "result_id"},
    {"edits", "method"},         {"edits", "request"},
    {"edits", "hparams"},        {"edits", "diagnostics"},
    {"edits", "timings"},        {"edits", "created"},
    {"edits", "active"},         {"updates", "edit"},
    {"updates", "position"},     {"updates", "layer"},
    {"updates", "kind"},         {"updates", "dtype"},
    {"updates", "rows"},         {"updates", "cols"},
    {"updates", "a"},            {"updates", "b"},
    {"checkpoints", "run"},      {"checkpoints", "step"},
    {"checkpoints", "created"},  {"metrics", "checkpoint"},
    {"metrics", "name"},         {"metrics", "value"},
    {"metrics", "edit"},         {"rollback_events", "run"},
    {"rollback_events", "kind"}, {"rollback_events", "target_step"},
    {"rollback_events", "target_edit"}, {"rollback_events", "target_event"},
    {"rollback_events", "undone_by"},   {"rollback_events", "created"},
    {"rollback_changes", "event"},      {"rollback_changes", "edit"},
    {"rollback_changes", "active"},     {"schema_version", "version"},
    {"run_leases", "run"},              {"run_leases", "host"},
    {"run_leases", "pid"},              {"run_leases", "process_start"},
    {"run_leases", "since"},            {"run_leases", "heartbeat"},
};

constexpr Column kJsonColumns[] = {{"edits", "request"}, {"edits", "hparams"},  {"edits", "diagnostics"},
                                   {"edits", "timings"}, {"runs", "hparams"},   {"runs", "options"}};

constexpr const char *kTables[] = {"models",          "runs",             "edits",          "updates",
                                   "checkpoints",     "metrics",          "schema_version", "rollback_events",
                                   "rollback_changes", "run_leases"};

const int64_t kIntegers[] = {0,
                             1,
                             2,
                             3,
                             4,
                             -1,
                             -2,
                             1000,
                             (int64_t(1) << 31) - 1,
                             int64_t(1) << 31,
                             int64_t(1) << 32,
                             (int64_t(1) << 32) + 2,
                             int64_t(1) << 40,
                             int64_t(1) << 61,
                             int64_t(1) << 62,
                             (int64_t(1) << 62) + 1,
                             std::numeric_limits<int64_t>::max(),
                             std::numeric_limits<int64_t>::min(),
                             std::numeric_limits<int64_t>::min() + 1,
                             -(int64_t(1) << 40)};

const char *const kTexts[] = {"",
                              "f16",
                              "bf16",
                              "F32",
                              "f64",
                              "f32",
                              "rank1",
                              "dense",
                              "keys",
                              "sparse",
                              "revert",
                              "remove",
                              "redo",
                              "finished",
                              "null",
                              "[]",
                              "{}",
                              "1e999",
                              "-0",
                              "\"text\"",
                              "{\"subject\": 1}",
                              "{\"target_true\": 5}",
                              "{\"target_true\": null}",
                              "{\"subject\": \"s\", \"prompt\": [], \"target_new\": {}}",
                              "{\"loss_curve\": \"x\"}",
                              "{\"a\": 1, \"a\": 2}",
                              "{\"a\": \"\\ud800\"}",
                              "{\"a\": 1",
                              "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                              "\xff\xfe{}",
                              "{\"a\": \"\xc3\x28\"}"};

class Mutator {
public:
    Mutator(sqlite3 *db, Reader &in) : m_db(db), m_in(in) {}

    // Runs one mutation; failures of the SQL (a UNIQUE clash, a missing
    // table after an earlier DROP) just leave the ledger as it was.
    void step()
    {
        const uint8_t op = m_in.byte();
        switch (op % 16) {
        case 0: // a BLOB of the wrong size (or the right size, off by a few)
            setColumn("updates", m_in.byte() & 1 ? "a" : "b", [&](sqlite3_stmt *s, int i) { bindBlob(s, i); });
            break;
        case 1: // rows / cols: negative, zero, huge
            setColumn("updates", m_in.byte() & 1 ? "rows" : "cols",
                      [&](sqlite3_stmt *s, int i) { sqlite3_bind_int64(s, i, integer()); });
            break;
        case 2: // unknown dtypes and kinds
            setColumn("updates", m_in.byte() & 1 ? "dtype" : "kind", [&](sqlite3_stmt *s, int i) { bindText(s, i); });
            break;
        case 3: // negative, zero, duplicate or huge steps
            if (m_in.byte() & 1)
                execRow("edits", "UPDATE edits SET step = (SELECT step FROM edits ORDER BY random() LIMIT 1) "
                                 "WHERE rowid = ?");
            else
                setColumn("edits", "step", [&](sqlite3_stmt *s, int i) { sqlite3_bind_int64(s, i, integer()); });
            break;
        case 4: { // dangling references: edits of a missing run, updates of a missing edit, ...
            static constexpr Column refs[] = {{"edits", "run"},          {"updates", "edit"},
                                              {"checkpoints", "run"},    {"metrics", "checkpoint"},
                                              {"metrics", "edit"},       {"rollback_events", "run"},
                                              {"rollback_events", "target_edit"},
                                              {"rollback_events", "target_event"},
                                              {"rollback_events", "undone_by"},
                                              {"rollback_changes", "edit"}, {"rollback_changes", "event"},
                                              {"runs", "model"},            {"run_leases", "run"}};
            const Column &c = refs[m_in.byte() % std::size(refs)];
            setColumn(c.table, c.name, [&](sqlite3_stmt *s, int i) { sqlite3_bind_int64(s, i, integer()); });
            break;
        }
        case 5: { // rollback_changes naming missing edits or events, odd flags
            sqlite3_stmt *s = prepare("INSERT INTO rollback_changes (event, edit, active) VALUES (?, ?, ?)");
            sqlite3_bind_int64(s, 1, integer());
            sqlite3_bind_int64(s, 2, integer());
            bindAny(s, 3);
            run(s);
            break;
        }
        case 6: { // invalid or unexpected JSON
            const Column &c = kJsonColumns[m_in.byte() % std::size(kJsonColumns)];
            setColumn(c.table, c.name, [&](sqlite3_stmt *s, int i) { bindText(s, i); });
            break;
        }
        case 7: { // NULL in any column, NOT NULL ones too
            const Column &c = kColumns[m_in.byte() % std::size(kColumns)];
            setNull(c);
            break;
        }
        case 8: { // the schema version: other numbers, none, two, or no table
            const uint8_t how = m_in.byte() % 5;
            if (how == 0) {
                exec("DELETE FROM schema_version");
            } else if (how == 1) {
                sqlite3_stmt *s = prepare("INSERT INTO schema_version (version) VALUES (?)");
                sqlite3_bind_int64(s, 1, integer());
                run(s);
            } else if (how == 2) {
                exec("DROP TABLE schema_version");
            } else {
                sqlite3_stmt *s = prepare("UPDATE schema_version SET version = ?");
                if (how == 3)
                    sqlite3_bind_int64(s, 1, integer());
                else
                    bindAny(s, 1);
                run(s);
            }
            break;
        }
        case 9: // active flags other than 0 and 1
            setColumn("edits", "active", [&](sqlite3_stmt *s, int i) { bindAny(s, i); });
            break;
        case 10: { // rollback events of unknown kinds, pointing anywhere
            static constexpr const char *columns[] = {"kind", "target_step", "target_edit", "target_event",
                                                      "undone_by"};
            setColumn("rollback_events", columns[m_in.byte() % std::size(columns)],
                      [&](sqlite3_stmt *s, int i) { bindAny(s, i); });
            break;
        }
        case 11: { // a row gone
            const char *table = kTables[m_in.byte() % std::size(kTables)];
            execRow(table, std::string("DELETE FROM ") + table + " WHERE rowid = ?");
            break;
        }
        case 12: { // a row copied under a new id: two edits of one step, two versions, ...
            struct Copy {
                const char *table;
                const char *sql;
            };
            static constexpr Copy copies[] = {
                {"runs", "INSERT INTO runs (model, method, hparams, seed, dataset, base_hash, created, status, options) "
                         "SELECT model, method, hparams, seed, dataset, base_hash, created, status, options FROM runs "
                         "WHERE rowid = ?"},
                {"edits", "INSERT INTO edits (run, step, result_id, method, request, hparams, diagnostics, timings, "
                          "created, active) SELECT run, step + 1000, result_id, method, request, hparams, diagnostics, "
                          "timings, created, active FROM edits WHERE rowid = ?"},
                {"updates", "INSERT INTO updates (edit, position, layer, kind, dtype, rows, cols, a, b) SELECT edit, "
                            "position + 1000, layer, kind, dtype, rows, cols, a, b FROM updates WHERE rowid = ?"},
                {"checkpoints", "INSERT INTO checkpoints (run, step, created) SELECT run, step, created FROM "
                                "checkpoints WHERE rowid = ?"},
                {"metrics", "INSERT INTO metrics (checkpoint, name, value, edit) SELECT checkpoint, name, value, edit "
                            "FROM metrics WHERE rowid = ?"},
                {"rollback_events", "INSERT INTO rollback_events (run, kind, target_step, target_edit, target_event, "
                                    "undone_by, created) SELECT run, kind, target_step, target_edit, target_event, "
                                    "undone_by, created FROM rollback_events WHERE rowid = ?"},
                {"rollback_changes", "INSERT INTO rollback_changes (event, edit, active) SELECT event + 1, edit, "
                                     "1 - active FROM rollback_changes WHERE rowid = ?"},
                {"schema_version", "INSERT INTO schema_version SELECT * FROM schema_version WHERE rowid = ?"}};
            const Copy &c = copies[m_in.byte() % std::size(copies)];
            execRow(c.table, c.sql);
            break;
        }
        case 13: { // any value of any type in any column
            const Column &c = kColumns[m_in.byte() % std::size(kColumns)];
            setColumn(c.table, c.name, [&](sqlite3_stmt *s, int i) { bindAny(s, i); });
            break;
        }
        case 14: { // an update whose BLOB matches a shape that is wrong for its kind
            const int64_t rows = integer(), cols = integer();
            const int64_t element = m_in.byte() & 1 ? 8 : 4;
            const size_t size = size_t(m_in.byte()) * 4;
            sqlite3_stmt *s = prepare("UPDATE updates SET rows = ?, cols = ?, dtype = ?, a = zeroblob(?), "
                                      "b = CASE WHEN ? THEN zeroblob(?) ELSE NULL END WHERE rowid = ?");
            sqlite3_bind_int64(s, 1, rows);
            sqlite3_bind_int64(s, 2, cols);
            sqlite3_bind_text(s, 3, element == 8 ? "f64" : "f32", -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 4, int64_t(size));
            sqlite3_bind_int(s, 5, m_in.byte() & 1);
            sqlite3_bind_int64(s, 6, int64_t(m_in.byte()) * element);
            sqlite3_bind_int64(s, 7, row("updates"));
            run(s);
            break;
        }
        default: { // another application, or a JSON column holding raw input bytes
            if (m_in.byte() & 1) {
                exec("PRAGMA application_id = " + std::to_string(int32_t(integer())));
            } else {
                const Column &c = kJsonColumns[m_in.byte() % std::size(kJsonColumns)];
                const std::string text = m_in.bytes(m_in.byte());
                setColumn(c.table, c.name, [&](sqlite3_stmt *s, int i) {
                    sqlite3_bind_text(s, i, text.data(), int(text.size()), SQLITE_TRANSIENT);
                });
            }
            break;
        }
        }
    }

private:
    int64_t integer()
    {
        const uint8_t pick = m_in.byte();
        if (pick < std::size(kIntegers))
            return kIntegers[pick];
        if (pick < 128)
            return int64_t(pick) - 64;
        return int64_t(m_in.u64());
    }

    void bindText(sqlite3_stmt *s, int index)
    {
        const uint8_t pick = m_in.byte();
        if (pick < std::size(kTexts)) {
            sqlite3_bind_text(s, index, kTexts[pick], -1, SQLITE_STATIC);
        } else {
            const std::string text = m_in.bytes(pick - std::size(kTexts));
            sqlite3_bind_text(s, index, text.data(), int(text.size()), SQLITE_TRANSIENT);
        }
    }

    void bindBlob(sqlite3_stmt *s, int index)
    {
        const uint8_t pick = m_in.byte();
        if (pick & 1) {
            sqlite3_bind_zeroblob(s, index, int(pick >> 1) * 4 - 4);
        } else {
            const std::string bytes = m_in.bytes(pick >> 1);
            sqlite3_bind_blob(s, index, bytes.data(), int(bytes.size()), SQLITE_TRANSIENT);
        }
    }

    // An integer, a real, a text, a BLOB or NULL.
    void bindAny(sqlite3_stmt *s, int index)
    {
        switch (m_in.byte() % 6) {
        case 0: sqlite3_bind_int64(s, index, integer()); break;
        case 1: {
            const uint64_t bits = m_in.u64();
            double value;
            std::memcpy(&value, &bits, sizeof value);
            sqlite3_bind_double(s, index, value);
            break;
        }
        case 2: bindText(s, index); break;
        case 3: bindBlob(s, index); break;
        case 4: sqlite3_bind_null(s, index); break;
        default: sqlite3_bind_double(s, index, double(integer()) + 0.5); break;
        }
    }

    // The rowid of one of the table's rows (0, which no row has, if it is empty).
    int64_t row(const char *table)
    {
        const uint8_t pick = m_in.byte();
        sqlite3_stmt *s = prepare(std::string("SELECT rowid FROM ") + table + " ORDER BY rowid LIMIT 1 OFFSET ?");
        sqlite3_bind_int(s, 1, pick % 16);
        int64_t id = 0;
        if (s && sqlite3_step(s) == SQLITE_ROW)
            id = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return id;
    }

    template<typename Bind> void setColumn(const char *table, const char *column, Bind &&bind)
    {
        const int64_t id = row(table);
        sqlite3_stmt *s = prepare(std::string("UPDATE ") + table + " SET " + column + " = ? WHERE rowid = ?");
        if (!s)
            return;
        bind(s, 1);
        sqlite3_bind_int64(s, 2, id);
        run(s);
    }

    void execRow(const char *table, const std::string &sql)
    {
        const int64_t id = row(table);
        sqlite3_stmt *s = prepare(sql);
        sqlite3_bind_int64(s, 1, id);
        run(s);
    }

    // NOT NULL cannot be switched off: take it out of the table's schema,
    // write the NULL and put the schema back, as a buggy tool would leave it.
    void setNull(const Column &c)
    {
        const int64_t id = row(c.table);
        sqlite3_stmt *s = prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?");
        if (!s)
            return;
        sqlite3_bind_text(s, 1, c.table, -1, SQLITE_STATIC);
        std::optional<std::string> schema;
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
            schema = reinterpret_cast<const char *>(sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        if (!schema)
            return;
        exec("PRAGMA writable_schema = ON");
        s = prepare("UPDATE sqlite_master SET sql = replace(sql, 'NOT NULL', '') WHERE type = 'table' AND name = ?");
        sqlite3_bind_text(s, 1, c.table, -1, SQLITE_STATIC);
        run(s);
        exec("PRAGMA writable_schema = RESET");
        s = prepare(std::string("UPDATE ") + c.table + " SET " + c.name + " = NULL WHERE rowid = ?");
        sqlite3_bind_int64(s, 1, id);
        run(s);
        exec("PRAGMA writable_schema = ON");
        s = prepare("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?");
        sqlite3_bind_text(s, 1, schema->c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, c.table, -1, SQLITE_STATIC);
        run(s);
        exec("PRAGMA writable_schema = RESET");
        exec("PRAGMA writable_schema = OFF");
    }

    sqlite3_stmt *prepare(const std::string &sql)
    {
        sqlite3_stmt *s = nullptr;
        if (sqlite3_prepare_v2(m_db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
            sqlite3_finalize(s);
            return nullptr;
        }
        return s;
    }
    static void run(sqlite3_stmt *s)
    {
        if (s)
            (void)sqlite3_step(s);
        sqlite3_finalize(s);
    }
    void exec(const std::string &sql) { (void)sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, nullptr); }

    sqlite3 *m_db;
    Reader &m_in;
};

const oedit::fuzz::ScratchDir &scratch()
{
    static const oedit::fuzz::ScratchDir dir;
    return dir;
}

// The ledger, its -wal, -shm and -journal, and the copies a migration keeps
// (<name>.v<N>.bak, <name>.v<N>.<n>.bak).
void removeLedger(const std::string &name)
{
    std::error_code ignored;
    std::vector<std::string> names;
    for (const auto &entry : std::filesystem::directory_iterator(scratch().path(), ignored))
        if (entry.path().filename().string().rfind(name, 0) == 0)
            names.push_back(entry.path().filename().string());
    for (const auto &file : names)
        scratch().remove(file);
}

// The sample ledger's bytes, written once per process.
const std::string &sampleLedger()
{
    static const std::string bytes = [] {
        const std::string name = "sample.ledger";
        const std::string path = scratch().path() + "/" + name;
        oedit::fuzz::writeSampleLedger(path);
        std::ifstream in(path, std::ios::binary);
        std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        removeLedger(name);
        if (out.empty())
            oedit::fuzz::fail();
        return out;
    }();
    return bytes;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const bool mutate = data[0] & 1;
    const std::string name = "ledger";
    removeLedger(name);
    const std::string path = mutate ? scratch().write(name, sampleLedger())
                                    : scratch().write(name, std::string(reinterpret_cast<const char *>(data + 1), size - 1));
    if (mutate) {
        std::optional<Ledger> ledger;
        try {
            ledger.emplace(path);
        } catch (const LedgerError &) {
            oedit::fuzz::fail(); // the sample ledger opens
        }
        sqlite3 *db = ledger->database().handle();
        sqlite3_exec(db, "PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON; PRAGMA synchronous = OFF",
                     nullptr, nullptr, nullptr);
        Reader in(data + 1, size - 1);
        for (int steps = 0; steps < 64 && !in.empty(); ++steps)
            Mutator(db, in).step();
        sqlite3_exec(db, "PRAGMA foreign_keys = ON; PRAGMA ignore_check_constraints = OFF", nullptr, nullptr, nullptr);
        exerciseReads(*ledger);
    }
    // For triage: `OEDIT_FUZZ_LEDGER_DUMP=damaged.ledger fuzz_ledger INPUT`
    // keeps the file as the reads found it (after the mutations), for sqlite3.
    if (const char *dump = std::getenv("OEDIT_FUZZ_LEDGER_DUMP"))
        std::filesystem::copy_file(path, dump, std::filesystem::copy_options::overwrite_existing);
    // Read-only: the file as it is. Then for writing, which runs the schema
    // checks and migrations on the damaged file.
    for (const bool readOnly : {true, false}) {
        try {
            Ledger ledger(path, readOnly);
            if (readOnly && !ledger.readOnly())
                oedit::fuzz::fail();
            exerciseReads(ledger);
        } catch (const LedgerError &) {
        }
    }
    removeLedger(name);
    return 0;
}
