// Editing through the engine facade on the mini world model (trained once per
// build tree by the mini_model fixture): edits succeed, undo restores the
// predictions, bad input is refused with a clear message and changes nothing,
// a saved run restores, and opening a model starts a new run. Only oedit/*.h
// is used here: this is what the CLI and the workbench see.
#include "oedit/editing.h"
#include "oedit/engine.h"
#include "oedit/probe_counts.h"
#include "oedit/world.h"

#include <QTemporaryDir>
#include <QtTest>

#include <map>
#include <set>

#include <cmath>

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

// A fact of the mini world the model recalls, with another object of its
// relation as the new target.
EditSpec factEdit(const std::string &method, int skip = 0)
{
    const auto &w = miniWorld();
    Engine probe;
    if (!probe.openModel(kModel))
        qFatal("cannot open the mini model");
    for (const auto &fact : w.facts) {
        const auto &relation = w.relationOf(fact);
        const auto prompt = world::factPrompt(w, fact);
        const auto prediction = probe.predict(prompt, 1, 3);
        if (!prediction || prediction->continuation.find(w.objectName(fact)) != 1)
            continue; // the model does not recall this one: no "old" to move away from
        if (skip-- > 0)
            continue;
        EditSpec spec;
        spec.method = method;
        spec.subject = w.subjectName(fact);
        spec.prompt = relation.templates[0];
        spec.targetNew = relation.objects[fact.object == 0 ? 1 : 0];
        return spec;
    }
    qFatal("the mini model recalls no fact");
    return {};
}

// Top-10 next-token probabilities of a prompt: what "the model predicts the same" means here.
std::vector<double> topProbabilities(Engine &engine, const std::string &prompt)
{
    const auto prediction = engine.predict(prompt, 10, 1);
    if (!prediction)
        return {};
    std::vector<double> out;
    for (const auto &token : prediction->top) {
        out.push_back(static_cast<double>(token.id));
        out.push_back(token.probability);
    }
    return out;
}

double maxDifference(const std::vector<double> &a, const std::vector<double> &b)
{
    if (a.size() != b.size() || a.empty())
        return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(a[i] - b[i]));
    return worst;
}

} // namespace

class TestEditing : public QObject {
    Q_OBJECT
    QTemporaryDir m_cache;

private Q_SLOTS:
    void initTestCase()
    {
        // Statistics go to a cache of this run, not the user's.
        QVERIFY(m_cache.isValid());
        qputenv("XDG_CACHE_HOME", m_cache.path().toUtf8());
        QVERIFY(!editMethods().empty());
    }

