// Weights, statistics, updates and ledger rows that are not numbers (NaN,
// +-Inf), on copies of the mini world model: a checkpoint holding them is
// refused at load with the tensor's name, or opened with a warning on
// request; an edit whose statistics, value optimisation or update is not
// finite is refused naming that step, and nothing reaches the ledger; a
// statistics cache file holding NaN is recomputed, not trusted; the ledger
// refuses to store, and reports on reading, an update that is not finite.
#include "edit/editor.h"
#include "model/checkpoint.h"
#include "oedit/editing.h"
#include "oedit/engine.h"
#include "oedit/world.h"
#include "model/safetensors.h"
#include "store/ledger.h"
#include "store/sqlite_db.h"

#include <QTemporaryDir>
#include <QtTest>

#include <torch/torch.h>

#include <filesystem>
#include <limits>

using namespace oedit;
namespace fs = std::filesystem;

namespace {

const std::string kModel = OEDIT_MINI_MODEL_DIR;

// A copy of the mini model whose tensor `name` has `value` at element 0.
std::string damagedCopy(const QString &scratch, const std::string &folder, const std::string &name, float value)
{
    const std::string dir = (scratch + "/" + QString::fromStdString(folder)).toStdString();
    fs::copy(kModel, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    auto state = model::loadStateDict(kModel);
    auto &tensor = state.at(name);
    tensor.view({-1})[0] = value;
    model::saveCheckpoint(dir, model::loadModelConfig(kModel), state);
    return dir;
}

// A fact the mini model recalls, moved to another object of its relation.
EditSpec recalledFactEdit()
{
    const auto loaded = world::loadWorld(kModel);
    if (!loaded)
        qFatal("%s", loaded.message().c_str());
    const auto &w = loaded.value();
    Engine probe;
    if (!probe.openModel(kModel))
        qFatal("cannot open the mini model");
    for (const auto &fact : w.facts) {
        const auto &relation = w.relationOf(fact);
        const auto prediction = probe.predict(world::factPrompt(w, fact), 1, 3);
        if (!prediction || prediction->continuation.find(w.objectName(fact)) != 1)
            continue;
        EditSpec spec;
        spec.method = "rome";
        spec.subject = w.subjectName(fact);
        spec.prompt = relation.templates[0];
        spec.targetNew = relation.objects[fact.object == 0 ? 1 : 0];
        spec.targetTrue = w.objectName(fact);
        return spec;
    }
    qFatal("the mini model recalls no fact");
    return {};
}

int64_t editsInLedger(const std::string &path)
{
    store::Ledger ledger(path);
    int64_t edits = 0;
    for (const auto &run : ledger.runs())
        edits += ledger.lastStep(run.id);
    return edits;
}

store::EditRecord rankOneRecord(float value)
{
    store::EditRecord record;
    record.method = "rome";
    record.request.subject = "S";
    record.request.prompt = "{} is";
    record.request.targetNew = "T";
    store::StoredUpdate update;
    update.layer = 1;
    update.kind = "rank1";
    const float right[3] = {1.0F, value, 2.0F}, left[2] = {0.5F, 0.25F};
    update.a.shape = {3};
    update.a.bytes.assign(reinterpret_cast<const uint8_t *>(right), reinterpret_cast<const uint8_t *>(right) + 12);
    update.b.shape = {2};
    update.b.bytes.assign(reinterpret_cast<const uint8_t *>(left), reinterpret_cast<const uint8_t *>(left) + 8);
    record.updates.push_back(update);
    return record;
}

} // namespace

class TestNonFinite : public QObject {
    Q_OBJECT
    QTemporaryDir m_scratch;
    QTemporaryDir m_cache;

private Q_SLOTS:
    void initTestCase()
    {
        torch::set_num_threads(1);
        QVERIFY(m_scratch.isValid());
        QVERIFY(m_cache.isValid());
        qputenv("XDG_CACHE_HOME", m_cache.path().toUtf8());
    }

