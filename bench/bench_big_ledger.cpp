// A ledger of 100,000 edits: does everything that reads it stay interactive?
//
// Makes (once; kept for later runs) a synthetic ledger with one ROME-style
// run of N rank-one updates of the default model (layer 1, random factors of
// the model's shapes, requests from its world's facts) and 20 evaluation
// checkpoints, each with every edit's success as the runner records it (1.05
// million rows for N = 100,000), and a second run of 2,000 edits of the same
// facts; then times, through the calls the CLI and the workbench make:
//   open     runs::listRuns (what `oedit runs` and the Runs tab do)
//   report   runs::runReport (`oedit report`, the metric curves)
//   history  runs::listEdits (the History tab: every edit of the run)
//   subspace runs::subspaceReport of the latest 100 edits (the Subspace tab)
//   compare  runs::compareFacts of the two runs (the Compare tab)
//   rollback remove the middle edit, undo it, revert to the middle step, undo
//            (`oedit rollback`, History's rollbacks; ledger only)
//   norms    Engine::normGrowth (the Retention tab's norm curve; reads every update)
// Each figure is the median of --repeats tries, in milliseconds.
//
// Usage: bench_big_ledger [--db FILE] [--edits N] [--model DIR] [--repeats K]
#include "oedit/engine.h"
#include "oedit/runs.h"
#include "oedit/world.h"
#include "store/ledger.h"
#include "store/sqlite_db.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <random>
#include <string>
#include <vector>

