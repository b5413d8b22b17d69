#include "run/loaded_model.h"

#include "model/checkpoint.h"
#include "model/model_config.h"
#include "store/ledger.h"

#include <filesystem>

namespace oedit::run {

namespace fs = std::filesystem;

const std::string &LoadedModel::folderHash()
{
    if (m_folderHash.empty())
        m_folderHash = store::modelFolderHash(dir);
    return m_folderHash;
}

const std::string &LoadedModel::baseWeightsKey()
{
    if (m_baseKey.empty())
        m_baseKey = edit::weightsHash(*model);
    return m_baseKey;
}

const world::World *LoadedModel::world()
{
    if (!m_worldRead) {
        m_worldRead = true;
        std::error_code ec;
        if (fs::exists(fs::path(dir) / "world.json", ec)) {
            auto loaded = world::loadWorld(dir);
            if (loaded)
                m_world = std::move(loaded.value());
        }
    }
    return m_world ? &*m_world : nullptr;
}

bool LoadedModel::isFolder(const std::string &directory) const
{
    std::error_code ec;
    return directory == dir || fs::equivalent(fs::path(directory), fs::path(dir), ec);
}

edit::ContextOptions LoadedModel::contextOptions(std::function<bool()> unedited)
{
    edit::ContextOptions options;
    options.modelDir = dir;
    options.sharedStatistics = statistics;
    options.modelKey = [this, unedited = std::move(unedited)]() -> std::string {
        return unedited() ? baseWeightsKey() : std::string();
    };
    return options;
}

std::unique_ptr<LoadedModel> loadModel(const std::string &directory, torch::Device device, torch::ScalarType dtype,
                                       model::NonFiniteWeights nonFinite)
{
    auto loaded = std::make_unique<LoadedModel>();
    loaded->dir = directory;
    loaded->model = std::make_unique<model::Transformer>(
        model::loadModelConfig(directory), model::loadStateDict(directory, dtype, nonFinite, &loaded->warnings));
    loaded->model->to(device, dtype);
    if (const auto &unused = loaded->model->unusedTensors(); !unused.empty()) {
        std::string names;
        for (size_t i = 0; i < unused.size() && i < 4; ++i)
            names += (i ? ", " : "") + unused[i];
        loaded->warnings.push_back(std::to_string(unused.size()) + " tensor(s) of the checkpoint are not used by a " +
                                   loaded->model->config().modelType + " model of this config (" + names +
                                   (unused.size() > 4 ? ", ..." : "") +
                                   "): it may be of another architecture, or its config may switch them off");
    }
    try {
        loaded->tokenizer = model::loadTokenizer(directory);
    } catch (const std::exception &error) {
        // A checkpoint without a tokenizer (the test fixtures) still runs on
        // token ids; the calls that need text say what is missing. A
        // tokenizer file that is there but cannot be read is worth a warning:
        // "no tokenizer" alone would send the user looking for a missing file.
        std::error_code ignored;
        for (const char *name : {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model"})
            if (std::filesystem::exists(std::filesystem::path(directory) / name, ignored)) {
                loaded->warnings.push_back(std::string("the tokenizer could not be read, so the model opens "
                                                       "without one: ") +
                                           error.what());
                break;
            }
    }
    if (loaded->tokenizer && loaded->tokenizer->vocabSize() > loaded->model->config().vocabSize)
        loaded->warnings.push_back("the tokenizer has " + std::to_string(loaded->tokenizer->vocabSize()) +
                                   " tokens but the model only " + std::to_string(loaded->model->config().vocabSize) +
                                   ": text using the extra tokens cannot be run");
    loaded->base = captureBaseWeights(*loaded->model);
    return loaded;
}

} // namespace oedit::run
