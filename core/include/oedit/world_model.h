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
    // How the facts are written in the training text: "templates" (every
    // fact in every template as its own sentence; the default model and the
    // recipes written before biographies existed) or "biographies" (passages
    // per subject, see world::biographyPassages, the augmentation of
    // "Physics of Language Models, Part 3.1" that makes facts extractable
    // from the subject). Measured on the embedded world (docs/KNOWLEDGE.md),
    // biographies carry recall to prompt forms never trained on; with
    // attribute lists the facts are computed at the subject's last token,
    // though in the first layer rather than the middle ones.
    std::string text = "templates";
    int passagesPerSubject = 5;
    // Keep each relation's held-out prompt form out of half the subjects'
    // biographies (world::BiographyOptions::holdOutForm).
    bool heldOutForm = true;
    // Biographies only: add each subject's attribute list every round
    // (world::BiographyOptions::attributeLists).
    bool attributeLists = false;

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
    // The held-out prompt form (each relation's last template) on the
    // subjects whose training text never had it (world::heldOutFormTrained
    // false): extractable knowledge rather than per-prompt memory. Zero for
    // a model whose recipe trained every form (templates, or biographies
    // without the hold-out), and for a world other than the model's own.
    long long heldOutFormPrompts = 0;
    long long heldOutFormRecalled = 0;
    double heldOutFormRate = 0;
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

// Where the model in `modelDir` keeps the facts of its world (or of the world
// in `worldDir`): the averaged causal trace and linear probes described in
// core/eval/causal_trace.h. `oedit trace` and `oedit probe` print them.
struct CausalTraceOptions {
    long long facts = 200; // the first this many facts taken in a spread over the world (every k-th)
    int samples = 3;       // noise draws per fact
    double noiseFactor = 3.0;
    uint64_t seed = 1;
};
struct CausalTraceSummary {
    int layers = 0;
    long long facts = 0;   // traced
    long long skipped = 0; // the clean model did not recall them (top-1), so they tell nothing
    double noiseStd = 0;
    double cleanProbability = 0;
    double corruptedProbability = 0;
    std::vector<std::string> tokenGroups;  // ROME's six groups
    std::vector<std::vector<double>> hidden; // [group][layer] mean P(object), one hidden state restored
    std::vector<std::vector<double>> mlp;    // [group][layer] mean P(object), one MLP output restored
    std::string toJson() const;
};
Expected<CausalTraceSummary> traceFacts(const std::string &modelDir, const std::string &worldDir = {},
                                        const CausalTraceOptions &options = {}, const ProgressFn &progress = {});

struct ProbeRow {
    std::string relation;
    long long train = 0, test = 0;
    std::vector<double> accuracy; // per layer, held-out subjects
    double majority = 0;
};
struct ProbeSummary {
    int layers = 0;
    std::vector<ProbeRow> relations;
    std::vector<double> accuracy; // per layer, over all relations' test subjects
    double majority = 0;          // the same for always guessing the commonest training object
    std::string toJson() const;
};
Expected<ProbeSummary> probeFacts(const std::string &modelDir, const std::string &worldDir = {},
                                  const ProgressFn &progress = {});

} // namespace oedit
