// The ledger with real edits of the mini world model (slow: needs the
// mini_model fixture): O-Edit+ and ROME runs recorded in one ledger file,
// rebuilt bit-exact into a freshly loaded model, and rolled back (revert,
// remove from the middle, undo) with weights within rounding of the
// recomputed expectation and O-Edit+'s subspaces restored.
#include "edit/editor.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/world.h"
#include "run/ledger_codec.h"
#include "store/ledger.h"
#include "run/rebuild.h"

#include <torch/torch.h>

#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

#include <random>
#include <set>

using namespace oedit;
using namespace oedit::store;
using namespace oedit::run;
using oedit::edit::EditContext;
using oedit::edit::EditRequest;

namespace {

std::unique_ptr<model::Transformer> loadMini()
{
    const std::string dir = OEDIT_MINI_MODEL_DIR;
    return std::make_unique<model::Transformer>(model::loadModelConfig(dir),
                                                model::loadStateDict(dir, torch::kFloat32));
}

// Distinct (fact, new object) pairs, the same on every run (mt19937, modulo).
std::vector<EditRequest> randomRequests(const world::World &w, int count, uint32_t seed)
{
    std::mt19937 random(seed);
    std::vector<EditRequest> out;
    std::set<size_t> used;
    while (static_cast<int>(out.size()) < count) {
        const size_t index = random() % w.facts.size();
        const auto &fact = w.facts[index];
        const auto &relation = w.relationOf(fact);
        const int other = static_cast<int>(random() % relation.objects.size());
        if (other == fact.object || !used.insert(index).second)
            continue;
        out.push_back({w.subjectName(fact), relation.templates[0], relation.objects[static_cast<size_t>(other)],
                       w.objectName(fact)});
    }
    return out;
}

// Float32 sums of the same updates in another order differ by a few units in
// the last place of the largest weight they pass through: weights are compared
// within 1e-6 relative to that size, never tighter than 1e-6.
double roundingTolerance(double peakWeight)
{
    return 1e-6 * std::max(1.0, peakWeight);
}

double maxDifference(const model::Transformer &model, const std::map<int64_t, torch::Tensor> &expected)
{
    double worst = 0;
    for (const auto &[layer, W] : expected)
        worst = std::max(worst, (model.mlpOutWeight(layer).to(torch::kDouble) - W).abs().max().item<double>());
    return worst;
}

struct OEditSnapshot {
    std::map<int64_t, std::vector<int64_t>> owners;
    std::map<int64_t, torch::Tensor> basis;
};

OEditSnapshot snapshot(const EditContext &context)
{
    OEditSnapshot s;
    for (const auto &[layer, state] : context.oeditLayers()) {
        s.owners[layer] = state.blockOwner;
        s.basis[layer] = state.editBasis().clone();
    }
    return s;
}

bool sameState(const OEditSnapshot &a, const OEditSnapshot &b)
{
    for (const auto &[layer, owners] : a.owners) {
        if (!b.owners.count(layer) || owners != b.owners.at(layer))
            return false;
        const auto &A = a.basis.at(layer), &B = b.basis.at(layer);
        if (A.sizes() != B.sizes() || (A.numel() > 0 && (A - B).abs().max().item<double>() > 1e-9))
            return false;
    }
    return true;
}

} // namespace

