#include "oedit/engine.h"

#include "engine/engine_impl.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "run/loaded_model.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace oedit {

namespace fs = std::filesystem;

Expected<torch::ScalarType> parseDtype(const std::string &name)
{
    if (name == "float32" || name == "fp32")
        return torch::kFloat32;
    if (name == "bfloat16" || name == "bf16")
        return torch::kBFloat16;
    if (name == "float16" || name == "fp16")
        return torch::kFloat16;
    return Status::failure("unknown dtype '" + name + "': use float32, bfloat16 or float16");
}

Expected<torch::Device> parseDevice(const std::string &name)
{
    try {
        const torch::Device device(name);
        if (device.is_cuda() && !torch::cuda::is_available())
            return Status::failure("device '" + name +
                                   "' was requested but this build of libtorch has no CUDA or no GPU is visible; "
                                   "use --device cpu, or rebuild against a CUDA libtorch");
        if (!device.is_cpu() && !device.is_cuda())
            return Status::failure("device '" + name + "' is not supported: use cpu or cuda");
        return device;
    } catch (const std::exception &) {
        return Status::failure("unknown device '" + name + "': use cpu, cuda or cuda:N");
    }
}

namespace {

// Tokenizer files travel with the weights so a saved model opens anywhere.
const char *const kTokenizerFiles[] = {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model",
                                       "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"};

} // namespace

