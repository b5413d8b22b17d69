// A method's hyperparameters as a model gets them: the defaults of
// resources/hparams/<method>.json with the presets that match the model's
// family and size applied, and the file's "about" text. The workbench's
// Hyperparameters dialog shows and edits them; every edit stores the set it
// used. Plain data, torch-free and Qt-free.
#pragma once

#include "oedit/status.h"

#include <string>
#include <vector>

namespace oedit {

struct MethodHparams {
    std::string method;
    std::string about;        // what the method and its defaults are, from the file
    std::string resolvedJson; // the set the model gets with no overrides, one name per line
    std::vector<std::string> presetsApplied; // each matching preset's "when", as JSON
    std::string file;         // the file read
};

// For the model folder `modelDir` (its config.json); fails naming an unknown
// method, a missing file or a model folder without a config.
Expected<MethodHparams> methodHparams(const std::string &method, const std::string &modelDir);

// Checks `overridesJson` (a JSON object of name: value, or empty) the way an
// edit does and returns the complete set it gives, or the message an edit
// would fail with (an unknown name, a wrong type, a layer out of range, ...).
Expected<std::string> resolveMethodHparams(const std::string &method, const std::string &modelDir,
                                           const std::string &overridesJson);

} // namespace oedit
