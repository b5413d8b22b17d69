// Rollback latency on a long run: how long the workbench takes to take one
// edit out of a model that holds a whole run (and to put it back), and to
// revert the run to an earlier step.
//
// The run is either one already in a ledger (--db FILE --run ID, e.g. the
// 2,000-edit run of the sequential benchmark) or a fresh one made here
// (--edits N, O-Edit+ on the default model, no evaluation). The model is
// rebuilt from the ledger (base + active updates) with the method's state
// replayed, as the workbench holds it; then, for the first, the middle and
// the last active edit:
//   remove:  Ledger::removeEdit (one SQLite transaction) + applyRollback
//            (weights: the changed updates subtracted in float64; O-Edit
//            state: unwound and replayed from that step on);
//   undo:    Ledger::undoRollback + applyRollback, back to the full run.
// and a revert to the middle step and its undo. Each figure is the median of
// --repeats tries, in milliseconds. After each remove, the weights are
// checked against base + the remaining updates (max |difference|).
//
// Usage: bench_rollback [--db FILE --run ID] [--model DIR] [--edits N] [--method M]
//                       [--repeats K] [--threads T] [--cache DIR]
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/tokenizer.h"
#include "oedit/engine.h"
#include "store/ledger.h"
#include "run/rebuild.h"
#include "run/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>

using namespace oedit;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double msSince(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values)
{
    std::sort(values.begin(), values.end());
    return values.empty() ? 0 : values[values.size() / 2];
}

// Largest |W - expected| over the edited layers, absolute and relative to
// the layer's largest expected weight. float32 holds a weight to within
// 2^-24 of its magnitude, so weights that grew large (sequential ROME-style
// runs reach |W| in the hundreds) cannot be within 1e-6 absolute at all; the
// relative figure near 1e-7 says a rollback left one rounding, not drift.
struct Difference {
    double absolute = 0, relative = 0;
};

Difference maxDifference(model::Transformer &model, const std::map<int64_t, torch::Tensor> &expected)
{
    Difference worst;
    for (const auto &[layer, W] : expected) {
        const double diff = (model.mlpOutWeight(layer).to(torch::kDouble) - W).abs().max().item<double>();
        worst.absolute = std::max(worst.absolute, diff);
        worst.relative = std::max(worst.relative, diff / std::max(W.abs().max().item<double>(), 1e-30));
    }
    return worst;
}

} // namespace

