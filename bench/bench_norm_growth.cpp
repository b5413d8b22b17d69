// The Retention tab's norm growth (||W_k|| / ||W_0|| per edited layer and
// step) on a long run: how long Engine::normGrowth takes when the engine
// already holds the run's model (the workbench's open model: nothing is
// loaded), when it must load the model folder first (what every call cost
// when the analyses loaded the base model themselves), and a second call
// after that (the loaded model is kept). Milliseconds, median of --repeats.
//
// Usage: bench_norm_growth [--db FILE --run ID] [--model DIR] [--edits N] [--method M] [--repeats K]
// Without --db a run of N edits (default 2000, rome, no evaluation) is made
// first in a temporary ledger.
#include "oedit/engine.h"
#include "oedit/runs.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <random>

using namespace oedit;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int main(int argc, char **argv)
{
    std::string modelDir = Engine::defaultModelDirectory(), method = "rome", db;
    long long runId = 0, edits = 2000;
    int repeats = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--model")
            modelDir = value;
        else if (flag == "--db")
            db = value;
        else if (flag == "--run")
            runId = std::atoll(value.c_str());
        else if (flag == "--edits")
            edits = std::atoll(value.c_str());
        else if (flag == "--method")
            method = value;
        else if (flag == "--repeats")
            repeats = std::atoi(value.c_str());
        else {
            std::cerr << "unknown option " << flag << "\n";
            return 2;
        }
    }
    torch::set_num_threads(1);
    fs::path scratch;
    if (db.empty()) {
        scratch = fs::temp_directory_path() / ("bench-norms-" + std::to_string(std::random_device{}()));
        fs::create_directories(scratch);
        db = (scratch / "norms.sqlite").string();
        Engine maker;
        runs::RunRequest request;
        request.modelDir = modelDir;
        request.method = method;
        request.edits = edits;
        std::cerr << "making a " << edits << "-edit " << method << " run...\n";
        const auto run = maker.startRun(db, request);
        if (!run) {
            std::cerr << run.message() << "\n";
            return 1;
        }
        runId = run->runId;
    }
    const auto list = runs::listRuns(db);
    if (!list) {
        std::cerr << list.message() << "\n";
        return 1;
    }
    std::string runModel;
    for (const auto &run : list.value())
        if (run.runId == runId)
            runModel = run.modelPath;
    auto timeCall = [&](Engine &engine) {
        const auto start = Clock::now();
        const auto series = engine.normGrowth(db, runId);
        if (!series) {
            std::cerr << series.message() << "\n";
            std::exit(1);
        }
        return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    };
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    std::vector<double> open, cold, kept;
    for (int r = 0; r < repeats; ++r) {
        Engine withModel;
        if (!withModel.openModel(runModel)) {
            std::cerr << "cannot open " << runModel << "\n";
            return 1;
        }
        open.push_back(timeCall(withModel));
        Engine empty;
        cold.push_back(timeCall(empty));
        kept.push_back(timeCall(empty));
    }
    std::cout << "norm growth of run " << runId << " (" << db << ")\n" << std::fixed << std::setprecision(1)
              << "  run's model open in the engine:      " << median(open) << " ms\n"
              << "  model folder loaded first (old path): " << median(cold) << " ms\n"
              << "  second call (model kept):             " << median(kept) << " ms\n";
    if (!scratch.empty()) {
        std::error_code ec;
        fs::remove_all(scratch, ec);
    }
    return 0;
}
