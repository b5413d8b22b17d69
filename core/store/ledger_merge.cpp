// Merging ledgers (see ledger_merge.h): every table of schema 3 but the
// leases, copied run by run with ids renumbered, in one transaction.
#include "store/ledger_merge.h"

#include "store/ledger.h"
#include "store/sqlite_db.h"

#include <filesystem>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace oedit::store {

namespace fs = std::filesystem;

namespace {

// The tables below are copied column by column: a schema step that adds a
// table or a column must teach the merge about it (tst_ledger checks that the
// schema is still the one this was written for).
constexpr int kMergedSchema = 3;

using IdMap = std::unordered_map<int64_t, int64_t>;

// What a run holds, to tell an identical copy from one that went on.
struct RunContent {
    std::string status;
    int64_t edits = 0, lastStep = 0, active = 0, checkpoints = 0, metrics = 0, rollbacks = 0, undone = 0;

    bool operator==(const RunContent &other) const
    {
        return status == other.status && edits == other.edits && lastStep == other.lastStep &&
               active == other.active && checkpoints == other.checkpoints && metrics == other.metrics &&
               rollbacks == other.rollbacks && undone == other.undone;
    }

    std::string describe() const
    {
        std::ostringstream out;
        out << edits << " edits (" << active << " active), " << checkpoints << " checkpoints, " << rollbacks
            << " rollbacks, status " << status;
        return out.str();
    }
};

RunContent runContent(Database &db, int64_t run)
{
    Statement query(db, "SELECT (SELECT status FROM runs WHERE id = ?1),"
                        " (SELECT count(*) FROM edits WHERE run = ?1),"
                        " (SELECT coalesce(max(step), 0) FROM edits WHERE run = ?1),"
                        " (SELECT coalesce(sum(active), 0) FROM edits WHERE run = ?1),"
                        " (SELECT count(*) FROM checkpoints WHERE run = ?1),"
                        " (SELECT count(*) FROM metrics JOIN checkpoints ON metrics.checkpoint = checkpoints.id"
                        "   WHERE checkpoints.run = ?1),"
                        " (SELECT count(*) FROM rollback_events WHERE run = ?1),"
                        " (SELECT count(undone_by) FROM rollback_events WHERE run = ?1)");
    query.bind(1, run);
    query.step();
    RunContent content;
    content.status = query.columnText(0);
    content.edits = query.columnInt(1);
    content.lastStep = query.columnInt(2);
    content.active = query.columnInt(3);
    content.checkpoints = query.columnInt(4);
    content.metrics = query.columnInt(5);
    content.rollbacks = query.columnInt(6);
    content.undone = query.columnInt(7);
    return content;
}

int64_t mapped(const IdMap &map, int64_t id, const char *what, const std::string &source)
{
    auto found = map.find(id);
    if (found == map.end())
        throw LedgerError("ledger '" + source + "' is damaged: a row refers to " + what + " " + std::to_string(id) +
                          " of another run or of none: restore a copy of it, or leave it out");
    return found->second;
}

void bindMapped(Statement &insert, int index, const Statement &from, int column, const IdMap &map, const char *what,
                const std::string &source)
{
    if (from.columnIsNull(column))
        insert.bindNull(index);
    else
        insert.bind(index, mapped(map, from.columnInt(column), what, source));
}

class SourceMerger {
public:
    SourceMerger(Database &into, Database &from, const std::string &intoPath, MergedSource &out)
        : m_into(into), m_from(from), m_intoPath(intoPath), m_out(out)
    {
    }