class TestLedgerMini : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { torch::set_num_threads(1); }

    void realEditsRollBackExactly()
    {
        const std::string dir = OEDIT_MINI_MODEL_DIR;
        auto model = loadMini();
        const auto tokenizer = model::loadTokenizer(dir);
        auto loadedWorld = world::loadWorld(dir);
        QVERIFY2(loadedWorld.ok(), loadedWorld.message().c_str());
        const auto &w = loadedWorld.value();
        const auto base = captureBaseWeights(*model);

        QTemporaryDir temp;
        const auto ledgerPath = temp.filePath(QStringLiteral("runs.sqlite")).toStdString();
        Ledger ledger(ledgerPath);
        edit::ContextOptions options;
        options.modelDir = dir;
        options.cacheDir = temp.filePath(QStringLiteral("cache")).toStdString();

        // Run A: six O-Edit+ edits.
        auto oedit = edit::createEditMethod("oedit+", {}, model->config());
        RunSpec spec;
        spec.method = "oedit+";
        spec.hparams = oedit->hparams();
        spec.seed = 31;
        spec.dataset = "world";
        spec.modelPath = dir;
        spec.baseModelHash = modelFolderHash(dir);
        const auto runA = ledger.createRun(spec);
        EditContext contextA(options);
        oedit->prepare(*model, *tokenizer, contextA);
        std::vector<int64_t> ids;
        std::map<int64_t, std::map<int64_t, torch::Tensor>> weightsAt;
        std::map<int64_t, OEditSnapshot> stateAt;
        int64_t step = 0;
        double peakWeight = 0;
        for (const auto &request : randomRequests(w, 6, 31)) {
            const auto result = oedit->edit(*model, *tokenizer, request, contextA);
            edit::applyEdit(*model, result, &contextA);
            ids.push_back(run::appendEdit(ledger, runA, result));
            ++step;
            for (const auto &[layer, W] : base) {
                weightsAt[step][layer] = model->mlpOutWeight(layer).to(torch::kDouble);
                peakWeight = std::max(peakWeight, weightsAt[step][layer].abs().max().item<double>());
            }
            stateAt[step] = snapshot(contextA);
        }
        ledger.setRunStatus(runA, "finished");
        const auto layer = oedit->hparams()["layer"].get<int64_t>();
        QVERIFY(contextA.oeditLayer(layer).editRank() >= 6);

        // A freshly loaded model rebuilt from the ledger has the run's weights.
        double rebuildDifference = 0;
        {
            auto fresh = loadMini();
            QCOMPARE(rebuildWeights(*fresh, captureBaseWeights(*fresh), ledger, runA), int64_t(6));
            for (int64_t l = 0; l < model->config().layers; ++l)
                rebuildDifference = std::max(
                    rebuildDifference, (fresh->mlpOutWeight(l) - model->mlpOutWeight(l)).abs().max().item<double>());
            QVERIFY2(rebuildDifference <= roundingTolerance(peakWeight), qPrintable(QString::number(rebuildDifference)));
        }

        QElapsedTimer timer;
        // Revert to step 3.
        timer.start();
        const auto revert = ledger.revertToStep(runA, 3);
        applyRollback(*model, &contextA, ledger, revert);
        const double revertMs = timer.nsecsElapsed() / 1e6;
        QVERIFY(maxDifference(*model, expectedWeights(base, ledger, runA)) <= roundingTolerance(peakWeight));
        QVERIFY(maxDifference(*model, weightsAt[3]) <= roundingTolerance(peakWeight));
        QVERIFY(sameState(snapshot(contextA), stateAt[3]));

        // Remove step 2 from the middle.
        timer.restart();
        const auto remove = ledger.removeEdit(runA, ids[1]);
        applyRollback(*model, &contextA, ledger, remove, &base); // exact: touched layers rebuilt from base
        const double removeMs = timer.nsecsElapsed() / 1e6;
        const double removeDifference = maxDifference(*model, expectedWeights(base, ledger, runA));
        QVERIFY2(removeDifference <= roundingTolerance(peakWeight), qPrintable(QString::number(removeDifference)));
        for (const auto &[l, W] : expectedWeights(base, ledger, runA))
            QVERIFY(torch::equal(model->mlpOutWeight(l), W.to(torch::kFloat)));
        {
            EditContext replayed(options);
            replayEditState(replayed, ledger, runA);
            QVERIFY(sameState(snapshot(contextA), snapshot(replayed)));
            QCOMPARE(contextA.oeditLayer(layer).blockOwner.size(), size_t(2));
        }

        // Undo both: all six edits, as they were.
        applyRollback(*model, &contextA, ledger, ledger.undoRollback(remove.id));
        applyRollback(*model, &contextA, ledger, ledger.undoRollback(revert.id));
        QVERIFY(maxDifference(*model, weightsAt[6]) <= roundingTolerance(peakWeight));
        QVERIFY(sameState(snapshot(contextA), stateAt[6]));
        qInfo("oedit+ run of 6 edits: revert to step 3 %.1f ms (incremental), removal of step 2 %.1f ms (exact), "
              "max |W - expected| after removal %.2e, rebuilt vs applied edit by edit %.2e",
              revertMs, removeMs, removeDifference, rebuildDifference);

        // Run B in the same ledger: ROME from the base model.
        rebuildWeights(*model, base, ledger, runA, 0);
        QVERIFY(maxDifference(*model, expectedWeights(base, ledger, runA, 0)) == 0);
        spec.method = "rome";
        auto rome = edit::createEditMethod("rome", {}, model->config());
        spec.hparams = rome->hparams();
        const auto runB = ledger.createRun(spec);
        EditContext contextB(options);
        rome->prepare(*model, *tokenizer, contextB);
        std::vector<int64_t> romeIds;
        for (const auto &request : randomRequests(w, 4, 77)) {
            const auto result = rome->edit(*model, *tokenizer, request, contextB);
            edit::applyEdit(*model, result, &contextB);
            romeIds.push_back(run::appendEdit(ledger, runB, result));
            for (int64_t l = 0; l < model->config().layers; ++l)
                peakWeight = std::max(peakWeight, model->mlpOutWeight(l).abs().max().item<double>());
        }
        applyRollback(*model, &contextB, ledger, ledger.removeEdit(runB, romeIds[1]));
        QVERIFY(maxDifference(*model, expectedWeights(base, ledger, runB)) <= roundingTolerance(peakWeight));
        // Run A is untouched by run B.
        QCOMPARE(ledger.activeEditCount(runA), int64_t(6));
        rebuildWeights(*model, base, ledger, runA);
        QVERIFY(maxDifference(*model, weightsAt[6]) <= roundingTolerance(peakWeight));
        QCOMPARE(ledger.runs().size(), size_t(2));

        QVERIFY(ledger.integrityCheck().ok);
    }
};

QTEST_GUILESS_MAIN(TestLedgerMini)
#include "tst_ledger_mini.moc"
