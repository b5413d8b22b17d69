// The sequential runner on the mini world (slow): a run with its evaluation
// schedule, cancel and resume, and a run killed with SIGKILL midway that
// resumes with no lost or duplicated edit and a clean integrity check.
#include "edit/editor.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/tokenizer.h"
#include "store/ledger.h"
#include "run/runner.h"

#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <cstdlib>
#include <map>
#include <set>

using namespace oedit;
using namespace oedit::store;
using namespace oedit::run;

namespace {

RunnerOptions options(const QTemporaryDir &dir, int64_t edits)
{
    RunnerOptions o;
    o.modelDir = OEDIT_MINI_MODEL_DIR;
    o.method = "rome";
    o.edits = edits;
    o.evalEvery = 4;
    o.seed = 9;
    o.cacheDir = dir.filePath(QStringLiteral("cache")).toStdString();
    return o;
}

// Every step 1..n once, in plan order.
void checkNoLostOrDuplicated(Ledger &ledger, int64_t run, int64_t n)
{
    const auto edits = ledger.listEdits(run);
    QCOMPARE(static_cast<int64_t>(edits.size()), n);
    const auto plan = ledger.run(run).options.at("plan");
    for (int64_t i = 0; i < n; ++i) {
        QCOMPARE(edits[static_cast<size_t>(i)].step, i + 1);
        QVERIFY(edits[static_cast<size_t>(i)].request.toJson() == plan[static_cast<size_t>(i)]);
    }
    QVERIFY(ledger.integrityCheck().ok);
}

std::vector<int64_t> checkpointSteps(Ledger &ledger, int64_t run)
{
    std::vector<int64_t> out;
    for (const auto &c : ledger.checkpoints(run))
        out.push_back(c.step);
    return out;
}

} // namespace

