// Attribution of a fact's margin to a run's updates (see interference.h).
#include "eval/interference.h"

#include <cmath>
#include <stdexcept>

namespace oedit::eval {

namespace {

struct Scored {
    model::Batch batch;
    std::vector<int64_t> rows, positions; // every real token of both rows
};

Scored pack(const model::Transformer &model, const MarginProbe &probe, int64_t padId)
{
    if (probe.prompt.empty() || probe.target.empty() || probe.rival.empty())
        throw std::invalid_argument("a margin needs a prompt, a target and a rival, each of one token or more");
    auto withTarget = probe.prompt, withRival = probe.prompt;
    withTarget.insert(withTarget.end(), probe.target.begin(), probe.target.end());
    withRival.insert(withRival.end(), probe.rival.begin(), probe.rival.end());
    Scored out;
    out.batch = model::padBatch({withTarget, withRival}, padId);
    out.batch.ids = out.batch.ids.to(model.device());
    out.batch.mask = out.batch.mask.to(model.device());
    for (int64_t row = 0; row < 2; ++row)
        for (int64_t t = 0; t < static_cast<int64_t>((row == 0 ? withTarget : withRival).size()); ++t) {
            out.rows.push_back(row);
            out.positions.push_back(t);
        }
    return out;
}

// Mean log-probability of each row's continuation, teacher-forced: [2] with
// the graph when grad mode is on.
torch::Tensor continuationScores(const torch::Tensor &logits, const MarginProbe &probe)
{
    // float32 at least (half-precision log-probabilities are too coarse to
    // rank small changes), float64 when the model computes in it.
    const auto logp = torch::log_softmax(logits.scalar_type() == torch::kDouble ? logits : logits.to(torch::kFloat), -1);
    const int64_t start = static_cast<int64_t>(probe.prompt.size()) - 1;
    std::vector<torch::Tensor> scores;
    for (int64_t row = 0; row < 2; ++row) {
        const auto &tokens = row == 0 ? probe.target : probe.rival;
        auto sum = torch::zeros({}, logp.options());
        for (size_t i = 0; i < tokens.size(); ++i)
            sum = sum + logp.index({row, start + static_cast<int64_t>(i), tokens[i]});
        scores.push_back(sum / static_cast<double>(tokens.size()));
    }
    return torch::stack(scores);
}

} // namespace

Margin targetMargin(const model::Transformer &model, const MarginProbe &probe, int64_t padId)
{
    torch::NoGradGuard noGrad;
    const auto packed = pack(model, probe, padId);
    const auto scores = continuationScores(model.forward(packed.batch.ids, packed.batch.mask), probe).cpu();
    Margin margin;
    const double target = scores[0].item<double>(), rival = scores[1].item<double>();
    margin.value = target - rival;
    margin.pTarget = std::exp(target);
    margin.pRival = std::exp(rival);
    return margin;
}

std::map<int64_t, torch::Tensor> marginGradient(const model::Transformer &model, const MarginProbe &probe,
                                                const std::vector<int64_t> &layers, int64_t padId)
{
    torch::AutoGradMode grad(true);
    const auto packed = pack(model, probe, padId);
    const auto n = static_cast<int64_t>(packed.rows.size());
    model::ForwardHooks hooks;
    hooks.captureMlpKeys = layers;
    // A zero added at every real token of each layer's MLP output: its
    // gradient is the margin's gradient there, and W_l's is that times the keys.
    for (const auto layer : layers) {
        model::Intervention intervention;
        intervention.layer = layer;
        intervention.site = model::Site::MlpOut;
        intervention.rows = packed.rows;
        intervention.positions = packed.positions;
        intervention.delta = torch::zeros({n, model.config().hidden},
                                          torch::TensorOptions().dtype(model.dtype()).device(model.device()))
                                 .requires_grad_(true);
        hooks.interventions.push_back(intervention);
    }
    const auto scores = continuationScores(model.forward(packed.batch.ids, packed.batch.mask, &hooks), probe);
    (scores[0] - scores[1]).backward();
    const auto rows = torch::tensor(packed.rows, torch::kLong).to(model.device());
    const auto positions = torch::tensor(packed.positions, torch::kLong).to(model.device());
    std::map<int64_t, torch::Tensor> out;
    for (size_t i = 0; i < layers.size(); ++i) {
        const auto g = hooks.interventions[i].delta.grad().to(torch::kCPU, torch::kDouble);        // [n, d]
        const auto keys = hooks.mlpKeys.at(layers[i]).detach().index({rows, positions});         // [n, d_k]
        out[layers[i]] = g.t().matmul(keys.to(torch::kCPU, torch::kDouble));                     // [d, d_k]
    }
    return out;
}

double firstOrderChange(const std::map<int64_t, torch::Tensor> &gradient, const edit::LayerUpdate &update)
{
    const auto found = gradient.find(update.layer);
    if (found == gradient.end())
        return 0;
    const auto &G = found->second;
    if (update.rankOne()) {
        const auto a = update.right.to(torch::kCPU, torch::kDouble), b = update.left.to(torch::kCPU, torch::kDouble);
        return a.dot(G.matmul(b)).item<double>();
    }
    return (G * update.dense.to(torch::kCPU, torch::kDouble)).sum().item<double>();
}

} // namespace oedit::eval
