// A model folder loaded once: the model on its device and dtype, its
// tokenizer, its unedited MLP output weights, the keys its statistics are
// cached under, and its world (world.json) when it has one. The engine holds
// the open model as one; a sequential run, its resume, rebuild, export and
// the analyses borrow one instead of loading the folder again.
//
// Ownership and threads: the owner (the engine) keeps it alive while runs and
// sessions borrow it; one thread at a time.
// Failure: loadModel throws std::exception subclasses naming the folder and
// what is wrong with it.
#pragma once

#include "edit/editor.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/world.h"
#include "run/rebuild.h"

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace oedit::run {

class LoadedModel {
public:
    std::string dir; // as given to loadModel
    std::unique_ptr<model::Transformer> model;
    std::unique_ptr<model::Tokenizer> tokenizer; // null when the folder has none
    BaseWeights base;                            // every layer's MLP output weights as loaded
    std::vector<std::string> warnings;           // what was wrong but let through (non-finite weights)
    // Statistics computed for this model, shared by every context made on it.
    std::shared_ptr<std::map<std::string, torch::Tensor>> statistics =
        std::make_shared<std::map<std::string, torch::Tensor>>();

    // The content hash of the folder (store::modelFolderHash), read on first use.
    const std::string &folderHash();
    // The statistics cache key of the unedited weights, computed on first use;
    // only valid while the model holds exactly `base` (callers check).
    const std::string &baseWeightsKey();
    // The folder's world.json, read on first use; null when there is none.
    const world::World *world();
    // True when `directory` names this model's folder.
    bool isFolder(const std::string &directory) const;

    // Context options for editing this model: statistics keyed by the base
    // weights while `unedited()` says the weights are the base ones, and kept
    // in `statistics` across contexts.
    edit::ContextOptions contextOptions(std::function<bool()> unedited);

private:
    std::string m_folderHash;
    std::string m_baseKey;
    bool m_worldRead = false;
    std::optional<world::World> m_world;
};

// Loads a Hugging Face style folder on `device` in `dtype`. A folder without
// a tokenizer still loads (tokenizer null). Non-finite weights are refused
// unless `nonFinite` is Warn (then they are listed in `warnings`).
std::unique_ptr<LoadedModel> loadModel(const std::string &directory, torch::Device device = torch::kCPU,
                                       torch::ScalarType dtype = torch::kFloat32,
                                       model::NonFiniteWeights nonFinite = model::NonFiniteWeights::Refuse);

} // namespace oedit::run