using namespace oedit;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double msSince(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The median time of `repeats` calls of `body`, which returns false on failure.
double timeMedian(int repeats, const std::function<bool()> &body)
{
    std::vector<double> times;
    for (int i = 0; i < repeats; ++i) {
        const auto start = Clock::now();
        if (!body())
            std::exit(1);
        times.push_back(msSince(start));
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

store::StoredTensor randomVector(std::mt19937 &random, int64_t size, float scale)
{
    std::normal_distribution<float> normal(0.0F, scale);
    std::vector<float> values(static_cast<size_t>(size));
    for (auto &value : values)
        value = normal(random);
    store::StoredTensor tensor;
    tensor.shape = {size};
    tensor.bytes.assign(reinterpret_cast<const uint8_t *>(values.data()),
                        reinterpret_cast<const uint8_t *>(values.data() + values.size()));
    return tensor;
}

// One synthetic ROME-style run of `edits` rank-one updates; every
// `evalEvery` steps a checkpoint with the run's metrics and, as the runner
// records them, one edit_success row per edit in effect (about 9 in 10 kept).
void makeRun(store::Ledger &ledger, const world::World &w, const std::string &modelDir, int64_t edits,
             int64_t evalEvery, const std::string &label, unsigned seed)
{
    store::RunSpec spec;
    spec.method = "rome";
    spec.dataset = "world";
    spec.modelPath = fs::absolute(modelDir).string();
    spec.baseModelHash = store::modelFolderHash(modelDir);
    spec.options = {{"edits", edits}, {"eval_every", evalEvery}, {"label", label}};
    const auto run = ledger.createRun(spec);
    std::mt19937 random(seed);
    std::bernoulli_distribution kept(0.9);
    std::vector<int64_t> editIds;
    const auto start = Clock::now();
    for (int64_t step = 1; step <= edits; ++step) {
        const auto &fact = w.facts[static_cast<size_t>(step) % w.facts.size()];
        const auto &relation = w.relationOf(fact);
        store::EditRecord record;
        record.resultId = step;
        record.method = "rome";
        record.request.subject = w.subjectName(fact);
        record.request.prompt = relation.templates[0];
        record.request.targetNew = relation.objects[(static_cast<size_t>(fact.object) + 1) % relation.objects.size()];
        record.request.targetTrue = w.objectName(fact);
        record.diagnostics = {{"update_norms", {1e-3}}, {"delta_norm", 0.5}};
        record.timings = {{"total", 0.1}};
        store::StoredUpdate update;
        update.layer = 1;
        update.kind = "rank1";
        update.a = randomVector(random, 256, 1e-3F);
        update.b = randomVector(random, 1024, 1e-3F);
        record.updates.push_back(std::move(update));
        editIds.push_back(ledger.appendEdit(run, record));
        if (step % evalEvery == 0 || step == edits) {
            std::vector<store::Metric> metrics = {{"ES", 0.9, std::nullopt},
                                                  {"PS", 0.8, std::nullopt},
                                                  {"NS", 0.7, std::nullopt},
                                                  {"norm_ratio_L1", 1.0 + double(step) * 1e-5, std::nullopt}};
            for (const auto id : editIds)
                metrics.push_back({"edit_success", kept(random) ? 1.0 : 0.0, id});
            ledger.recordCheckpoint(run, step, metrics);
            std::cerr << "\rbench_big_ledger: " << label << ": made " << step << " of " << edits << " edits ("
                      << std::fixed << std::setprecision(0) << msSince(start) / 1000.0 << " s)" << std::flush;
        }
    }
    ledger.setRunStatus(run, "finished");
    std::cerr << "\n";
}

// The big run, and a second run of 2,000 edits of the same facts for the
// Compare tab to set beside it.
void makeLedger(const std::string &db, const std::string &modelDir, int64_t edits)
{
    const auto loaded = world::loadWorld(modelDir);
    if (!loaded) {
        std::cerr << "bench_big_ledger: " << loaded.message() << "\n";
        std::exit(1);
    }
    store::Ledger ledger(db);
    // Synthetic data: no fsync per transaction (a crash only costs a remake).
    ledger.database().exec("PRAGMA synchronous = OFF");
    makeRun(ledger, loaded.value(), modelDir, edits, std::max<int64_t>(1, edits / 20),
            "synthetic " + std::to_string(edits), 7);
    makeRun(ledger, loaded.value(), modelDir, 2000, 500, "synthetic 2000", 8);
}

} // namespace

int main(int argc, char **argv)
{
    std::string db = "big-ledger.sqlite", modelDir;
    int64_t edits = 100000;
    int repeats = 3;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "bench_big_ledger: " << arg << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--db")
            db = next();
        else if (arg == "--edits")
            edits = std::stoll(next());
        else if (arg == "--model")
            modelDir = next();
        else if (arg == "--repeats")
            repeats = std::max(1, std::stoi(next()));
        else {
            std::cerr << "usage: bench_big_ledger [--db FILE] [--edits N] [--model DIR] [--repeats K]\n";
            return 2;
        }
    }
    if (modelDir.empty())
        modelDir = Engine::defaultModelDirectory();
    if (modelDir.empty()) {
        std::cerr << "bench_big_ledger: the default model is not installed; pass --model DIR\n";
        return 1;
    }
    if (!fs::exists(db)) {
        const auto start = Clock::now();
        makeLedger(db, modelDir, edits);
        std::cout << "made " << db << ": " << edits << " edits in " << std::fixed << std::setprecision(1)
                  << msSince(start) / 1000.0 << " s\n";
    }
    std::cout << "ledger " << db << ": " << std::fixed << std::setprecision(1)
              << double(fs::file_size(db)) / (1024.0 * 1024.0) << " MiB\n";

    auto fail = [](const std::string &what, const std::string &message) {
        std::cerr << "bench_big_ledger: " << what << ": " << message << "\n";
        return false;
    };
    long long run = 0, otherRun = 0, steps = 0;
    const double open = timeMedian(repeats, [&] {
        const auto runs = runs::listRuns(db);
        if (!runs || runs->size() < 2)
            return fail("listRuns", runs ? "the ledger needs two runs: remove it to have it made again" : runs.message());
        run = runs->at(0).runId;
        otherRun = runs->at(1).runId;
        steps = runs->at(0).steps;
        return true;
    });
    const double report = timeMedian(repeats, [&] {
        const auto r = runs::runReport(db, run);
        return r ? true : fail("runReport", r.message());
    });
    size_t listed = 0;
    const double history = timeMedian(repeats, [&] {
        const auto edits = runs::listEdits(db, run);
        listed = edits ? edits->size() : 0;
        return edits ? true : fail("listEdits", edits.message());
    });
    const double subspace = timeMedian(repeats, [&] {
        const auto r = runs::subspaceReport(db, run, 100);
        return r ? true : fail("subspaceReport", r.message());
    });
    const double compare = timeMedian(repeats, [&] {
        const auto r = runs::compareFacts(db, {run, otherRun});
        return r ? true : fail("compareFacts", r.message());
    });
    const auto middleEdit = runs::listEdits(db, run).value().at(static_cast<size_t>(steps / 2)).editId;
    std::vector<double> remove, undo, revert, revertUndo;
    for (int i = 0; i < repeats; ++i) {
        auto start = Clock::now();
        const auto removed = runs::rollback(db, {run, std::nullopt, middleEdit, std::nullopt});
        remove.push_back(msSince(start));
        if (!removed)
            return fail("remove", removed.message()), 1;
        start = Clock::now();
        const auto undone = runs::rollback(db, {run, std::nullopt, std::nullopt, removed->eventId});
        undo.push_back(msSince(start));
        if (!undone)
            return fail("undo", undone.message()), 1;
        start = Clock::now();
        const auto reverted = runs::rollback(db, {run, steps / 2, std::nullopt, std::nullopt});
        revert.push_back(msSince(start));
        if (!reverted)
            return fail("revert", reverted.message()), 1;
        start = Clock::now();
        const auto back = runs::rollback(db, {run, std::nullopt, std::nullopt, reverted->eventId});
        revertUndo.push_back(msSince(start));
        if (!back)
            return fail("undo revert", back.message()), 1;
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    Engine engine;
    auto normGrowth = [&] {
        const auto r = engine.normGrowth(db, run);
        return r ? true : fail("normGrowth", r.message());
    };
    // The first call loads the run's model; later ones reuse it, as the workbench does.
    const double normsFirst = timeMedian(1, normGrowth);
    const double norms = timeMedian(repeats, normGrowth);

    std::cout << std::fixed << std::setprecision(1) << "run " << run << ": " << steps << " edits, " << listed
              << " listed\n"
              << "open (listRuns)            " << open << " ms\n"
              << "report (runReport)         " << report << " ms\n"
              << "history (listEdits)        " << history << " ms\n"
              << "subspace (latest 100)      " << subspace << " ms\n"
              << "compare (compareFacts)     " << compare << " ms\n"
              << "remove middle edit         " << median(remove) << " ms\n"
              << "undo that                  " << median(undo) << " ms\n"
              << "revert to middle step      " << median(revert) << " ms\n"
              << "undo the revert            " << median(revertUndo) << " ms\n"
              << "norm growth (all updates)  " << norms << " ms (" << normsFirst << " ms with the model's load)\n";
    return 0;
}
