// Next-token pretraining of a Transformer on tokenised sentences with AdamW,
// a linear warm-up and a cosine decay. Used to build the embedded world model
// and models of real data sets' true facts.
//
// Runs on the calling thread and on the model's device; the model is changed
// in place. Deterministic for a seed on a given device and thread count.
#pragma once

#include "model/transformer.h"

#include <functional>

namespace oedit::train {

struct TrainOptions {
    int epochs = 30;
    int batchSize = 64;
    double learningRate = 2e-3;
    double finalLearningRateFraction = 0.05; // cosine decays to this share of the peak
    int warmupSteps = 200;
    double weightDecay = 0.01; // matrices only; norms, biases and positions are not decayed
    double gradientClip = 1.0;
    uint64_t seed = 1;
};

struct TrainProgress {
    int epoch = 0; // 1-based, the epoch in progress
    int epochs = 0;
    int64_t step = 0;
    int64_t steps = 0;
    double loss = 0;            // running mean over the current epoch
    double tokensPerSecond = 0; // since the start
    double seconds = 0;
};

// Called after every step; return false to stop (the model keeps the weights
// of the last finished step).
using TrainProgressFn = std::function<bool(const TrainProgress &)>;

struct TrainReport {
    bool cancelled = false;
    int64_t steps = 0;
    int64_t tokens = 0;
    double finalLoss = 0;
    double seconds = 0;
};

// Trains on `sequences` (each a full example, ending with an end-of-text token
// when the caller wants one). Throws std::runtime_error on empty input.
TrainReport trainLanguageModel(model::Transformer &model, const std::vector<std::vector<int64_t>> &sequences,
                               int64_t padId, const TrainOptions &options, const TrainProgressFn &progress);

} // namespace oedit::train
