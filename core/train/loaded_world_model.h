// A model folder opened together with the world whose facts it is asked
// about: what eval-facts, trace and probe all start from.
#pragma once

#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/status.h"
#include "oedit/world.h"

#include <memory>
#include <string>

namespace oedit {

struct LoadedWorldModel {
    world::World world;
    std::unique_ptr<model::Tokenizer> tokenizer;
    std::unique_ptr<model::Transformer> transformer; // float32, on the CPU
};

// The world from `worldDir`, or from the model folder when it is empty (a
// trained world model carries its world); the message says what to pass
// when the folder has none. Throws what the checkpoint loaders throw.
Expected<LoadedWorldModel> loadWorldModel(const std::string &modelDir, const std::string &worldDir);

} // namespace oedit
