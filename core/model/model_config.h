// The architecture of a decoder-only transformer, read from a Hugging Face
// style config.json. Both families (GPT-2; Llama, which also covers Mistral and
// Qwen2 for short prompts) and the embedded world model are described by this
// one struct; the transformer code branches on `family` only where the
// architectures really differ.
#pragma once

#include "model/checkpoint_error.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>

namespace oedit::model {

enum class Family { Gpt2, Llama };

struct ModelConfig {
    Family family = Family::Gpt2;
    std::string modelType;   // config.json "model_type" as written ("gpt2", "llama", "mistral", "qwen2")
    int64_t vocabSize = 0;
    int64_t hidden = 0;       // residual width d
    int64_t layers = 0;
    int64_t heads = 0;
    int64_t kvHeads = 0;      // == heads unless grouped-query attention
    int64_t intermediate = 0; // MLP inner width (GPT-2: n_inner or 4 * hidden)
    int64_t maxPositions = 0;
    double normEps = 1e-5;        // LayerNorm (GPT-2) or RMSNorm (Llama) epsilon
    double ropeTheta = 10000.0;   // Llama family only
    bool tiedHead = true;         // output head shares the token embedding
    bool attentionBias = false;   // Llama family: q/k/v/o biases (Qwen2 has q/k/v biases)
    bool mlpBias = false;         // Llama family
    std::string activation;       // "gelu_new" (GPT-2), "silu" (Llama)
    std::string torchDtype;       // dtype the checkpoint declares ("float32", "bfloat16", ...)
    int64_t bosTokenId = -1;
    int64_t eosTokenId = -1;

    int64_t headDim() const { return heads > 0 ? hidden / heads : 0; }
};

// Reads a Hugging Face config.json object: "gpt2" -> Gpt2; "llama", "mistral",
// "qwen2" -> Llama (qwen2 sets attentionBias for its q/k/v biases). Defaults
// follow the transformers config classes. Throws CheckpointError naming the
// field for an unknown model_type (listing the supported ones), missing
// required fields (all of them at once), wrong JSON types, features this
// engine would silently compute wrong (rope_scaling, a head_dim other than
// hidden / heads), and anything validateModelConfig rejects.
ModelConfig parseModelConfig(const nlohmann::json &config);

// parseModelConfig on dir/config.json; messages name the file.
ModelConfig loadModelConfig(const std::string &dir);

// A config.json object that transformers' AutoConfig and parseModelConfig
// accept (architectures, model_type and the family's field names). Throws
// CheckpointError if validateModelConfig rejects the config.
nlohmann::json toJson(const ModelConfig &config);

// Throws CheckpointError for non-positive or absurd sizes, hidden not divisible
// by heads, heads not divisible by kvHeads, a non-positive epsilon or RoPE
// theta, or a modelType that does not belong to `family`.
void validateModelConfig(const ModelConfig &config);

// "gpt2, llama, mistral, qwen2": for messages.
std::string supportedModelTypes();

} // namespace oedit::model