    void editSucceeds_data()
    {
        QTest::addColumn<QString>("method");
        QTest::addColumn<QString>("hparams");
        QTest::newRow("ft") << "ft" << "";
        QTest::newRow("rome") << "rome" << "";
        QTest::newRow("oedit+") << "oedit+" << "";
        QTest::newRow("oedit+ on memit") << "oedit+" << R"({"base": "memit"})";
    }
    void editSucceeds()
    {
        QFETCH(QString, method);
        QFETCH(QString, hparams);
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        auto spec = factEdit(method.toStdString());
        spec.hparamsJson = hparams.toStdString();
        const auto outcome = engine.applyEdit(spec);
        QVERIFY2(outcome.ok(), outcome.message().c_str());
        QCOMPARE(engine.editCount(), 1);
        QCOMPARE(outcome->method, method.toStdString());
        QCOMPARE(outcome->oldTargetSource, std::string("world"));
        QVERIFY(!outcome->layers.empty());
        // The world knows the fact: the prompt, every other template of the
        // relation and up to 10 neighbours are probed, in that order.
        std::map<std::string, size_t> kinds;
        for (const auto &probe : outcome->probes)
            ++kinds[probe.kind];
        QCOMPARE(outcome->probes[0].kind, std::string("prompt"));
        QCOMPARE(kinds["prompt"], size_t(1));
        QCOMPARE(kinds["paraphrase"], size_t(5)); // six templates per relation
        QVERIFY2(kinds["neighbour"] >= 1 && kinds["neighbour"] <= 10, qPrintable(QString::number(kinds["neighbour"])));
        QCOMPARE(outcome->probes[1].kind, std::string("paraphrase"));
        QCOMPARE(outcome->probes.back().kind, std::string("neighbour"));
        const ProbeCounts counts = countProbes(outcome.value());
        QCOMPARE(counts.paraphrases, 5);
        QCOMPARE(counts.neighbours, static_cast<int>(kinds["neighbour"]));
        int saying = 0, keeping = 0;
        for (const auto &probe : outcome->probes) {
            saying += probe.kind == "paraphrase" && probe.continuationAfter.rfind(" " + spec.targetNew, 0) == 0;
            keeping += probe.kind == "neighbour" && probe.oldAfter > probe.newAfter;
        }
        QCOMPARE(counts.paraphrasesSayingNew, saying); // the greedy continuation says what the count says
        QCOMPARE(counts.neighboursKeepingOwn, keeping);
        std::set<std::string> texts;
        for (const auto &probe : outcome->probes)
            QVERIFY2(texts.insert(probe.text).second, probe.text.c_str()); // no prompt probed twice
        const auto &p = outcome->probes[0];
        QVERIFY2(p.oldBefore > p.newBefore, "before the edit the model prefers the old object");
        QVERIFY2(p.newAfter > p.oldAfter, qPrintable(QString("P(new) %1, P(old) %2").arg(p.newAfter).arg(p.oldAfter)));
        QVERIFY(outcome->succeeded());
        QVERIFY(p.newIsTopAfter && !p.newIsTopBefore);
        QCOMPARE(p.pieceProbsAfter.size(), outcome->targetPieces.size());
        QVERIFY(p.continuationAfter.find(spec.targetNew) != std::string::npos);
        QVERIFY(!outcome->diagnostics.lossCurve.empty());
        // Fine-tuning changes a dense matrix; the locate-then-edit methods make rank-one updates.
        for (const auto &layer : outcome->layers) {
            QCOMPARE(layer.kind, std::string(method == "ft" ? "dense" : "rank-one"));
            QVERIFY(method == "ft" ? layer.rank > 1 : layer.rank == 1);
            QVERIFY(layer.norm > 0);
        }
        QVERIFY(outcome->timings.total > 0);
        if (method == "oedit+") {
            QVERIFY(outcome->diagnostics.protectedRank > 0);
            QVERIFY(outcome->diagnostics.remainingCapacity >= 0);
            QVERIFY(outcome->diagnostics.maxAbsCosWithProtected <= 1e-4);
        }
        // The hyperparameters used, defaults included, travel with the outcome.
        QVERIFY(outcome->hparamsJson.find("\"seed\"") != std::string::npos);
        QVERIFY(outcome->toJson().find("\"probes\"") != std::string::npos);
    }

    void undoRestoresPredictions()
    {
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        QVERIFY(!engine.undoLastEdit().ok()); // nothing to undo yet
        const auto first = factEdit("rome"), second = factEdit("oedit+", 3);
        const std::string prompt = world::fillTemplate(first.prompt, first.subject);
        const auto before = topProbabilities(engine, prompt);
        const auto before2 = topProbabilities(engine, world::fillTemplate(second.prompt, second.subject));
        QVERIFY(engine.applyEdit(first).ok());
        QVERIFY(engine.applyEdit(second).ok());
        QCOMPARE(engine.editCount(), 2);
        QVERIFY(maxDifference(topProbabilities(engine, prompt), before) > 1e-3);
        QVERIFY(engine.undoLastEdit().ok());
        QVERIFY(engine.undoLastEdit().ok());
        QCOMPARE(engine.editCount(), 0);
        QVERIFY2(maxDifference(topProbabilities(engine, prompt), before) <= 1e-6, "first prompt");
        QVERIFY2(maxDifference(topProbabilities(engine, world::fillTemplate(second.prompt, second.subject)), before2) <=
                     1e-6,
                 "second prompt");
    }

