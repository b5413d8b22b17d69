// The edit ledger on toy tensors: schema and migration, bit-exact round trips,
// all-or-nothing appends, rollback that restores weights and O-Edit's
// subspaces, clear errors for newer, damaged, foreign and locked files.
#include "edit/editor.h"
#include "model/model_config.h"
#include "model/transformer.h"
#include "run/ledger_codec.h"
#include "store/ledger.h"
#include "run/rebuild.h"
#include "store/sqlite_db.h"

#include <sqlite3.h>
#include <torch/torch.h>

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

using namespace oedit;
using namespace oedit::store;
using namespace oedit::run;
using oedit::edit::EditContext;
using oedit::edit::EditResult;
using oedit::edit::LayerUpdate;

namespace {

constexpr int64_t kHidden = 16, kKeys = 64;

// A small GPT-2 whose MLP output projections are [16, 64].
std::unique_ptr<model::Transformer> tinyModel()
{
    model::ModelConfig config;
    config.family = model::Family::Gpt2;
    config.modelType = "gpt2";
    config.vocabSize = 20;
    config.hidden = kHidden;
    config.layers = 2;
    config.heads = 2;
    config.kvHeads = 2;
    config.intermediate = kKeys;
    config.maxPositions = 16;
    config.tiedHead = true;
    config.activation = "gelu_new";
    return std::make_unique<model::Transformer>(config, model::initialWeights(config, 3));
}

// Edit `id`: rank one on layer 0 for odd ids, a rank-two dense update on
// layer 0 plus a rank-one one on layer 1 for even ids. Small norms, as real
// updates have relative to W.
EditResult toyResult(int64_t id, const std::string &method = "oedit")
{
    torch::manual_seed(static_cast<uint64_t>(100 + id));
    EditResult r;
    r.id = id;
    r.method = method;
    r.hparams = {{"eps_E", 0.99}, {"layer", 0}, {"seed", id}};
    r.request = {"Subject " + std::to_string(id), "{} lives in", "Paris " + std::to_string(id), "Rome"};
    if (id % 2) {
        LayerUpdate u;
        u.layer = 0;
        u.right = 0.05 * torch::randn({kHidden});
        u.left = torch::randn({kKeys});
        r.layers.push_back(u);
    } else {
        LayerUpdate dense;
        dense.layer = 0;
        dense.dense = 0.05 * torch::randn({kHidden, 2}).matmul(torch::randn({2, kKeys}));
        r.layers.push_back(dense);
        LayerUpdate u;
        u.layer = 1;
        u.right = 0.05 * torch::randn({kHidden});
        u.left = torch::randn({kKeys});
        r.layers.push_back(u);
    }
    r.diagnostics.lossCurve = {3.5, 1.25, 0.125 + static_cast<double>(id)};
    r.diagnostics.finalTargetNll = 0.1 * static_cast<double>(id);
    r.diagnostics.valueShiftNorm = 1.5;
    for (const auto &u : r.layers)
        r.diagnostics.updateNorms.push_back(u.matrix().norm().item<double>());
    r.diagnostics.protectedRank = 3;
    r.diagnostics.remainingCapacity = 9;
    r.diagnostics.capacityNote = "note " + std::to_string(id);
    r.timings = {0.0, 0.25, 0.5, 0.125, 0.875};
    return r;
}

double maxDifference(const model::Transformer &model, const std::map<int64_t, torch::Tensor> &expected)
{
    double worst = 0;
    for (const auto &[layer, W] : expected)
        worst = std::max(worst, (model.mlpOutWeight(layer).to(torch::kDouble) - W).abs().max().item<double>());
    return worst;
}

std::map<int64_t, torch::Tensor> currentWeights(const model::Transformer &model)
{
    std::map<int64_t, torch::Tensor> out;
    for (int64_t layer = 0; layer < model.config().layers; ++layer)
        out[layer] = model.mlpOutWeight(layer).to(torch::kDouble);
    return out;
}

// O-Edit's per-layer state, copied.
struct OEditSnapshot {
    std::map<int64_t, std::vector<int64_t>> owners;
    std::map<int64_t, torch::Tensor> basis, total;
};

OEditSnapshot snapshot(const EditContext &context)
{
    OEditSnapshot s;
    for (const auto &[layer, state] : context.oeditLayers()) {
        s.owners[layer] = state.blockOwner;
        s.basis[layer] = state.editBasis().clone();
        if (state.deltaTotal.defined())
            s.total[layer] = state.deltaTotal.to(torch::kDouble).clone();
    }
    return s;
}

// Same block owners per layer, same U_E (to 1e-9), same sum of updates (to 1e-6).
QString compareStates(const OEditSnapshot &a, const OEditSnapshot &b)
{
    for (const auto &[layer, owners] : a.owners) {
        const auto other = b.owners.count(layer) ? b.owners.at(layer) : std::vector<int64_t>{};
        if (owners != other)
            return QStringLiteral("layer %1: block owners differ").arg(layer);
        const auto &A = a.basis.at(layer), &B = b.basis.at(layer);
        if (A.sizes() != B.sizes())
            return QStringLiteral("layer %1: U_E rank %2 vs %3").arg(layer).arg(A.size(1)).arg(B.size(1));
        if (A.numel() > 0 && (A - B).abs().max().item<double>() > 1e-9)
            return QStringLiteral("layer %1: U_E differs").arg(layer);
        if (a.total.count(layer) && b.total.count(layer) &&
            (a.total.at(layer) - b.total.at(layer)).abs().max().item<double>() > 1e-6)
            return QStringLiteral("layer %1: the sum of updates differs").arg(layer);
    }
    return {};
}

RunSpec toySpec(const std::string &method = "oedit")
{
    RunSpec spec;
    spec.method = method;
    spec.hparams = {{"eps_E", 0.99}};
    spec.seed = 7;
    spec.dataset = "world";
    spec.modelPath = "/models/tiny";
    spec.baseModelHash = "0123456789abcdef";
    spec.options = {{"edits", 6}, {"eval_every", 2}};
    return spec;
}

int64_t count(Ledger &ledger, const std::string &sql)
{
    Statement statement(ledger.database(), sql);
    return statement.step() ? statement.columnInt(0) : -1;
}

QString errorOf(const std::function<void()> &body)
{
    try {
        body();
    } catch (const LedgerError &error) {
        return QString::fromUtf8(error.what());
    }
    return {};
}

} // namespace

