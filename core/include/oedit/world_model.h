// Building and checking models of a knowledge world: pretraining a transformer
// on a world's facts and text, and measuring how many facts it recalls.
//
// Free functions over value types (no torch, no Qt). Long work reports
// progress through callbacks that can cancel; callers run them off the GUI
// thread. Failures come back as Status with a message; nothing throws.
#pragma once

#include "oedit/status.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace oedit {

// Everything that determines a trained world model; stored beside it as
// recipe.json so one command rebuilds it.
struct WorldModelRecipe {
    std::string family = "gpt2";
    int hidden = 256;
    int layers = 4;
    int heads = 8;
    int intermediate = 1024;
    int maxPositions = 64;
    int epochs = 30;
    int batchSize = 64;
    double learningRate = 2e-3;
    double finalLearningRateFraction = 0.05;
    int warmupSteps = 200;
    double weightDecay = 0.01;
    uint64_t seed = 1;
    std::string device = "cpu";

    std::string toJson() const;
    static Expected<WorldModelRecipe> fromJson(const std::string &text);
};

struct TrainingProgress {
    int epoch = 0;
    int epochs = 0;
    long long step = 0;
    long long steps = 0;
    double loss = 0;
    double tokensPerSecond = 0;
    double seconds = 0;
    // Canonical recall on the first facts of the world, measured at the end of
    // each epoch (negative within an epoch), to watch learning as it happens.
    double sampleRecall = -1;
};

struct RelationRecallRow {
    std::string relation;
    long long facts = 0;
    double canonicalRate = 0;
    double paraphraseRate = 0;
};

struct FactRecallSummary {
    long long facts = 0;
    long long canonicalRecalled = 0;
    long long paraphrases = 0;
    long long paraphrasesRecalled = 0;
    double canonicalRate = 0;
    double paraphraseRate = 0;
    std::vector<RelationRecallRow> relations;
    std::vector<std::string> canonicalMisses; // the first few, "prompt -> expected object"

    // As a JSON object (rates, counts, per relation, misses), for --json and training.json.
    std::string toJson() const;
};

struct TrainingSummary {
    bool cancelled = false;
    long long steps = 0;
    long long tokens = 0;
    long long sentences = 0;
    double finalLoss = 0;
    double seconds = 0;
    double tokensPerSecond = 0;
    FactRecallSummary recall; // measured on the trained model (empty if cancelled)
};

// Trains a model on the world in `worldDir` (as `oedit world` writes it: world
// files plus the tokenizer's vocab.json and merges.txt) and writes a complete
// model folder to `outDir` (config, weights, tokenizer, the world, recipe.json
// and training.json) through a temporary folder: a failure or a cancel leaves
// no half-written output. `progress` returns false to cancel.
Expected<TrainingSummary> trainWorldModel(const std::string &worldDir, const std::string &outDir,
                                          const WorldModelRecipe &recipe,
                                          const std::function<bool(const TrainingProgress &)> &progress = {});

// Top-1 recall of the world's facts by the model in `modelDir`, on canonical
// and paraphrase prompts. The world comes from `worldDir`, or from the model
// folder itself when empty. limit > 0 checks only the first `limit` facts.
Expected<FactRecallSummary> evaluateFacts(const std::string &modelDir, const std::string &worldDir = {},
                                          long long limit = 0, const ProgressFn &progress = {});

} // namespace oedit
