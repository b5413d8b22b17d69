#include "model/model_config.h"

#include "model/file_util.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <vector>

namespace oedit::model {

namespace {

// Sizes beyond this are typos or garbage; keeping them in int32 range also
// keeps products such as 4 * n_embd far from overflow.
constexpr int64_t kMaxSize = (int64_t(1) << 31) - 1;
constexpr std::size_t kMaxConfigBytes = 16u * 1024 * 1024;
constexpr int64_t kMaxLayers = 1024;

struct Supported {
    const char *modelType;
    Family family;
    const char *architecture;
};

const Supported kSupported[] = {
    {"gpt2", Family::Gpt2, "GPT2LMHeadModel"},
    {"llama", Family::Llama, "LlamaForCausalLM"},
    {"mistral", Family::Llama, "MistralForCausalLM"},
    {"qwen2", Family::Llama, "Qwen2ForCausalLM"},
};

const Supported *findSupported(const std::string &modelType)
{
    for (const auto &entry : kSupported)
        if (modelType == entry.modelType)
            return &entry;
    return nullptr;
}

// Typed access to one config object. Missing required fields are collected so
// the user learns about all of them at once; wrong types throw immediately.
class FieldReader {
public:
    FieldReader(const nlohmann::json &object, std::string where) : m_object(object), m_where(std::move(where)) {}

    bool has(const char *key) const { return m_object.contains(key) && !m_object.at(key).is_null(); }

    int64_t requiredInt(const char *key)
    {
        if (!has(key)) {
            m_missing.push_back(key);
            return 0;
        }
        return toInt(key, m_object.at(key));
    }
    int64_t optionalInt(const char *key, int64_t fallback) const
    {
        return has(key) ? toInt(key, m_object.at(key)) : fallback;
    }
    double optionalNumber(const char *key, double fallback) const
    {
        if (!has(key))
            return fallback;
        const auto &value = m_object.at(key);
        if (!value.is_number())
            throw CheckpointError(m_where + ": \"" + key + "\" must be a number, not " + value.dump());
        return value.get<double>();
    }
    bool optionalBool(const char *key, bool fallback) const
    {
        if (!has(key))
            return fallback;
        const auto &value = m_object.at(key);
        if (!value.is_boolean())
            throw CheckpointError(m_where + ": \"" + key + "\" must be true or false, not " + value.dump());
        return value.get<bool>();
    }
    std::string optionalString(const char *key, const std::string &fallback) const
    {
        if (!has(key))
            return fallback;
        const auto &value = m_object.at(key);
        if (!value.is_string())
            throw CheckpointError(m_where + ": \"" + key + "\" must be a string, not " + value.dump());
        return value.get<std::string>();
    }
    // Token ids: an integer, null/absent (-1), or a list whose first entry counts
    // (several eos ids, as in Llama 3 instruct configs).
    int64_t tokenId(const char *key) const
    {
        if (!has(key))
            return -1;
        const auto &value = m_object.at(key);
        if (value.is_array()) {
            if (value.empty())
                return -1;
            return nonNegative(key, toInt(key, value.front()));
        }
        return nonNegative(key, toInt(key, value));
    }

    void throwIfMissing(const std::string &modelType) const
    {
        if (m_missing.empty())
            return;
        std::string list;
        for (const auto &key : m_missing)
            list += (list.empty() ? "\"" : ", \"") + key + "\"";
        throw CheckpointError(m_where + ": model_type \"" + modelType + "\" requires " + list +
                              ", which the config lacks; the file is incomplete or for another architecture");
    }

private:
    int64_t toInt(const char *key, const nlohmann::json &value) const
    {
        if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(kMaxSize))
            throw CheckpointError(m_where + ": \"" + key + "\" = " + value.dump() + " is implausibly large");
        if (!value.is_number_integer())
            throw CheckpointError(m_where + ": \"" + key + "\" must be an integer, not " + value.dump());
        // Bounded on both sides, so products such as 4 * n_embd or
        // head_dim * heads cannot overflow before validation rejects them.
        if (value.get<int64_t>() < -kMaxSize)
            throw CheckpointError(m_where + ": \"" + key + "\" = " + value.dump() + " is implausibly large");
        return value.get<int64_t>();
    }
    int64_t nonNegative(const char *key, int64_t id) const
    {
        if (id < 0)
            throw CheckpointError(m_where + ": \"" + key + "\" = " + std::to_string(id) + " is not a token id");
        return id;
    }