    // Each bad request fails with a message naming the problem, and a
    // following prediction is the same as before: nothing changed.
    void badInputChangesNothing_data()
    {
        QTest::addColumn<QString>("field");
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("expected");
        QTest::newRow("subject not in prompt") << "subject" << "Nobody Atall" << "is not in the prompt";
        QTest::newRow("empty target") << "target" << " " << "new target is empty";
        QTest::newRow("target is the world's true object") << "target" << "=old" << "equals the true target";
        QTest::newRow("target is the current answer") << "target+true" << "=old" << "already answers";
        QTest::newRow("layer out of range") << "hparams" << R"({"layer": 99})" << "out of range";
        QTest::newRow("unknown method") << "method" << "grace" << "unknown editing method 'grace'";
        QTest::newRow("unknown hyperparameter") << "hparams" << R"({"layerz": 1})" << "unknown hyperparameter 'layerz'";
        QTest::newRow("hyperparameter of the wrong type") << "hparams" << R"({"layer": "two"})" << "must be a number";
        QTest::newRow("hyperparameters not JSON") << "hparams" << "{layer: 1" << "not valid JSON";
        QTest::newRow("hyperparameters not an object") << "hparams" << "[1, 2]" << "must be a JSON object";
        QTest::newRow("empty method") << "method" << "" << "unknown editing method";
        QTest::newRow("target the model never read") << "target" << "Klingonese" << "not a word this model has read";
    }
    void badInputChangesNothing()
    {
        QFETCH(QString, field);
        QFETCH(QString, value);
        QFETCH(QString, expected);
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        auto spec = factEdit("rome");
        const std::string prompt = world::fillTemplate(spec.prompt, spec.subject);
        const auto before = topProbabilities(engine, prompt);
        const std::string v = value.toStdString();
        if (field == "subject") {
            spec.prompt = prompt; // the subject filled in, so only a literal match could find it
            spec.subject = v;
        } else if (field.startsWith("target")) {
            spec.targetNew = v == "=old" ? engine.predict(prompt, 1, 1)->top.front().text.substr(1) : v;
            if (field == "target+true") // a true target other than the answer: only the model's answer is left to check
                spec.targetTrue = "Klingon";
        }
        else if (field == "hparams")
            spec.hparamsJson = v;
        else if (field == "method")
            spec.method = v;
        const auto outcome = engine.applyEdit(spec);
        QVERIFY(!outcome.ok());
        QVERIFY2(outcome.message().find(expected.toStdString()) != std::string::npos, outcome.message().c_str());
        QCOMPARE(engine.editCount(), 0);
        QCOMPARE(maxDifference(topProbabilities(engine, prompt), before), 0.0);
    }

    // A word the world model never read is refused unless confirmed; made
    // anyway, it is shown token by token, and "succeeded" is what the greedy
    // continuation says, not P(new) > P(old) between two near-zero numbers.
    void unfamiliarTargetNeedsConfirmation()
    {
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        auto spec = factEdit("rome");
        spec.targetNew = "Klingonese";
        const auto refused = engine.applyEdit(spec);
        QVERIFY(!refused.ok());
        QVERIFY(refused.status().kind() == FailureKind::UnfamiliarTarget);
        QVERIFY2(refused.message().find("'klingonese'") != std::string::npos, refused.message().c_str());
        QVERIFY2(refused.message().find(" · ") != std::string::npos, refused.message().c_str()); // its pieces
        QCOMPARE(engine.editCount(), 0);
        // A word of the world in another case is a word it read.
        auto known = factEdit("rome");
        known.targetNew = QString::fromStdString(known.targetNew).toLower().toStdString();
        const auto lowered = engine.applyEdit(known);
        QVERIFY(lowered.ok() || lowered.status().kind() != FailureKind::UnfamiliarTarget);
        if (lowered.ok())
            QVERIFY(engine.undoLastEdit().ok());

        spec.allowUnfamiliarTarget = true;
        const auto outcome = engine.applyEdit(spec);
        QVERIFY2(outcome.ok(), outcome.message().c_str());
        QVERIFY2(outcome->targetPieces.size() > 1, "the word is spelled from several tokens");
        std::string spelled;
        for (const auto &piece : outcome->targetPieces)
            spelled += piece;
        QCOMPARE(spelled, std::string(" Klingonese"));
        const auto &p = outcome->probes.front();
        QCOMPARE(p.pieceProbsBefore.size(), outcome->targetPieces.size());
        QCOMPARE(p.pieceProbsAfter.size(), outcome->targetPieces.size());
        // The verdict agrees with the model's own greedy continuation.
        const bool saysIt = p.continuationAfter.rfind(" Klingonese", 0) == 0;
        QCOMPARE(outcome->succeeded(), saysIt);
        QCOMPARE(outcome->succeeded(), p.newIsTopAfter);
        QVERIFY(outcome->toJson().find("\"target_pieces\"") != std::string::npos);
    }

    void hparamsOverrideRejectsUnknownNames()
    {
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        auto spec = factEdit("oedit+");
        spec.hparamsJson = R"({"lambda_o": 2.0, "lambda_oo": 1.0})";
        const auto outcome = engine.applyEdit(spec);
        QVERIFY(!outcome.ok());
        // The message names the culprit and lists the names that exist.
        QVERIFY2(outcome.message().find("'lambda_oo'") != std::string::npos, outcome.message().c_str());
        QVERIFY2(outcome.message().find("lambda_o,") != std::string::npos, outcome.message().c_str());
        // A known name is taken and recorded.
        spec.hparamsJson = R"({"lambda_o": 2.0})";
        const auto accepted = engine.applyEdit(spec);
        QVERIFY2(accepted.ok(), accepted.message().c_str());
        QVERIFY(accepted->hparamsJson.find("\"lambda_o\":2.0") != std::string::npos);
    }