class TestLedger : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { torch::set_num_threads(1); }

    void newLedgerHasCurrentSchemaWalAndForeignKeys()
    {
        QTemporaryDir dir;
        const auto path = dir.filePath(QStringLiteral("ledger.sqlite")).toStdString();
        Ledger ledger(path);
        QCOMPARE(ledger.schemaVersion(), Ledger::currentSchemaVersion());
        QCOMPARE(QString::fromStdString(ledger.database().journalMode()), QStringLiteral("wal"));
        QCOMPARE(count(ledger, "PRAGMA foreign_keys"), int64_t(1));
        for (const char *table : {"models", "runs", "edits", "updates", "checkpoints", "metrics", "rollback_events",
                                  "rollback_changes", "schema_version"})
            QVERIFY2(count(ledger, std::string("SELECT count(*) FROM sqlite_master WHERE name = '") + table + "'") == 1,
                     table);
        // Reopening an up-to-date ledger changes nothing.
        Ledger again(path);
        QCOMPARE(again.schemaVersion(), Ledger::currentSchemaVersion());
    }

    // A version-1 ledger (before rollback existed) with one edit opens as the
    // current schema, its edit active and bit-exact.
    void olderSchemaIsMigrated()
    {
        QTemporaryDir dir;
        const auto path = dir.filePath(QStringLiteral("old.sqlite")).toStdString();
        const auto result = toyResult(1);
        {
            Database db(path);
            createSchemaForTest(db, 1);
            db.exec(
                "INSERT INTO runs (method, hparams, seed, dataset, base_hash) VALUES ('rome', '{}', 1, 'world', 'h')");
            db.exec("INSERT INTO edits (run, step, result_id, method, request, hparams, diagnostics, timings) VALUES "
                    "(1, 1, 1, 'rome', '" +
                    result.request.toJson().dump() + "', '{}', '{}', '{}')");
            Statement insert(db, "INSERT INTO updates (edit, position, layer, kind, dtype, rows, cols, a, b) "
                                 "VALUES (1, 0, 0, 'rank1', 'f32', ?, ?, ?, ?)");
            insert.bind(1, kHidden);
            insert.bind(2, kKeys);
            insert.bindBlob(3, result.layers[0].right.data_ptr(), kHidden * 4);
            insert.bindBlob(4, result.layers[0].left.data_ptr(), kKeys * 4);
            insert.step();
            Statement version(db, "SELECT version FROM schema_version");
            QVERIFY(version.step());
            QCOMPARE(version.columnInt(0), int64_t(1));
        }
        Ledger ledger(path);
        QCOMPARE(ledger.schemaVersion(), Ledger::currentSchemaVersion());
        const auto edits = ledger.listEdits(1);
        QCOMPARE(edits.size(), size_t(1));
        QVERIFY(edits[0].active);
        QCOMPARE(QString::fromStdString(edits[0].request.targetNew), QStringLiteral("Paris 1"));
        const auto updates = run::loadUpdate(ledger, edits[0].id);
        QVERIFY(torch::equal(updates[0].right, result.layers[0].right));
        QVERIFY(torch::equal(updates[0].left, result.layers[0].left));
        // The migrated ledger takes rollbacks.
        QCOMPARE(ledger.revertToStep(1, 0).deactivated, std::vector<int64_t>{edits[0].id});
        QVERIFY(ledger.integrityCheck().ok);
    }

    // A newer schema opens read-only: tst_ledger_writers.

    void foreignAndGarbageFilesAreRefused()
    {
        QTemporaryDir dir;
        const auto garbage = dir.filePath(QStringLiteral("garbage.sqlite"));
        {
            QFile file(garbage);
            QVERIFY(file.open(QIODevice::WriteOnly));
            file.write(QByteArray(8192, 'x'));
        }
        auto message = errorOf([&] { Ledger ledger(garbage.toStdString()); });
        QVERIFY2(message.contains(garbage) && message.contains(QStringLiteral("not an O-Edit ledger")),
                 qPrintable(message));

        const auto other = dir.filePath(QStringLiteral("other.sqlite")).toStdString();
        {
            Database db(other);
            db.exec("CREATE TABLE notes (text TEXT)");
        }
        message = errorOf([&] { Ledger ledger(other); });
        QVERIFY2(message.contains(QStringLiteral("not an O-Edit ledger")), qPrintable(message));
        // ... and still has only its own table.
        Database db(other);
        Statement tables(db, "SELECT count(*) FROM sqlite_master");
        QVERIFY(tables.step());
        QCOMPARE(tables.columnInt(0), int64_t(1));
    }

    // Pages overwritten in the middle of a ledger: opening it or checking it
    // says so; nothing reads damaged tensors as if they were good.
    void damagedLedgerIsDetected()
    {
        QTemporaryDir dir;
        const auto path = dir.filePath(QStringLiteral("damaged.sqlite"));
        {
            Ledger ledger(path.toStdString());
            const auto run = ledger.createRun(toySpec());
            for (int64_t id = 1; id <= 40; ++id)
                run::appendEdit(ledger, run, toyResult(id));
            QVERIFY(ledger.integrityCheck().ok);
        }
        {
            QFile file(path);
            QVERIFY(file.open(QIODevice::ReadWrite));
            QVERIFY(file.size() > 16 * 4096);
            file.seek(4 * 4096);
            file.write(QByteArray(8 * 4096, '\xab'));
        }
        QString message;
        bool reported = false;
        try {
            Ledger ledger(path.toStdString());
            const auto report = ledger.integrityCheck();
            reported = !report.ok;
            if (!reported)
                for (const auto &row : ledger.listEdits(1))
                    run::loadEdit(ledger, row.id);
        } catch (const LedgerError &error) {
            message = QString::fromUtf8(error.what());
        }
        qInfo("damaged ledger: %s", reported ? "integrity check reported it" : qPrintable(message));
        QVERIFY2(reported || message.contains(path), qPrintable(message));
    }

    void lockedLedgerIsAClearError()
    {
        QTemporaryDir dir;
        const auto path = dir.filePath(QStringLiteral("locked.sqlite")).toStdString();
        Ledger writer(path);
        Ledger other(path);
        sqlite3_busy_timeout(other.database().handle(), 50);
        {
            Transaction holding(writer.database());
            const auto message = errorOf([&] { other.createRun(toySpec()); });
            QVERIFY2(message.contains(QStringLiteral("another process")), qPrintable(message));
        }
        QVERIFY(other.createRun(toySpec()) > 0);
    }

    void appendAndListRoundTripBitExact()
    {
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        QCOMPARE(ledger.run(run).method, std::string("oedit"));
        QCOMPARE(ledger.run(run).baseModelHash, std::string("0123456789abcdef"));
        QCOMPARE(ledger.run(run).modelPath, std::string("/models/tiny"));
        QCOMPARE(ledger.run(run).options["eval_every"].get<int>(), 2);
        QCOMPARE(ledger.run(run).status, std::string("created"));
        ledger.setRunStatus(run, "running");
        QCOMPARE(ledger.run(run).status, std::string("running"));

        std::vector<EditResult> results = {toyResult(1), toyResult(2)};
        // AlphaEdit-style keys in float64 survive as float64.
        results[1].keys[0] = torch::randn({kKeys, 3}, torch::kDouble);
        for (const auto &r : results)
            run::appendEdit(ledger, run, r);
        const auto edits = ledger.listEdits(run);
        QCOMPARE(edits.size(), size_t(2));
        for (size_t i = 0; i < edits.size(); ++i) {
            const auto &row = edits[i];
            const auto &original = results[i];
            QCOMPARE(row.step, int64_t(i + 1));
            QCOMPARE(row.resultId, original.id);
            QVERIFY(row.active);
            QVERIFY(!row.created.empty());
            QVERIFY(row.hparams == original.hparams);
            QVERIFY(row.request.toJson() == original.request.toJson());
            const auto loaded = run::loadEdit(ledger, row.id);
            QVERIFY(loaded.summaryJson() == original.summaryJson());
            QCOMPARE(loaded.layers.size(), original.layers.size());
            for (size_t l = 0; l < loaded.layers.size(); ++l) {
                const auto &a = loaded.layers[l], &b = original.layers[l];
                QCOMPARE(a.layer, b.layer);
                QCOMPARE(a.rankOne(), b.rankOne());
                if (a.rankOne()) {
                    QVERIFY(torch::equal(a.right, b.right) && torch::equal(a.left, b.left));
                } else {
                    QVERIFY(torch::equal(a.dense, b.dense));
                }
                QVERIFY(torch::equal(a.matrix(), b.matrix()));
            }
            QCOMPARE(loaded.keys.size(), original.keys.size());
            for (const auto &[layer, K] : original.keys) {
                QCOMPARE(loaded.keys.at(layer).scalar_type(), torch::kDouble);
                QVERIFY(torch::equal(loaded.keys.at(layer), K));
            }
        }
        QCOMPARE(ledger.lastStep(run), int64_t(2));
        QCOMPARE(ledger.activeEditCount(run), int64_t(2));
        QVERIFY(ledger.integrityCheck().ok);
    }

    // The one-query read of a run's updates (the norm curve): active edits
    // only, in step order, each update with its edit's step, keys left out,
    // and an active edit with no update row named as damage.
    void forEachActiveUpdateStreamsTheRunInStepOrder()
    {
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        const auto other = ledger.createRun(toySpec());
        std::vector<int64_t> ids;
        for (int64_t id = 1; id <= 4; ++id) {
            auto result = toyResult(id);
            if (id == 2)
                result.keys[0] = torch::randn({kKeys, 3}, torch::kDouble);
            ids.push_back(run::appendEdit(ledger, run, result));
        }
        run::appendEdit(ledger, other, toyResult(5));
        ledger.removeEdit(run, ids[2]); // step 3 is not in effect
        std::vector<std::pair<int64_t, int64_t>> seen; // (step, layer)
        QVERIFY(ledger.forEachActiveUpdate(run, [&](int64_t step, store::StoredUpdate &&update) {
            seen.emplace_back(step, update.layer);
            return update.kind != "keys";
        }));
        // Odd results hold one rank-one update of layer 0, even ones a dense
        // update of layer 0 and a rank-one update of layer 1.
        const std::vector<std::pair<int64_t, int64_t>> expected = {{1, 0}, {2, 0}, {2, 1}, {4, 0}, {4, 1}};
        QCOMPARE(seen, expected);
        // Stopped by the visitor after the first update.
        seen.clear();
        QVERIFY(!ledger.forEachActiveUpdate(run, [&](int64_t step, store::StoredUpdate &&update) {
            seen.emplace_back(step, update.layer);
            return false;
        }));
        QCOMPARE(seen.size(), size_t(1));

        ledger.database().exec("DELETE FROM updates WHERE edit = " + std::to_string(ids[3]));
        const auto message = errorOf([&] { ledger.forEachActiveUpdate(run, [](int64_t, store::StoredUpdate &&) { return true; }); });
        QVERIFY2(message.contains(QStringLiteral("no stored update for edit %1").arg(ids[3])), qPrintable(message));
    }

    // An update that cannot be stored fails the append after the edit row and
    // the first update row were written: the transaction takes them back.
    void failedAppendLeavesNoPartialEdit()
    {
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        auto bad = toyResult(2);
        bad.layers[1].right = torch::Tensor();
        bad.layers[1].left = torch::Tensor();
        const auto message = errorOf([&] { run::appendEdit(ledger, run, bad); });
        QVERIFY2(message.contains(QStringLiteral("holds no tensor")), qPrintable(message));
        QCOMPARE(count(ledger, "SELECT count(*) FROM edits"), int64_t(0));
        QCOMPARE(count(ledger, "SELECT count(*) FROM updates"), int64_t(0));
        QCOMPARE(run::appendEdit(ledger, run, toyResult(1)) > 0, true);
        QCOMPARE(ledger.listEdits(run).front().step, int64_t(1));

        // Unknown runs and empty results are refused with what was wrong.
        QVERIFY(errorOf([&] { run::appendEdit(ledger, 42, toyResult(3)); }).contains(QStringLiteral("no run 42")));
        QVERIFY(errorOf([&] { ledger.run(42); }).contains(QStringLiteral("no run 42")));
        EditResult empty;
        QVERIFY(errorOf([&] { run::appendEdit(ledger, run, empty); }).contains(QStringLiteral("no layer updates")));
        QVERIFY(errorOf([&] { ledger.setRunStatus(run, "exploded"); }).contains(QStringLiteral("exploded")));
        QCOMPARE(count(ledger, "SELECT count(*) FROM edits"), int64_t(1));
    }

    void checkpointsAndMetricsRoundTrip()
    {
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        const auto edit = run::appendEdit(ledger, run, toyResult(1));
        const auto checkpoint = ledger.recordCheckpoint(run, 1, {{"ES", 0.75, std::nullopt}, {"retention", 1.0, edit}});
        ledger.addMetrics(checkpoint, {{"perplexity", 12.5, std::nullopt}});
        const auto checkpoints = ledger.checkpoints(run);
        QCOMPARE(checkpoints.size(), size_t(1));
        QCOMPARE(checkpoints[0].step, int64_t(1));
        const auto metrics = ledger.metrics(checkpoint);
        QCOMPARE(metrics.size(), size_t(3));
        QCOMPARE(QString::fromStdString(metrics[0].name), QStringLiteral("ES"));
        QCOMPARE(metrics[0].value, 0.75);
        QVERIFY(!metrics[0].edit);
        QCOMPARE(*metrics[1].edit, edit);
        QCOMPARE(metrics[2].value, 12.5);
        // A metric that names an edit which does not exist breaks a foreign
        // key: the whole checkpoint is refused.
        QVERIFY(!errorOf([&] { ledger.recordCheckpoint(run, 2, {{"ES", 1, std::nullopt}, {"x", 1, 999}}); }).isEmpty());
        QCOMPARE(ledger.checkpoints(run).size(), size_t(1));
        QVERIFY(!errorOf([&] { ledger.addMetrics(777, {}); }).isEmpty());
    }

    // Revert, remove, undo: after each, the model's weights are within 1e-6 of
    // base + the active edits' updates (recomputed in float64), and O-Edit's
    // state equals the state of a context that saw only the active edits.
    void rollbackRestoresWeightsAndOEditState()
    {
        auto model = tinyModel();
        const auto base = captureBaseWeights(*model);
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        EditContext context;
        std::vector<int64_t> ids;
        std::map<int64_t, std::map<int64_t, torch::Tensor>> weightsAt;
        std::map<int64_t, OEditSnapshot> stateAt;
        for (int64_t id = 1; id <= 6; ++id) {
            const auto result = toyResult(id);
            edit::applyEdit(*model, result, &context);
            ids.push_back(run::appendEdit(ledger, run, result));
            weightsAt[id] = currentWeights(*model);
            stateAt[id] = snapshot(context);
        }
        QVERIFY(context.oeditLayer(0).editRank() >= 6);

        // Rebuilding from the base model gives the correctly rounded sum,
        // within 1e-6 of the weights the run reached edit by edit.
        {
            auto fresh = tinyModel();
            QCOMPARE(rebuildWeights(*fresh, base, ledger, run), int64_t(6));
            const auto expected = expectedWeights(base, ledger, run);
            for (int64_t layer = 0; layer < 2; ++layer)
                QVERIFY(torch::equal(fresh->mlpOutWeight(layer), expected.at(layer).to(torch::kFloat)));
            QVERIFY(maxDifference(*fresh, currentWeights(*model)) <= 1e-6);
            for (int64_t step = 0; step <= 6; ++step) {
                rebuildWeights(*fresh, base, ledger, run, step);
                const auto expected = step == 0 ? currentWeights(*tinyModel()) : weightsAt[step];
                QVERIFY(maxDifference(*fresh, expected) <= 1e-6);
                QVERIFY(maxDifference(*fresh, expectedWeights(base, ledger, run, step)) <= 1e-6);
            }
        }

        auto checkAgainstLedger = [&](const char *what) {
            const double difference = maxDifference(*model, expectedWeights(base, ledger, run));
            QVERIFY2(difference <= 1e-6, qPrintable(QStringLiteral("%1: %2").arg(what).arg(difference)));
            EditContext fresh;
            replayEditState(fresh, ledger, run);
            const auto problem = compareStates(snapshot(context), snapshot(fresh));
            QVERIFY2(problem.isEmpty(), qPrintable(QStringLiteral("%1: %2").arg(what, problem)));
        };

        // Revert to step 4: weights and state are those the run had at step 4.
        const auto revert = ledger.revertToStep(run, 4);
        QCOMPARE(revert.kind, std::string("revert"));
        QCOMPARE(revert.deactivated, (std::vector<int64_t>{ids[4], ids[5]}));
        applyRollback(*model, &context, ledger, revert);
        QVERIFY(maxDifference(*model, weightsAt[4]) <= 1e-6);
        QVERIFY2(compareStates(snapshot(context), stateAt[4]).isEmpty(),
                 qPrintable(compareStates(snapshot(context), stateAt[4])));
        checkAgainstLedger("revert");

        // Remove edit 2 from the middle: its blocks are gone, and the blocks
        // of edits 3 and 4 are regrown without it.
        const auto remove = ledger.removeEdit(run, ids[1]);
        applyRollback(*model, &context, ledger, remove);
        checkAgainstLedger("remove");
        for (const auto &[layer, state] : context.oeditLayers()) {
            QVERIFY(std::find(state.blockOwner.begin(), state.blockOwner.end(), 2) == state.blockOwner.end());
            const auto U = state.editBasis();
            if (U.size(1) > 0)
                QVERIFY((U.t().matmul(U) - torch::eye(U.size(1), torch::kDouble)).abs().max().item<double>() < 1e-9);
        }
        QCOMPARE(ledger.activeEditCount(run), int64_t(3));

        // Undo the removal, then the revert: back to all six edits.
        applyRollback(*model, &context, ledger, ledger.undoRollback(remove.id));
        checkAgainstLedger("undo remove");
        QVERIFY(maxDifference(*model, weightsAt[4]) <= 1e-6);
        const auto redo = ledger.undoRollback(revert.id);
        QCOMPARE(redo.kind, std::string("redo"));
        QCOMPARE(redo.activated, (std::vector<int64_t>{ids[4], ids[5]}));
        applyRollback(*model, &context, ledger, redo, &base); // the exact mode this time
        checkAgainstLedger("undo revert");
        for (const auto &[layer, W] : expectedWeights(base, ledger, run))
            QVERIFY(torch::equal(model->mlpOutWeight(layer), W.to(torch::kFloat)));
        QVERIFY(maxDifference(*model, weightsAt[6]) <= 1e-6);
        QVERIFY(compareStates(snapshot(context), stateAt[6]).isEmpty());

        // Every rollback is on record, with what it changed.
        const auto events = ledger.rollbackEvents(run);
        QCOMPARE(events.size(), size_t(4));
        QCOMPARE(*events[0].undoneBy, events[3].id);
        QCOMPARE(*events[1].undoneBy, events[2].id);
        QCOMPARE(*events[2].targetEvent, remove.id);
        QVERIFY(ledger.integrityCheck().ok);
    }

    // Steps stay unique after a revert; later edits build on the reverted state.
    void editsAfterARevertContinueTheRun()
    {
        auto model = tinyModel();
        const auto base = captureBaseWeights(*model);
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        EditContext context;
        for (int64_t id = 1; id <= 4; ++id) {
            const auto r = toyResult(id);
            edit::applyEdit(*model, r, &context);
            run::appendEdit(ledger, run, r);
        }
        applyRollback(*model, &context, ledger, ledger.revertToStep(run, 2));
        const auto r = toyResult(5);
        edit::applyEdit(*model, r, &context);
        const auto edit = run::appendEdit(ledger, run, r);
        QCOMPARE(ledger.editRow(edit).step, int64_t(5));
        QCOMPARE(ledger.activeEditCount(run), int64_t(3));
        QVERIFY(maxDifference(*model, expectedWeights(base, ledger, run)) <= 1e-6);
        auto fresh = tinyModel();
        rebuildWeights(*fresh, base, ledger, run);
        QVERIFY(maxDifference(*fresh, expectedWeights(base, ledger, run)) <= 1e-6);
    }

    void rollbackMistakesAreClearErrors()
    {
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        const auto other = ledger.createRun(toySpec());
        const auto first = run::appendEdit(ledger, run, toyResult(1));
        run::appendEdit(ledger, run, toyResult(2));
        const auto foreign = run::appendEdit(ledger, other, toyResult(1));
        QVERIFY(errorOf([&] { ledger.revertToStep(run, 2); }).contains(QStringLiteral("nothing to revert")));
        QVERIFY(errorOf([&] { ledger.revertToStep(run, -1); }).contains(QStringLiteral("steps start at 0")));
        QVERIFY(errorOf([&] { ledger.removeEdit(run, foreign); }).contains(QStringLiteral("has no edit")));
        QVERIFY(errorOf([&] { ledger.removeEdit(run, 12345); }).contains(QStringLiteral("has no edit")));
        QVERIFY(errorOf([&] { ledger.revertToStep(99, 0); }).contains(QStringLiteral("no run 99")));
        const auto removed = ledger.removeEdit(run, first);
        QVERIFY(errorOf([&] { ledger.removeEdit(run, first); }).contains(QStringLiteral("already rolled back")));
        const auto redo = ledger.undoRollback(removed.id);
        QVERIFY(errorOf([&] { ledger.undoRollback(removed.id); }).contains(QStringLiteral("already undone")));
        QVERIFY(errorOf([&] { ledger.undoRollback(redo.id); }).contains(QStringLiteral("itself an undo")));
        QVERIFY(errorOf([&] { ledger.undoRollback(4242); }).contains(QStringLiteral("no rollback event 4242")));
        QCOMPARE(ledger.activeEditCount(run), int64_t(2));
        QCOMPARE(ledger.rollbackEvents(run).size(), size_t(2));
    }

    void twoRunsDoNotInterfere()
    {
        auto modelA = tinyModel(), modelB = tinyModel();
        const auto base = captureBaseWeights(*modelA);
        Ledger ledger(":memory:");
        const auto a = ledger.createRun(toySpec("oedit"));
        const auto b = ledger.createRun(toySpec("rome"));
        EditContext contextA, contextB;
        for (int64_t id = 1; id <= 4; ++id) {
            const auto ra = toyResult(id, "oedit"), rb = toyResult(10 + id, "rome");
            edit::applyEdit(*modelA, ra, &contextA);
            run::appendEdit(ledger, a, ra);
            edit::applyEdit(*modelB, rb, &contextB);
            run::appendEdit(ledger, b, rb);
        }
        QCOMPARE(ledger.listEdits(a).back().step, int64_t(4));
        QCOMPARE(ledger.listEdits(b).back().step, int64_t(4));
        const auto weightsB = currentWeights(*modelB);
        applyRollback(*modelA, &contextA, ledger, ledger.revertToStep(a, 1));
        QCOMPARE(ledger.activeEditCount(a), int64_t(1));
        QCOMPARE(ledger.activeEditCount(b), int64_t(4));
        QVERIFY(maxDifference(*modelA, expectedWeights(base, ledger, a)) <= 1e-6);
        QVERIFY(maxDifference(*modelB, expectedWeights(base, ledger, b)) <= 1e-6);
        QVERIFY(maxDifference(*modelB, weightsB) == 0);
        QVERIFY(ledger.rollbackEvents(b).empty());
        QCOMPARE(ledger.runs().size(), size_t(2));
    }

    void integrityCheckFindsBadBlobs()
    {
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        const auto edit = run::appendEdit(ledger, run, toyResult(2));
        QVERIFY(ledger.integrityCheck().ok);
        ledger.database().exec("UPDATE updates SET a = x'0000' WHERE position = 0");
        const auto report = ledger.integrityCheck();
        QVERIFY(!report.ok);
        QVERIFY(QString::fromStdString(report.problems.front()).contains(QStringLiteral("BLOB size")));
        const auto message = errorOf([&] { run::loadUpdate(ledger, edit); });
        QVERIFY2(message.contains(QStringLiteral("damaged")), qPrintable(message));
    }

    // A rollback whose updates no longer fit the model changes nothing.
    void rebuildRefusesUpdatesThatDoNotFit()
    {
        auto model = tinyModel();
        auto base = captureBaseWeights(*model);
        Ledger ledger(":memory:");
        const auto run = ledger.createRun(toySpec());
        auto wrong = toyResult(1);
        wrong.layers[0].left = torch::randn({kKeys + 1});
        run::appendEdit(ledger, run, wrong);
        const auto before = currentWeights(*model);
        const auto message = errorOf([&] { rebuildWeights(*model, base, ledger, run); });
        QVERIFY2(message.contains(QStringLiteral("does not fit")), qPrintable(message));
        QVERIFY(maxDifference(*model, before) == 0);
    }
};

QTEST_GUILESS_MAIN(TestLedger)
#include "tst_ledger.moc"
