// The open model's session kept in an edit ledger (Engine::attachLedger) on
// the mini world model: every edit is appended as it is made, undo and redo
// are ledger events, and a restart that attaches the run again gets the same
// weights (<= 1e-6) and the same method state, for every method and for the
// configurations that store per-edit keys. The engine's own runs, norm
// growth and export use the open model. Weights are compared by saving both
// models and reading the safetensors back (white-box, with libtorch).
#include "model/checkpoint.h"
#include "oedit/editing.h"
#include "oedit/engine.h"
#include "oedit/runs.h"
#include "oedit/world.h"

#include <QTemporaryDir>
#include <QtTest>

#include <torch/torch.h>

using namespace oedit;

namespace {

const std::string kModel = OEDIT_MINI_MODEL_DIR;

const world::World &miniWorld()
{
    static const world::World w = [] {
        auto loaded = world::loadWorld(kModel);
        if (!loaded)
            qFatal("%s", loaded.message().c_str());
        return loaded.value();
    }();
    return w;
}

// The i-th fact of the mini world (distinct subjects) moved to another object of its relation.
EditSpec factEdit(const std::string &method, const std::string &hparams, size_t i)
{
    const auto &w = miniWorld();
    const auto &fact = w.facts.at((i * 7) % w.facts.size());
    const auto &relation = w.relationOf(fact);
    EditSpec spec;
    spec.method = method;
    spec.hparamsJson = hparams;
    spec.subject = w.subjectName(fact);
    spec.prompt = relation.templates[0];
    spec.targetNew = relation.objects[(static_cast<size_t>(fact.object) + 1) % relation.objects.size()];
    spec.targetTrue = w.objectName(fact);
    return spec;
}

// The largest absolute difference between the weights two engines hold.
double weightDifference(Engine &a, Engine &b, const QString &scratch)
{
    const std::string dirA = (scratch + "/a").toStdString(), dirB = (scratch + "/b").toStdString();
    QDir(scratch + "/a").removeRecursively();
    QDir(scratch + "/b").removeRecursively();
    if (!a.saveModel(dirA).ok() || !b.saveModel(dirB).ok())
        return INFINITY;
    const auto wa = model::loadStateDict(dirA, torch::kFloat32);
    const auto wb = model::loadStateDict(dirB, torch::kFloat32);
    if (wa.size() != wb.size())
        return INFINITY;
    double worst = 0;
    for (const auto &[name, tensor] : wa) {
        const auto other = wb.find(name);
        if (other == wb.end())
            return INFINITY;
        worst = std::max(worst, (tensor - other->second).abs().max().item<double>());
    }
    return worst;
}

} // namespace