    void nonFiniteWeightsAreRefusedWithTheTensorsName_data()
    {
        QTest::addColumn<float>("value");
        QTest::newRow("NaN") << std::numeric_limits<float>::quiet_NaN();
        QTest::newRow("+Inf") << std::numeric_limits<float>::infinity();
        QTest::newRow("-Inf") << -std::numeric_limits<float>::infinity();
    }
    void nonFiniteWeightsAreRefusedWithTheTensorsName()
    {
        QFETCH(float, value);
        const std::string name = "transformer.h.2.mlp.c_fc.weight";
        const auto dir = damagedCopy(m_scratch.path(), "weights", name, value);
        try {
            model::loadStateDict(dir);
            QFAIL("a checkpoint holding a non-finite weight loaded without a word");
        } catch (const model::CheckpointError &error) {
            const std::string message = error.what();
            QVERIFY2(message.find(name) != std::string::npos, error.what());
            QVERIFY2(message.find("--allow-nonfinite") != std::string::npos, error.what());
        }
        Engine engine;
        const Status opened = engine.openModel(dir);
        QVERIFY(!opened.ok());
        QVERIFY2(opened.message().find(name) != std::string::npos, opened.message().c_str());
        QVERIFY(!engine.hasModel());

        // On request it opens, and says what is wrong.
        OpenOptions options;
        options.allowNonFiniteWeights = true;
        QVERIFY2(engine.openModel(dir, options).ok(), "opening with allowNonFiniteWeights failed");
        const auto warnings = engine.modelInfo().warnings;
        QCOMPARE(warnings.size(), size_t(1));
        QVERIFY2(warnings[0].find(name) != std::string::npos, warnings[0].c_str());
        QVERIFY2(warnings[0].find(std::isnan(value) ? "1 NaN and 0 infinite" : "0 NaN and 1 infinite") !=
                     std::string::npos,
                 warnings[0].c_str());
    }

    // Whichever step first meets the bad values says so; the ledger stays empty.
    void editsOnAModelThatIsNotFiniteAreRefused_data()
    {
        QTest::addColumn<QString>("tensor");
        QTest::addColumn<QString>("step");
        // Below the edited layer: the keys and the statistics C are NaN.
        QTest::newRow("layer 0 MLP") << "transformer.h.0.mlp.c_fc.weight" << "not finite";
        // After the last layer: C is fine, the value optimisation's loss is not.
        QTest::newRow("final norm") << "transformer.ln_f.weight" << "value optimisation diverged";
    }
    void editsOnAModelThatIsNotFiniteAreRefused()
    {
        QFETCH(QString, tensor);
        QFETCH(QString, step);
        const auto dir = damagedCopy(m_scratch.path(), "edit-" + tensor.toStdString(), tensor.toStdString(),
                                     std::numeric_limits<float>::quiet_NaN());
        const auto spec = recalledFactEdit();
        Engine engine;
        OpenOptions options;
        options.allowNonFiniteWeights = true;
        QVERIFY(engine.openModel(dir, options).ok());
        const std::string ledger = (m_scratch.path() + "/edits-" + tensor + ".sqlite").toStdString();
        QVERIFY(engine.attachLedger(ledger).ok());
        const auto outcome = engine.applyEdit(spec);
        QVERIFY2(!outcome.ok(), "an edit of a model with NaN weights was made");
        QVERIFY2(outcome.message().find(step.toStdString()) != std::string::npos, outcome.message().c_str());
        QCOMPARE(engine.editCount(), 0);
        engine.detachLedger();
        QCOMPARE(editsInLedger(ledger), int64_t(0));
        QVERIFY(store::Ledger(ledger).integrityCheck().ok);
    }

