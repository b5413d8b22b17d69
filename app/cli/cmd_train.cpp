// oedit train / oedit eval-facts: build a model of a world and check it.
#include "commands.h"

#include "oedit/engine.h"
#include "oedit/world_model.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace oedit::cli {

namespace {

std::atomic<bool> g_interrupted{false};

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
    for (const auto &row : recall.relations)
        std::cout << "  " << std::left << std::setw(22) << row.relation << std::right << std::setw(6) << row.facts
                  << " facts  canonical " << std::setw(6) << 100.0 * row.canonicalRate << "%  paraphrase "
                  << std::setw(6) << 100.0 * row.paraphraseRate << "%\n";
}

nlohmann::json recallJson(const FactRecallSummary &recall)
{
    nlohmann::json relations = nlohmann::json::array();
    for (const auto &row : recall.relations)
        relations.push_back({{"relation", row.relation},
                             {"facts", row.facts},
                             {"canonical_recall", row.canonicalRate},
                             {"paraphrase_recall", row.paraphraseRate}});
    return {{"facts", recall.facts},
            {"canonical_recalled", recall.canonicalRecalled},
            {"canonical_recall", recall.canonicalRate},
            {"paraphrase_prompts", recall.paraphrases},
            {"paraphrase_recalled", recall.paraphrasesRecalled},
            {"paraphrase_recall", recall.paraphraseRate},
            {"relations", relations},
            {"canonical_misses", recall.canonicalMisses}};
}

} // namespace

int runTrain(const Args &args)
{
    const std::string worldDir = value(args, "--world"), outDir = value(args, "--out");
    if (worldDir.empty() || outDir.empty()) {
        std::cerr << "usage: oedit train --world DIR --out DIR [--recipe FILE] [--epochs N] [--hidden N] "
                     "[--layers N] [--heads N] [--batch N] [--lr X] [--seed N] [--device cpu|cuda]\n";
        return 2;
    }
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
        auto json = recallJson(recall.value());
        json["model"] = modelDir;
        std::cout << json.dump(2) << "\n";
    } else {
        std::cout << "model " << modelDir << "\n";
        printRecall(recall.value());
    }
    return 0;
}

} // namespace oedit::cli
