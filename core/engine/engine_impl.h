// Engine::Impl, shared by the facade's translation units (engine.cpp: models
// and prediction; engine_editing.cpp: edits and the run). Internal: it uses
// torch and must never be included from core/include/oedit/.
//
// Ownership: the Impl owns the open model, its tokenizer and the editing run
// of that model; the Engine owns the Impl. Same threading as Engine: one
// thread at a time.
#pragma once

#include "edit/editor.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/engine.h"
#include "oedit/world.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace oedit {

// The file Engine::saveEditState writes: an "index" (JSON: format, version,
// edit ids in order, statistics text) and each edit as the nested archive
// "edit.<i>". Read by loadEditState and by runs::recordSession.
struct SavedRunFile {
    nlohmann::json index;
    std::vector<edit::EditResult> edits;
    std::shared_ptr<torch::serialize::InputArchive> archive; // the whole file, for the nested "state"
};
// Throws (torch or JSON errors) for a file that is not such an archive.
SavedRunFile readSavedRunFile(const std::string &path);

struct Engine::Impl {
    std::string path;
    std::unique_ptr<model::Transformer> model;
    std::unique_ptr<model::Tokenizer> tokenizer;

    // The editing run of the open model. The context is created by the first
    // edit (it fixes the statistics text); `applied` holds every applied edit
    // in order, so undo and saving the run need nothing else.
    std::unique_ptr<edit::EditContext> editContext;
    std::vector<edit::EditResult> applied;
    // The model folder's world.json, read on first need; nullopt when absent.
    bool worldLoaded = false;
    std::optional<world::World> world;

    // The model folder's world, read on first call (engine_editing.cpp); null when there is none.
    const world::World *loadedWorld();

    // A new model starts a new run (called by openModel once the model is in).
    void resetEditing()
    {
        editContext.reset();
        applied.clear();
        worldLoaded = false;
        world.reset();
    }
};

} // namespace oedit
