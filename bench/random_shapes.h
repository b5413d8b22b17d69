// Random models of real models' shapes for the benchmarks (bench_forward,
// bench_edit): what a forward pass or an edit costs at a size a user meets,
// without weights that cannot be downloaded here. Random weights say nothing
// of quality, only of time and memory.
#pragma once

#include "model/model_config.h"

#include <optional>
#include <string>

namespace oedit::bench {

// GPT-2 small (124 M parameters with its own 50,257-token vocabulary).
inline model::ModelConfig gpt2SmallShape(int64_t vocabSize = 50257)
{
    model::ModelConfig config;
    config.family = model::Family::Gpt2;
    config.modelType = "gpt2";
    config.vocabSize = vocabSize;
    config.hidden = 768;
    config.layers = 12;
    config.heads = 12;
    config.kvHeads = 12;
    config.intermediate = 3072;
    config.maxPositions = 1024;
    config.activation = "gelu_new";
    return config;
}

// TinyLlama-1.1B's shape (22 layers, width 2048, MLP 5632, 32 heads, 4
// key/value heads, untied head): the Llama family's own code (RMSNorm, RoPE,
// grouped-query attention, SwiGLU) at a size where per-kernel overhead is
// small against the work. 4.4 GB of float32 weights.
inline model::ModelConfig llama1bShape(int64_t vocabSize = 32000)
{
    model::ModelConfig config;
    config.family = model::Family::Llama;
    config.modelType = "llama";
    config.vocabSize = vocabSize;
    config.hidden = 2048;
    config.layers = 22;
    config.heads = 32;
    config.kvHeads = 4;
    config.intermediate = 5632;
    config.maxPositions = 2048;
    config.tiedHead = false;
    config.activation = "silu";
    return config;
}

// "gpt2-small" or "llama-1b"; nothing for another name.
inline std::optional<model::ModelConfig> namedShape(const std::string &name, int64_t vocabSize)
{
    if (name == "gpt2-small")
        return gpt2SmallShape(vocabSize);
    if (name == "llama-1b")
        return llama1bShape(vocabSize);
    return std::nullopt;
}

} // namespace oedit::bench
