// A decoder-only transformer for the GPT-2 and Llama families (Llama also
// covers Mistral and Qwen2 for short prompts), built from a ModelConfig and a
// Hugging Face state dict.
//
// Weights are kept under their Hugging Face names and in their Hugging Face
// layout, so a checkpoint written back opens in other tools. The editors use
// one convention for an MLP's output projection whatever the family:
// W is [d, d_k] and maps a key k (the projection's input) to a value v = W k.
//
// A Transformer is owned by one thread at a time; it is not thread-safe.
// Failures (bad shapes, missing tensors) throw std::runtime_error naming the
// tensor; the engine facade turns them into a Status.
#pragma once

#include "model/model_config.h"

#include <torch/torch.h>

#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace oedit::model {

using TensorMap = std::unordered_map<std::string, torch::Tensor>;

// Where an intervention adds its vector.
enum class Site {
    MlpOut,   // the MLP's output (after the output projection), before the residual add
    BlockOut, // the residual stream after the whole block
    AttnOut,  // the attention's output (after its output projection), before the residual add
};

// Adds `delta` ([d], or [n, d] one row per entry) at (rows[i], positions[i])
// of layer `layer`'s `site`. delta may require grad (ROME/MEMIT optimise it).
struct Intervention {
    int64_t layer = 0;
    Site site = Site::MlpOut;
    std::vector<int64_t> rows;
    std::vector<int64_t> positions;
    torch::Tensor delta;
};

// What a forward pass should record and change. Captured tensors are [B, T, *]
// and keep the graph when grad mode is on.
struct ForwardHooks {
    std::vector<int64_t> captureMlpKeys;   // input of the MLP output projection, [B, T, d_k]
    std::vector<int64_t> captureMlpValues; // output of the MLP output projection, [B, T, d]
    std::vector<int64_t> captureBlockOut;  // residual stream after the block, [B, T, d]
    std::vector<int64_t> captureAttnOut;   // attention output, before the residual add, [B, T, d]
    std::vector<Intervention> interventions;

    std::unordered_map<int64_t, torch::Tensor> mlpKeys;
    std::unordered_map<int64_t, torch::Tensor> mlpValues;
    std::unordered_map<int64_t, torch::Tensor> blockOut;
    std::unordered_map<int64_t, torch::Tensor> attnOut;
};

// A batch of token sequences, right- or left-padded, with its attention mask
// (1 = real token, 0 = padding).
struct Batch {
    torch::Tensor ids;  // [B, T] int64
    torch::Tensor mask; // [B, T] int64
};

// Pads sequences to one length. Right padding (the default) keeps positions of
// real tokens at 0..n-1 in every row, which scoring relies on; left padding
// lines up the last tokens, which batched generation wants.
Batch padBatch(const std::vector<std::vector<int64_t>> &sequences, int64_t padId, bool padLeft = false);

// Fresh weights for `config` under Hugging Face names, as GPT-2 initialises
// them: normal(0, 0.02) matrices, residual output projections scaled by
// 1/sqrt(2 * layers), unit norm weights, zero biases. Same seed, same weights.
TensorMap initialWeights(const ModelConfig &config, uint64_t seed);

class Transformer {
public:
    // Takes the weights (copies nothing: tensors are shared with `weights`).
    // Throws when a tensor the family needs is missing or has the wrong shape.
    Transformer(ModelConfig config, TensorMap weights);

    const ModelConfig &config() const { return m_config; }
    torch::Device device() const;
    torch::ScalarType dtype() const;
    int64_t parameterCount() const;

    // Moves every weight; float16/bfloat16 are meant for CUDA.
    void to(torch::Device device, torch::ScalarType dtype);

    // Logits [B, T, V]. mask may be undefined (no padding). Positions follow the
    // mask (cumulative count of real tokens), so left padding works too.
    torch::Tensor forward(const torch::Tensor &ids, const torch::Tensor &mask = {}, ForwardHooks *hooks = nullptr) const;

    // The two halves of forward(), for work that changes only layer `layer`
    // and up: the residual stream entering `layer` ([B, T, d], computed
    // without gradients, hooks of earlier layers not applied), then the rest
    // from there to the final norm ([B, T, d], hooks of `layer` and up
    // applied). headLogits() turns selected rows of that into logits, so a
    // caller that needs a few positions skips the vocabulary projection of
    // all the others. headLogits(forwardFrom(l, residualBefore(ids, mask, l),
    // mask, h)) is forward(ids, mask, h) when h only acts at layer l and up.
    torch::Tensor residualBefore(const torch::Tensor &ids, const torch::Tensor &mask, int64_t layer) const;
    torch::Tensor forwardFrom(int64_t layer, const torch::Tensor &residual, const torch::Tensor &mask,
                              ForwardHooks *hooks = nullptr) const;
    torch::Tensor headLogits(const torch::Tensor &hidden) const;
    // The input of `layer`'s MLP output projection ([B, T, d_k], no
    // gradients), running no layer above it: what forward() with
    // captureMlpKeys = {layer} records, for a fraction of the work.
    torch::Tensor mlpKeysAt(const torch::Tensor &ids, const torch::Tensor &mask, int64_t layer) const;

