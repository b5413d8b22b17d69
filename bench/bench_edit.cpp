// Per-edit latency of every editing method on one model, in one run, plus the
// statistics pre-computation time (cold, then read back from the cache).
//
// Each method makes N edits of random distinct facts of the model's world
// (new target: another object of the same relation), applied one after the
// other as a sequential-editing run would, on its own copy of the model. The
// methods take turns edit by edit, so load from other processes on a shared
// machine hits them alike. The latency of
// an edit is the wall time of computing it plus applying it with the run's
// context (O-Edit's subspace bookkeeping happens there). Statistics are
// prepared before the timed edits, so they are not part of the latency.
//
// Usage: bench_edit [--model DIR] [--edits N] [--seed S] [--threads T]
//                   [--methods ft,rome,...] [--cache DIR] [--device cpu|cuda]
//                   [--shape gpt2-small|llama-1b] [--verbose]
// Without --model, uses the embedded default model (Engine::defaultModelDirectory).
// --shape edits a random model of that shape instead (random_shapes.h), with
// the model folder's tokenizer, world and statistics text: what an edit costs
// at that size (its efficacy on random weights means nothing). Each method
// holds its own copy: about 4.4 GB each for llama-1b.
// --device puts every model copy there. The engine keeps the statistics' sums
// and the closed-form solves on the CPU in float64 whatever the device, so
// those parts stay CPU time. On CUDA each latency ends with a synchronize, so
// the kernels an edit queued count to that edit.
// The figure to read is the ratio of O-Edit+ to its base method: the machine
// may be busy with other work, which moves absolute times but hardly ratios.
#include "edit/editor.h"
#include "random_shapes.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/engine.h"
#include "oedit/world.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

using namespace oedit;
using namespace oedit::edit;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Variant {
    std::string label;  // as printed: "oedit+ (memit)"
    std::string method; // createEditMethod name
    nlohmann::json overrides;
    std::string base; // label of the base method this one is compared with; empty for bases
};

std::vector<Variant> allVariants()
{
    return {{"ft", "ft", nlohmann::json::object(), ""},
            {"rome", "rome", nlohmann::json::object(), ""},
            {"memit", "memit", nlohmann::json::object(), ""},
            {"alphaedit", "alphaedit", nlohmann::json::object(), "memit"},
            {"oedit (rome)", "oedit", {{"base", "rome"}}, "rome"},
            {"oedit+ (rome)", "oedit+", {{"base", "rome"}}, "rome"},
            {"oedit (memit)", "oedit", {{"base", "memit"}}, "memit"},
            {"oedit+ (memit)", "oedit+", {{"base", "memit"}}, "memit"}};
}

double since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Kernels run asynchronously on CUDA: wait for them before reading the clock.
void synchronize(torch::Device device)
{
    if (device.is_cuda())
        torch::cuda::synchronize();
}

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double mean(const std::vector<double> &v)
{
    double sum = 0;
    for (double x : v)
        sum += x;
    return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

// `count` requests on distinct facts, the same for every method (mt19937 is
// specified by the standard; draws use plain modulo).
std::vector<EditRequest> drawRequests(const world::World &w, int count, uint32_t seed)
{
    std::mt19937 random(seed);
    std::set<size_t> used;
    std::vector<EditRequest> out;
    for (int attempts = 0; static_cast<int>(out.size()) < count && attempts < 100 * count; ++attempts) {
        const size_t index = random() % w.facts.size();
        const auto &fact = w.facts[index];
        const auto &relation = w.relationOf(fact);
        const int other = static_cast<int>(random() % relation.objects.size());
        if (other == fact.object || !used.insert(index).second)
            continue;
        out.push_back({w.subjectName(fact), relation.templates[0], relation.objects[static_cast<size_t>(other)],
                       w.objectName(fact)});
    }
    return out;
}

struct Row {
    std::string label;
    std::vector<double> latency; // edit + apply, seconds
    double key = 0, value = 0, update = 0, apply = 0;
    double steps = 0;
    int succeeded = 0, rejected = 0;
};

} // namespace

