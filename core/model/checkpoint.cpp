#include "model/checkpoint.h"

#include "model/file_util.h"
#include "model/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace oedit::model {

namespace {

constexpr const char *kSingleFile = "model.safetensors";
constexpr const char *kIndexFile = "model.safetensors.index.json";
// Real index files are ~100 KB even for 400-tensor-per-layer models.
constexpr std::size_t kMaxIndexBytes = 64u * 1024 * 1024;

bool isRegularFile(const fs::path &path)
{
    std::error_code error;
    return fs::is_regular_file(path, error); // follows symlinks (the HF cache is all symlinks)
}

// A name that is there but is no file (a folder, a pipe, a device, a broken
// or looping link) is refused as such: "missing" would send the user looking
// for a download that is not the problem.
void refuseIfNotAFile(const fs::path &path)
{
    std::error_code error;
    if (fs::symlink_status(path, error).type() != fs::file_type::not_found && !isRegularFile(path))
        throw CheckpointError(path.string() + " is there but is not a regular file (a folder, a pipe, a device, or "
                                              "a link that leads nowhere); replace it with the file itself");
}

bool endsWith(const std::string &text, const std::string &suffix)
{
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Pickled weights in the folder, to tell the user why they were ignored.
std::vector<std::string> pickleFiles(const fs::path &dir)
{
    std::vector<std::string> found;
    std::error_code error;
    for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
        const std::string name = it->path().filename().string();
        if (endsWith(name, ".bin") || endsWith(name, ".pt") || endsWith(name, ".pth") || endsWith(name, ".ckpt"))
            found.push_back(name);
    }
    std::sort(found.begin(), found.end());
    return found;
}

std::string noWeightsMessage(const std::string &dir)
{
    std::string message = std::string("no ") + kSingleFile + " or " + kIndexFile + " in " + dir +
                          ": a Hugging Face model folder is expected; .bin/.pt pickles are not read because they "
                          "can execute code";
    const auto pickles = pickleFiles(dir);
    if (!pickles.empty()) {
        message += " (found " + pickles.front() + (pickles.size() > 1 ? " and others" : "") +
                   "; convert to safetensors with transformers' save_pretrained(..., safe_serialization=True) "
                   "where you trust the file)";
    }
    return message;
}

void checkDir(const std::string &dir)
{
    std::error_code error;
    const auto status = fs::status(dir, error);
    if (!fs::exists(status))
        throw CheckpointError(dir + " does not exist; give the folder of a Hugging Face model (config.json and "
                                    "model.safetensors)");
    if (!fs::is_directory(status))
        throw CheckpointError(dir + " is not a folder; give the folder of a Hugging Face model (config.json and "
                                    "model.safetensors), not a file in it");
}

// A shard name from the index may only name a file directly inside the folder.
void checkShardName(const std::string &indexPath, const std::string &tensor, const std::string &shard)
{
    const bool plain = !shard.empty() && shard != "." && shard != ".." &&
                       shard.find_first_of(std::string("/\\\0", 3)) == std::string::npos &&
                       shard.find("..") == std::string::npos;
    if (!plain)
        throw CheckpointError(indexPath + ": the shard file name \"" + shard + "\" for tensor \"" + tensor +
                              "\" must be a plain file name inside the model folder (no '/' or '..'); refusing to "
                              "read outside the folder");
    if (endsWith(shard, ".bin") || endsWith(shard, ".pt") || endsWith(shard, ".pth"))
        throw CheckpointError(indexPath + ": the shard \"" + shard +
                              "\" is a pickle; .bin/.pt pickles are not read because they can execute code. Use "
                              "the safetensors version of the model");
    if (!endsWith(shard, ".safetensors"))
        throw CheckpointError(indexPath + ": the shard file name \"" + shard + "\" for tensor \"" + tensor +
                              "\" does not end in .safetensors; the index is damaged");
}

bool isFloating(torch::ScalarType type)
{
    return type == torch::kFloat || type == torch::kDouble || type == torch::kHalf || type == torch::kBFloat16;
}

void requireFloating(torch::ScalarType dtype, const char *caller)
{
    if (!isFloating(dtype))
        throw CheckpointError(std::string(caller) + ": dtype " + c10::toString(dtype) +
                              " is not a floating-point type; use float32, bfloat16, float16 or float64");
}

torch::Tensor convert(const torch::Tensor &tensor, torch::ScalarType dtype)
{
    return isFloating(tensor.scalar_type()) ? tensor.to(dtype) : tensor;
}

} // namespace

