// What History shows of each edit (runs::listEdits) from the ledger's rows:
// the update's norm over all layers, the value shift under its own name (and
// under the name older ledgers used), the key overlap, and the flag on an
// update far larger than the run's others (a disabling edit).
#include "oedit/runs.h"
#include "store/ledger.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>

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

EditRecord edit(int step, std::vector<double> updateNorms, nlohmann::json extra = nlohmann::json::object())
{
    EditRecord record;
    record.resultId = step;
    record.method = "rome";
    record.request = {"Subject " + std::to_string(step), "{} lives in", "Paris", std::string("Rome")};
    record.diagnostics = {{"update_norms", updateNorms}, {"max_key_cos_with_earlier", 0.25 * (step % 4)}};
    record.diagnostics.update(extra);
    StoredUpdate update;
    update.layer = 0;
    update.kind = "rank1";
    update.a = floats({1, 2});
    update.b = floats({3, 4, 5});
    record.updates.push_back(update);
    return record;
}

} // namespace

class TestEditEntries : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void entriesCarryNormsOverlapAndOutliers()
    {
        QTemporaryDir dir;
        const std::string db = dir.filePath(QStringLiteral("runs.sqlite")).toStdString();
        {
            Ledger ledger(db);
            RunSpec spec;
            spec.method = "rome";
            spec.dataset = "world";
            const auto run = ledger.createRun(spec);
            for (int step = 1; step <= 8; ++step)
                ledger.appendEdit(run, edit(step, {3.0, 4.0}, {{"value_shift_norm", 0.5 * step}}));
            // The disabling edit: two hundred times the others.
            ledger.appendEdit(run, edit(9, {1000.0}, {{"value_shift_norm", 7.0}}));
            // An edit as an older ledger stored it: delta_norm for the value shift.
            ledger.appendEdit(run, edit(10, {5.0}, {{"delta_norm", 2.5}}));
        }
        const auto edits = runs::listEdits(db, 1);
        QVERIFY2(edits, edits.message().c_str());
        QCOMPARE(edits->size(), size_t(10));
        QCOMPARE(edits->at(0).updateNorm, 5.0); // sqrt(3^2 + 4^2): the layers together
        QCOMPARE(edits->at(0).valueShiftNorm, 0.5);
        QCOMPARE(edits->at(2).keyOverlap, 0.75);
        QCOMPARE(edits->at(9).valueShiftNorm, 2.5);
        for (const auto &e : edits.value())
            QCOMPARE(e.outlier, e.step == 9);
    }

    // Too few edits to know what is usual: nothing is flagged.
    void fewEditsFlagNothing()
    {
        QTemporaryDir dir;
        const std::string db = dir.filePath(QStringLiteral("runs.sqlite")).toStdString();
        {
            Ledger ledger(db);
            RunSpec spec;
            spec.method = "rome";
            spec.dataset = "world";
            const auto run = ledger.createRun(spec);
            ledger.appendEdit(run, edit(1, {1.0}));
            ledger.appendEdit(run, edit(2, {1000.0}));
        }
        const auto edits = runs::listEdits(db, 1);
        QVERIFY(edits);
        for (const auto &e : edits.value())
            QVERIFY(!e.outlier);
    }
};

QTEST_GUILESS_MAIN(TestEditEntries)
#include "tst_edit_entries.moc"