int main(int argc, char **argv)
{
    std::string modelDir, cacheDir, methodList, deviceName = "cpu", shape;
    int edits = 10;
    uint32_t seed = 7;
    int threads = 0;
    bool verbose = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << arg << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--model")
            modelDir = next();
        else if (arg == "--edits")
            edits = std::stoi(next());
        else if (arg == "--seed")
            seed = static_cast<uint32_t>(std::stoul(next()));
        else if (arg == "--threads")
            threads = std::stoi(next());
        else if (arg == "--methods")
            methodList = next();
        else if (arg == "--cache")
            cacheDir = next();
        else if (arg == "--device")
            deviceName = next();
        else if (arg == "--shape")
            shape = next();
        else if (arg == "--verbose")
            verbose = true;
        else {
            std::cerr << "unknown argument " << arg
                      << "\nusage: bench_edit [--model DIR] [--edits N] [--seed S] [--threads T] "
                         "[--methods a,b,...] [--cache DIR] [--device cpu|cuda] [--shape gpt2-small|llama-1b] [--verbose]\n";
            return 2;
        }
    }
    if (modelDir.empty())
        modelDir = Engine::defaultModelDirectory();
    if (modelDir.empty()) {
        std::cerr << "bench_edit: the default model is not installed; pass --model DIR (a world model folder)\n";
        return 2;
    }
    if (threads > 0)
        torch::set_num_threads(threads);
    // A fresh cache unless one is named, so the cold figure is really cold.
    bool removeCache = false;
    if (cacheDir.empty()) {
        cacheDir = (fs::temp_directory_path() / ("bench-edit-cache-" + std::to_string(::getpid()))).string();
        removeCache = true;
    }
    std::vector<Variant> variants;
    for (const auto &v : allVariants()) {
        if (methodList.empty() || ("," + methodList + ",").find("," + v.label + ",") != std::string::npos ||
            ("," + methodList + ",").find("," + v.method + ",") != std::string::npos)
            variants.push_back(v);
    }

    try {
        const torch::Device device(deviceName);
        const auto folderConfig = model::loadModelConfig(modelDir);
        const auto randomShape = bench::namedShape(shape, folderConfig.vocabSize);
        if (!shape.empty() && !randomShape) {
            std::cerr << "bench_edit: --shape " << shape << ": give gpt2-small or llama-1b\n";
            return 2;
        }
        // Every method edits an identical copy: the folder's weights, or the
        // same random weights of --shape.
        const auto makeModel = [&] {
            auto copy = randomShape ? std::make_unique<model::Transformer>(*randomShape,
                                                                           model::initialWeights(*randomShape, 0))
                                    : std::make_unique<model::Transformer>(
                                          folderConfig, model::loadStateDict(modelDir, torch::kFloat32));
            copy->to(device, torch::kFloat32);
            return copy;
        };
        const auto base = makeModel();
        auto &model = *base;
        const auto tokenizer = model::loadTokenizer(modelDir);
        const auto loaded = world::loadWorld(modelDir);
        if (!loaded) {
            std::cerr << "bench_edit: " << loaded.message() << "\n";
            return 1;
        }
        const auto &w = loaded.value();
        const auto &config = model.config();
        std::cout << "model " << (randomShape ? "random " + shape + " with the tokenizer of " : std::string()) << modelDir
                  << ": " << config.layers << " layers, d " << config.hidden << ", d_k "
                  << config.intermediate << ", " << model.parameterCount() / 1e6 << "M params; " << w.facts.size()
                  << " facts; threads " << torch::get_num_threads() << "; device " << device.str() << "; " << edits
                  << " edits per method\n";

        ContextOptions options;
        options.modelDir = modelDir;
        options.cacheDir = cacheDir;

        // Statistics: every method's, cold into a fresh cache, then from the cache.
        std::cout << "\nstatistics (C per layer, implicit-knowledge Gram, context prefixes)\n";
        {
            EditContext cold(options);
            const auto start = Clock::now();
            for (const auto &v : variants) {
                const auto t = Clock::now();
                createEditMethod(v.method, v.overrides, config)->prepare(model, *tokenizer, cold);
                std::cout << "  cold   " << std::left << std::setw(16) << v.label << std::right << std::fixed
                          << std::setprecision(3) << since(t) << " s (new only)\n";
            }
            std::cout << "  cold   total           " << since(start) << " s, " << cold.statisticsComputed()
                      << " matrices computed\n";
            EditContext warm(options);
            const auto t = Clock::now();
            for (const auto &v : variants)
                createEditMethod(v.method, v.overrides, config)->prepare(model, *tokenizer, warm);
            std::cout << "  cached total           " << since(t) << " s, " << warm.statisticsLoadedFromCache()
                      << " matrices read from the cache\n";
        }

        // One model copy, method and context per variant, and the edits
        // interleaved (edit i of every variant before edit i + 1, in a
        // rotating order): load from other jobs then hits every variant alike,
        // which keeps the ratios meaningful on a shared machine.
        struct Runner {
            const Variant *variant = nullptr;
            std::unique_ptr<model::Transformer> model;
            std::unique_ptr<EditMethod> method;
            std::unique_ptr<EditContext> context;
            Row row;
        };
        std::vector<Runner> runners;
        for (const auto &v : variants) {
            Runner r;
            r.variant = &v;
            r.model = makeModel();
            r.method = createEditMethod(v.method, v.overrides, config);
            r.context = std::make_unique<EditContext>(options);
            r.method->prepare(*r.model, *tokenizer, *r.context);
            r.row.label = v.label;
            runners.push_back(std::move(r));
        }
        const auto requests = drawRequests(w, edits, seed);
        for (size_t i = 0; i < requests.size(); ++i) {
            const auto &request = requests[i];
            for (size_t j = 0; j < runners.size(); ++j) {
                auto &r = runners[(i + j) % runners.size()];
                auto &row = r.row;
                const auto start = Clock::now();
                EditResult result;
                try {
                    result = r.method->edit(*r.model, *tokenizer, request, *r.context);
                } catch (const EditError &e) {
                    ++row.rejected; // e.g. an earlier edit made the model answer this target already
                    continue;
                }
                const auto applyStart = Clock::now();
                applyEdit(*r.model, result, r.context.get());
                synchronize(device);
                row.apply += since(applyStart);
                row.latency.push_back(since(start));
                row.key += result.timings.key;
                row.value += result.timings.value;
                row.update += result.timings.update;
                row.steps += static_cast<double>(result.diagnostics.lossCurve.size());
                if (verbose) {
                    std::cout << "  " << r.variant->label << " '" << filledPrompt(request.prompt, request.subject)
                              << "' -> '" << request.targetNew << "': " << std::fixed << std::setprecision(3)
                              << since(start) << " s, loss";
                    for (double loss : result.diagnostics.lossCurve)
                        std::cout << " " << std::setprecision(2) << loss;
                    std::cout << " (nll " << result.diagnostics.finalTargetNll << ")\n";
                }
                const auto prompt = tokenizePrompt(*tokenizer, request.prompt, request.subject);
                if (targetProbability(*r.model, *tokenizer, prompt.ids, request.targetNew) >
                    targetProbability(*r.model, *tokenizer, prompt.ids, *request.targetTrue))
                    ++row.succeeded;
            }
        }
        std::vector<Row> rows;
        for (const auto &r : runners)
            rows.push_back(r.row);

        std::cout << "\nper-edit latency (edit + apply, sequential run, statistics cached)\n"
                  << "  method            mean s  median s   key s  value s update s  apply s  steps  efficacy\n";
        std::map<std::string, double> meanOf, medianOf, stepsOf;
        for (const auto &row : rows) {
            const double n = std::max<double>(1.0, static_cast<double>(row.latency.size()));
            meanOf[row.label] = mean(row.latency);
            medianOf[row.label] = median(row.latency);
            stepsOf[row.label] = row.steps / n;
            std::cout << "  " << std::left << std::setw(16) << row.label << std::right << std::fixed
                      << std::setprecision(4) << std::setw(8) << mean(row.latency) << std::setw(10)
                      << median(row.latency) << std::setw(8) << row.key / n << std::setw(9) << row.value / n
                      << std::setw(9) << row.update / n << std::setw(9) << row.apply / n << std::setprecision(1)
                      << std::setw(7) << row.steps / n << "  " << row.succeeded << "/" << row.latency.size()
                      << (row.rejected ? " (" + std::to_string(row.rejected) + " rejected)" : "") << "\n";
        }
        std::cout << "\nratios to the base method (mean, median latency; value-optimisation steps)\n";
        for (const auto &v : variants)
            if (!v.base.empty() && meanOf.count(v.base) && meanOf[v.base] > 0 && medianOf[v.base] > 0)
                std::cout << "  " << std::left << std::setw(16) << v.label << std::right << " / " << std::setw(6)
                          << v.base << "  " << std::setprecision(2) << meanOf[v.label] / meanOf[v.base] << "x, "
                          << medianOf[v.label] / medianOf[v.base] << "x; steps " << std::setprecision(1)
                          << stepsOf[v.label] << " vs " << stepsOf[v.base] << "\n";
    } catch (const std::exception &e) {
        std::cerr << "bench_edit: " << e.what() << "\n";
        return 1;
    }
    if (removeCache) {
        std::error_code ec;
        fs::remove_all(cacheDir, ec);
    }
    return 0;
}
