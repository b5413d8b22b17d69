// The architecture of a decoder-only transformer, read from a Hugging Face
// style config.json. Both families (GPT-2; Llama, which also covers Mistral and
// Qwen2 for short prompts) and the embedded world model are described by this
// one struct; the transformer code branches on `family` only where the
// architectures really differ.
#pragma once

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

} // namespace oedit::model
