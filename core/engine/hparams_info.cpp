// methodHparams / resolveMethodHparams (oedit/hparams.h): the defaults and
// presets of edit/hparams.cpp for a model folder, without loading its weights.
#include "oedit/hparams.h"

#include "edit/hparams.h"
#include "model/model_config.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace oedit {

namespace {

// One name per line, in the file's order of names (nlohmann keeps keys sorted).
std::string onePerLine(const nlohmann::json &object)
{
    std::string out = "{\n";
    size_t i = 0;
    for (const auto &[key, value] : object.items())
        out += "  " + nlohmann::json(key).dump() + ": " + value.dump() + (++i < object.size() ? ",\n" : "\n");
    return out + "}";
}

template <typename F>
auto guardedCall(F &&body) -> decltype(body())
{
    try {
        return body();
    } catch (const std::exception &error) {
        return Status::failure(error.what());
    }
}

} // namespace

Expected<MethodHparams> methodHparams(const std::string &method, const std::string &modelDir)
{
    return guardedCall([&]() -> Expected<MethodHparams> {
        const auto config = model::loadModelConfig(modelDir);
        MethodHparams out;
        out.method = method;
        out.file = edit::hparamsFilePath(method);
        std::ifstream in(out.file);
        if (!in)
            return Status::failure("cannot read '" + out.file +
                                   "' (set OEDIT_HPARAMS_DIR to the resources/hparams folder)");
        const auto file = nlohmann::json::parse(in);
        out.about = file.value("about", std::string());
        for (const auto &preset : file.value("presets", nlohmann::json::array()))
            if (edit::presetMatches(preset.value("when", nlohmann::json::object()), config))
                out.presetsApplied.push_back(preset.value("when", nlohmann::json::object()).dump());
        out.resolvedJson = onePerLine(edit::resolveHparams(method, nlohmann::json(), config));
        return out;
    });
}

Expected<std::string> resolveMethodHparams(const std::string &method, const std::string &modelDir,
                                           const std::string &overridesJson)
{
    return guardedCall([&]() -> Expected<std::string> {
        const auto config = model::loadModelConfig(modelDir);
        nlohmann::json overrides;
        const auto first = overridesJson.find_first_not_of(" \t\r\n");
        if (first != std::string::npos) {
            try {
                overrides = nlohmann::json::parse(overridesJson);
            } catch (const std::exception &e) {
                return Status::failure("the hyperparameters are not valid JSON: " + std::string(e.what()));
            }
            if (!overrides.is_object())
                return Status::failure("the hyperparameters must be a JSON object of name: value, such as "
                                       "{\"layer\": 2}");
        }
        return onePerLine(edit::resolveHparams(method, overrides, config));
    });
}

} // namespace oedit
