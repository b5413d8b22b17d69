// The runs facade's read-only views that the workbench draws (oedit/runs.h):
// listEdits, subspaceReport, principalAngles, compareFacts, and the engine's
// normGrowth and ledger-attached session, on small runs of the mini model.
// Only oedit/*.h is used.
#include "oedit/engine.h"
#include "oedit/runs.h"
#include "oedit/world.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace oedit;

namespace {

const std::string kModel = OEDIT_MINI_MODEL_DIR;

runs::RunSummary makeRun(Engine &engine, const std::string &db, const std::string &method, long long edits,
                         long long every)
{
    runs::RunRequest request;
    request.modelDir = kModel;
    request.method = method;
    request.edits = edits;
    request.evalEvery = every;
    request.seed = 5;
    const auto run = engine.startRun(db, request);
    if (!run)
        qFatal("%s", run.message().c_str());
    return run.value();
}

} // namespace

class TestRunViews : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_db = m_dir.filePath(QStringLiteral("views.sqlite")).toStdString();
        m_oedit = makeRun(m_engine, m_db, "oedit+", 5, 2);
        QCOMPARE(m_oedit.status, std::string("finished"));
        m_rome = makeRun(m_engine, m_db, "rome", 5, 5);
        QCOMPARE(m_rome.status, std::string("finished"));
    }

    void listEditsInStepOrder()
    {
        const auto edits = runs::listEdits(m_db, m_oedit.runId);
        QVERIFY2(edits.ok(), edits.message().c_str());
        QCOMPARE(edits->size(), size_t(5));
        for (size_t i = 0; i < edits->size(); ++i) {
            QCOMPARE(edits.value()[i].step, static_cast<long long>(i + 1));
            QVERIFY(edits.value()[i].active);
            QVERIFY(!edits.value()[i].subject.empty());
            QCOMPARE(edits.value()[i].method, std::string("oedit+"));
            QVERIFY(edits.value()[i].protectedRank > 0); // O-Edit+ records its protected basis
        }
        QVERIFY(!runs::listEdits(m_db, 999).ok());
    }

    // An edit's update against itself has |cos| 1; O-Edit+ keeps different
    // edits' updates orthogonal, so every other pair is ~0.
    void oeditUpdatesAreOrthogonal()
    {
        const auto report = runs::subspaceReport(m_db, m_oedit.runId, 100);
        QVERIFY2(report.ok(), report.message().c_str());
        const auto n = report->edits.size();
        QCOMPARE(n, size_t(5));
        QCOMPARE(report->activeEdits, 5LL);
        QCOMPARE(report->combined.size(), n * n);
        QVERIFY(!report->layers.empty());
        QCOMPARE(report->perLayer.size(), report->layers.size());
        double worst = 0;
        for (size_t a = 0; a < n; ++a)
            for (size_t b = 0; b < n; ++b) {
                const double c = report->combined[a * n + b];
                if (a == b)
                    QVERIFY2(std::abs(c - 1.0) < 1e-9, qPrintable(QString::number(c)));
                else
                    worst = std::max(worst, c);
            }
        qInfo("O-Edit+ largest pairwise |cos| of different edits: %.3g", worst);
        QVERIFY2(worst <= 1e-4, qPrintable(QString::number(worst)));
        for (size_t l = 0; l < report->layers.size(); ++l) {
            QVERIFY(report->width[l] > 0);
            QVERIFY(report->residual[l] <= 1e-4);
            QCOMPARE(report->editRank[l], static_cast<long long>(n)); // one new direction per edit
            QVERIFY(report->editRank[l] + report->protectedRank <= report->width[l]);
        }
        // The latest edits only, when asked for fewer.
        const auto latest = runs::subspaceReport(m_db, m_oedit.runId, 2);
        QVERIFY(latest.ok());
        QCOMPARE(latest->edits.size(), size_t(2));
        QCOMPARE(latest->edits.back().step, 5LL);
    }

    void principalAnglesOfAPair()
    {
        const auto edits = runs::listEdits(m_db, m_oedit.runId);
        QVERIFY(edits.ok());
        const auto self = runs::principalAngles(m_db, edits->at(0).editId, edits->at(0).editId);
        QVERIFY2(self.ok(), self.message().c_str());
        QVERIFY(!self->layers.empty());
        for (const auto &degrees : self->degrees) {
            QVERIFY(!degrees.empty());
            for (const double d : degrees)
                QVERIFY2(d < 0.01, qPrintable(QString::number(d))); // an update shares its directions with itself
        }
        const auto pair = runs::principalAngles(m_db, edits->at(0).editId, edits->at(1).editId);
        QVERIFY(pair.ok());
        for (const auto &degrees : pair->degrees)
            for (const double d : degrees)
                QVERIFY2(d > 89.99, qPrintable(QString::number(d))); // orthogonal output directions
    }

    void normGrowthStartsAtOne()
    {
        const auto series = m_engine.normGrowth(m_db, m_rome.runId);
        QVERIFY2(series.ok(), series.message().c_str());
        QVERIFY(!series->empty());
        for (const auto &s : series.value()) {
            QVERIFY(s.baseNorm > 0);
            QCOMPARE(s.steps.size(), size_t(6)); // step 0 and each of 5 edits
            QCOMPARE(s.steps.front(), 0LL);
            QCOMPARE(s.relative.front(), 1.0);
            QVERIFY(s.relative.back() != 1.0); // ROME changed the layer
        }
    }

    // Same seed, same facts: every fact of one run is matched in the other.
    void compareFactsMatchesBySubjectPromptAndTarget()
    {
        const auto facts = runs::compareFacts(m_db, {m_oedit.runId, m_rome.runId});
        QVERIFY2(facts.ok(), facts.message().c_str());
        QCOMPARE(facts->size(), size_t(5));
        for (const auto &fact : facts.value()) {
            QCOMPARE(fact.kept.size(), size_t(2));
            for (const int k : fact.kept)
                QVERIFY(k == 0 || k == 1);
        }
        QVERIFY(!runs::compareFacts(m_db, {m_oedit.runId, 4242}).ok());
    }

    // The Facts view's session attached to a ledger: each edit lands in a manual run once.
    void attachedSessionAppendsEachEditOnce()
    {
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        const auto loaded = world::loadWorld(kModel);
        QVERIFY(loaded.ok());
        const auto &w = loaded.value();
        const std::string db = m_dir.filePath(QStringLiteral("session.sqlite")).toStdString();
        QVERIFY(engine.attachLedger(db, 0).ok());
        long long runId = 0;
        int made = 0;
        for (const auto &fact : w.facts) {
            if (made == 2)
                break;
            const auto &relation = w.relationOf(fact);
            EditSpec spec;
            spec.method = "rome";
            spec.subject = w.subjectName(fact);
            spec.prompt = relation.templates[0];
            spec.targetNew = relation.objects[fact.object == 0 ? 1 : 0];
            const auto outcome = engine.applyEdit(spec);
            if (!outcome)
                continue; // e.g. a fact the model does not know
            ++made;
            QVERIFY(runId == 0 || outcome->runId == runId);
            runId = outcome->runId;
            const auto list = runs::listRuns(db);
            QVERIFY2(list.ok(), list.message().c_str());
            QCOMPARE(list->size(), size_t(1));
            const auto &run = list->front();
            QCOMPARE(run.runId, runId);
            QCOMPARE(run.steps, static_cast<long long>(made));
            QCOMPARE(run.dataset, std::string("manual"));
            QCOMPARE(run.status, std::string("finished"));
        }
        QCOMPARE(made, 2);
        // Attaching the same run again adds nothing and loads both edits.
        QVERIFY(engine.attachLedger(db, runId).ok());
        QCOMPARE(engine.editCount(), 2);
        const auto again = runs::listRuns(db);
        QCOMPARE(again->front().steps, 2LL);
        // A run that does not exist is refused and changes nothing.
        QVERIFY(!engine.attachLedger(db, 4242).ok());
        QCOMPARE(engine.editCount(), 2);
        QVERIFY(!engine.attachLedger(m_dir.filePath(QStringLiteral("none/x.sqlite")).toStdString(), 0).ok());
    }

private:
    QTemporaryDir m_dir;
    Engine m_engine; // no model open: runs load their folder once and keep it
    std::string m_db;
    runs::RunSummary m_oedit, m_rome;
};

QTEST_GUILESS_MAIN(TestRunViews)
#include "tst_run_views.moc"