    void mergeAllRuns()
    {
        Statement runs(m_from, "SELECT id, model, method, hparams, seed, dataset, base_hash, created, status, options "
                               "FROM runs ORDER BY id");
        while (runs.step()) {
            const int64_t sourceRun = runs.columnInt(0);
            if (auto existing = findRun(runs)) {
                const RunContent here = runContent(m_into, *existing), there = runContent(m_from, sourceRun);
                if (!(here == there))
                    throw LedgerError(
                        "run " + std::to_string(sourceRun) + " of '" + m_out.path + "' is run " +
                        std::to_string(*existing) + " of '" + m_intoPath +
                        "' (same model, method, hyperparameters, seed and start time), but the two copies differ (" +
                        there.describe() + " against " + here.describe() +
                        "): one of them went on after they were copied. Nothing was merged; merge the copy you "
                        "want to keep into a new ledger file");
                m_out.alreadyPresent.emplace_back(sourceRun, *existing);
                continue;
            }
            const int64_t run = copyRun(runs);
            m_out.added.emplace_back(sourceRun, run);
            m_addedHere.insert(run);
            if (runs.columnText(8) == "running")
                m_out.warnings.push_back(
                    "run " + std::to_string(sourceRun) +
                    " was still running (or was killed) when it was merged: it was copied as it stood; once it "
                    "ends, merge its ledger into a new file (a later copy would conflict with this one here)");
        }
    }

private:
    std::optional<int64_t> findRun(const Statement &run)
    {
        Statement find(m_into, "SELECT id FROM runs WHERE method = ? AND hparams = ? AND seed = ? AND dataset = ? "
                               "AND base_hash = ? AND created = ? AND options = ? ORDER BY id");
        const int columns[] = {2, 3, 4, 5, 6, 7, 9};
        for (int i = 0; i < 7; ++i)
            find.bindColumn(i + 1, run, columns[i]);
        // Two runs of this source alike in all but id (made in the same
        // millisecond) are two runs: neither is taken for the other's copy.
        while (find.step())
            if (!m_addedHere.count(find.columnInt(0)))
                return find.columnInt(0);
        return std::nullopt;
    }

    std::optional<int64_t> targetModel(const Statement &run)
    {
        if (run.columnIsNull(1))
            return std::nullopt;
        const int64_t sourceModel = run.columnInt(1);
        if (auto known = m_models.find(sourceModel); known != m_models.end())
            return known->second;
        Statement model(m_from, "SELECT path, hash, created FROM models WHERE id = ?");
        model.bind(1, sourceModel);
        if (!model.step())
            throw LedgerError("ledger '" + m_out.path + "' is damaged: run " + std::to_string(run.columnInt(0)) +
                              " names model " + std::to_string(sourceModel) + ", which it does not hold");
        const std::string path = model.columnText(0), hash = model.columnText(1);
        // The same weights are one model whatever folder they were read from
        // (each machine of a cluster has its own path to them).
        Statement byHash(m_into, "SELECT id FROM models WHERE hash = ? ORDER BY path = ? DESC, id LIMIT 1");
        byHash.bind(1, hash);
        byHash.bind(2, path);
        int64_t id = 0;
        if (byHash.step()) {
            id = byHash.columnInt(0);
        } else {
            Statement byPath(m_into, "SELECT hash FROM models WHERE path = ? LIMIT 1");
            byPath.bind(1, path);
            if (byPath.step())
                throw LedgerError("the runs of '" + m_out.path + "' edited the model '" + path + "' with content hash " +
                                  hash + ", but '" + m_intoPath + "' holds runs of another model under that name (hash " +
                                  byPath.columnText(0) +
                                  "): they did not edit the same weights. Nothing was merged; merge them into separate "
                                  "ledgers");
            Statement insert(m_into, "INSERT INTO models (path, hash, created) VALUES (?, ?, ?)");
            insert.bind(1, path);
            insert.bind(2, hash);
            insert.bindColumn(3, model, 2);
            insert.step();
            id = m_into.lastInsertId();
        }
        m_models.emplace(sourceModel, id);
        return id;
    }

