// Merging ledgers (oedit merge) on toy ledgers: reports of merged runs equal
// their sources' (ids renumbered), models de-duplicated by hash, merging
// twice adds nothing, and every refusal (newer schema, damaged file, another
// model under the same path, a copy of a run that went on, the target
// itself) names the problem and leaves the target unchanged.
#include "oedit/merge.h"
#include "oedit/runs.h"
#include "store/ledger.h"
#include "store/ledger_merge.h"
#include "store/sqlite_db.h"

#include <nlohmann/json.hpp>

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

using namespace oedit;
using namespace oedit::store;

namespace {

StoredTensor floats(std::vector<float> values)
{
    StoredTensor t;
    t.shape = {static_cast<int64_t>(values.size())};
    t.bytes.resize(values.size() * sizeof(float));
    std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
    return t;
}

EditRecord toyEdit(int64_t step, float scale)
{
    EditRecord record;
    record.resultId = step;
    record.method = "rome";
    record.hparams = {{"layer", 1}};
    record.request = {"Subject " + std::to_string(step), "{} lives in", "Paris", std::string("Rome")};
    record.diagnostics = {{"delta_norm", scale * static_cast<float>(step)}};
    record.timings = {{"total", 0.01 * static_cast<double>(step)}};
    StoredUpdate update;
    update.layer = 1;
    update.kind = "rank1";
    update.a = floats({scale, -scale, 0.5f * static_cast<float>(step)});
    update.b = floats({1.0f, 2.0f, 3.0f, static_cast<float>(step)});
    record.updates.push_back(update);
    if (step % 2 == 0) { // AlphaEdit-style keys row beside the update
        StoredUpdate keys;
        keys.layer = 1;
        keys.kind = "keys";
        keys.a = floats({1.0f, 0.0f, 0.0f, 1.0f});
        keys.a.shape = {4, 1};
        record.updates.push_back(keys);
    }
    return record;
}

// A run of `edits` edits with a checkpoint every 2 edits holding run metrics
// and each edit's success, and (when `rollbacks`) a removal, its undo and a
// revert.
int64_t makeRun(Ledger &ledger, const std::string &modelPath, const std::string &hash, uint64_t seed, int edits,
                bool rollbacks)
{
    RunSpec spec;
    spec.method = "rome";
    spec.hparams = {{"layer", 1}, {"clamp", 4}};
    spec.seed = seed;
    spec.dataset = "world";
    spec.modelPath = modelPath;
    spec.baseModelHash = hash;
    spec.options = {{"planned_edits", edits}, {"label", "toy seed " + std::to_string(seed)}};
    const int64_t run = ledger.createRun(spec);
    std::vector<int64_t> ids;
    for (int step = 1; step <= edits; ++step) {
        ids.push_back(ledger.appendEdit(run, toyEdit(step, 0.1f * static_cast<float>(seed))));
        if (step % 2 == 0) {
            std::vector<Metric> metrics = {{"ES", 1.0 / step, std::nullopt}, {"unedited_acc", 0.9, std::nullopt}};
            for (size_t i = 0; i < ids.size(); ++i)
                metrics.push_back({"edit_success", (i + seed) % 3 ? 1.0 : 0.0, ids[i]});
            ledger.recordCheckpoint(run, step, metrics);
        }
    }
    if (rollbacks) {
        const auto removal = ledger.removeEdit(run, ids[1]);
        ledger.undoRollback(removal.id);
        ledger.revertToStep(run, edits - 1);
    }
    ledger.setRunStatus(run, "finished");
    return run;
}

// A run's report with every id replaced by what it stands for (edit ids by
// their step, event ids by their order), so reports of the same run in two
// ledgers compare equal.
nlohmann::json normalisedReport(const std::string &db, int64_t run)
{
    const auto report = runs::runReport(db, run);
    if (!report)
        throw std::runtime_error(report.message());
    const auto edits = runs::listEdits(db, run);
    std::map<long long, long long> stepOf;
    for (const auto &edit : edits.value())
        stepOf[edit.editId] = edit.step;
    std::map<long long, long long> eventOrder;
    for (const auto &event : report->rollbacks)
        eventOrder.emplace(event.eventId, static_cast<long long>(eventOrder.size()));
    auto json = nlohmann::json::parse(report->toJson());
    json.erase("run_id");
    nlohmann::json retention = nlohmann::json::object();
    for (const auto &[edit, row] : json["retention"].items())
        retention[std::to_string(stepOf.at(std::stoll(edit)))] = row;
    json["retention"] = retention;
    for (auto &event : json["rollbacks"]) {
        event["event_id"] = eventOrder.at(event["event_id"].get<long long>());
        for (const char *list : {"deactivated", "activated"})
            for (auto &edit : event[list])
                edit = stepOf.at(edit.get<long long>());
        if (event.contains("removed_edit"))
            event["removed_edit"] = stepOf.at(event["removed_edit"].get<long long>());
        if (event.contains("undid_event"))
            event["undid_event"] = eventOrder.at(event["undid_event"].get<long long>());
        if (!event["undone_by"].is_null())
            event["undone_by"] = eventOrder.at(event["undone_by"].get<long long>());
    }
    return json;
}

// Everything in a ledger, as counts, to see that a refused merge changed nothing.
std::string contents(const std::string &path)
{
    Ledger ledger(path, true);
    std::string out;
    for (const char *table : {"models", "runs", "edits", "updates", "checkpoints", "metrics", "rollback_events",
                              "rollback_changes"}) {
        Statement count(ledger.database(), std::string("SELECT count(*), coalesce(sum(length(") +
                                               (std::strcmp(table, "updates") == 0 ? "a" : "rowid") +
                                               ")), 0) FROM " + table);
        count.step();
        out += std::string(table) + "=" + std::to_string(count.columnInt(0)) + "/" + std::to_string(count.columnInt(1)) +
               " ";
    }
    return out;
}

} // namespace