    // A batch whose positions before `start` will not change: what is left
    // of them after the residual stream enters `layer` is their keys and
    // values at `layer` and up. Holds tensors computed without gradients.
    struct FrozenPrefix {
        int64_t layer = 0;
        int64_t start = 0;
        torch::Tensor residual;                  // [B, T - start, d] entering `layer`
        torch::Tensor positions, keyMask;        // [B, T], of the whole batch
        std::vector<torch::Tensor> keys, values; // per layer from `layer` up: [B, heads, start, headDim]
    };
    // Runs the whole batch once (no hooks) and keeps what forwardSuffix needs.
    FrozenPrefix freezePrefix(const torch::Tensor &ids, const torch::Tensor &mask, int64_t layer,
                              int64_t start) const;
    // Layers `layer` and up at positions start.. only, attending to the frozen
    // keys and values: the final-normed hidden states [B, T - start, d], equal
    // to forwardFrom()'s last T - start positions. Positions in `hooks`
    // (interventions, captured tensors) count from `start`. An optimisation
    // that only changes positions >= start (ROME's value search changes the
    // subject's last token and what follows it) costs that many positions per step.
    torch::Tensor forwardSuffix(const FrozenPrefix &frozen, ForwardHooks *hooks = nullptr) const;

    // Teacher forcing: for each (prompt, continuation) pair, the log-probability
    // of each continuation token given the prompt and the tokens before it.
    struct ContinuationScore {
        std::vector<double> tokenLogProbs;
        std::vector<bool> tokenIsArgmax; // the model's top-1 equals the token
        double meanLogProb() const;
    };
    std::vector<ContinuationScore> scoreContinuations(const std::vector<std::vector<int64_t>> &prompts,
                                                      const std::vector<std::vector<int64_t>> &continuations,
                                                      int64_t padId, ForwardHooks *hooks = nullptr) const;

    // Greedy when topK <= 1, else sampling among the top k with `seed`.
    // Stops at eosId (when given) or after maxNewTokens. Returns new tokens only.
    std::vector<int64_t> generate(const std::vector<int64_t> &prompt, int64_t maxNewTokens, int64_t topK = 1,
                                  std::optional<int64_t> eosId = std::nullopt, uint64_t seed = 0) const;

    // The MLP output projection of `layer` as [d, d_k] (v = W k), a copy.
    torch::Tensor mlpOutWeight(int64_t layer) const;
    // Replaces it (same convention and shape); the stored layout is kept.
    void setMlpOutWeight(int64_t layer, const torch::Tensor &weight);
    std::string mlpOutWeightName(int64_t layer) const;
    int64_t mlpKeyWidth() const { return m_config.intermediate; }

    // Every weight under its Hugging Face name (for saving and training).
    const TensorMap &weights() const { return m_weights; }
    // Tensors of the checkpoint this architecture and config do not use
    // (Hugging Face warns about the same): a sign of a checkpoint of another
    // architecture, or of biases the config switches off.
    const std::vector<std::string> &unusedTensors() const { return m_unused; }
    std::vector<torch::Tensor> parameters() const;

private:
    struct Layer {
        // GPT-2: ln_1, fused c_attn (Conv1D [d, 3d]), c_proj, ln_2, c_fc, c_proj.
        // Llama: input_layernorm, q/k/v/o, post_attention_layernorm, gate/up/down.
        torch::Tensor norm1W, norm1B, norm2W, norm2B;
        torch::Tensor qkvW, qkvB;                     // GPT-2
        torch::Tensor qW, qB, kW, kB, vW, vB;        // Llama
        torch::Tensor attnOutW, attnOutB;
        torch::Tensor fcW, fcB;                       // GPT-2 c_fc
        torch::Tensor gateW, gateB, upW, upB;        // Llama
        torch::Tensor mlpOutW, mlpOutB;
    };

    void refuseLayersBeyondConfig() const;
    void bindTensors();
    torch::Tensor require(const std::string &name, std::vector<int64_t> shape) const;
    torch::Tensor optional(const std::string &name, std::vector<int64_t> shape) const;
    torch::Tensor norm(const torch::Tensor &x, const torch::Tensor &w, const torch::Tensor &b) const;
    torch::Tensor attention(const Layer &layer, const torch::Tensor &x, const torch::Tensor &positions,
                            const torch::Tensor &keyMask) const;
    torch::Tensor mlp(const Layer &layer, const torch::Tensor &x, int64_t index, ForwardHooks *hooks) const;
    // The attention output of layer `index` with the hooks' interventions and capture applied.
    static torch::Tensor attentionOut(torch::Tensor out, int64_t index, ForwardHooks *hooks);
    // Attention in two halves, so keys and values of frozen positions can be reused.
    struct Heads {
        torch::Tensor q, k, v; // [B, heads, T, headDim], RoPE applied, key/value heads repeated
    };
    Heads projectHeads(const Layer &layer, const torch::Tensor &x, const torch::Tensor &positions) const;
    torch::Tensor attend(const Layer &layer, const Heads &heads, int64_t queryOffset,
                         const torch::Tensor &keyMask) const;
    torch::Tensor checkedIds(const torch::Tensor &ids) const;
    torch::Tensor embed(const torch::Tensor &ids, const torch::Tensor &positions) const;
    // Layers [from, to) on the residual stream x.
    torch::Tensor runLayers(torch::Tensor x, int64_t from, int64_t to, const torch::Tensor &positions,
                            const torch::Tensor &keyMask, ForwardHooks *hooks) const;

    ModelConfig m_config;
    TensorMap m_weights;
    mutable std::set<std::string> m_bound; // names require() handed out
    std::vector<std::string> m_unused;
    std::vector<Layer> m_layers;
    torch::Tensor m_tokenEmbedding, m_positionEmbedding, m_finalNormW, m_finalNormB, m_head;
};

} // namespace oedit::model