int main(int argc, char **argv)
{
    std::string db, modelDir, method = "oedit+", cacheDir;
    int64_t runId = 0, edits = 200, repeats = 5, threads = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "bench_rollback: " << arg << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--db")
            db = value();
        else if (arg == "--run")
            runId = std::stoll(value());
        else if (arg == "--model")
            modelDir = value();
        else if (arg == "--edits")
            edits = std::stoll(value());
        else if (arg == "--method")
            method = value();
        else if (arg == "--repeats")
            repeats = std::max<int64_t>(1, std::stoll(value()));
        else if (arg == "--threads")
            threads = std::stoll(value());
        else if (arg == "--cache")
            cacheDir = value();
        else {
            std::cerr << "usage: bench_rollback [--db FILE --run ID] [--model DIR] [--edits N] [--method M] "
                         "[--repeats K] [--threads T] [--cache DIR]\n";
            return 2;
        }
    }
    if (threads > 0)
        torch::set_num_threads(static_cast<int>(threads));
    try {
        fs::path scratch;
        if (db.empty()) {
            scratch = fs::temp_directory_path() / ("bench_rollback_" + std::to_string(::getpid()));
            fs::create_directories(scratch);
            db = (scratch / "runs.sqlite").string();
        }
        store::Ledger ledger(db);
        if (runId == 0) {
            run::RunnerOptions options;
            options.modelDir = modelDir.empty() ? Engine::defaultModelDirectory() : modelDir;
            options.method = method;
            options.edits = edits;
            options.evalEvery = 0;
            options.cacheDir = cacheDir;
            run::RunnerCallbacks callbacks;
            callbacks.evaluate = [](const run::EvalInput &) { return std::vector<store::Metric>{}; };
            const auto start = Clock::now();
            const auto made = run::startRun(ledger, options, callbacks);
            runId = made.runId;
            std::cout << "made run " << runId << ": " << made.steps << " " << method << " edits in "
                      << std::fixed << std::setprecision(1) << msSince(start) / 1000 << " s\n";
        }
        const auto info = ledger.run(runId);
        if (info.status == "running")
            throw std::runtime_error("run " + std::to_string(runId) + " is marked running: resume or finish it first");
        const std::string dir = modelDir.empty() ? info.modelPath : modelDir;

        // The model as the workbench holds it: base + the run, with its method state.
        auto start = Clock::now();
        model::Transformer model(model::loadModelConfig(dir), model::loadStateDict(dir, torch::kFloat32));
        const auto tokenizer = model::loadTokenizer(dir);
        const auto editor = edit::createEditMethod(info.method, info.hparams, model.config());
        edit::ContextOptions contextOptions;
        contextOptions.modelDir = dir;
        contextOptions.cacheDir = info.options.value("cache_dir", cacheDir);
        edit::EditContext context(contextOptions);
        const auto base = run::captureBaseWeights(model);
        editor->prepare(model, *tokenizer, context);
        const auto loaded = run::rebuildWeights(model, base, ledger, runId);
        run::replayEditState(context, ledger, runId);
        const double openMs = msSince(start);

        const auto active = ledger.activeEdits(runId);
        if (active.size() < 3)
            throw std::runtime_error("run " + std::to_string(runId) + " has fewer than 3 active edits");
        std::cout << "run " << runId << " (" << info.method << ", " << active.size() << " active edits, "
                  << loaded << " loaded): opened in " << std::fixed << std::setprecision(0) << openMs << " ms\n";
        std::cout << std::left << std::setw(28) << "operation" << std::right << std::setw(12) << "ledger ms"
                  << std::setw(12) << "weights ms" << std::setw(12) << "total ms" << std::setw(14) << "max |dW|" << std::setw(12) << "relative"
                  << "\n";

        auto report = [&](const std::string &label, const std::vector<double> &ledgerMs,
                          const std::vector<double> &weightMs, Difference difference) {
            std::vector<double> total;
            for (size_t i = 0; i < ledgerMs.size(); ++i)
                total.push_back(ledgerMs[i] + weightMs[i]);
            std::cout << std::left << std::setw(28) << label << std::right << std::fixed << std::setprecision(1)
                      << std::setw(12) << median(ledgerMs) << std::setw(12) << median(weightMs) << std::setw(12)
                      << median(total) << std::setw(14) << std::scientific << std::setprecision(1)
                      << difference.absolute << std::setw(12) << difference.relative << std::fixed << "\n";
        };

        double worstTotal = 0;
        auto timeRollback = [&](const std::string &label, const std::function<store::RollbackEvent()> &act) {
            std::vector<double> ledgerMs, weightMs, undoLedgerMs, undoWeightMs;
            Difference difference;
            for (int64_t r = 0; r < repeats; ++r) {
                auto t = Clock::now();
                const auto event = act();
                ledgerMs.push_back(msSince(t));
                t = Clock::now();
                run::applyRollback(model, &context, ledger, event);
                weightMs.push_back(msSince(t));
                const auto now = maxDifference(model, run::expectedWeights(base, ledger, runId));
                difference.absolute = std::max(difference.absolute, now.absolute);
                difference.relative = std::max(difference.relative, now.relative);
                t = Clock::now();
                const auto undo = ledger.undoRollback(event.id);
                undoLedgerMs.push_back(msSince(t));
                t = Clock::now();
                run::applyRollback(model, &context, ledger, undo);
                undoWeightMs.push_back(msSince(t));
            }
            report(label, ledgerMs, weightMs, difference);
            report("  undo", undoLedgerMs, undoWeightMs,
                   maxDifference(model, run::expectedWeights(base, ledger, runId)));
            worstTotal = std::max({worstTotal, median(ledgerMs) + median(weightMs),
                                   median(undoLedgerMs) + median(undoWeightMs)});
        };
        const auto first = active.front(), middle = active[active.size() / 2], last = active.back();
        timeRollback("remove first edit", [&] { return ledger.removeEdit(runId, first.id); });
        timeRollback("remove middle edit", [&] { return ledger.removeEdit(runId, middle.id); });
        timeRollback("remove last edit", [&] { return ledger.removeEdit(runId, last.id); });
        timeRollback("revert to middle step", [&] { return ledger.revertToStep(runId, middle.step); });
        std::cout << "slowest rollback or undo (median of " << repeats << "): " << std::setprecision(1)
                  << worstTotal << " ms (target < 100 ms)\n";
        if (!scratch.empty())
            fs::remove_all(scratch);
    } catch (const std::exception &error) {
        std::cerr << "bench_rollback: " << error.what() << "\n";
        return 1;
    }
    return 0;
}