class TestRunnerMini : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { torch::set_num_threads(1); }

    void worldRequestsAreDistinctAndNew()
    {
        auto world = world::loadWorld(OEDIT_MINI_MODEL_DIR);
        QVERIFY(world.ok());
        const auto a = worldRequests(world.value(), 30, 5), b = worldRequests(world.value(), 30, 5);
        std::set<std::string> subjects;
        for (size_t i = 0; i < a.size(); ++i) {
            QVERIFY(a[i].toJson() == b[i].toJson());
            QVERIFY(a[i].targetNew != *a[i].targetTrue);
            QVERIFY(subjects.insert(a[i].subject + "|" + a[i].prompt).second);
        }
        QVERIFY_EXCEPTION_THROWN(worldRequests(world.value(), 1000000, 5), LedgerError);
    }

    void runCancelResume()
    {
        QTemporaryDir dir;
        Ledger ledger(dir.filePath(QStringLiteral("runs.sqlite")).toStdString());
        RunnerCallbacks cancelAt3;
        cancelAt3.progress = [](long long done, long long) { return done < 3; };
        const auto first = startRun(ledger, options(dir, 8), cancelAt3);
        QCOMPARE(first.status, std::string("cancelled"));
        QCOMPARE(first.steps, int64_t(3));
        QCOMPARE(ledger.run(first.runId).status, std::string("cancelled"));

        const auto resumed = resumeRun(ledger, first.runId);
        QCOMPARE(resumed.status, std::string("finished"));
        QCOMPARE(resumed.steps, int64_t(8));
        checkNoLostOrDuplicated(ledger, first.runId, 8);
        QCOMPARE(checkpointSteps(ledger, first.runId), (std::vector<int64_t>{4, 8}));
        const auto metrics = ledger.metrics(ledger.checkpoints(first.runId).back().id);
        QCOMPARE(QString::fromStdString(metrics.front().name), QStringLiteral("ES"));
        qInfo("rome, 8 edits on the mini world: ES %.3f at the end", metrics.front().value);
        QVERIFY(metrics.front().value >= 0.5);
        QVERIFY_EXCEPTION_THROWN(resumeRun(ledger, first.runId), LedgerError); // finished
        QVERIFY_EXCEPTION_THROWN(resumeRun(ledger, 99), LedgerError);

        // Bad input: nothing written.
        auto bad = options(dir, 8);
        bad.method = "frobnicate";
        QVERIFY_EXCEPTION_THROWN(startRun(ledger, bad), std::exception);
        bad = options(dir, 1000000);
        QVERIFY_EXCEPTION_THROWN(startRun(ledger, bad), LedgerError);
        QCOMPARE(ledger.runs().size(), size_t(1));
    }

    // 30 O-Edit+ edits evaluated every 10: three checkpoints with the full
    // metric suite and a retention column of all edits so far.
    void thirtyEditRunIsEvaluatedAndStored()
    {
        QTemporaryDir dir;
        Ledger ledger(dir.filePath(QStringLiteral("thirty.sqlite")).toStdString());
        auto o = options(dir, 30);
        o.method = "oedit+";
        o.evalEvery = 10;
        const auto result = startRun(ledger, o);
        QCOMPARE(result.status, std::string("finished"));
        checkNoLostOrDuplicated(ledger, result.runId, 30);
        QCOMPARE(checkpointSteps(ledger, result.runId), (std::vector<int64_t>{10, 20, 30}));
        int64_t expectedRows = 10;
        for (const auto &checkpoint : ledger.checkpoints(result.runId)) {
            std::map<std::string, double> runLevel;
            int64_t editRows = 0;
            for (const auto &metric : ledger.metrics(checkpoint.id)) {
                if (metric.edit)
                    editRows += metric.name == "edit_success" ? 1 : 0;
                else
                    runLevel[metric.name] = metric.value;
            }
            QCOMPARE(editRows, expectedRows); // every edit so far, rescored
            expectedRows += 10;
            for (const char *name : {"ES", "PS", "NS", "score"}) {
                QVERIFY2(runLevel.count(name), name);
                QVERIFY(runLevel[name] >= 0.0 && runLevel[name] <= 1.0);
            }
            qInfo("oedit+ on the mini world, step %lld: ES %.3f PS %.3f NS %.3f score %.3f",
                  static_cast<long long>(checkpoint.step), runLevel["ES"], runLevel["PS"], runLevel["NS"],
                  runLevel["score"]);
            QVERIFY(runLevel["ES"] >= 0.6); // width 64: the mini layer holds few edits well
        }
    }

    // A planned step whose new target the model already answers (here: the
    // fact's own object, planned as the "new" target) is edited like any other
    // instead of stopping the run.
    void plannedTargetAlreadyAnsweredDoesNotStall()
    {
        auto world = world::loadWorld(OEDIT_MINI_MODEL_DIR);
        QVERIFY(world.ok());
        const model::Transformer model(model::loadModelConfig(OEDIT_MINI_MODEL_DIR),
                                       model::loadStateDict(OEDIT_MINI_MODEL_DIR, torch::kFloat32));
        const auto tokenizer = model::loadTokenizer(OEDIT_MINI_MODEL_DIR);
        nlohmann::json cases = nlohmann::json::array();
        for (const auto &fact : world->facts) {
            const auto &relation = world->relationOf(fact);
            const std::string other = relation.objects[(static_cast<size_t>(fact.object) + 1) % relation.objects.size()];
            edit::EditRequest request{world->subjectName(fact), relation.templates.at(0), world->objectName(fact),
                                      other};
            try {
                edit::validateRequest(model, *tokenizer, request);
                continue; // the model does not answer this fact: not the case we want
            } catch (const edit::EditError &) {
            }
            nlohmann::json record;
            record["case_id"] = cases.size();
            record["requested_rewrite"] = {{"prompt", request.prompt},
                                           {"subject", request.subject},
                                           {"target_new", {{"str", request.targetNew}}},
                                           {"target_true", {{"str", other}}}};
            record["paraphrase_prompts"] = nlohmann::json::array();
            record["neighborhood_prompts"] = nlohmann::json::array();
            cases.push_back(record);
            if (cases.size() == 2)
                break;
        }
        QCOMPARE(cases.size(), size_t(2));
        QTemporaryDir dir;
        const auto file = dir.filePath(QStringLiteral("satisfied.json"));
        {
            QFile out(file);
            QVERIFY(out.open(QIODevice::WriteOnly));
            out.write(QByteArray::fromStdString(cases.dump()));
        }
        Ledger ledger(dir.filePath(QStringLiteral("satisfied.sqlite")).toStdString());
        auto o = options(dir, 2);
        o.dataset = file.toStdString();
        const auto result = startRun(ledger, o);
        QVERIFY2(result.status == "finished", result.message.c_str());
        checkNoLostOrDuplicated(ledger, result.runId, 2);
    }

    // A child process (this binary, OEDIT_RUNNER_CHILD set) runs 12 edits; we
    // SIGKILL it once the ledger holds 5 and resume what it left.
    void killedRunResumes()
    {
        QTemporaryDir dir;
        const auto path = dir.filePath(QStringLiteral("killed.sqlite"));
        QProcess child;
        auto environment = QProcessEnvironment::systemEnvironment();
        environment.insert(QStringLiteral("OEDIT_RUNNER_CHILD"), path);
        environment.insert(QStringLiteral("OEDIT_RUNNER_CACHE"), dir.filePath(QStringLiteral("cache")));
        child.setProcessEnvironment(environment);
        child.start(QCoreApplication::applicationFilePath(), {});
        QVERIFY(child.waitForStarted());
        int64_t seen = 0;
        for (int i = 0; i < 1200 && seen < 5 && child.state() == QProcess::Running; ++i) {
            QTest::qWait(50);
            if (QFile::exists(path)) {
                try {
                    Ledger probe(path.toStdString());
                    if (!probe.runs().empty())
                        seen = probe.lastStep(probe.runs().front().id);
                } catch (const LedgerError &) {
                    // the child may be creating the schema
                }
            }
        }
        QVERIFY2(seen >= 5, "the child did not get to five edits");
        child.kill(); // SIGKILL
        QVERIFY(child.waitForFinished());
        Ledger ledger(path.toStdString());
        const auto run = ledger.runs().front();
        QCOMPARE(run.status, std::string("running"));
        const auto left = ledger.lastStep(run.id);
        QVERIFY(ledger.integrityCheck().ok);
        const auto resumed = resumeRun(ledger, run.id);
        QCOMPARE(resumed.status, std::string("finished"));
        checkNoLostOrDuplicated(ledger, run.id, 12);
        const auto steps = checkpointSteps(ledger, run.id);
        QCOMPARE(std::set<int64_t>(steps.begin(), steps.end()), (std::set<int64_t>{4, 8, 12}));
        qInfo("killed after %lld edits; resumed to 12", static_cast<long long>(left));
    }
};

int main(int argc, char **argv)
{
    if (const char *child = std::getenv("OEDIT_RUNNER_CHILD")) {
        torch::set_num_threads(1);
        QTemporaryDir unused;
        Ledger ledger(child);
        auto o = options(unused, 12);
        o.cacheDir = std::getenv("OEDIT_RUNNER_CACHE");
        startRun(ledger, o);
        return 0;
    }
    QCoreApplication app(argc, argv);
    TestRunnerMini test;
    return QTest::qExec(&test, argc, argv);
}

#include "tst_runner_mini.moc"
