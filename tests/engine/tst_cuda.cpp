// The engine on a CUDA device against the same engine on the CPU, on the mini
// world model (label gpu: run by scripts/gpu-check.sh on a machine with an
// NVIDIA GPU and a CUDA libtorch; CI, which has none, leaves it out):
// - the device check passes on cuda;
// - the forward pass on cuda in float32 gives the CPU's top tokens and
//   probabilities; bfloat16 opens and predicts finite probabilities;
// - every method's edit on cuda succeeds where the CPU's does, with the same
//   update norms and probabilities up to float32 rounding;
// - a sequential run with --device cuda finishes with the CPU run's metrics.
// Without CUDA it exits with 77, which CTest reports as skipped (not passed).
#include "oedit/editing.h"
#include "oedit/engine.h"
#include "oedit/runs.h"
#include "oedit/world.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstdio>

using namespace oedit;

namespace {

const std::string kModel = OEDIT_MINI_MODEL_DIR;

OpenOptions on(const std::string &device, const std::string &dtype = "float32")
{
    OpenOptions options;
    options.device = device;
    options.dtype = dtype;
    return options;
}

// Facts of the mini world the CPU model recalls, each with another object of
// its relation as the new target.
std::vector<EditSpec> recalledFacts(int count)
{
    auto loaded = world::loadWorld(kModel);
    if (!loaded)
        qFatal("%s", loaded.message().c_str());
    const auto &w = loaded.value();
    Engine probe;
    if (!probe.openModel(kModel))
        qFatal("cannot open the mini model");
    std::vector<EditSpec> out;
    for (const auto &fact : w.facts) {
        const auto prediction = probe.predict(world::factPrompt(w, fact), 1, 3);
        if (!prediction || prediction->continuation.find(w.objectName(fact)) != 1)
            continue;
        const auto &relation = w.relationOf(fact);
        EditSpec spec;
        spec.subject = w.subjectName(fact);
        spec.prompt = relation.templates[0];
        spec.targetNew = relation.objects[fact.object == 0 ? 1 : 0];
        out.push_back(spec);
        if (static_cast<int>(out.size()) == count)
            break;
    }
    if (out.empty())
        qFatal("the mini model recalls no fact");
    return out;
}

} // namespace

