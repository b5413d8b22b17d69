// Hyperparameter files, presets and checks (see hparams.h).
#include "edit/hparams.h"

#include "edit/registry.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace oedit::edit {

namespace fs = std::filesystem;

bool presetMatches(const nlohmann::json &when, const model::ModelConfig &config)
{
    const std::string family = config.family == model::Family::Gpt2 ? "gpt2" : "llama";
    for (const auto &[key, value] : when.items()) {
        if (key == "family" && value.get<std::string>() != family)
            return false;
        if (key == "model_type" && value.get<std::string>() != config.modelType)
            return false;
        if (key == "min_layers" && config.layers < value.get<int64_t>())
            return false;
        if (key == "max_layers" && config.layers > value.get<int64_t>())
            return false;
        if (key == "min_hidden" && config.hidden < value.get<int64_t>())
            return false;
        if (key == "max_hidden" && config.hidden > value.get<int64_t>())
            return false;
    }
    return true;
}

namespace {

std::string typeName(const nlohmann::json &v)
{
    if (v.is_boolean())
        return "a boolean";
    if (v.is_number())
        return "a number";
    if (v.is_string())
        return "a string";
    if (v.is_array())
        return "a list";
    return "an object";
}

bool sameKind(const nlohmann::json &a, const nlohmann::json &b)
{
    return (a.is_number() && b.is_number()) || (a.is_boolean() && b.is_boolean()) || (a.is_string() && b.is_string()) ||
           (a.is_array() && b.is_array());
}

void checkLayer(const std::string &method, const std::string &key, int64_t layer, const model::ModelConfig &config)
{
    if (layer < 0 || layer >= config.layers)
        throw EditError(method + ": " + key + " " + std::to_string(layer) +
                        " is out of range: the model has layers 0.." + std::to_string(config.layers - 1));
}

void checkChoice(const std::string &method, const nlohmann::json &hp, const std::string &key,
                 const std::vector<std::string> &allowed)
{
    if (!hp.contains(key))
        return;
    const auto value = hp[key].get<std::string>();
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
        std::string list;
        for (const auto &a : allowed)
            list += (list.empty() ? "" : ", ") + a;
        throw EditError(method + ": " + key + " '" + value + "' is not supported (choose " + list + ")");
    }
}

} // namespace

std::string hparamsDirectory()
{
    std::vector<fs::path> candidates;
    if (const char *env = std::getenv("OEDIT_HPARAMS_DIR"); env && *env)
        candidates.emplace_back(env);
    // Installed: <prefix>/bin/oedit -> <prefix>/share/oedit-workbench/hparams.
    std::error_code ec;
    const fs::path executable = fs::read_symlink("/proc/self/exe", ec);
    if (!ec)
        candidates.emplace_back(executable.parent_path().parent_path() / "share" / "oedit-workbench" / "hparams");
    candidates.emplace_back("/usr/share/oedit-workbench/hparams");
    candidates.emplace_back(fs::path(OEDIT_SOURCE_RESOURCES) / "hparams");
    for (const auto &candidate : candidates) {
        if (fs::exists(candidate / "rome.json", ec))
            return candidate.string();
    }
    return (fs::path(OEDIT_SOURCE_RESOURCES) / "hparams").string();
}

std::string hparamsFilePath(const std::string &method)
{
    const auto *info = findEditMethod(method);
    if (!info) {
        std::string list;
        for (const auto &n : editMethodNames())
            list += (list.empty() ? "" : ", ") + n;
        throw EditError("unknown editing method '" + method + "' (known: " + list + ")");
    }
    return (fs::path(hparamsDirectory()) / info->hparamsFile).string();
}

nlohmann::json resolveHparams(const std::string &method, const nlohmann::json &overrides,
                              const model::ModelConfig &config)
{
    const fs::path path = hparamsFilePath(method);
    const auto *info = findEditMethod(method);
    std::ifstream in(path);
    if (!in)
        throw EditError("cannot read the default hyperparameters of '" + method + "' from " + path.string() +
                        " (set OEDIT_HPARAMS_DIR to the resources/hparams folder)");
    nlohmann::json file;
    try {
        file = nlohmann::json::parse(in);
    } catch (const std::exception &e) {
        throw EditError(path.string() + ": " + e.what());
    }
    nlohmann::json hp = file.at("defaults");
    for (const auto &preset : file.value("presets", nlohmann::json::array()))
        if (presetMatches(preset.value("when", nlohmann::json::object()), config))
            for (const auto &[key, value] : preset.at("set").items())
                hp[key] = value;
    if (!overrides.is_null() && !overrides.is_object())
        throw EditError(method + ": hyperparameters must be a JSON object of name: value");
    if (overrides.is_object())
        for (const auto &[key, value] : overrides.items()) {
            if (!hp.contains(key)) {
                std::string known;
                for (const auto &[k, v] : hp.items())
                    known += (known.empty() ? "" : ", ") + k;
                throw EditError(method + ": unknown hyperparameter '" + key + "' (known: " + known + ")");
            }
            if (!sameKind(hp[key], value))
                throw EditError(method + ": hyperparameter '" + key + "' must be " + typeName(hp[key]) + ", got " +
                                typeName(value));
            hp[key] = value;
        }
    if (hp.contains("layer"))
        checkLayer(method, "layer", hp["layer"].get<int64_t>(), config);
    for (const char *listKey : {"layers", "spread_layers"})
        if (hp.contains(listKey))
            for (const auto &l : hp[listKey])
                checkLayer(method, listKey, l.get<int64_t>(), config);
    if (hp.contains("layers") && hp["layers"].empty())
        throw EditError(method + ": 'layers' is empty: list the layers to edit");
    checkChoice(method, hp, "base", {"rome", "memit"});
    checkChoice(method, hp, "side", {"output", "input", "both"});
    checkChoice(method, hp, "capacity_policy", {"relax", "spread", "refuse", "input"});
    checkChoice(method, hp, "input_edit_basis", {"keys", "updates"});
    // The orthogonality loss acts on the learnt value only; the input side is
    // a projection of the key side, which only O-Edit+ does.
    if (info->protectsSubspace() && !info->supportsInputSide && OEditProtection::usesInputSide(hp))
        throw EditError(method + ": the input side works by projection: use oedit+ for side 'input'/'both' or "
                                 "capacity_policy 'input'");
    // The input side needs a single-layer base (checkChoice above made 'base' a known method).
    const auto *base = findEditMethod(hp.value("base", std::string("rome")));
    if (base && base->multiLayer && OEditProtection::usesInputSide(hp))
        throw EditError(method + ": the input side is made on the ROME base; with base 'memit' use side 'output' "
                                 "and capacity_policy relax or refuse (MEMIT spreads over its layers by itself)");
    checkChoice(method, hp, "fact_token", {"subject_last", "last"});
    return hp;
}

} // namespace oedit::edit