    void aNonFiniteUpdateIsRefusedNamingItsLayer()
    {
        edit::EditResult result;
        result.request.subject = "Ada";
        result.request.prompt = "{} speaks";
        result.request.targetNew = "French";
        edit::LayerUpdate update;
        update.layer = 3;
        update.right = torch::ones({4});
        update.left = torch::ones({6});
        update.left[2] = std::numeric_limits<float>::infinity();
        result.layers.push_back(update);
        result.diagnostics.lossCurve = {2.0, 1.0};
        try {
            edit::requireFiniteResult(result);
            QFAIL("an infinite update was let through");
        } catch (const edit::EditError &error) {
            QVERIFY2(std::string(error.what()).find("update of layer 3") != std::string::npos, error.what());
        }
        result.layers[0].left[2] = 1.0F;
        edit::requireFiniteResult(result); // finite again: no throw
        result.diagnostics.lossCurve.push_back(std::nan(""));
        QVERIFY_THROWS_EXCEPTION(edit::EditError, edit::requireFiniteResult(result));
    }

    // A cache file holding NaN (a flipped bit, or statistics of a broken
    // model) is recomputed; the edit succeeds and the file is finite again.
    void aStatisticsCacheHoldingNaNIsRecomputed()
    {
        QTemporaryDir cache;
        QVERIFY(cache.isValid());
        qputenv("XDG_CACHE_HOME", cache.path().toUtf8());
        const auto spec = recalledFactEdit();
        {
            Engine engine;
            QVERIFY(engine.openModel(kModel).ok());
            const auto first = engine.applyEdit(spec);
            QVERIFY2(first.ok(), first.message().c_str());
        }
        int poisoned = 0;
        for (const auto &entry : fs::recursive_directory_iterator(cache.path().toStdString())) {
            if (entry.path().extension() != ".safetensors")
                continue;
            const model::SafetensorsFile file(entry.path().string());
            auto statistic = file.tensor("statistic").clone();
            statistic.view({-1})[0] = std::numeric_limits<double>::quiet_NaN();
            model::writeSafetensors(entry.path().string(), {{"statistic", statistic}});
            ++poisoned;
        }
        QVERIFY2(poisoned > 0, "the edit cached no statistics");
        Engine engine;
        QVERIFY(engine.openModel(kModel).ok());
        const auto second = engine.applyEdit(spec);
        QVERIFY2(second.ok(), second.message().c_str());
        QVERIFY(second->succeeded());
        for (const auto &entry : fs::recursive_directory_iterator(cache.path().toStdString())) {
            if (entry.path().extension() != ".safetensors")
                continue;
            const model::SafetensorsFile file(entry.path().string());
            QVERIFY2(torch::isfinite(file.tensor("statistic")).all().item<bool>(), entry.path().c_str());
        }
        qputenv("XDG_CACHE_HOME", m_cache.path().toUtf8());
    }

    void theLedgerNeitherStoresNorReadsNonFiniteUpdates()
    {
        const std::string path = (m_scratch.path() + "/blobs.sqlite").toStdString();
        store::Ledger ledger(path);
        store::RunSpec spec;
        spec.method = "rome";
        spec.dataset = "manual";
        const auto run = ledger.createRun(spec);
        try {
            ledger.appendEdit(run, rankOneRecord(std::numeric_limits<float>::quiet_NaN()));
            QFAIL("a NaN update was stored");
        } catch (const store::LedgerError &error) {
            QVERIFY2(std::string(error.what()).find("not a number") != std::string::npos, error.what());
            QVERIFY2(std::string(error.what()).find("element 1") != std::string::npos, error.what());
        }
        QCOMPARE(ledger.lastStep(run), int64_t(0));
        const auto id = ledger.appendEdit(run, rankOneRecord(3.0F));
        // A blob damaged on disk after it was written is reported on reading.
        const float inf = std::numeric_limits<float>::infinity();
        const float right[3] = {1.0F, inf, 2.0F};
        store::Statement damage(ledger.database(), "UPDATE updates SET a = ? WHERE edit = ?");
        damage.bindBlob(1, right, sizeof right);
        damage.bind(2, id);
        damage.step();
        QVERIFY_THROWS_EXCEPTION(store::LedgerError, ledger.loadUpdates(id));
        QVERIFY(ledger.integrityCheck().ok); // SQLite's own checks: the file itself is sound
    }
};

QTEST_GUILESS_MAIN(TestNonFinite)
#include "tst_nonfinite.moc"