std::string torchDtypeName(torch::ScalarType dtype)
{
    switch (dtype) {
    case torch::kFloat:
        return "float32";
    case torch::kBFloat16:
        return "bfloat16";
    case torch::kHalf:
        return "float16";
    case torch::kDouble:
        return "float64";
    default:
        throw CheckpointError(std::string("dtype ") + c10::toString(dtype) +
                              " has no config.json spelling here; use float32, bfloat16, float16 or float64");
    }
}

CheckpointFiles locateCheckpoint(const std::string &dir)
{
    checkDir(dir);
    const fs::path root(dir);
    CheckpointFiles files;
    files.dir = dir;
    if (isRegularFile(root / "config.json"))
        files.configPath = (root / "config.json").string();

    refuseIfNotAFile(root / "config.json");
    if (isRegularFile(root / kSingleFile)) {
        files.weightFiles.push_back((root / kSingleFile).string());
        return files;
    }
    refuseIfNotAFile(root / kSingleFile);
    refuseIfNotAFile(root / kIndexFile);
    if (!isRegularFile(root / kIndexFile))
        throw CheckpointError(noWeightsMessage(dir));

    files.indexPath = (root / kIndexFile).string();
    const std::string text = readSmallFile(files.indexPath, kMaxIndexBytes);
    const nlohmann::json index = parseStrictJson(text.data(), text.data() + text.size(), files.indexPath, 16);
    if (!index.is_object() || !index.contains("weight_map") || !index.at("weight_map").is_object())
        throw CheckpointError(files.indexPath + " has no \"weight_map\" object (tensor name -> shard file); the "
                                                "index is damaged: download it again");
    if (index.contains("metadata") && !index.at("metadata").is_object() && !index.at("metadata").is_null())
        throw CheckpointError(files.indexPath + ": \"metadata\" must be an object; the index is damaged");
    const auto &weightMap = index.at("weight_map");
    if (weightMap.empty())
        throw CheckpointError(files.indexPath + ": \"weight_map\" lists no tensors; the index is damaged");

    std::set<std::string> shards;
    for (const auto &[tensor, shardValue] : weightMap.items()) {
        if (!shardValue.is_string())
            throw CheckpointError(files.indexPath + ": the shard for tensor \"" + tensor + "\" is " +
                                  shardValue.dump() + ", not a file name; the index is damaged");
        const std::string shard = shardValue.get<std::string>();
        checkShardName(files.indexPath, tensor, shard);
        files.weightMap[tensor] = shard;
        shards.insert(shard);
    }
    for (const auto &shard : shards) {
        refuseIfNotAFile(root / shard);
        if (!isRegularFile(root / shard))
            throw CheckpointError(files.indexPath + " names the shard " + shard + ", but " + dir +
                                  " has no such file; the download is incomplete: fetch the missing shard");
        files.weightFiles.push_back((root / shard).string());
    }
    return files;
}

Status checkCheckpointDir(const std::string &dir)
{
    try {
        const CheckpointFiles files = locateCheckpoint(dir);
        if (files.configPath.empty())
            return Status::failure("no config.json in " + dir +
                                   ": a Hugging Face model folder (config.json plus model.safetensors) is expected");
        return Status::success();
    } catch (const CheckpointError &error) {
        return Status::failure(error.what());
    }
}

std::vector<std::string> nonFiniteTensors(const StateDict &state)
{
    std::vector<std::string> found;
    for (const auto &[name, tensor] : state) {
        if (!tensor.defined() || !tensor.is_floating_point())
            continue;
        if (torch::isfinite(tensor).all().item<bool>())
            continue;
        const int64_t nan = torch::isnan(tensor).sum().item<int64_t>();
        const int64_t infinite = torch::isinf(tensor).sum().item<int64_t>();
        found.push_back("\"" + name + "\": " + std::to_string(nan) + " NaN and " + std::to_string(infinite) +
                        " infinite of " + std::to_string(tensor.numel()) + " values");
    }
    std::sort(found.begin(), found.end());
    return found;
}

