// The interference explorer through the facade on the mini world model: a
// 40-edit ROME run loses facts of the world; for each lost fact the top-ranked
// culprit, removed, restores the fact far more often than a random edit of
// the run does (the figure the README states), the top culprit's blast radius
// lists the fact as lost, and the analyses leave the engine's model as they
// found it. Only oedit/*.h is used.
#include "oedit/engine.h"
#include "oedit/interference.h"
#include "oedit/runs.h"
#include "oedit/world.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <random>

using namespace oedit;

namespace {

const std::string kModel = OEDIT_MINI_MODEL_DIR;

} // namespace

class TestInterferenceMini : public QObject {
    Q_OBJECT
    QTemporaryDir m_dir;
    std::string m_db;
    long long m_run = 0;
    std::vector<long long> m_edits;

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        qputenv("XDG_CACHE_HOME", m_dir.filePath("cache").toUtf8());
        m_db = m_dir.filePath("runs.sqlite").toStdString();
        Engine engine;
        runs::RunRequest request;
        request.modelDir = kModel;
        request.method = "rome";
        request.edits = 40;
        request.evalEvery = 40;
        request.seed = 3;
        const auto run = engine.startRun(m_db, request);
        QVERIFY2(run, run.message().c_str());
        QCOMPARE(run->status, std::string("finished"));
        m_run = run->runId;
        const auto edits = runs::listEdits(m_db, m_run);
        QVERIFY(edits);
        for (const auto &edit : edits.value())
            m_edits.push_back(edit.editId);
        QCOMPARE(m_edits.size(), size_t(40));
    }

    void topCulpritRestoresLostFactsFarMoreOftenThanARandomEdit()
    {
        auto world = world::loadWorld(kModel);
        QVERIFY(world);
        Engine engine;
        // The world's facts as the run left them: those not recalled now.
        const auto scored = engine.blastRadius(m_db, m_run, m_edits.front(), 1000000);
        QVERIFY2(scored, scored.message().c_str());
        std::mt19937 random(7);
        int facts = 0, restoredByTop = 0;
        double restoredByRandom = 0, gainTop = 0, gainRandom = 0;
        for (const auto &fact : world->facts) {
            const auto &relation = world->relationOf(fact);
            const auto text = world::factPrompt(world.value(), fact);
            const auto found = std::find_if(scored->hurt.begin(), scored->hurt.end(), [&](const runs::AffectedFact &f) {
                return f.kind == "world" && f.text == text;
            });
            if (found == scored->hurt.end() || found->recalledWith)
                continue;
            runs::FactQuery query;
            query.runId = m_run;
            query.subject = world->subjectName(fact);
            query.prompt = relation.templates[0];
            query.target = world->objectName(fact);
            query.exactTop = 1;
            std::vector<long long> others(m_edits);
            std::shuffle(others.begin(), others.end(), random);
            query.whatIf.assign(others.begin(), others.begin() + 5);
            const auto explained = engine.explainFact(m_db, query);
            QVERIFY2(explained, explained.message().c_str());
            if (explained->holds || explained->baseMargin <= 0)
                continue; // not a fact the edits took away
            const auto &culprits = explained->culprits;
            QVERIFY(!culprits.empty() && culprits.size() <= 6);
            const auto &top = culprits.front();
            QVERIFY(top.exact);
            ++facts;
            restoredByTop += top.marginWithout > 0;
            gainTop += top.marginWithout - explained->margin;
            // The five random edits: the culprits after the top one, and the
            // top one too when chance drew it (it is then listed once).
            double restored = 0, gain = 0;
            int counted = 0;
            for (auto it = culprits.begin() + 1; it != culprits.end(); ++it, ++counted) {
                restored += it->marginWithout > 0;
                gain += it->marginWithout - explained->margin;
            }
            if (culprits.size() < 6) { // the top culprit was one of the five
                restored += top.marginWithout > 0;
                gain += top.marginWithout - explained->margin;
                ++counted;
            }
            restoredByRandom += restored / counted;
            gainRandom += gain / counted;
            if (facts == 15)
                break;
        }
        QVERIFY2(facts >= 8, qPrintable(QString("only %1 lost facts found").arg(facts)));
        const double top = double(restoredByTop) / facts, chance = restoredByRandom / facts;
        qInfo("lost facts %d: the top culprit removed restores %.2f of them, a random edit of the run %.2f; "
              "mean margin gain %.2f against %.2f",
              facts, top, chance, gainTop / facts, gainRandom / facts);
        QVERIFY2(top >= 0.5, qPrintable(QString::number(top)));
        QVERIFY2(top >= chance + 0.3, qPrintable(QString("%1 vs %2").arg(top).arg(chance)));
        QVERIFY(gainTop > gainRandom);
    }

    void culpritsAreRankedAndTheModelIsLeftAlone()
    {
        Engine engine;
        runs::FactQuery query;
        query.runId = m_run;
        // An edit of the run itself, asked about: the edit is its own best support.
        const auto edits = runs::listEdits(m_db, m_run);
        const auto &first = edits->front();
        query.subject = first.subject;
        query.prompt = first.prompt;
        query.target = first.targetNew;
        query.exactTop = 40;
        const auto a = engine.explainFact(m_db, query);
        QVERIFY2(a, a.message().c_str());
        QCOMPARE(a->activeEdits, 40LL);
        QCOMPARE(a->culprits.size(), size_t(40));
        for (size_t i = 1; i < a->culprits.size(); ++i)
            QVERIFY(a->culprits[i - 1].firstOrder <= a->culprits[i].firstOrder);
        // Removing the edit itself lowers its own target's margin the most.
        const auto self = std::find_if(a->culprits.begin(), a->culprits.end(),
                                       [&](const runs::Culprit &c) { return c.editId == first.editId; });
        QVERIFY(self != a->culprits.end());
        for (const auto &c : a->culprits)
            QVERIFY(self->marginWithout <= c.marginWithout);
        // The same answer again: the weights were put back.
        const auto b = engine.explainFact(m_db, query);
        QVERIFY(b);
        QCOMPARE(b->margin, a->margin);
        QCOMPARE(b->culprits.front().marginWithout, a->culprits.front().marginWithout);
        // An edit that is not in the run is refused, by name.
        query.whatIf = {999999};
        const auto refused = engine.explainFact(m_db, query);
        QVERIFY(!refused);
        QVERIFY(refused.message().find("999999") != std::string::npos);
    }

    void blastRadiusNamesWhatTheTopCulpritBroke()
    {
        auto world = world::loadWorld(kModel);
        Engine engine;
        const auto scored = engine.blastRadius(m_db, m_run, m_edits.front(), 1000000);
        QVERIFY(scored);
        QCOMPARE(scored->factsScored, static_cast<long long>(world->facts.size()) + 39);
        for (const auto &fact : world->facts) {
            const auto text = world::factPrompt(world.value(), fact);
            const auto found = std::find_if(scored->hurt.begin(), scored->hurt.end(), [&](const runs::AffectedFact &f) {
                return f.kind == "world" && f.text == text;
            });
            if (found == scored->hurt.end() || found->recalledWith)
                continue;
            runs::FactQuery query;
            query.runId = m_run;
            query.subject = world->subjectName(fact);
            query.prompt = world->relationOf(fact).templates[0];
            query.target = world->objectName(fact);
            query.exactTop = 1;
            const auto explained = engine.explainFact(m_db, query);
            QVERIFY(explained);
            if (explained->culprits.empty() || explained->culprits.front().marginWithout <= 0)
                continue;
            const auto culprit = explained->culprits.front().editId;
            const auto radius = engine.blastRadius(m_db, m_run, culprit, 1000000);
            QVERIFY2(radius, radius.message().c_str());
            const auto hit = std::find_if(radius->hurt.begin(), radius->hurt.end(), [&](const runs::AffectedFact &f) {
                return f.kind == "world" && f.text == text;
            });
            QVERIFY(hit != radius->hurt.end());
            QVERIFY(hit->pWithout > hit->pWith);
            QVERIFY(radius->lost >= 1);
            // Sorted by the drop the edit caused.
            for (size_t i = 1; i < radius->hurt.size(); ++i)
                QVERIFY(radius->hurt[i - 1].pWithout - radius->hurt[i - 1].pWith >=
                        radius->hurt[i].pWithout - radius->hurt[i].pWith);
            return;
        }
        QFAIL("no lost fact had a culprit whose removal restored it");
    }

    void refusals()
    {
        Engine engine;
        QVERIFY(!engine.blastRadius(m_db, m_run, 999999));
        QVERIFY(!engine.blastRadius(m_db + ".missing", m_run, m_edits.front()));
        runs::FactQuery query;
        query.runId = m_run;
        query.subject = "Nobody";
        query.prompt = "The mother tongue of {} is";
        const auto noTarget = engine.explainFact(m_db, query);
        QVERIFY(!noTarget);
        QVERIFY(noTarget.message().find("target") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestInterferenceMini)
#include "tst_interference_mini.moc"