Engine::Engine() : d(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

Expected<DeviceCheck> Engine::checkDevice(const std::string &deviceName)
{
    try {
        const torch::Device device(deviceName);
        if (device.is_cuda() && !torch::cuda::is_available())
            return Status::failure("CUDA was requested but this build of libtorch has no CUDA "
                                   "or no GPU is visible; use --device cpu, or rebuild against a "
                                   "CUDA libtorch with -DCMAKE_PREFIX_PATH");
        torch::manual_seed(0);
        const auto a = torch::randn({64, 48}, torch::kFloat64);
        const auto b = torch::randn({48, 32}, torch::kFloat64);
        const auto reference = torch::matmul(a, b);
        const auto onDevice = torch::matmul(a.to(device, torch::kFloat32), b.to(device, torch::kFloat32));
        DeviceCheck check;
        check.device = device.str();
        check.maxAbsError = (onDevice.to(torch::kCPU, torch::kFloat64) - reference).abs().max().item<double>();

        const auto x = torch::randn({512, 512}, torch::TensorOptions().device(device));
        torch::matmul(x, x); // warm-up
        if (device.is_cuda())
            torch::cuda::synchronize();
        const auto start = std::chrono::steady_clock::now();
        auto y = torch::matmul(x, x);
        if (device.is_cuda())
            torch::cuda::synchronize();
        (void)y.sum().item<float>();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        check.gflops = 2.0 * 512.0 * 512.0 * 512.0 / std::max(seconds, 1e-9) / 1e9;
        return check;
    } catch (const std::exception &e) {
        return Status::failure("device check on '" + deviceName + "' failed: " + e.what());
    }
}

Status Engine::openModel(const std::string &directory, const OpenOptions &options)
{
    try {
        const auto dtype = parseDtype(options.dtype);
        if (!dtype)
            return dtype.status();
        const auto device = parseDevice(options.device);
        if (!device)
            return device.status();
        if (device.value().is_cpu() && dtype.value() != torch::kFloat32)
            return Status::failure("dtype " + options.dtype + " is meant for CUDA; on the CPU use float32");
        if (!fs::is_directory(directory))
            return Status::failure("model folder '" + directory + "' does not exist or is not a folder");
        if (const Status files = model::checkCheckpointDir(directory); !files)
            return files;

        auto loaded = run::loadModel(directory, device.value(), dtype.value(),
                                     options.allowNonFiniteWeights ? model::NonFiniteWeights::Warn
                                                                   : model::NonFiniteWeights::Refuse);
        // A new model starts a new session; the old one's ledger rows stay.
        d->session.reset();
        d->open = std::move(loaded);
        d->session = std::make_unique<run::EditSession>(*d->open);
        if (d->other && d->other->isFolder(directory) && d->otherDevice == device.value().str() &&
            d->otherDtype == model::torchDtypeName(dtype.value()))
            d->other.reset(); // the same model twice in memory helps no one
        return Status::success();
    } catch (const model::NonFiniteWeightsError &e) {
        return Status::failure("cannot open model '" + directory + "': " + e.what(), FailureKind::NonFiniteWeights);
    } catch (const std::exception &e) {
        return Status::failure("cannot open model '" + directory + "': " + e.what());
    }
}

bool Engine::hasModel() const
{
    return d->open != nullptr;
}

ModelInfo Engine::modelInfo() const
{
    ModelInfo info;
    if (!d->open)
        return info;
    const auto &config = d->model()->config();
    info.path = d->path();
    info.family = config.family == model::Family::Gpt2 ? "gpt2" : "llama";
    info.modelType = config.modelType;
    info.device = d->model()->device().str();
    info.dtype = model::torchDtypeName(d->model()->dtype());
    info.layers = static_cast<int>(config.layers);
    info.hidden = static_cast<int>(config.hidden);
    info.heads = static_cast<int>(config.heads);
    info.kvHeads = static_cast<int>(config.kvHeads);
    info.intermediate = static_cast<int>(config.intermediate);
    info.vocabSize = static_cast<int>(config.vocabSize);
    info.maxPositions = static_cast<int>(config.maxPositions);
    info.parameters = d->model()->parameterCount();
    info.tokenizer = d->tokenizer() ? d->tokenizer()->description() : "none";
    info.warnings = d->open->warnings;
    return info;
}

Expected<Prediction> Engine::predict(const std::string &prompt, int topK, int continuationTokens)
{
    if (!d->open)
        return Status::failure("no model is open: open a model folder first");
    if (!d->tokenizer())
        return Status::failure("the model in '" + d->path() +
                               "' has no tokenizer (tokenizer.json, vocab.json + merges.txt or tokenizer.model), "
                               "so text prompts cannot be encoded");
    if (prompt.empty())
        return Status::failure("the prompt is empty: type some text to continue");
    try {
        torch::NoGradGuard noGrad;
        const auto ids = d->tokenizer()->encodeForModel(prompt);
        if (ids.empty())
            return Status::failure("the prompt encodes to no tokens");
        const auto logits = d->model()->forward(torch::tensor(ids, torch::kLong).unsqueeze(0));
        const auto last = logits[0][-1].to(torch::kFloat);
        if (!torch::isfinite(last).all().item<bool>())
            return Status::failure("the model's outputs for this prompt are not numbers (NaN or infinite): its "
                                   "weights or config make the forward pass overflow, so there is no prediction; "
                                   "check the checkpoint (oedit info --model DIR)");
        const auto probabilities = torch::softmax(last, -1).cpu();
        const auto best = probabilities.topk(std::clamp<int64_t>(topK, 1, probabilities.size(0)));
        Prediction prediction;
        for (int64_t i = 0; i < std::get<1>(best).size(0); ++i) {
            const int64_t id = std::get<1>(best)[i].item<int64_t>();
            prediction.top.push_back({d->tokenizer()->tokenText(id), id, std::get<0>(best)[i].item<double>()});
        }
        const auto continuation = d->model()->generate(ids, continuationTokens, 1, d->tokenizer()->eosId());
        std::vector<int64_t> text;
        for (int64_t id : continuation) {
            if (d->tokenizer()->eosId() && id == *d->tokenizer()->eosId())
                break;
            text.push_back(id);
        }
        prediction.continuation = d->tokenizer()->decode(text);
        return prediction;
    } catch (const std::exception &e) {
        return Status::failure(std::string("prediction failed: ") + e.what());
    }
}

Status Engine::saveModel(const std::string &directory)
{
    if (!d->open)
        return Status::failure("no model is open: nothing to save");
    try {
        const fs::path target(directory);
        if (fs::exists(target) && !fs::is_directory(target))
            return Status::failure("'" + directory + "' exists and is not a folder: choose a folder to save the model in");
        if (fs::exists(target) && fs::equivalent(target, fs::path(d->path())))
            return Status::failure("saving over the folder the model was opened from is refused: "
                                   "the ledger rebuilds edits from those base weights; choose another folder");
        model::saveCheckpoint(directory, d->model()->config(), d->model()->weights(), torch::kFloat32);
        for (const char *name : kTokenizerFiles) {
            const fs::path source = fs::path(d->path()) / name;
            if (!fs::exists(source))
                continue;
            // Copy beside the destination and rename, so no half-copied file appears.
            const fs::path temporary = target / (std::string(".") + name + ".partial");
            fs::copy_file(source, temporary, fs::copy_options::overwrite_existing);
            fs::rename(temporary, target / name);
        }
        return Status::success();
    } catch (const std::exception &e) {
        return Status::failure("cannot save the model to '" + directory + "': " + e.what());
    }
}

std::string Engine::defaultModelDirectory()
{
    // An explicit override first, then the installed location relative to the
    // executable (<prefix>/bin/oedit -> <prefix>/share/oedit-workbench/...),
    // then the source tree (for running from a build directory).
    std::vector<fs::path> candidates;
    if (const char *env = std::getenv("OEDIT_DEFAULT_MODEL"))
        candidates.emplace_back(env);
    std::error_code ec;
    const fs::path executable = fs::read_symlink("/proc/self/exe", ec);
    if (!ec)
        candidates.emplace_back(executable.parent_path().parent_path() / "share" / "oedit-workbench" / "models" /
                                "default");
    candidates.emplace_back(fs::path(OEDIT_SOURCE_RESOURCES) / "models" / "default");
    for (const auto &candidate : candidates) {
        if (fs::exists(candidate / "config.json", ec))
            return candidate.string();
    }
    return {};
}

} // namespace oedit