class TestLedgerMerge : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::string path(const char *name) const { return m_dir.filePath(name).toStdString(); }

    // a.sqlite: two runs of model M (one with rollbacks); b.sqlite: one run of
    // M read from another folder (another machine's path to the same weights).
    void makeSources()
    {
        {
            Ledger a(path("a.sqlite"));
            makeRun(a, "/models/m", "hash-m", 1, 6, true);
            makeRun(a, "/models/m", "hash-m", 2, 4, false);
        }
        {
            Ledger b(path("b.sqlite"));
            makeRun(b, "/cluster/node7/models/m", "hash-m", 3, 5, false);
        }
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY(m_dir.isValid()); }

    void init()
    {
        for (const auto &entry : std::filesystem::directory_iterator(m_dir.path().toStdString()))
            std::filesystem::remove(entry.path());
        makeSources();
    }

    // The merge copies every table of the schema it was written for; a new
    // schema step must teach it the new tables and columns.
    void schemaIsTheOneTheMergeCopies()
    {
        QCOMPARE(Ledger::currentSchemaVersion(), 3);
        Ledger ledger(path("a.sqlite"), true);
        std::map<std::string, int> columns;
        Statement tables(ledger.database(), "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
        while (tables.step()) {
            Statement info(ledger.database(), "SELECT count(*) FROM pragma_table_info(?)");
            info.bind(1, tables.columnText(0));
            info.step();
            columns[tables.columnText(0)] = static_cast<int>(info.columnInt(0));
        }
        const std::map<std::string, int> expected = {
            {"checkpoints", 4}, {"edits", 11},          {"metrics", 5},          {"models", 4},
            {"rollback_changes", 3}, {"rollback_events", 8}, {"run_leases", 6}, {"runs", 10},
            {"schema_version", 1},   {"updates", 10}};
        QCOMPARE(columns, expected);
    }

    void mergedReportsEqualTheSources()
    {
        const auto all = path("all.sqlite");
        const auto result = runs::mergeLedgers(all, {path("a.sqlite"), path("b.sqlite")});
        QVERIFY2(result, result.message().c_str());
        QVERIFY(result->created);
        QCOMPARE(result->sources.size(), size_t(2));
        QCOMPARE(result->sources[0].added.size(), size_t(2));
        QCOMPARE(result->sources[1].added.size(), size_t(1));
        QCOMPARE(result->sources[0].edits, 10LL);
        QCOMPARE(result->sources[0].rollbacks, 3LL);

        for (const auto &source : result->sources)
            for (const auto &[from, to] : source.added) {
                const auto expected = normalisedReport(source.path, from);
                const auto merged = normalisedReport(all, to);
                QCOMPARE(QString::fromStdString(merged.dump()), QString::fromStdString(expected.dump()));
            }

        {
        Ledger target(all, true);
        QVERIFY(target.integrityCheck().ok);
        // One model: the same hash read from two folders.
        Statement models(target.database(), "SELECT count(*) FROM models");
        models.step();
        QCOMPARE(models.columnInt(0), 1LL);
        // The updates and keys rows bit for bit, and the edits' records whole.
        Ledger a(path("a.sqlite"), true);
        const auto sourceEdits = a.listEdits(1);
        const auto mergedEdits = target.listEdits(result->sources[0].added[0].second);
        QCOMPARE(mergedEdits.size(), sourceEdits.size());
        for (size_t i = 0; i < sourceEdits.size(); ++i) {
            const auto x = a.loadRecord(sourceEdits[i].id), y = target.loadRecord(mergedEdits[i].id);
            QCOMPARE(y.updates.size(), x.updates.size());
            for (size_t u = 0; u < x.updates.size(); ++u) {
                QCOMPARE(y.updates[u].kind, x.updates[u].kind);
                QVERIFY(y.updates[u].a.bytes == x.updates[u].a.bytes);
                QVERIFY(y.updates[u].b.bytes == x.updates[u].b.bytes);
                QVERIFY(y.updates[u].a.shape == x.updates[u].a.shape);
            }
            QCOMPARE(y.diagnostics.dump(), x.diagnostics.dump());
            QCOMPARE(y.request.toJson().dump(), x.request.toJson().dump());
            QCOMPARE(mergedEdits[i].active, sourceEdits[i].active);
            QCOMPARE(mergedEdits[i].created, sourceEdits[i].created);
        }
        }
        // The merged ledger can be written on: a rollback of a merged run.
        Ledger writable(all);
        const int64_t run = result->sources[1].added[0].second;
        const auto event = writable.removeEdit(run, writable.listEdits(run).front().id);
        QCOMPARE(event.deactivated.size(), size_t(1));
    }

    void mergingTwiceAddsNothing()
    {
        const auto all = path("all.sqlite");
        QVERIFY(runs::mergeLedgers(all, {path("a.sqlite")}));
        // The same file twice in one call, and again in a second call.
        const auto again = runs::mergeLedgers(all, {path("a.sqlite"), path("b.sqlite"), path("b.sqlite")});
        QVERIFY2(again, again.message().c_str());
        QCOMPARE(again->sources[0].added.size(), size_t(0));
        QCOMPARE(again->sources[0].alreadyPresent.size(), size_t(2));
        QCOMPARE(again->sources[1].added.size(), size_t(1));
        QCOMPARE(again->sources[2].added.size(), size_t(0));
        QCOMPARE(again->sources[2].alreadyPresent.size(), size_t(1));
        const auto before = contents(all);
        const auto third = runs::mergeLedgers(all, {path("b.sqlite"), path("a.sqlite")});
        QVERIFY(third);
        QCOMPARE(QString::fromStdString(contents(all)), QString::fromStdString(before));
        QVERIFY(!third->created);
        // An identical copy of a ledger (another file) is the same runs.
        QVERIFY(QFile::copy(QString::fromStdString(path("a.sqlite")), QString::fromStdString(path("a-copy.sqlite"))));
        const auto copy = runs::mergeLedgers(all, {path("a-copy.sqlite")});
        QVERIFY(copy);
        QCOMPARE(copy->sources[0].alreadyPresent.size(), size_t(2));
        QCOMPARE(QString::fromStdString(contents(all)), QString::fromStdString(before));
    }

    void refusalsLeaveTheTargetUnchanged()
    {
        const auto all = path("all.sqlite");
        QVERIFY(runs::mergeLedgers(all, {path("a.sqlite")}));
        const auto before = contents(all);
        auto refused = [&](const std::vector<std::string> &sources, const char *words) {
            const auto result = runs::mergeLedgers(all, sources);
            if (result)
                return std::string("merged, expected a refusal naming '") + words + "'";
            if (result.message().find(words) == std::string::npos)
                return "the message does not say '" + std::string(words) + "': " + result.message();
            if (contents(all) != before)
                return "the target changed: " + contents(all);
            Ledger check(all, true);
            if (!check.integrityCheck().ok)
                return std::string("the target fails its integrity check");
            return std::string();
        };

        // A copy of run 1 that went on after it was copied: one more edit.
        QVERIFY(QFile::copy(QString::fromStdString(path("a.sqlite")), QString::fromStdString(path("a-later.sqlite"))));
        {
            Ledger later(path("a-later.sqlite"));
            later.appendEdit(1, toyEdit(7, 0.1f));
        }
        // b first: its run would be added, and must not stay behind.
        auto problem = refused({path("b.sqlite"), path("a-later.sqlite")}, "the two copies differ");
        QVERIFY2(problem.empty(), problem.c_str());

        // A newer schema.
        QVERIFY(QFile::copy(QString::fromStdString(path("b.sqlite")), QString::fromStdString(path("newer.sqlite"))));
        {
            Database db(path("newer.sqlite"));
            db.exec("UPDATE schema_version SET version = 99");
        }
        problem = refused({path("b.sqlite"), path("newer.sqlite")}, "newer than this build");
        QVERIFY2(problem.empty(), problem.c_str());

        // Not a ledger at all, and a ledger whose update BLOB lost bytes.
        {
            QFile garbage(QString::fromStdString(path("garbage.sqlite")));
            QVERIFY(garbage.open(QIODevice::WriteOnly));
            garbage.write(QByteArray(8192, '\x5a'));
        }
        problem = refused({path("b.sqlite"), path("garbage.sqlite")}, "garbage.sqlite");
        QVERIFY2(problem.empty(), problem.c_str());
        QVERIFY(QFile::copy(QString::fromStdString(path("b.sqlite")), QString::fromStdString(path("short.sqlite"))));
        {
            Database db(path("short.sqlite"));
            db.exec("UPDATE updates SET a = substr(a, 1, 4) WHERE id = 1");
        }
        problem = refused({path("short.sqlite")}, "is damaged");
        QVERIFY2(problem.empty(), problem.c_str());

        // Another model under the path the target's runs used.
        {
            Ledger other(path("other.sqlite"));
            makeRun(other, "/models/m", "hash-retrained", 9, 2, false);
        }
        problem = refused({path("b.sqlite"), path("other.sqlite")}, "another model under that name");
        QVERIFY2(problem.empty(), problem.c_str());

        // The target itself, and a missing file.
        problem = refused({all}, "is the ledger merged into");
        QVERIFY2(problem.empty(), problem.c_str());
        problem = refused({path("b.sqlite"), path("missing.sqlite")}, "does not exist");
        QVERIFY2(problem.empty(), problem.c_str());
        QVERIFY(!runs::mergeLedgers(all, {}));
        QCOMPARE(QString::fromStdString(contents(all)), QString::fromStdString(before));
    }

    // A refused merge into a file it would have created leaves no file behind.
    void refusedMergeCreatesNoFile()
    {
        const auto fresh = path("fresh.sqlite");
        const auto result = runs::mergeLedgers(fresh, {path("a.sqlite"), path("missing.sqlite")});
        QVERIFY(!result);
        QVERIFY(!std::filesystem::exists(fresh));
        QVERIFY(!std::filesystem::exists(fresh + "-wal"));
    }

    // A source is only read: merging neither migrates nor writes it.
    void sourcesAreNotChanged()
    {
        const auto before = contents(path("a.sqlite"));
        const auto mtime = std::filesystem::last_write_time(path("a.sqlite"));
        QVERIFY(runs::mergeLedgers(path("all.sqlite"), {path("a.sqlite")}));
        QCOMPARE(QString::fromStdString(contents(path("a.sqlite"))), QString::fromStdString(before));
        QVERIFY(std::filesystem::last_write_time(path("a.sqlite")) == mtime);
    }
};

QTEST_GUILESS_MAIN(TestLedgerMerge)
#include "tst_ledger_merge.moc"
