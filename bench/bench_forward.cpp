// Forward throughput of the engine's transformer against a plain libtorch
// matmul with the same FLOP count, in one run. The ratio is the figure: it says
// how much of the matmul-bound rate the engine reaches.
//
// Usage: bench_forward [--device cpu|cuda] [--batch 32] [--length 32]
//                      [--model DIR]... [--gpt2-small] [--llama-1b]
// Without --model or --llama-1b, benchmarks a random GPT-2-small-sized model
// (124M). --llama-1b adds a random Llama-family model of TinyLlama-1.1B's shape
// (22 layers, width 2048, MLP 5632, 32 heads, 4 key/value heads, untied head):
// the family's own code (RMSNorm, RoPE, grouped-query attention, SwiGLU) at a
// size where per-kernel overhead is small against the work. It takes about
// 11 GB on the device: 4.4 GB of float32 weights and the matmul's operands.
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/transformer.h"
#include "random_shapes.h"

#include <chrono>
#include <iomanip>
#include <iostream>

using namespace oedit::model;

namespace {

double seconds(const std::function<void()> &work, torch::Device device, int repeats)
{
    work(); // warm-up
    if (device.is_cuda())
        torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i)
        work();
    if (device.is_cuda())
        torch::cuda::synchronize();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repeats;
}

// Multiply-add FLOPs of one forward pass over batch x length tokens.
double forwardFlops(const ModelConfig &c, int64_t batch, int64_t length)
{
    const double d = c.hidden, inner = c.intermediate, kv = (c.kvHeads ? c.kvHeads : c.heads) * c.headDim();
    const double mlpMatrices = c.family == Family::Gpt2 ? 2 * d * inner : 3 * d * inner;
    const double perTokenPerLayer = 2 * (d * d + 2 * d * kv + d * d + mlpMatrices) + 4 * length * d;
    return static_cast<double>(batch * length) * (c.layers * perTokenPerLayer + 2 * d * c.vocabSize);
}

void run(const std::string &label, Transformer &model, torch::Device device, int64_t batch, int64_t length)
{
    model.to(device, torch::kFloat32);
    torch::NoGradGuard noGrad;
    const auto &config = model.config();
    const auto ids = torch::randint(config.vocabSize, {batch, length}, torch::TensorOptions().dtype(torch::kLong));
    const double forwardTime = seconds([&] { model.forward(ids.to(device)); }, device, 3);
    const double flops = forwardFlops(config, batch, length);
    // A single [batch*length, d] x [d, n] matmul with the same FLOP count.
    const int64_t rows = batch * length, inner = config.hidden;
    const int64_t columns = std::max<int64_t>(1, static_cast<int64_t>(flops / (2.0 * rows * inner)));
    const auto a = torch::randn({rows, inner}, torch::TensorOptions().device(device));
    const auto b = torch::randn({inner, columns}, torch::TensorOptions().device(device));
    const double matmulTime = seconds([&] { torch::matmul(a, b); }, device, 3);
    const double tokens = static_cast<double>(rows);
    std::cout << std::fixed << std::setprecision(0) << label << " (" << model.parameterCount() / 1e6 << "M params, "
              << device.str() << ", batch " << batch << " x " << length << "): forward " << tokens / forwardTime
              << " tokens/s (" << std::setprecision(1) << flops / forwardTime / 1e9 << " GFLOP/s); same-FLOP matmul "
              << std::setprecision(0) << tokens / matmulTime << " tokens/s; ratio " << std::setprecision(2)
              << matmulTime / forwardTime << "\n";
}

} // namespace

int main(int argc, char **argv)
{
    std::string deviceName = "cpu";
    int64_t batch = 32, length = 32;
    std::vector<std::string> models;
    bool gpt2Small = false, llama1b = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << arg << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--device")
            deviceName = next();
        else if (arg == "--batch")
            batch = std::stoll(next());
        else if (arg == "--length")
            length = std::stoll(next());
        else if (arg == "--model")
            models.push_back(next());
        else if (arg == "--gpt2-small")
            gpt2Small = true;
        else if (arg == "--llama-1b")
            llama1b = true;
        else {
            std::cerr << "unknown argument " << arg << "\n";
            return 2;
        }
    }
    if (models.empty() && !llama1b)
        gpt2Small = true;
    try {
        const torch::Device device(deviceName);
        std::cout << "threads " << torch::get_num_threads() << "\n";
        if (gpt2Small) {
            Transformer model(oedit::bench::gpt2SmallShape(), initialWeights(oedit::bench::gpt2SmallShape(), 0));
            run("random GPT-2 small", model, device, batch, length);
        }
        if (llama1b) {
            Transformer model(oedit::bench::llama1bShape(), initialWeights(oedit::bench::llama1bShape(), 0));
            run("random Llama 1.1B", model, device, batch, length);
        }
        for (const auto &dir : models) {
            Transformer model(loadModelConfig(dir), loadStateDict(dir, torch::kFloat32));
            run(dir, model, device, batch, length);
        }
    } catch (const std::exception &e) {
        std::cerr << "bench_forward: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