StateDict loadStateDict(const std::string &dir, torch::ScalarType dtype, NonFiniteWeights nonFinite,
                        std::vector<std::string> *warnings)
{
    requireFloating(dtype, "loadStateDict");
    const CheckpointFiles files = locateCheckpoint(dir);
    StateDict state;
    for (const auto &path : files.weightFiles) {
        const SafetensorsFile file(path);
        const std::string shardName = fs::path(path).filename().string();
        for (const auto &name : file.names()) {
            if (files.sharded()) {
                const auto listed = files.weightMap.find(name);
                if (listed == files.weightMap.end())
                    throw CheckpointError(path + " holds the tensor \"" + name + "\", which " + files.indexPath +
                                          " does not list; the index and the shards are from different "
                                          "checkpoints: download the model again");
                if (listed->second != shardName)
                    throw CheckpointError("the tensor \"" + name + "\" is stored in " + shardName + ", but " +
                                          files.indexPath + " places it in " + listed->second +
                                          "; the shards duplicate tensors or the index is stale: download the "
                                          "model again");
            }
            if (state.count(name))
                throw CheckpointError("the tensor \"" + name + "\" appears in more than one shard of " + dir);
            state.emplace(name, convert(file.tensor(name), dtype));
        }
    }
    for (const auto &[name, shard] : files.weightMap)
        if (!state.count(name))
            throw CheckpointError(files.indexPath + " places the tensor \"" + name + "\" in " + shard +
                                  ", but that shard has no such tensor; the download is incomplete or mixed: "
                                  "download the model again");
    const auto bad = nonFiniteTensors(state);
    if (!bad.empty() && nonFinite == NonFiniteWeights::Refuse)
        throw NonFiniteWeightsError(
            dir + ": the tensor " + bad.front() +
            (bad.size() > 1 ? " (and " + std::to_string(bad.size() - 1) + " more tensor(s))" : std::string()) +
            "; weights that are not numbers make every output and every edit NaN: download the model again, "
            "or open it with `oedit ... --allow-nonfinite` to inspect it");
    if (warnings)
        for (const auto &line : bad)
            warnings->push_back("the tensor " + line);
    return state;
}

void saveCheckpoint(const std::string &dir, const ModelConfig &config, const StateDict &state, torch::ScalarType dtype)
{
    requireFloating(dtype, "saveCheckpoint");
    // Validate everything before touching the disk.
    ModelConfig written = config;
    written.torchDtype = torchDtypeName(dtype);
    const nlohmann::json configJson = toJson(written);
    parseModelConfig(configJson); // what we write must be what we can read back
    if (state.empty())
        throw CheckpointError("refusing to save an empty state dict to " + dir);

    std::error_code error;
    const auto status = fs::status(dir, error);
    if (fs::exists(status) && !fs::is_directory(status))
        throw CheckpointError(dir + " exists and is not a folder; refusing to write a checkpoint there");
    if (!fs::exists(status)) {
        fs::create_directories(dir, error);
        if (error)
            throw CheckpointError("cannot create the folder " + dir + ": " + error.message());
    }
    const fs::path root(dir);
    for (const char *name : {kSingleFile, "config.json"}) {
        if (fs::is_directory(root / name, error))
            throw CheckpointError((root / name).string() + " is a folder; refusing to replace it with a file");
    }

    std::vector<std::string> names;
    names.reserve(state.size());
    for (const auto &entry : state)
        names.push_back(entry.first);
    std::sort(names.begin(), names.end()); // same file for the same weights
    NamedTensors tensors;
    tensors.reserve(names.size());
    for (const auto &name : names) {
        const torch::Tensor &tensor = state.at(name);
        if (!tensor.defined())
            throw CheckpointError("cannot save " + dir + ": the tensor \"" + name + "\" is undefined");
        tensors.emplace_back(name, convert(tensor, dtype));
    }

    AtomicFile weights((root / kSingleFile).string());
    writeSafetensors(weights, tensors, {{"format", "pt"}});
    weights.sync();
    AtomicFile configFile((root / "config.json").string());
    configFile.write(configJson.dump(2) + "\n");
    configFile.sync();
    // Both files are on disk; the two renames are the only window in which a
    // crash could pair new weights with the old config.
    weights.commit();
    configFile.commit();
}

} // namespace oedit::model
