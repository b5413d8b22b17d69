#include "train/lm_trainer.h"

#include <chrono>
#include <cmath>
#include <numeric>

namespace oedit::train {

namespace {

// A fixed, portable shuffle (std::shuffle's output differs across standard
// libraries, which would make the shipped model impossible to reproduce).
uint64_t splitMix(uint64_t &state)
{
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void shuffle(std::vector<size_t> &order, uint64_t &state)
{
    for (size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[splitMix(state) % i]);
}

double learningRateAt(const TrainOptions &options, int64_t step, int64_t totalSteps)
{
    if (step < options.warmupSteps)
        return options.learningRate * static_cast<double>(step + 1) / options.warmupSteps;
    const double progress =
        static_cast<double>(step - options.warmupSteps) / std::max<int64_t>(1, totalSteps - options.warmupSteps);
    const double cosine = 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
    const double floor = options.finalLearningRateFraction;
    return options.learningRate * (floor + (1.0 - floor) * cosine);
}

} // namespace

TrainReport trainLanguageModel(model::Transformer &model, const std::vector<std::vector<int64_t>> &sequences,
                               int64_t padId, const TrainOptions &options, const TrainProgressFn &progress)
{
    if (sequences.empty())
        throw std::runtime_error("nothing to train on: the training set is empty");
    if (options.epochs <= 0 || options.batchSize <= 0 || options.learningRate <= 0)
        throw std::runtime_error("training needs positive epochs, batch size and learning rate");
    torch::manual_seed(options.seed);

    // Decay matrices only, as GPT-2 does; position tables count as embeddings.
    std::vector<torch::Tensor> decayed, undecayed;
    for (const auto &[name, tensor] : model.weights()) {
        tensor.set_requires_grad(true);
        const bool matrix = tensor.dim() >= 2 && name.find("wpe") == std::string::npos;
        (matrix ? decayed : undecayed).push_back(tensor);
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(
                                     torch::optim::AdamWOptions(options.learningRate).weight_decay(options.weightDecay)));
    groups.emplace_back(undecayed, std::make_unique<torch::optim::AdamWOptions>(
                                       torch::optim::AdamWOptions(options.learningRate).weight_decay(0.0)));
    torch::optim::AdamW optimizer(std::move(groups), torch::optim::AdamWOptions(options.learningRate));

    const int64_t batchesPerEpoch = (static_cast<int64_t>(sequences.size()) + options.batchSize - 1) / options.batchSize;
    const int64_t totalSteps = batchesPerEpoch * options.epochs;
    std::vector<size_t> order(sequences.size());
    std::iota(order.begin(), order.end(), 0);
    uint64_t shuffleState = options.seed;

    TrainReport report;
    const auto start = std::chrono::steady_clock::now();
    const auto device = model.device();
    for (int epoch = 1; epoch <= options.epochs && !report.cancelled; ++epoch) {
        shuffle(order, shuffleState);
        // Sort by length inside windows of a few batches: batches then hold
        // sequences of similar length (little padding) yet stay random.
        const size_t window = static_cast<size_t>(options.batchSize) * 16;
        for (size_t begin = 0; begin < order.size(); begin += window) {
            const auto end = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), begin + window));
            std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(begin), end,
                             [&](size_t a, size_t b) { return sequences[a].size() < sequences[b].size(); });
        }
        double lossSum = 0;
        int64_t lossCount = 0;
        for (int64_t batchIndex = 0; batchIndex < batchesPerEpoch; ++batchIndex) {
            std::vector<std::vector<int64_t>> batchSequences;
            const size_t first = static_cast<size_t>(batchIndex * options.batchSize);
            for (size_t i = first; i < std::min(order.size(), first + options.batchSize); ++i)
                batchSequences.push_back(sequences[order[i]]);
            const model::Batch batch = model::padBatch(batchSequences, padId);
            const auto ids = batch.ids.to(device), mask = batch.mask.to(device);

            const double rate = learningRateAt(options, report.steps, totalSteps);
            for (auto &group : optimizer.param_groups())
                static_cast<torch::optim::AdamWOptions &>(group.options()).lr(rate);

            optimizer.zero_grad();
            const auto logits = model.forward(ids, mask);
            const auto predicted = logits.slice(1, 0, -1).reshape({-1, logits.size(-1)});
            const auto targets = ids.slice(1, 1).reshape({-1});
            const auto weights = mask.slice(1, 1).reshape({-1}).to(torch::kFloat);
            const auto tokenLoss = torch::nn::functional::cross_entropy(
                predicted.to(torch::kFloat), targets,
                torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
            const auto loss = (tokenLoss * weights).sum() / weights.sum().clamp_min(1.0);
            loss.backward();
            torch::nn::utils::clip_grad_norm_(model.parameters(), options.gradientClip);
            optimizer.step();

            ++report.steps;
            report.tokens += mask.sum().item<int64_t>();
            lossSum += loss.item<double>();
            ++lossCount;
            if (progress) {
                TrainProgress state;
                state.epoch = epoch;
                state.epochs = options.epochs;
                state.step = report.steps;
                state.steps = totalSteps;
                state.loss = lossSum / static_cast<double>(lossCount);
                state.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                state.tokensPerSecond = static_cast<double>(report.tokens) / std::max(1e-9, state.seconds);
                if (!progress(state)) {
                    report.cancelled = true;
                    break;
                }
            }
        }
        report.finalLoss = lossSum / static_cast<double>(std::max<int64_t>(1, lossCount));
    }
    for (const auto &entry : model.weights())
        entry.second.set_requires_grad(false);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

} // namespace oedit::train