    const nlohmann::json &m_object;
    std::string m_where;
    std::vector<std::string> m_missing;
};

// The HF field name of a ModelConfig member, so messages use the words the
// user sees in config.json.
// "1e-06" rather than std::to_string's "0.000001".
std::string formatNumber(double value)
{
    std::ostringstream out;
    out << value;
    return out.str();
}

const char *fieldName(Family family, const char *member)
{
    const bool gpt2 = family == Family::Gpt2;
    const std::string m = member;
    if (m == "vocabSize")
        return "vocab_size";
    if (m == "hidden")
        return gpt2 ? "n_embd" : "hidden_size";
    if (m == "layers")
        return gpt2 ? "n_layer" : "num_hidden_layers";
    if (m == "heads")
        return gpt2 ? "n_head" : "num_attention_heads";
    if (m == "kvHeads")
        return gpt2 ? "n_head" : "num_key_value_heads";
    if (m == "intermediate")
        return gpt2 ? "n_inner" : "intermediate_size";
    if (m == "maxPositions")
        return gpt2 ? "n_positions" : "max_position_embeddings";
    if (m == "normEps")
        return gpt2 ? "layer_norm_epsilon" : "rms_norm_eps";
    return member;
}

std::string torchDtypeField(const FieldReader &reader)
{
    // transformers >= 4.56 writes "dtype"; older versions "torch_dtype".
    if (reader.has("torch_dtype"))
        return reader.optionalString("torch_dtype", "");
    return reader.optionalString("dtype", "");
}

ModelConfig parseConfig(const nlohmann::json &json, const std::string &where)
{
    if (!json.is_object())
        throw CheckpointError(where + " must hold a JSON object, not a JSON " + std::string(json.type_name()));
    FieldReader reader(json, where);
    if (!reader.has("model_type"))
        throw CheckpointError(where + " has no \"model_type\"; supported model types are " + supportedModelTypes());
    ModelConfig config;
    config.modelType = reader.optionalString("model_type", "");
    const Supported *supported = findSupported(config.modelType);
    if (!supported)
        throw CheckpointError(where + ": model_type \"" + config.modelType + "\" is not supported; supported model " +
                              "types are " + supportedModelTypes());
    config.family = supported->family;
    config.vocabSize = reader.requiredInt("vocab_size");

    if (config.family == Family::Gpt2) {
        config.hidden = reader.requiredInt("n_embd");
        config.layers = reader.requiredInt("n_layer");
        config.heads = reader.requiredInt("n_head");
        config.maxPositions = reader.requiredInt("n_positions");
        reader.throwIfMissing(config.modelType);
        config.kvHeads = config.heads;
        // n_inner: null means 4 * n_embd in GPT2Config.
        config.intermediate = reader.optionalInt("n_inner", 4 * config.hidden);
        config.normEps = reader.optionalNumber("layer_norm_epsilon", 1e-5);
        config.activation = reader.optionalString("activation_function", "gelu_new");
        config.tiedHead = reader.optionalBool("tie_word_embeddings", true);
        // These switch GPT-2 to a different attention computation; loading such
        // a checkpoint as plain GPT-2 would give wrong outputs without an error.
        if (!reader.optionalBool("scale_attn_weights", true))
            throw CheckpointError(where + ": \"scale_attn_weights\": false is not supported (attention without "
                                          "1/sqrt(d) scaling)");
        if (reader.optionalBool("scale_attn_by_inverse_layer_idx", false))
            throw CheckpointError(where + ": \"scale_attn_by_inverse_layer_idx\": true is not supported");
    } else {
        config.hidden = reader.requiredInt("hidden_size");
        config.intermediate = reader.requiredInt("intermediate_size");
        config.layers = reader.requiredInt("num_hidden_layers");
        config.heads = reader.requiredInt("num_attention_heads");
        config.maxPositions = reader.requiredInt("max_position_embeddings");
        reader.throwIfMissing(config.modelType);
        config.kvHeads = reader.optionalInt("num_key_value_heads", config.heads);
        config.normEps = reader.optionalNumber("rms_norm_eps", 1e-6);
        config.ropeTheta = reader.optionalNumber("rope_theta", 10000.0);
        config.activation = reader.optionalString("hidden_act", "silu");
        config.tiedHead = reader.optionalBool("tie_word_embeddings", false);
        // Qwen2 always has q/k/v biases and its config has no switch for them.
        config.attentionBias = config.modelType == "qwen2" ? true : reader.optionalBool("attention_bias", false);
        config.mlpBias = reader.optionalBool("mlp_bias", false);
        if (reader.has("rope_scaling"))
            throw CheckpointError(where + ": \"rope_scaling\" " + json.at("rope_scaling").dump() +
                                  " is not supported; only plain RoPE is implemented, and ignoring the scaling "
                                  "would give wrong outputs");
        if (reader.has("head_dim") && config.heads > 0) {
            const int64_t headDim = reader.optionalInt("head_dim", 0);
            if (headDim * config.heads != config.hidden)
                throw CheckpointError(
                    where + ": \"head_dim\" = " + std::to_string(headDim) +
                    " differs from hidden_size / num_attention_heads = " + std::to_string(config.hidden) + " / " +
                    std::to_string(config.heads) + "; such models are not supported");
        }
    }
    config.torchDtype = torchDtypeField(reader);
    config.bosTokenId = reader.tokenId("bos_token_id");
    config.eosTokenId = reader.tokenId("eos_token_id");

    try {
        validateModelConfig(config);
    } catch (const CheckpointError &error) {
        throw CheckpointError(where + ": " + error.what());
    }
    return config;
}

} // namespace

