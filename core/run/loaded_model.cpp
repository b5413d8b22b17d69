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
    try {
        loaded->tokenizer = model::loadTokenizer(directory);
    } catch (const std::exception &) {
        // A checkpoint without a tokenizer (the test fixtures) still runs on
        // token ids; the calls that need text say what is missing.
    }
    loaded->base = captureBaseWeights(*loaded->model);
    return loaded;
}

} // namespace oedit::run
