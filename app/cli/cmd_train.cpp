// oedit train / oedit eval-facts: build a model of a world (or of the true
// facts of an edit data set) and check it.
#include "commands.h"

#include "oedit/engine.h"
#include "oedit/world_model.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace oedit::cli {

namespace {

namespace fs = std::filesystem;

const char *const kTrainUsage =
    "usage: oedit train (--world DIR | --dataset FILE.json [--format F] [--limit N] [--vocab V]) --out DIR\n"
    "                   [--recipe FILE] [--epochs N] [--hidden N] [--layers N] [--heads N] [--intermediate N]\n"
    "                   [--batch N] [--lr X] [--warmup N] [--seed N] [--family gpt2|llama] [--device cpu|cuda]\n"
    "                   [--quiet]\n"
    "  --world    a world folder as 'oedit world' writes it (world files and tokenizer)\n"
    "  --dataset  a CounterFact or zsRE file: the model learns its true facts (each case's\n"
    "             prompt and paraphrases) and neighbourhood prompts, so its requested\n"
    "             rewrites can be studied on a model that knows the originals\n"
    "  --format   auto, counterfact (flat EasyEdit format), counterfact-rome or zsre (default auto)\n"
    "  --limit    only the first N cases; --vocab: tokenizer size (default by the data, 1000..8000)\n"
    "  --out      the model folder, written whole or not at all\n";

std::atomic<bool> g_interrupted{false};

// A fresh directory under the system's temporary folder, removed with all it
// holds when this goes out of scope (on every return path of runTrain).
class TemporaryDirectory {
public:
    TemporaryDirectory()
    {
        std::error_code ec;
        std::string pattern = (fs::temp_directory_path(ec) / "oedit-dataset-XXXXXX").string();
        if (!ec && mkdtemp(pattern.data()))
            m_path = pattern;
    }
    ~TemporaryDirectory()
    {
        std::error_code ec;
        if (!m_path.empty())
            fs::remove_all(m_path, ec);
    }
    TemporaryDirectory(const TemporaryDirectory &) = delete;
    TemporaryDirectory &operator=(const TemporaryDirectory &) = delete;

    const std::string &path() const { return m_path; } // empty when it could not be created

private:
    std::string m_path;
};

// The rule writeDirectoryAtomically applies when the model is written, checked
// before training so a refused --out costs seconds, not the whole run.
bool outputAccepted(const std::string &outDir)
{
    std::error_code ec;
    const fs::path out(outDir);
    if (!fs::exists(out, ec))
        return true;
    if (!fs::is_directory(out, ec)) {
        std::cerr << "oedit train: --out " << outDir << " exists and is not a directory\n";
        return false;
    }
    if (!fs::is_empty(out, ec) && !fs::exists(out / "world.json", ec)) {
        std::cerr << "oedit train: refusing to replace --out " << outDir
                  << ": it is not empty and holds no earlier model or world\n";
        return false;
    }
    return true;
}

void onInterrupt(int)
{
    g_interrupted.store(true);
}

std::string value(const Args &args, const std::string &flag, const std::string &fallback = {})
{
    for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == flag)
            return args[i + 1];
    }
    return fallback;
}

bool flag(const Args &args, const std::string &name)
{
    return std::find(args.begin(), args.end(), name) != args.end();
}

// Reads an integer option into `target`; false (with a message) when malformed.
template <typename Number>
bool numberOption(const Args &args, const std::string &name, Number &target)
{
    const std::string text = value(args, name);
    if (text.empty())
        return true;
    std::istringstream in(text);
    Number parsed{};
    if (!(in >> parsed) || !in.eof()) {
        std::cerr << "oedit: " << name << " expects a number, got '" << text << "'\n";
        return false;
    }
    target = parsed;
    return true;
}

void printRecall(const FactRecallSummary &recall)
{
    std::cout << std::fixed << std::setprecision(2) << "canonical recall  " << 100.0 * recall.canonicalRate << "% of "
              << recall.facts << " facts\n"
              << "paraphrase recall " << 100.0 * recall.paraphraseRate << "% of " << recall.paraphrases
              << " paraphrase prompts\n";
    // A world from a data set has one relation per case: hundreds of rows.
    constexpr size_t kRowsShown = 40;
    for (size_t i = 0; i < recall.relations.size() && i < kRowsShown; ++i) {
        const auto &row = recall.relations[i];
        std::cout << "  " << std::left << std::setw(22) << row.relation << std::right << std::setw(6) << row.facts
                  << " facts  canonical " << std::setw(6) << 100.0 * row.canonicalRate << "%  paraphrase "
                  << std::setw(6) << 100.0 * row.paraphraseRate << "%\n";
    }
    if (recall.relations.size() > kRowsShown)
        std::cout << "  ... and " << recall.relations.size() - kRowsShown << " more relations (--json lists all)\n";
}

} // namespace