std::string supportedModelTypes()
{
    std::string list;
    for (const auto &entry : kSupported)
        list += (list.empty() ? "" : ", ") + std::string(entry.modelType);
    return list;
}

void validateModelConfig(const ModelConfig &config)
{
    if (!config.modelType.empty()) {
        const Supported *supported = findSupported(config.modelType);
        if (!supported)
            throw CheckpointError("model_type \"" + config.modelType +
                                  "\" is not supported; supported model types are " + supportedModelTypes());
        if (supported->family != config.family)
            throw CheckpointError("model_type \"" + config.modelType + "\" does not belong to the configured family");
    }
    const Family family = config.family;
    const std::pair<const char *, int64_t> sizes[] = {
        {"vocabSize", config.vocabSize},
        {"hidden", config.hidden},
        {"layers", config.layers},
        {"heads", config.heads},
        {"kvHeads", config.kvHeads},
        {"intermediate", config.intermediate},
        {"maxPositions", config.maxPositions},
    };
    for (const auto &[member, value] : sizes) {
        if (value <= 0)
            throw CheckpointError(std::string(fieldName(family, member)) + " = " + std::to_string(value) +
                                  " must be positive");
        if (value > kMaxSize)
            throw CheckpointError(std::string(fieldName(family, member)) + " = " + std::to_string(value) +
                                  " is implausibly large");
    }
    if (config.hidden % config.heads != 0)
        throw CheckpointError(std::string(fieldName(family, "hidden")) + " = " + std::to_string(config.hidden) +
                              " is not divisible by " + fieldName(family, "heads") + " = " +
                              std::to_string(config.heads));
    if (config.heads % config.kvHeads != 0)
        throw CheckpointError(std::string(fieldName(family, "heads")) + " = " + std::to_string(config.heads) +
                              " is not divisible by " + fieldName(family, "kvHeads") + " = " +
                              std::to_string(config.kvHeads));
    if (family == Family::Gpt2 && config.kvHeads != config.heads)
        throw CheckpointError("GPT-2 has no grouped-query attention: kvHeads must equal n_head");
    if (!(config.normEps > 0.0) || !std::isfinite(config.normEps))
        throw CheckpointError(std::string(fieldName(family, "normEps")) + " = " + formatNumber(config.normEps) +
                              " must be a positive number");
    if (family == Family::Llama && (!(config.ropeTheta > 0.0) || !std::isfinite(config.ropeTheta)))
        throw CheckpointError("rope_theta = " + formatNumber(config.ropeTheta) + " must be a positive number");
    // Values that pass as numbers but break the maths: an epsilon that is
    // infinite in float32, RoPE frequencies that underflow to NaN, RoPE over
    // an odd head width (it rotates pairs), and layer counts no checkpoint
    // has (checked before a layer table of that size is allocated).
    if (config.normEps > 1.0)
        throw CheckpointError(std::string(fieldName(family, "normEps")) + " = " + formatNumber(config.normEps) +
                              " is not a normalisation epsilon (models use 1e-12 to 1e-5)");
    if (family == Family::Llama && config.ropeTheta < 1.0)
        throw CheckpointError("rope_theta = " + formatNumber(config.ropeTheta) +
                              " is below 1; RoPE frequencies would not decrease (models use 1e4 to 1e7)");
    if (family == Family::Llama && config.headDim() % 2 != 0)
        throw CheckpointError("the head width " + std::to_string(config.headDim()) +
                              " is odd; RoPE rotates pairs of dimensions and needs an even one");
    if (config.layers > kMaxLayers)
        throw CheckpointError(std::string(fieldName(family, "layers")) + " = " + std::to_string(config.layers) +
                              " is more layers than any supported model has (at most " + std::to_string(kMaxLayers) +
                              ")");
    // The forward pass computes one activation per family; another name would
    // run silently with the wrong one.
    if (!config.activation.empty()) {
        const bool gpt2Gelu = config.activation == "gelu_new" || config.activation == "gelu_pytorch_tanh";
        const bool llamaSilu = config.activation == "silu" || config.activation == "swish";
        if (family == Family::Gpt2 ? !gpt2Gelu : !llamaSilu)
            throw CheckpointError(std::string(family == Family::Gpt2 ? "activation_function" : "hidden_act") +
                                  " = \"" + config.activation + "\" is not supported; this family runs " +
                                  (family == Family::Gpt2 ? "\"gelu_new\" (tanh GELU)" : "\"silu\""));
    }
}

