// Fuzzes config.json parsing (core/model/model_config.*, file_util.*): an
// input is a config.json. loadModelConfig must accept it or throw
// CheckpointError; an accepted config must survive toJson and parse back to
// the same architecture.
#include "fuzz_util.h"

#include "model/model_config.h"

#include <nlohmann/json.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    using namespace oedit::model;
    static const oedit::fuzz::ScratchDir scratch;
    scratch.write("config.json", std::string(reinterpret_cast<const char *>(data), size));
    ModelConfig config;
    try {
        config = loadModelConfig(scratch.path());
    } catch (const CheckpointError &) {
        return 0;
    }
    // Round trip through the writer's JSON text.
    const ModelConfig back = parseModelConfig(nlohmann::json::parse(toJson(config).dump()));
    if (back.family != config.family || back.modelType != config.modelType || back.vocabSize != config.vocabSize ||
        back.hidden != config.hidden || back.layers != config.layers || back.heads != config.heads ||
        back.kvHeads != config.kvHeads || back.intermediate != config.intermediate ||
        back.maxPositions != config.maxPositions || back.tiedHead != config.tiedHead ||
        back.attentionBias != config.attentionBias || back.mlpBias != config.mlpBias ||
        back.normEps != config.normEps || back.bosTokenId != config.bosTokenId ||
        back.eosTokenId != config.eosTokenId)
        oedit::fuzz::fail();
    return 0;
}