class TestCuda : public QObject {
    Q_OBJECT
    QTemporaryDir m_dir;

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        // The statistics cache of this test's own, not the user's.
        qputenv("XDG_CACHE_HOME", m_dir.filePath("cache").toUtf8());
    }

    void deviceCheckPasses()
    {
        const auto check = Engine::checkDevice("cuda");
        QVERIFY2(check, check.message().c_str());
        QVERIFY2(check->maxAbsError < 1e-3, qPrintable(QString::number(check->maxAbsError)));
    }

    void forwardMatchesTheCpu()
    {
        Engine cpu, gpu, half;
        QVERIFY(cpu.openModel(kModel));
        const auto opened = gpu.openModel(kModel, on("cuda"));
        QVERIFY2(opened, opened.message().c_str());
        QVERIFY(QString::fromStdString(gpu.modelInfo().device).startsWith("cuda"));
        const auto openedHalf = half.openModel(kModel, on("cuda", "bfloat16"));
        QVERIFY2(openedHalf, openedHalf.message().c_str());
        for (const auto &spec : recalledFacts(5)) {
            const std::string prompt = QString::fromStdString(spec.prompt)
                                           .replace("{}", QString::fromStdString(spec.subject))
                                           .toStdString();
            const auto a = cpu.predict(prompt, 5, 4), b = gpu.predict(prompt, 5, 4), c = half.predict(prompt, 5, 4);
            QVERIFY(a && b && c);
            QCOMPARE(b->continuation, a->continuation);
            for (size_t i = 0; i < a->top.size(); ++i) {
                QCOMPARE(b->top[i].id, a->top[i].id);
                QVERIFY2(std::abs(b->top[i].probability - a->top[i].probability) < 1e-4, prompt.c_str());
            }
            for (const auto &token : c->top)
                QVERIFY(std::isfinite(token.probability));
        }
    }

    void everyMethodEditsAsOnTheCpu_data()
    {
        QTest::addColumn<QString>("method");
        for (const char *method : {"ft", "rome", "memit", "alphaedit", "oedit", "oedit+"})
            QTest::newRow(method) << method;
    }

    void everyMethodEditsAsOnTheCpu()
    {
        QFETCH(QString, method);
        Engine cpu, gpu;
        QVERIFY(cpu.openModel(kModel));
        QVERIFY(gpu.openModel(kModel, on("cuda")));
        for (auto spec : recalledFacts(3)) {
            spec.method = method.toStdString();
            const auto a = cpu.applyEdit(spec);
            const auto b = gpu.applyEdit(spec);
            QVERIFY2(a, a.message().c_str());
            QVERIFY2(b, b.message().c_str());
            QCOMPARE(b->succeeded(), a->succeeded());
            QCOMPARE(b->layers.size(), a->layers.size());
            for (size_t i = 0; i < a->layers.size(); ++i) {
                QCOMPARE(b->layers[i].layer, a->layers[i].layer);
                const double scale = std::max(1.0, a->layers[i].norm);
                QVERIFY2(std::abs(b->layers[i].norm - a->layers[i].norm) < 1e-2 * scale,
                         qPrintable(QString("%1 vs %2").arg(b->layers[i].norm).arg(a->layers[i].norm)));
            }
            QVERIFY2(std::abs(b->probes[0].newAfter - a->probes[0].newAfter) < 2e-2,
                     qPrintable(QString("P(new) %1 vs %2").arg(b->probes[0].newAfter).arg(a->probes[0].newAfter)));
        }
    }

    void sequentialRunMatchesTheCpu()
    {
        const std::string db = m_dir.filePath("runs.sqlite").toStdString();
        runs::RunRequest request;
        request.modelDir = kModel;
        request.method = "oedit+";
        request.edits = 6;
        request.evalEvery = 3;
        request.seed = 5;
        Engine engine;
        const auto cpu = engine.startRun(db, request);
        QVERIFY2(cpu, cpu.message().c_str());
        request.device = "cuda";
        const auto gpu = engine.startRun(db, request);
        QVERIFY2(gpu, gpu.message().c_str());
        QCOMPARE(gpu->status, std::string("finished"));
        const auto a = runs::runReport(db, cpu->runId), b = runs::runReport(db, gpu->runId);
        QVERIFY(a && b);
        QCOMPARE(b->checkpoints.size(), a->checkpoints.size());
        for (size_t c = 0; c < a->checkpoints.size(); ++c)
            for (const auto &[name, value] : a->checkpoints[c].metrics) {
                if (name.find("second") != std::string::npos)
                    continue; // timings differ
                bool found = false;
                for (const auto &[other, gpuValue] : b->checkpoints[c].metrics) {
                    if (other != name)
                        continue;
                    found = true;
                    if (name.find("ppl") != std::string::npos) // a perplexity: relative
                        QVERIFY2(std::abs(gpuValue - value) <= 1e-2 * std::abs(value), name.c_str());
                    else // a rate over a few prompts: one prompt may flip at the rounding edge
                        QVERIFY2(std::abs(gpuValue - value) <= 0.34, name.c_str());
                }
                QVERIFY2(found, name.c_str());
            }
    }
};

int main(int argc, char **argv)
{
    if (!Engine::buildInfo().cudaAvailable) {
        std::printf("skipped: this build of the engine has no CUDA device (a CPU libtorch, or no GPU visible); "
                    "the gpu tests run where scripts/gpu-check.sh builds against a CUDA libtorch\n");
        return 77;
    }
    QCoreApplication app(argc, argv);
    TestCuda test;
    QTEST_SET_MAIN_SOURCE_PATH
    return QTest::qExec(&test, argc, argv);
}

#include "tst_cuda.moc"