ModelConfig parseModelConfig(const nlohmann::json &config)
{
    return parseConfig(config, "config.json");
}

ModelConfig loadModelConfig(const std::string &dir)
{
    const std::string path = (std::filesystem::path(dir) / "config.json").string();
    std::error_code error;
    if (!std::filesystem::exists(path, error))
        throw CheckpointError("no config.json in " + dir +
                              ": a Hugging Face model folder (config.json plus model.safetensors) is expected");
    const std::string text = readSmallFile(path, kMaxConfigBytes);
    const nlohmann::json json = parseStrictJson(text.data(), text.data() + text.size(), path, 64);
    return parseConfig(json, path);
}

nlohmann::json toJson(const ModelConfig &config)
{
    validateModelConfig(config);
    nlohmann::json json = nlohmann::json::object();
    const bool gpt2 = config.family == Family::Gpt2;
    const std::string modelType = !config.modelType.empty() ? config.modelType : (gpt2 ? "gpt2" : "llama");
    json["model_type"] = modelType;
    json["architectures"] = {findSupported(modelType)->architecture};
    json["vocab_size"] = config.vocabSize;
    if (gpt2) {
        json["n_embd"] = config.hidden;
        json["n_layer"] = config.layers;
        json["n_head"] = config.heads;
        json["n_inner"] = config.intermediate;
        json["n_positions"] = config.maxPositions;
        json["n_ctx"] = config.maxPositions; // read by old transformers versions
        json["layer_norm_epsilon"] = config.normEps;
        json["activation_function"] = config.activation.empty() ? "gelu_new" : config.activation;
    } else {
        json["hidden_size"] = config.hidden;
        json["intermediate_size"] = config.intermediate;
        json["num_hidden_layers"] = config.layers;
        json["num_attention_heads"] = config.heads;
        json["num_key_value_heads"] = config.kvHeads;
        json["head_dim"] = config.headDim();
        json["max_position_embeddings"] = config.maxPositions;
        json["rms_norm_eps"] = config.normEps;
        json["rope_theta"] = config.ropeTheta;
        json["hidden_act"] = config.activation.empty() ? "silu" : config.activation;
        // Qwen2's biases are implied by its model_type.
        if (modelType != "qwen2")
            json["attention_bias"] = config.attentionBias;
        json["mlp_bias"] = config.mlpBias;
    }
    json["tie_word_embeddings"] = config.tiedHead;
    if (!config.torchDtype.empty())
        json["torch_dtype"] = config.torchDtype;
    if (config.bosTokenId >= 0)
        json["bos_token_id"] = config.bosTokenId;
    if (config.eosTokenId >= 0)
        json["eos_token_id"] = config.eosTokenId;
    return json;
}

} // namespace oedit::model
