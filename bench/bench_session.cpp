// The interactive session's ledger write time per edit, from edit 1 to edit N:
// what the Facts view and `oedit edit --db` cost on top of the edit itself.
// The session is attached to a ledger (Engine::attachLedger), so each edit is
// appended as it is made; the figure is the engine's `apply` timing (the
// method state, the exact weights and the ledger append), in milliseconds,
// as medians per block of edits, with the ratio of the last block to the
// first. A flat ratio (about 1) means constant work per edit; the old path,
// which re-serialised the whole session through a temporary file after every
// edit, grew linearly.
//
// Usage: bench_session [--model DIR] [--edits N] [--method M] [--block B] [--threads T]
// (defaults: the default model, 500 edits, rome, blocks of 50).
#include "oedit/editing.h"
#include "oedit/engine.h"
#include "oedit/world.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <random>

using namespace oedit;
namespace fs = std::filesystem;

int main(int argc, char **argv)
{
    std::string modelDir = Engine::defaultModelDirectory(), method = "rome";
    int edits = 500, block = 50, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--model")
            modelDir = value;
        else if (flag == "--edits")
            edits = std::atoi(value.c_str());
        else if (flag == "--method")
            method = value;
        else if (flag == "--block")
            block = std::atoi(value.c_str());
        else if (flag == "--threads")
            threads = std::atoi(value.c_str());
        else {
            std::cerr << "unknown option " << flag << "\n";
            return 2;
        }
    }
    if (edits < block || block < 1) {
        std::cerr << "--edits must be at least --block (and --block at least 1)\n";
        return 2;
    }
    torch::set_num_threads(threads);
    const auto world = world::loadWorld(modelDir);
    if (!world) {
        std::cerr << world.message() << "\n";
        return 1;
    }
    Engine engine;
    if (const auto opened = engine.openModel(modelDir); !opened) {
        std::cerr << opened.message() << "\n";
        return 1;
    }
    const auto dir = fs::temp_directory_path() / ("bench-session-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir);
    const std::string db = (dir / "session.sqlite").string();
    if (const auto attached = engine.attachLedger(db, 0); !attached) {
        std::cerr << attached.message() << "\n";
        return 1;
    }
    // Distinct facts in a seeded order, each moved to another object of its relation.
    std::vector<size_t> order(world->facts.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
    std::vector<double> applyMs;
    for (size_t i = 0; i < order.size() && static_cast<int>(applyMs.size()) < edits; ++i) {
        const auto &fact = world->facts[order[i]];
        const auto &relation = world->relationOf(fact);
        if (relation.objects.size() < 2)
            continue;
        EditSpec spec;
        spec.method = method;
        spec.subject = world->subjectName(fact);
        spec.prompt = relation.templates.at(0);
        spec.targetNew = relation.objects[(static_cast<size_t>(fact.object) + 1) % relation.objects.size()];
        spec.targetTrue = world->objectName(fact);
        const auto outcome = engine.applyEdit(spec);
        if (!outcome)
            continue; // e.g. a target the model already answers
        applyMs.push_back(outcome->timings.apply * 1000.0);
    }
    if (static_cast<int>(applyMs.size()) < edits) {
        std::cerr << "only " << applyMs.size() << " edits could be made\n";
        return 1;
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    std::cout << "session ledger write time per edit (" << method << ", " << modelDir << ", " << edits
              << " edits, median ms per block)\n";
    std::vector<double> medians;
    for (int start = 0; start + block <= edits; start += block) {
        medians.push_back(median({applyMs.begin() + start, applyMs.begin() + start + block}));
        std::cout << "  edits " << std::setw(4) << start + 1 << "-" << std::setw(4) << start + block << ": "
                  << std::fixed << std::setprecision(2) << medians.back() << " ms\n";
    }
    std::cout << "last block / first block: " << std::setprecision(2) << medians.back() / medians.front() << "\n";
    std::error_code ec;
    fs::remove_all(dir, ec);
    return 0;
}