    int64_t copyRun(const Statement &run)
    {
        const int64_t sourceRun = run.columnInt(0);
        const auto model = targetModel(run);
        Statement insertRun(m_into, "INSERT INTO runs (model, method, hparams, seed, dataset, base_hash, created, "
                                    "status, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        if (model)
            insertRun.bind(1, *model);
        else
            insertRun.bindNull(1);
        for (int column = 2; column <= 9; ++column)
            insertRun.bindColumn(column, run, column);
        insertRun.step();
        const int64_t targetRun = m_into.lastInsertId();

        IdMap edits, checkpoints, events;
        {
            Statement select(m_from, "SELECT id, step, result_id, method, request, hparams, diagnostics, timings, "
                                     "created, active FROM edits WHERE run = ? ORDER BY step");
            select.bind(1, sourceRun);
            Statement insert(m_into, "INSERT INTO edits (run, step, result_id, method, request, hparams, diagnostics, "
                                     "timings, created, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            while (select.step()) {
                insert.reset();
                insert.bind(1, targetRun);
                for (int column = 1; column <= 9; ++column)
                    insert.bindColumn(column + 1, select, column);
                insert.step();
                edits.emplace(select.columnInt(0), m_into.lastInsertId());
            }
        }
        {
            Statement select(m_from, "SELECT updates.edit, position, layer, kind, dtype, rows, cols, a, b FROM updates "
                                     "JOIN edits ON updates.edit = edits.id WHERE edits.run = ? ORDER BY updates.id");
            select.bind(1, sourceRun);
            Statement insert(m_into, "INSERT INTO updates (edit, position, layer, kind, dtype, rows, cols, a, b) "
                                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
            while (select.step()) {
                insert.reset();
                insert.bind(1, mapped(edits, select.columnInt(0), "edit", m_out.path));
                for (int column = 1; column <= 8; ++column)
                    insert.bindColumn(column + 1, select, column);
                insert.step();
            }
        }
        {
            Statement select(m_from, "SELECT id, step, created FROM checkpoints WHERE run = ? ORDER BY id");
            select.bind(1, sourceRun);
            Statement insert(m_into, "INSERT INTO checkpoints (run, step, created) VALUES (?, ?, ?)");
            while (select.step()) {
                insert.reset();
                insert.bind(1, targetRun);
                insert.bindColumn(2, select, 1);
                insert.bindColumn(3, select, 2);
                insert.step();
                checkpoints.emplace(select.columnInt(0), m_into.lastInsertId());
            }
        }
        {
            Statement select(m_from, "SELECT metrics.checkpoint, name, value, edit FROM metrics JOIN checkpoints ON "
                                     "metrics.checkpoint = checkpoints.id WHERE checkpoints.run = ? ORDER BY metrics.id");
            select.bind(1, sourceRun);
            Statement insert(m_into, "INSERT INTO metrics (checkpoint, name, value, edit) VALUES (?, ?, ?, ?)");
            while (select.step()) {
                insert.reset();
                insert.bind(1, mapped(checkpoints, select.columnInt(0), "checkpoint", m_out.path));
                insert.bindColumn(2, select, 1);
                insert.bindColumn(3, select, 2);
                bindMapped(insert, 4, select, 3, edits, "edit", m_out.path);
                insert.step();
            }
        }
        {
            // An event names the earlier event it undoes (already copied, in id
            // order) and the later one that undid it (set in a second pass).
            Statement select(m_from, "SELECT id, kind, target_step, target_edit, target_event, undone_by, created "
                                     "FROM rollback_events WHERE run = ? ORDER BY id");
            select.bind(1, sourceRun);
            Statement insert(m_into, "INSERT INTO rollback_events (run, kind, target_step, target_edit, target_event, "
                                     "created) VALUES (?, ?, ?, ?, ?, ?)");
            std::vector<std::pair<int64_t, int64_t>> undoneBy; // (source event, source event that undid it)
            while (select.step()) {
                insert.reset();
                insert.bind(1, targetRun);
                insert.bindColumn(2, select, 1);
                insert.bindColumn(3, select, 2);
                bindMapped(insert, 4, select, 3, edits, "edit", m_out.path);
                bindMapped(insert, 5, select, 4, events, "rollback event", m_out.path);
                insert.bindColumn(6, select, 6);
                insert.step();
                events.emplace(select.columnInt(0), m_into.lastInsertId());
                if (!select.columnIsNull(5))
                    undoneBy.emplace_back(select.columnInt(0), select.columnInt(5));
            }
            Statement update(m_into, "UPDATE rollback_events SET undone_by = ? WHERE id = ?");
            for (const auto &[event, by] : undoneBy) {
                update.reset();
                update.bind(1, mapped(events, by, "rollback event", m_out.path));
                update.bind(2, mapped(events, event, "rollback event", m_out.path));
                update.step();
            }
        }
        {
            Statement select(m_from, "SELECT event, edit, rollback_changes.active FROM rollback_changes JOIN "
                                     "rollback_events ON rollback_changes.event = rollback_events.id "
                                     "WHERE rollback_events.run = ?");
            select.bind(1, sourceRun);
            Statement insert(m_into, "INSERT INTO rollback_changes (event, edit, active) VALUES (?, ?, ?)");
            while (select.step()) {
                insert.reset();
                insert.bind(1, mapped(events, select.columnInt(0), "rollback event", m_out.path));
                insert.bind(2, mapped(edits, select.columnInt(1), "edit", m_out.path));
                insert.bindColumn(3, select, 2);
                insert.step();
            }
        }
        m_out.edits += static_cast<int64_t>(edits.size());
        m_out.checkpoints += static_cast<int64_t>(checkpoints.size());
        m_out.rollbacks += static_cast<int64_t>(events.size());
        return targetRun;
    }

    Database &m_into;
    Database &m_from;
    const std::string &m_intoPath;
    MergedSource &m_out;
    IdMap m_models;
    std::unordered_set<int64_t> m_addedHere; // target ids of the runs this source added
};

void mergeOne(Ledger &into, const std::string &sourcePath, MergedSource &out)
{
    std::error_code ec;
    if (fs::equivalent(into.path(), sourcePath, ec))
        throw LedgerError("'" + sourcePath + "' is the ledger merged into: name another target (--into)");
    if (!fs::is_regular_file(sourcePath, ec))
        throw LedgerError("ledger '" + sourcePath + "' does not exist or is not a file: nothing was merged");
    // Read-only: merging never changes a source (an old schema is read as it is).
    Ledger source(sourcePath, /*readOnly=*/true);
    if (source.schemaVersion() > Ledger::currentSchemaVersion())
        throw LedgerError("ledger '" + sourcePath + "' has schema version " + std::to_string(source.schemaVersion()) +
                          ", newer than this build of O-Edit Workbench writes (" +
                          std::to_string(Ledger::currentSchemaVersion()) +
                          "): its rows may mean what this build does not know. Nothing was merged; merge with the "
                          "newer version that wrote it");
    const auto integrity = source.integrityCheck();
    if (!integrity.ok) {
        std::string problems;
        for (size_t i = 0; i < integrity.problems.size() && i < 3; ++i)
            problems += (i ? "; " : "") + integrity.problems[i];
        throw LedgerError("ledger '" + sourcePath + "' is damaged (" + problems +
                          "). Nothing was merged; restore a copy of it, or leave it out");
    }
    try {
        SourceMerger(into.database(), source.database(), into.path(), out).mergeAllRuns();
    } catch (const SqliteError &error) {
        throw LedgerError("merging '" + sourcePath + "' into '" + into.path() + "': " + error.what() +
                          ". Nothing was merged; the target is as it was");
    }
}

void removeLedgerFiles(const std::string &path)
{
    std::error_code ec;
    for (const char *suffix : {"", "-wal", "-shm", "-journal"})
        fs::remove(path + suffix, ec);
}

} // namespace

MergeSummary mergeLedgers(const std::string &target, const std::vector<std::string> &sources)
{
    if (sources.empty())
        throw LedgerError("no ledger to merge: name one or more ledger files after the target");
    static_assert(kMergedSchema > 0);
    if (Ledger::currentSchemaVersion() != kMergedSchema)
        throw LedgerError("this build's ledger schema is not the one the merge copies: nothing was merged");
    MergeSummary summary;
    summary.target = target;
    std::error_code ec;
    summary.created = !fs::exists(target, ec);
    try {
        Ledger into(target);
        if (into.readOnly())
            throw LedgerError("ledger '" + target + "' is read-only here (" + into.readOnlyReason() +
                              "): nothing was merged; merge into a writable file");
        Transaction transaction(into.database());
        for (const auto &source : sources) {
            summary.sources.push_back({});
            summary.sources.back().path = source;
            mergeOne(into, source, summary.sources.back());
        }
        transaction.commit();
    } catch (const SqliteError &error) {
        if (summary.created)
            removeLedgerFiles(target);
        throw LedgerError("merging into '" + target + "': " + error.what() +
                          " (nothing was merged; the target is as it was)");
    } catch (...) {
        if (summary.created)
            removeLedgerFiles(target);
        throw;
    }
    return summary;
}

} // namespace oedit::store
