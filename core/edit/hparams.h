// Hyperparameters of the editing methods: each method's defaults come from
// its JSON file in hparamsDirectory() ({"defaults": {...}, "presets": [{"when":
// {family, model_type, min/max_layers, min/max_hidden}, "set": {...}}]}),
// presets matching the model applied in order, then the caller's overrides,
// checked against the defaults (known names, same kinds of value, layers in
// the model, allowed choices). resolveHparams and hparamsDirectory are
// declared in editor.h.
#pragma once

#include "edit/editor.h"

#include <string>

namespace oedit::edit {

// The file of `method`'s defaults; EditError for an unknown method (listing the known ones).
std::string hparamsFilePath(const std::string &method);

// Whether a preset's "when" object matches the model.
bool presetMatches(const nlohmann::json &when, const model::ModelConfig &config);

} // namespace oedit::edit