class TestSessionMini : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        if (!QFileInfo::exists(QString::fromStdString(kModel + "/config.json")))
            QFAIL("the mini model is missing: run the mini_model_setup test first");
    }

    void restartFromLedgerKeepsWeightsAndState_data()
    {
        QTest::addColumn<QString>("method");
        QTest::addColumn<QString>("hparams");
        QTest::newRow("ft") << "ft" << "";
        QTest::newRow("rome") << "rome" << "";
        QTest::newRow("memit") << "memit" << "";
        QTest::newRow("alphaedit (stores keys)") << "alphaedit" << "";
        QTest::newRow("oedit") << "oedit" << "";
        QTest::newRow("oedit+ output side") << "oedit+" << R"({"side": "output"})";
        QTest::newRow("oedit+ input side, keys basis (stores keys)")
            << "oedit+" << R"({"side": "input", "input_edit_basis": "keys"})";
    }

    void restartFromLedgerKeepsWeightsAndState()
    {
        QFETCH(QString, method);
        QFETCH(QString, hparams);
        QTemporaryDir dir;
        const std::string db = dir.filePath("session.sqlite").toStdString();
        const auto m = method.toStdString(), h = hparams.toStdString();

        Engine first;
        QVERIFY(first.openModel(kModel).ok());
        QVERIFY(first.attachLedger(db, 0).ok());
        long long runId = 0;
        for (size_t i = 0; i < 4; ++i) {
            const auto outcome = first.applyEdit(factEdit(m, h, i));
            QVERIFY2(outcome.ok(), outcome.message().c_str());
            QVERIFY(outcome->ledgerEditId > 0);
            QVERIFY(outcome->runId > 0);
            QVERIFY(runId == 0 || outcome->runId == runId);
            runId = outcome->runId;
        }
        // Undo and redo are ledger events: after undo the run has 3 active edits, after redo 4.
        QVERIFY(first.undoLastEdit().ok());
        auto edits = runs::listEdits(db, runId);
        QVERIFY(edits.ok());
        QCOMPARE(std::count_if(edits->begin(), edits->end(), [](const auto &e) { return e.active; }), 3L);
        QVERIFY(first.redoEdit().ok());
        QVERIFY(!first.redoEdit().ok()); // nothing left to redo
        edits = runs::listEdits(db, runId);
        QCOMPARE(std::count_if(edits->begin(), edits->end(), [](const auto &e) { return e.active; }), 4L);
        QCOMPARE(first.session().runId, runId);
        QCOMPARE(first.editCount(), 4);

        // A restart: the first lets go of the run (one writer per run: a
        // second engine cannot attach it while the first holds it), a fresh
        // engine attaches it and holds the same weights.
        Engine second;
        QVERIFY(second.openModel(kModel).ok());
        const auto refused = second.attachLedger(db, runId);
        QVERIFY2(!refused.ok() && refused.message().find("already being continued") != std::string::npos,
                 refused.message().c_str());
        first.detachLedger();
        const auto attached = second.attachLedger(db, runId);
        QVERIFY2(attached.ok(), attached.message().c_str());
        QCOMPARE(second.editCount(), 4);
        QVERIFY(weightDifference(first, second, dir.path()) <= 1e-6);

        // The method state round-tripped: the next edit comes out the same on both.
        const auto nextFirst = first.applyEdit(factEdit(m, h, 5));
        const auto nextSecond = second.applyEdit(factEdit(m, h, 5));
        QVERIFY2(nextFirst.ok() && nextSecond.ok(), (nextFirst.message() + nextSecond.message()).c_str());
        QCOMPARE(nextFirst->diagnostics.protectedRank, nextSecond->diagnostics.protectedRank);
        QVERIFY(std::abs(nextFirst->diagnostics.maxAbsCosWithEarlier - nextSecond->diagnostics.maxAbsCosWithEarlier) <=
                1e-4);
        const double difference = weightDifference(first, second, dir.path());
        QVERIFY2(difference <= 1e-5, qPrintable(QString::number(difference)));
    }

    void undoingEveryEditGivesTheBaseWeightsBack()
    {
        QTemporaryDir dir;
        Engine edited, base;
        QVERIFY(edited.openModel(kModel).ok());
        QVERIFY(base.openModel(kModel).ok());
        for (size_t i = 0; i < 3; ++i)
            QVERIFY(edited.applyEdit(factEdit("rome", "", i)).ok());
        QVERIFY(weightDifference(edited, base, dir.path()) > 0);
        for (int i = 0; i < 3; ++i)
            QVERIFY(edited.undoLastEdit().ok());
        QCOMPARE(weightDifference(edited, base, dir.path()), 0.0);
    }

    void rollbackOfTheAttachedRunMovesTheOpenModel()
    {
        QTemporaryDir dir;
        const std::string db = dir.filePath("rollback.sqlite").toStdString();
        Engine engine, reference;
        QVERIFY(engine.openModel(kModel).ok());
        QVERIFY(reference.openModel(kModel).ok());
        QVERIFY(engine.attachLedger(db, 0).ok());
        for (size_t i = 0; i < 3; ++i)
            QVERIFY(engine.applyEdit(factEdit("oedit+", "", i)).ok());
        const long long runId = engine.session().runId;
        QVERIFY(reference.applyEdit(factEdit("oedit+", "", 0)).ok());

        runs::RollbackRequest revert;
        revert.runId = runId;
        revert.toStep = 1;
        const auto event = engine.rollback(db, revert);
        QVERIFY2(event.ok(), event.message().c_str());
        QCOMPARE(engine.editCount(), 1);
        QVERIFY(weightDifference(engine, reference, dir.path()) <= 1e-6);

        runs::RollbackRequest undo;
        undo.runId = runId;
        undo.undoEvent = event->eventId;
        QVERIFY(engine.rollback(db, undo).ok());
        QCOMPARE(engine.editCount(), 3);
    }

    void runsUseTheOpenModelAndPutTheSessionBack()
    {
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.sqlite").toStdString();
        Engine engine, reference;
        QVERIFY(engine.openModel(kModel).ok());
        QVERIFY(reference.openModel(kModel).ok());
        QVERIFY(engine.applyEdit(factEdit("rome", "", 0)).ok());
        QVERIFY(reference.applyEdit(factEdit("rome", "", 0)).ok());

        runs::RunRequest request; // no modelDir: the open model
        request.method = "rome";
        request.edits = 4;
        const auto run = engine.startRun(db, request);
        QVERIFY2(run.ok(), run.message().c_str());
        QCOMPARE(run->status, std::string("finished"));
        QCOMPARE(run->steps, 4LL);
        // The session's edit is on the model again, exactly.
        QCOMPARE(engine.editCount(), 1);
        QCOMPARE(weightDifference(engine, reference, dir.path()), 0.0);

        const auto norms = engine.normGrowth(db, run->runId);
        QVERIFY2(norms.ok(), norms.message().c_str());
        QVERIFY(!norms->empty());
        QCOMPARE(norms->front().steps.size(), size_t(5)); // step 0 and four edits
        QCOMPARE(norms->front().relative.front(), 1.0);
        // The curve ends at the norm of the run's exported weights.
        const std::string exported = dir.filePath("run-weights").toStdString();
        QVERIFY(engine.exportRun(db, run->runId, std::nullopt, exported).ok());
        const auto edited = model::loadStateDict(exported, torch::kFloat32);
        const auto base = model::loadStateDict(kModel, torch::kFloat32);
        for (const auto &series : norms.value()) {
            const std::string name = "transformer.h." + std::to_string(series.layer) + ".mlp.c_proj.weight";
            QVERIFY2(base.count(name) && edited.count(name), name.c_str());
            const double expected = edited.at(name).to(torch::kDouble).norm().item<double>() /
                                    base.at(name).to(torch::kDouble).norm().item<double>();
            QVERIFY2(std::abs(series.relative.back() - expected) <= 1e-5 * expected,
                     qPrintable(QStringLiteral("layer %1: %2 vs %3").arg(series.layer).arg(series.relative.back()).arg(expected)));
        }

        runs::RunRequest cuda = request;
        cuda.device = "cuda";
        const auto refused = engine.startRun(db, cuda);
        if (!Engine::buildInfo().cudaAvailable) {
            QVERIFY(!refused.ok());
            QVERIFY2(refused.message().find("CUDA") != std::string::npos, refused.message().c_str());
        }
    }
};

QTEST_GUILESS_MAIN(TestSessionMini)
#include "tst_session_mini.moc"