    // A prompt that is no world fact is edited all the same; only the prompt is probed.
    void freePromptIsProbedAlone()
    {
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        auto spec = factEdit("rome");
        spec.prompt = "Everyone knows that {} likes";
        const auto outcome = engine.applyEdit(spec);
        QVERIFY2(outcome.ok(), outcome.message().c_str());
        QCOMPARE(outcome->probes.size(), size_t(1));
        QVERIFY(outcome->oldTargetSource == "model" || outcome->oldTargetSource == "none");
    }

    // A saved run comes back: same edits, same predictions, and undo still works.
    void savedRunRestores()
    {
        QTemporaryDir dir;
        const std::string file = dir.filePath("run.oedit").toStdString();
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        const auto first = factEdit("oedit+"), second = factEdit("oedit+", 5);
        const std::string prompt = world::fillTemplate(first.prompt, first.subject);
        const auto base = topProbabilities(engine, prompt);
        QVERIFY(engine.applyEdit(first).ok());
        QVERIFY(engine.applyEdit(second).ok());
        const auto edited = topProbabilities(engine, prompt);
        const auto summary = engine.saveEditState(file);
        QVERIFY2(summary.ok(), summary.message().c_str());
        QVERIFY(summary->find("\"edits\":2") != std::string::npos);

        Engine other; // another engine on the same base model: the run is swapped in
        QVERIFY(other.openModel(kModel));
        QVERIFY(other.loadEditState(file).ok());
        QCOMPARE(other.editCount(), 2);
        QVERIFY(maxDifference(topProbabilities(other, prompt), edited) <= 1e-6);
        // The O-Edit state came along: the next edit is orthogonal to both.
        const auto third = other.applyEdit(factEdit("oedit+", 9));
        QVERIFY2(third.ok(), third.message().c_str());
        QVERIFY(third->diagnostics.maxAbsCosWithEarlier <= 1e-4);
        QCOMPARE(third->id, 3);
        for (int i = 0; i < 3; ++i)
            QVERIFY(other.undoLastEdit().ok());
        QVERIFY(maxDifference(topProbabilities(other, prompt), base) <= 1e-6);

        // A damaged file changes nothing.
        const std::string junk = dir.filePath("junk.oedit").toStdString();
        QFile(QString::fromStdString(junk)).open(QIODevice::WriteOnly);
        QVERIFY(!engine.loadEditState(junk).ok());
        QVERIFY(!engine.loadEditState(dir.filePath("missing").toStdString()).ok());
        QCOMPARE(engine.editCount(), 2);
        QCOMPARE(maxDifference(topProbabilities(engine, prompt), edited), 0.0);
    }

    void openingAModelStartsANewRun()
    {
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        QVERIFY(engine.applyEdit(factEdit("rome")).ok());
        QCOMPARE(engine.editCount(), 1);
        QVERIFY(!engine.openModel(kModel + "/does-not-exist").ok());
        QCOMPARE(engine.editCount(), 1); // a failed open keeps the model and its run
        QVERIFY(engine.openModel(kModel));
        QCOMPARE(engine.editCount(), 0);
        Engine empty;
        QVERIFY(!empty.applyEdit(factEdit("rome")).ok());
        QVERIFY(!empty.saveEditState("x").ok());
    }

    // The progress callback sees the statistics being computed and can cancel them.
    void progressCancelsStatistics()
    {
        QTemporaryDir fresh; // nothing cached: the statistics must be computed
        qputenv("XDG_CACHE_HOME", fresh.path().toUtf8());
        Engine engine;
        QVERIFY(engine.openModel(kModel));
        const auto spec = factEdit("rome");
        const std::string prompt = world::fillTemplate(spec.prompt, spec.subject);
        const auto before = topProbabilities(engine, prompt);
        long long calls = 0;
        const auto cancelled = engine.applyEdit(spec, [&](long long, long long) { return ++calls < 2; });
        QVERIFY(!cancelled.ok());
        QVERIFY2(cancelled.message().find("cancelled") != std::string::npos, cancelled.message().c_str());
        QCOMPARE(calls, 2LL);
        QCOMPARE(engine.editCount(), 0);
        QCOMPARE(maxDifference(topProbabilities(engine, prompt), before), 0.0);
        calls = 0;
        const auto done = engine.applyEdit(spec, [&](long long, long long) { return ++calls > 0; });
        QVERIFY2(done.ok(), done.message().c_str());
        QVERIFY(calls > 0);
        qputenv("XDG_CACHE_HOME", m_cache.path().toUtf8());
    }
};

QTEST_GUILESS_MAIN(TestEditing)
#include "tst_editing.moc"