int runTrain(const Args &args)
{
    if (flag(args, "--help") || flag(args, "-h")) {
        std::cout << kTrainUsage;
        return 0;
    }
    std::string worldDir = value(args, "--world");
    const std::string outDir = value(args, "--out"), dataset = value(args, "--dataset");
    if (worldDir.empty() == dataset.empty() || outDir.empty()) {
        std::cerr << (outDir.empty() ? "oedit train: --out DIR is required\n"
                                     : "oedit train: give either --world DIR or --dataset FILE\n")
                  << kTrainUsage;
        return 2;
    }
    DatasetWorldRequest request;
    if (!dataset.empty()) {
        request.file = dataset;
        request.format = value(args, "--format", request.format);
        if (!numberOption(args, "--limit", request.limit) || !numberOption(args, "--vocab", request.vocab))
            return 2;
        if (flag(args, "--limit") && request.limit < 1) {
            std::cerr << "oedit train: --limit must be at least 1\n";
            return 2;
        }
        if (flag(args, "--vocab") && (request.vocab < 257 || request.vocab > 65536)) {
            std::cerr << "oedit train: --vocab must be between 257 and 65536\n";
            return 2;
        }
    } else if (flag(args, "--format") || flag(args, "--limit") || flag(args, "--vocab")) {
        std::cerr << "oedit train: --format, --limit and --vocab need --dataset FILE (a world has its tokenizer)\n";
        return 2;
    }
    if (!outputAccepted(outDir))
        return 2;
    WorldModelRecipe recipe;
    if (const std::string recipeFile = value(args, "--recipe"); !recipeFile.empty()) {
        std::ifstream in(recipeFile);
        if (!in) {
            std::cerr << "oedit train: cannot read the recipe '" << recipeFile << "'\n";
            return 2;
        }
        std::stringstream text;
        text << in.rdbuf();
        auto parsed = WorldModelRecipe::fromJson(text.str());
        if (!parsed) {
            std::cerr << "oedit train: " << recipeFile << ": " << parsed.message() << "\n";
            return 2;
        }
        recipe = parsed.value();
    }
    if (!numberOption(args, "--epochs", recipe.epochs) || !numberOption(args, "--hidden", recipe.hidden) ||
        !numberOption(args, "--layers", recipe.layers) || !numberOption(args, "--heads", recipe.heads) ||
        !numberOption(args, "--intermediate", recipe.intermediate) ||
        !numberOption(args, "--batch", recipe.batchSize) || !numberOption(args, "--lr", recipe.learningRate) ||
        !numberOption(args, "--warmup", recipe.warmupSteps) || !numberOption(args, "--seed", recipe.seed))
        return 2;
    recipe.family = value(args, "--family", recipe.family);
    recipe.device = value(args, "--device", recipe.device);
    const bool quiet = flag(args, "--quiet");

    std::signal(SIGINT, onInterrupt);
    // A data set becomes a world folder in a temporary directory, which
    // trainWorldModel copies into the model folder; nothing goes to --out
    // unless the whole run succeeds.
    TemporaryDirectory scratch;
    if (!dataset.empty()) {
        if (scratch.path().empty()) {
            std::signal(SIGINT, SIG_DFL);
            std::cerr << "oedit train: cannot create a temporary directory\n";
            return 1;
        }
        worldDir = (fs::path(scratch.path()) / "world").string();
        int longest = 0;
        if (const int rc = writeDatasetWorld(request, worldDir, "train", &longest); rc != 0) {
            std::signal(SIGINT, SIG_DFL);
            return rc;
        }
        // Real prompts are longer than the synthetic world's: a fact cut into
        // windows would lose its subject, and recall could not score it.
        if (longest > recipe.maxPositions) {
            const int raised = (longest + 15) / 16 * 16;
            std::cerr << "oedit train: note: the longest fact sentence has " << longest
                      << " tokens; max_positions raised from " << recipe.maxPositions << " to " << raised << "\n";
            recipe.maxPositions = raised;
        }
    }
    int lastEpoch = 0;
    long long lastReport = 0;
    const auto summary = trainWorldModel(worldDir, outDir, recipe, [&](const TrainingProgress &state) {
        const bool epochDone = state.sampleRecall >= 0;
        if (!quiet && (epochDone || state.step - lastReport >= 200)) {
            std::cerr << std::fixed << std::setprecision(3) << "epoch " << state.epoch << "/" << state.epochs
                      << "  step " << state.step << "/" << state.steps << "  loss " << state.loss << "  "
                      << std::setprecision(0) << state.tokensPerSecond << " tokens/s  " << state.seconds << " s";
            if (epochDone)
                std::cerr << std::setprecision(1) << "  recall (first facts) " << 100.0 * state.sampleRecall << "%";
            std::cerr << "\n";
            lastReport = state.step;
        }
        lastEpoch = state.epoch;
        return !g_interrupted.load();
    });
    std::signal(SIGINT, SIG_DFL);
    if (!summary) {
        std::cerr << "oedit train: " << summary.message() << "\n";
        return 1;
    }
    if (summary->cancelled) {
        std::cerr << "oedit train: cancelled after " << summary->steps << " steps; nothing was written to " << outDir
                  << "\n";
        return 130;
    }
    std::cout << std::fixed << std::setprecision(1) << "trained on " << summary->sentences << " sentences, "
              << summary->tokens << " tokens in " << summary->seconds << " s (" << summary->tokensPerSecond
              << " tokens/s), final loss " << std::setprecision(4) << summary->finalLoss << "\n";
    printRecall(summary->recall);
    std::cout << "model written to " << outDir << "\n";
    return 0;
}

int runEvalFacts(const Args &args)
{
    std::string modelDir = value(args, "--model");
    if (modelDir.empty())
        modelDir = Engine::defaultModelDirectory();
    if (modelDir.empty()) {
        std::cerr << "oedit eval-facts: no --model given and the default model is not installed\n";
        return 2;
    }
    long long limit = 0;
    if (!numberOption(args, "--limit", limit))
        return 2;
    const auto recall = evaluateFacts(modelDir, value(args, "--world"), limit);
    if (!recall) {
        std::cerr << "oedit eval-facts: " << recall.message() << "\n";
        return 1;
    }
    if (flag(args, "--json")) {
        auto json = nlohmann::json::parse(recall->toJson());
        json["model"] = modelDir;
        std::cout << json.dump(2) << "\n";
    } else {
        std::cout << "model " << modelDir << "\n";
        printRecall(recall.value());
    }
    return 0;
}

} // namespace oedit::cli
