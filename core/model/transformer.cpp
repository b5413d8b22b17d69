#include "model/transformer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <random>
#include <sstream>

namespace oedit::model {

namespace {

std::string shapeText(const std::vector<int64_t> &shape)
{
    std::ostringstream out;
    out << "[";
    for (size_t i = 0; i < shape.size(); ++i)
        out << (i ? ", " : "") << shape[i];
    out << "]";
    return out.str();
}

// Old GPT-2 checkpoints (the original OpenAI conversion) name tensors without
// the "transformer." prefix; GPT2LMHeadModel writes it. Keep one spelling.
void normaliseGpt2Names(TensorMap &weights)
{
    if (weights.count("transformer.wte.weight") || !weights.count("wte.weight"))
        return;
    TensorMap renamed;
    for (auto &[name, tensor] : weights)
        renamed[name.rfind("lm_head.", 0) == 0 ? name : "transformer." + name] = tensor;
    weights = std::move(renamed);
}

// HF's rotate-half convention: the first and second halves of each head pair up.
torch::Tensor rotateHalf(const torch::Tensor &x)
{
    const int64_t half = x.size(-1) / 2;
    return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

torch::Tensor linear(const torch::Tensor &x, const torch::Tensor &w, const torch::Tensor &b)
{
    return b.defined() ? torch::nn::functional::linear(x, w, b) : torch::nn::functional::linear(x, w);
}

bool contains(const std::vector<int64_t> &list, int64_t value)
{
    return std::find(list.begin(), list.end(), value) != list.end();
}

void applyInterventions(torch::Tensor &out, int64_t layer, Site site, const ForwardHooks *hooks)
{
    if (!hooks)
        return;
    for (const auto &intervention : hooks->interventions) {
        if (intervention.layer != layer || intervention.site != site || intervention.rows.empty())
            continue;
        const auto options = torch::TensorOptions().dtype(torch::kLong).device(out.device());
        const auto rows = torch::tensor(intervention.rows, options);
        const auto positions = torch::tensor(intervention.positions, options);
        auto delta = intervention.delta.to(out.device(), out.scalar_type());
        if (delta.dim() == 1)
            delta = delta.unsqueeze(0).expand({rows.size(0), delta.size(0)});
        // Build the addition separately so gradients reach `delta` and
        // duplicate (row, position) pairs accumulate.
        auto addition = torch::zeros_like(out).index_put({rows, positions}, delta, /*accumulate=*/true);
        out = out + addition;
    }
}

} // namespace

Batch padBatch(const std::vector<std::vector<int64_t>> &sequences, int64_t padId, bool padLeft)
{
    size_t longest = 1;
    for (const auto &sequence : sequences)
        longest = std::max(longest, sequence.size());
    const auto rows = static_cast<int64_t>(sequences.size());
    auto ids = torch::full({rows, static_cast<int64_t>(longest)}, padId, torch::kLong);
    auto mask = torch::zeros({rows, static_cast<int64_t>(longest)}, torch::kLong);
    auto idsAccess = ids.accessor<int64_t, 2>();
    auto maskAccess = mask.accessor<int64_t, 2>();
    for (int64_t row = 0; row < rows; ++row) {
        const auto &sequence = sequences[row];
        const size_t offset = padLeft ? longest - sequence.size() : 0;
        for (size_t t = 0; t < sequence.size(); ++t) {
            idsAccess[row][offset + t] = sequence[t];
            maskAccess[row][offset + t] = 1;
        }
    }
    return {ids, mask};
}

TensorMap initialWeights(const ModelConfig &config, uint64_t seed)
{
    torch::NoGradGuard noGrad;
    const auto generator = at::detail::createCPUGenerator(seed);
    const double residualStd = 0.02 / std::sqrt(2.0 * static_cast<double>(config.layers));
    const auto normal = [&](std::vector<int64_t> shape, double stddev) {
        return at::normal(0.0, stddev, shape, generator);
    };
    const int64_t d = config.hidden, inner = config.intermediate, vocab = config.vocabSize;
    TensorMap w;
    if (config.family == Family::Gpt2) {
        w["transformer.wte.weight"] = normal({vocab, d}, 0.02);
        w["transformer.wpe.weight"] = normal({config.maxPositions, d}, 0.01);
        for (int64_t i = 0; i < config.layers; ++i) {
            const std::string p = "transformer.h." + std::to_string(i) + ".";
            w[p + "ln_1.weight"] = torch::ones({d});
            w[p + "ln_1.bias"] = torch::zeros({d});
            w[p + "attn.c_attn.weight"] = normal({d, 3 * d}, 0.02);
            w[p + "attn.c_attn.bias"] = torch::zeros({3 * d});
            w[p + "attn.c_proj.weight"] = normal({d, d}, residualStd);
            w[p + "attn.c_proj.bias"] = torch::zeros({d});
            w[p + "ln_2.weight"] = torch::ones({d});
            w[p + "ln_2.bias"] = torch::zeros({d});
            w[p + "mlp.c_fc.weight"] = normal({d, inner}, 0.02);
            w[p + "mlp.c_fc.bias"] = torch::zeros({inner});
            w[p + "mlp.c_proj.weight"] = normal({inner, d}, residualStd);
            w[p + "mlp.c_proj.bias"] = torch::zeros({d});
        }
        w["transformer.ln_f.weight"] = torch::ones({d});
        w["transformer.ln_f.bias"] = torch::zeros({d});
    } else {
        const int64_t kvWidth = (config.kvHeads > 0 ? config.kvHeads : config.heads) * config.headDim();
        w["model.embed_tokens.weight"] = normal({vocab, d}, 0.02);
        for (int64_t i = 0; i < config.layers; ++i) {
            const std::string p = "model.layers." + std::to_string(i) + ".";
            w[p + "input_layernorm.weight"] = torch::ones({d});
            w[p + "self_attn.q_proj.weight"] = normal({d, d}, 0.02);
            w[p + "self_attn.k_proj.weight"] = normal({kvWidth, d}, 0.02);
            w[p + "self_attn.v_proj.weight"] = normal({kvWidth, d}, 0.02);
            w[p + "self_attn.o_proj.weight"] = normal({d, d}, residualStd);
            w[p + "post_attention_layernorm.weight"] = torch::ones({d});
            w[p + "mlp.gate_proj.weight"] = normal({inner, d}, 0.02);
            w[p + "mlp.up_proj.weight"] = normal({inner, d}, 0.02);
            w[p + "mlp.down_proj.weight"] = normal({d, inner}, residualStd);
            if (config.attentionBias) {
                w[p + "self_attn.q_proj.bias"] = torch::zeros({d});
                w[p + "self_attn.k_proj.bias"] = torch::zeros({kvWidth});
                w[p + "self_attn.v_proj.bias"] = torch::zeros({kvWidth});
            }
        }
        w["model.norm.weight"] = torch::ones({d});
        if (!config.tiedHead)
            w["lm_head.weight"] = normal({vocab, d}, 0.02);
    }
    return w;
}

Transformer::Transformer(ModelConfig config, TensorMap weights) : m_config(std::move(config)), m_weights(std::move(weights))
{
    if (m_config.hidden <= 0 || m_config.layers <= 0 || m_config.heads <= 0 || m_config.hidden % m_config.heads)
        throw std::runtime_error("model config: hidden size must be a positive multiple of the head count");
    if (m_config.kvHeads <= 0)
        m_config.kvHeads = m_config.heads;
    if (m_config.heads % m_config.kvHeads)
        throw std::runtime_error("model config: attention heads must be a multiple of key/value heads");
    if (m_config.family == Family::Gpt2)
        normaliseGpt2Names(m_weights);
    if (m_config.tiedHead)
        m_weights.erase("lm_head.weight"); // the head is the token embedding
    refuseLayersBeyondConfig();
    bindTensors();
    for (const auto &[name, tensor] : m_weights) {
        // Buffers older exports carry (GPT-2's causal masks, RoPE's inverse frequencies).
        const auto endsWith = [&name](const std::string &suffix) {
            return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
        };
        if (!m_bound.count(name) && !endsWith(".attn.bias") && !endsWith(".attn.masked_bias") &&
            !endsWith("rotary_emb.inv_freq"))
            m_unused.push_back(name);
    }
}

void Transformer::refuseLayersBeyondConfig() const
{
    // Weights of a layer the config does not have: config and weights do
    // not belong together, and dropping the layer would change every output.
    const std::string prefix = m_config.family == Family::Gpt2 ? "transformer.h." : "model.layers.";
    for (const auto &[name, tensor] : m_weights) {
        if (name.compare(0, prefix.size(), prefix) != 0)
            continue;
        const auto dot = name.find('.', prefix.size());
        const std::string index = name.substr(prefix.size(), dot - prefix.size());
        if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos || index.size() > 9)
            continue;
        if (std::stoll(index) >= m_config.layers)
            throw std::runtime_error("the checkpoint holds '" + name + "', a tensor of layer " + index +
                                     ", but config.json gives " + std::to_string(m_config.layers) +
                                     " layers; the config and the weights do not belong together");
    }
}

torch::Tensor Transformer::require(const std::string &name, std::vector<int64_t> shape) const
{
    const auto found = m_weights.find(name);
    if (found == m_weights.end())
        throw std::runtime_error("checkpoint lacks tensor '" + name + "' that a " + m_config.modelType +
                                 " model of this config needs");
    if (!found->second.is_floating_point())
        throw std::runtime_error("tensor '" + name + "' is stored as " + std::string(c10::toString(found->second.scalar_type())) +
                                 ", not as floating-point numbers; the checkpoint is damaged or mislabelled");
    const auto actual = found->second.sizes().vec();
    if (actual != shape)
        throw std::runtime_error("tensor '" + name + "' has shape " + shapeText(actual) + " but the config implies " +
                                 shapeText(shape));
    m_bound.insert(name);
    return found->second;
}

torch::Tensor Transformer::optional(const std::string &name, std::vector<int64_t> shape) const
{
    return m_weights.count(name) ? require(name, std::move(shape)) : torch::Tensor();
}

void Transformer::bindTensors()
{
    const int64_t d = m_config.hidden, inner = m_config.intermediate, vocab = m_config.vocabSize;
    m_layers.assign(m_config.layers, Layer{});
    if (m_config.family == Family::Gpt2) {
        m_tokenEmbedding = require("transformer.wte.weight", {vocab, d});
        m_positionEmbedding = require("transformer.wpe.weight", {m_config.maxPositions, d});
        m_finalNormW = require("transformer.ln_f.weight", {d});
        m_finalNormB = require("transformer.ln_f.bias", {d});
        for (int64_t i = 0; i < m_config.layers; ++i) {
            const std::string p = "transformer.h." + std::to_string(i) + ".";
            Layer &l = m_layers[i];
            l.norm1W = require(p + "ln_1.weight", {d});
            l.norm1B = require(p + "ln_1.bias", {d});
            l.qkvW = require(p + "attn.c_attn.weight", {d, 3 * d});
            l.qkvB = require(p + "attn.c_attn.bias", {3 * d});
            l.attnOutW = require(p + "attn.c_proj.weight", {d, d});
            l.attnOutB = require(p + "attn.c_proj.bias", {d});
            l.norm2W = require(p + "ln_2.weight", {d});
            l.norm2B = require(p + "ln_2.bias", {d});
            l.fcW = require(p + "mlp.c_fc.weight", {d, inner});
            l.fcB = require(p + "mlp.c_fc.bias", {inner});
            l.mlpOutW = require(p + "mlp.c_proj.weight", {inner, d});
            l.mlpOutB = require(p + "mlp.c_proj.bias", {d});
        }
        m_head = m_config.tiedHead ? m_tokenEmbedding : require("lm_head.weight", {vocab, d});
    } else {
        const int64_t kvWidth = m_config.kvHeads * m_config.headDim();
        m_tokenEmbedding = require("model.embed_tokens.weight", {vocab, d});
        m_positionEmbedding = torch::Tensor();
        m_finalNormW = require("model.norm.weight", {d});
        m_finalNormB = torch::Tensor();
        for (int64_t i = 0; i < m_config.layers; ++i) {
            const std::string p = "model.layers." + std::to_string(i) + ".";
            Layer &l = m_layers[i];
            l.norm1W = require(p + "input_layernorm.weight", {d});
            l.qW = require(p + "self_attn.q_proj.weight", {d, d});
            l.kW = require(p + "self_attn.k_proj.weight", {kvWidth, d});
            l.vW = require(p + "self_attn.v_proj.weight", {kvWidth, d});
            l.attnOutW = require(p + "self_attn.o_proj.weight", {d, d});
            // Biases as the config says (attention_bias; Qwen2 always has
            // q/k/v ones): missing ones are refused, ones the config switches
            // off are left unused, as Hugging Face leaves them.
            if (m_config.attentionBias) {
                l.qB = require(p + "self_attn.q_proj.bias", {d});
                l.kB = require(p + "self_attn.k_proj.bias", {kvWidth});
                l.vB = require(p + "self_attn.v_proj.bias", {kvWidth});
                l.attnOutB = optional(p + "self_attn.o_proj.bias", {d});
            }
            l.norm2W = require(p + "post_attention_layernorm.weight", {d});
            l.gateW = require(p + "mlp.gate_proj.weight", {inner, d});
            l.upW = require(p + "mlp.up_proj.weight", {inner, d});
            l.mlpOutW = require(p + "mlp.down_proj.weight", {d, inner});
            if (m_config.mlpBias) {
                l.gateB = require(p + "mlp.gate_proj.bias", {inner});
                l.upB = require(p + "mlp.up_proj.bias", {inner});
                l.mlpOutB = require(p + "mlp.down_proj.bias", {d});
            }
        }
        m_head = m_config.tiedHead ? m_tokenEmbedding : require("lm_head.weight", {vocab, d});
    }
}

torch::Device Transformer::device() const
{
    return m_tokenEmbedding.device();
}

torch::ScalarType Transformer::dtype() const
{
    return m_tokenEmbedding.scalar_type();
}

int64_t Transformer::parameterCount() const
{
    int64_t count = 0;
    for (const auto &entry : m_weights)
        count += entry.second.numel();
    return count;
}

void Transformer::to(torch::Device device, torch::ScalarType dtype)
{
    torch::NoGradGuard noGrad;
    for (auto &entry : m_weights)
        entry.second = entry.second.to(device, dtype);
    bindTensors();
}

std::vector<torch::Tensor> Transformer::parameters() const
{
    std::vector<torch::Tensor> result;
    result.reserve(m_weights.size());
    for (const auto &entry : m_weights)
        result.push_back(entry.second);
    return result;
}

torch::Tensor Transformer::norm(const torch::Tensor &x, const torch::Tensor &w, const torch::Tensor &b) const
{
    if (m_config.family == Family::Gpt2)
        return torch::layer_norm(x, {x.size(-1)}, w, b, m_config.normEps);
    // RMSNorm in float32, as the reference does, then back to the weight's dtype.
    const auto x32 = x.to(torch::kFloat);
    const auto scaled = x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + m_config.normEps);
    return w * scaled.to(x.scalar_type());
}

Transformer::Heads Transformer::projectHeads(const Layer &l, const torch::Tensor &x,
                                            const torch::Tensor &positions) const
{
    const int64_t batch = x.size(0), length = x.size(1), d = m_config.hidden;
    const int64_t heads = m_config.heads, kvHeads = m_config.kvHeads, headDim = m_config.headDim();
    torch::Tensor q, k, v;
    if (m_config.family == Family::Gpt2) {
        const auto qkv = torch::addmm(l.qkvB, x.reshape({-1, d}), l.qkvW).view({batch, length, 3 * d});
        const auto parts = qkv.split(d, -1);
        q = parts[0], k = parts[1], v = parts[2];
    } else {
        q = linear(x, l.qW, l.qB), k = linear(x, l.kW, l.kB), v = linear(x, l.vW, l.vB);
    }
    q = q.view({batch, length, heads, headDim}).transpose(1, 2);
    k = k.view({batch, length, kvHeads, headDim}).transpose(1, 2);
    v = v.view({batch, length, kvHeads, headDim}).transpose(1, 2);

    if (m_config.family == Family::Llama) {
        const auto options = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
        const auto invFreq =
            1.0 / torch::pow(m_config.ropeTheta, torch::arange(0, headDim, 2, options) / static_cast<double>(headDim));
        const auto freqs = positions.to(torch::kFloat).unsqueeze(-1) * invFreq; // [B, T, hd/2]
        const auto angles = torch::cat({freqs, freqs}, -1).unsqueeze(1);        // [B, 1, T, hd]
        const auto cos = angles.cos().to(q.scalar_type()), sin = angles.sin().to(q.scalar_type());
        q = q * cos + rotateHalf(q) * sin;
        k = k * cos + rotateHalf(k) * sin;
        if (kvHeads != heads) {
            k = k.repeat_interleave(heads / kvHeads, 1);
            v = v.repeat_interleave(heads / kvHeads, 1);
        }
    }
    return {q, k, v};
}

torch::Tensor Transformer::attend(const Layer &l, const Heads &h, int64_t queryOffset,
                                  const torch::Tensor &keyMask) const
{
    const int64_t batch = h.q.size(0), queries = h.q.size(2), keys = h.k.size(2), d = m_config.hidden;
    const int64_t headDim = m_config.headDim();
    auto scores = torch::matmul(h.q, h.k.transpose(-2, -1)).to(torch::kFloat) / std::sqrt(static_cast<double>(headDim));
    // Causal: the query at position queryOffset + i sees keys 0 .. queryOffset + i.
    auto allowed = torch::ones({queries, keys}, torch::TensorOptions().dtype(torch::kBool).device(h.q.device()))
                       .tril(queryOffset);
    if (keyMask.defined())
        allowed = allowed.unsqueeze(0).unsqueeze(0) & keyMask.view({batch, 1, 1, keys});
    // A finite floor rather than -inf: rows that see no key at all (queries at
    // left padding) then give a harmless uniform average instead of NaN.
    scores = scores.masked_fill(allowed.logical_not(), -1e9);
    const auto weights = torch::softmax(scores, -1).to(h.v.scalar_type());
    auto out = torch::matmul(weights, h.v).transpose(1, 2).reshape({batch, queries, d});
    if (m_config.family == Family::Gpt2)
        return torch::addmm(l.attnOutB, out.reshape({-1, d}), l.attnOutW).view({batch, queries, d});
    return linear(out, l.attnOutW, l.attnOutB);
}

torch::Tensor Transformer::attention(const Layer &l, const torch::Tensor &x, const torch::Tensor &positions,
                                     const torch::Tensor &keyMask) const
{
    return attend(l, projectHeads(l, x, positions), 0, keyMask);
}

torch::Tensor Transformer::attentionOut(torch::Tensor out, int64_t index, ForwardHooks *hooks)
{
    applyInterventions(out, index, Site::AttnOut, hooks);
    if (hooks && contains(hooks->captureAttnOut, index))
        hooks->attnOut[index] = out;
    return out;
}

torch::Tensor Transformer::mlp(const Layer &l, const torch::Tensor &x, int64_t index, ForwardHooks *hooks) const
{
    torch::Tensor key, value;
    if (m_config.family == Family::Gpt2) {
        key = torch::gelu(torch::matmul(x, l.fcW) + l.fcB, "tanh");
        value = torch::matmul(key, l.mlpOutW) + l.mlpOutB;
    } else {
        key = torch::silu(linear(x, l.gateW, l.gateB)) * linear(x, l.upW, l.upB);
        value = linear(key, l.mlpOutW, l.mlpOutB);
    }
    if (hooks && contains(hooks->captureMlpKeys, index))
        hooks->mlpKeys[index] = key;
    applyInterventions(value, index, Site::MlpOut, hooks);
    if (hooks && contains(hooks->captureMlpValues, index))
        hooks->mlpValues[index] = value;
    return value;
}

torch::Tensor Transformer::checkedIds(const torch::Tensor &idsIn) const
{
    const auto ids = idsIn.to(device(), torch::kLong);
    if (ids.dim() != 2)
        throw std::runtime_error("forward expects token ids of shape [batch, length]");
    if (ids.numel() && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= m_config.vocabSize))
        throw std::runtime_error("a token id is outside the model's vocabulary of " +
                                 std::to_string(m_config.vocabSize));
    if (m_config.family == Family::Gpt2 && ids.size(1) > m_config.maxPositions)
        throw std::runtime_error("sequence of " + std::to_string(ids.size(1)) + " tokens exceeds the model's " +
                                 std::to_string(m_config.maxPositions) + " positions");
    return ids;
}

torch::Tensor Transformer::embed(const torch::Tensor &ids, const torch::Tensor &positions) const
{
    auto x = torch::embedding(m_tokenEmbedding, ids);
    if (m_positionEmbedding.defined())
        x = x + torch::embedding(m_positionEmbedding, positions);
    return x;
}

torch::Tensor Transformer::runLayers(torch::Tensor x, int64_t from, int64_t to, const torch::Tensor &positions,
                                     const torch::Tensor &keyMask, ForwardHooks *hooks) const
{
    for (int64_t i = from; i < to; ++i) {
        const Layer &l = m_layers[i];
        x = x + attentionOut(attention(l, norm(x, l.norm1W, l.norm1B), positions, keyMask), i, hooks);
        x = x + mlp(l, norm(x, l.norm2W, l.norm2B), i, hooks);
        applyInterventions(x, i, Site::BlockOut, hooks);
        if (hooks && contains(hooks->captureBlockOut, i))
            hooks->blockOut[i] = x;
    }
    return x;
}

namespace {

// Positions follow the mask (cumulative count of real tokens), so left padding works too.
torch::Tensor positionsOf(const torch::Tensor &mask)
{
    return (mask.cumsum(1) - 1).clamp_min(0);
}

} // namespace

torch::Tensor Transformer::forward(const torch::Tensor &idsIn, const torch::Tensor &maskIn, ForwardHooks *hooks) const
{
    const auto ids = checkedIds(idsIn);
    const torch::Tensor mask = maskIn.defined() ? maskIn.to(device(), torch::kLong) : torch::ones_like(ids);
    const auto positions = positionsOf(mask);
    const auto keyMask = maskIn.defined() ? mask.to(torch::kBool) : torch::Tensor();
    auto x = runLayers(embed(ids, positions), 0, m_config.layers, positions, keyMask, hooks);
    x = norm(x, m_finalNormW, m_finalNormB);
    return torch::matmul(x, m_head.t());
}

torch::Tensor Transformer::residualBefore(const torch::Tensor &idsIn, const torch::Tensor &maskIn,
                                          int64_t layer) const
{
    if (layer < 0 || layer >= m_config.layers)
        throw std::runtime_error("layer " + std::to_string(layer) + " is outside the model's " +
                                 std::to_string(m_config.layers) + " layers");
    torch::NoGradGuard noGrad;
    const auto ids = checkedIds(idsIn);
    const torch::Tensor mask = maskIn.defined() ? maskIn.to(device(), torch::kLong) : torch::ones_like(ids);
    const auto positions = positionsOf(mask);
    const auto keyMask = maskIn.defined() ? mask.to(torch::kBool) : torch::Tensor();
    return runLayers(embed(ids, positions), 0, layer, positions, keyMask, nullptr);
}

torch::Tensor Transformer::forwardFrom(int64_t layer, const torch::Tensor &residual, const torch::Tensor &maskIn,
                                       ForwardHooks *hooks) const
{
    if (layer < 0 || layer >= m_config.layers)
        throw std::runtime_error("layer " + std::to_string(layer) + " is outside the model's " +
                                 std::to_string(m_config.layers) + " layers");
    if (residual.dim() != 3 || residual.size(2) != m_config.hidden)
        throw std::runtime_error("forwardFrom expects a residual stream of shape [batch, length, hidden]");
    const torch::Tensor mask =
        maskIn.defined() ? maskIn.to(device(), torch::kLong)
                         : torch::ones({residual.size(0), residual.size(1)}, torch::TensorOptions().dtype(torch::kLong).device(device()));
    const auto positions = positionsOf(mask);
    const auto keyMask = maskIn.defined() ? mask.to(torch::kBool) : torch::Tensor();
    const auto x = runLayers(residual, layer, m_config.layers, positions, keyMask, hooks);
    return norm(x, m_finalNormW, m_finalNormB);
}

Transformer::FrozenPrefix Transformer::freezePrefix(const torch::Tensor &idsIn, const torch::Tensor &maskIn,
                                                   int64_t layer, int64_t start) const
{
    if (layer < 0 || layer >= m_config.layers)
        throw std::runtime_error("layer " + std::to_string(layer) + " is outside the model's " +
                                 std::to_string(m_config.layers) + " layers");
    torch::NoGradGuard noGrad;
    const auto ids = checkedIds(idsIn);
    if (start < 0 || start >= ids.size(1))
        throw std::runtime_error("freezePrefix: start " + std::to_string(start) + " is outside the " +
                                 std::to_string(ids.size(1)) + " positions");
    FrozenPrefix frozen;
    frozen.layer = layer;
    frozen.start = start;
    const torch::Tensor mask = maskIn.defined() ? maskIn.to(device(), torch::kLong) : torch::ones_like(ids);
    frozen.positions = positionsOf(mask);
    frozen.keyMask = mask.to(torch::kBool);
    auto x = embed(ids, frozen.positions);
    for (int64_t i = 0; i < m_config.layers; ++i) {
        const Layer &l = m_layers[i];
        if (i == layer)
            frozen.residual = x.narrow(1, start, x.size(1) - start).contiguous();
        const auto heads = projectHeads(l, norm(x, l.norm1W, l.norm1B), frozen.positions);
        if (i >= layer) {
            frozen.keys.push_back(heads.k.narrow(2, 0, start).contiguous());
            frozen.values.push_back(heads.v.narrow(2, 0, start).contiguous());
        }
        x = x + attend(l, heads, 0, frozen.keyMask);
        x = x + mlp(l, norm(x, l.norm2W, l.norm2B), i, nullptr);
    }
    return frozen;
}

torch::Tensor Transformer::forwardSuffix(const FrozenPrefix &frozen, ForwardHooks *hooks) const
{
    if (!frozen.residual.defined() ||
        static_cast<int64_t>(frozen.keys.size()) != m_config.layers - frozen.layer)
        throw std::runtime_error("forwardSuffix needs a prefix frozen by freezePrefix on this model");
    const auto length = frozen.residual.size(1);
    const auto positions = frozen.positions.narrow(1, frozen.start, length);
    auto x = frozen.residual;
    for (int64_t i = frozen.layer; i < m_config.layers; ++i) {
        const Layer &l = m_layers[i];
        auto heads = projectHeads(l, norm(x, l.norm1W, l.norm1B), positions);
        const auto j = static_cast<size_t>(i - frozen.layer);
        heads.k = torch::cat({frozen.keys[j], heads.k}, 2);
        heads.v = torch::cat({frozen.values[j], heads.v}, 2);
        x = x + attentionOut(attend(l, heads, frozen.start, frozen.keyMask), i, hooks);
        x = x + mlp(l, norm(x, l.norm2W, l.norm2B), i, hooks);
        applyInterventions(x, i, Site::BlockOut, hooks);
        if (hooks && contains(hooks->captureBlockOut, i))
            hooks->blockOut[i] = x;
    }
    return norm(x, m_finalNormW, m_finalNormB);
}

torch::Tensor Transformer::mlpKeysAt(const torch::Tensor &idsIn, const torch::Tensor &maskIn, int64_t layer) const
{
    if (layer < 0 || layer >= m_config.layers)
        throw std::runtime_error("layer " + std::to_string(layer) + " is outside the model's " +
                                 std::to_string(m_config.layers) + " layers");
    torch::NoGradGuard noGrad;
    const auto ids = checkedIds(idsIn);
    const torch::Tensor mask = maskIn.defined() ? maskIn.to(device(), torch::kLong) : torch::ones_like(ids);
    const auto positions = positionsOf(mask);
    const auto keyMask = maskIn.defined() ? mask.to(torch::kBool) : torch::Tensor();
    auto x = runLayers(embed(ids, positions), 0, layer, positions, keyMask, nullptr);
    const Layer &l = m_layers[layer];
    x = x + attention(l, norm(x, l.norm1W, l.norm1B), positions, keyMask);
    ForwardHooks hooks;
    hooks.captureMlpKeys = {layer};
    mlp(l, norm(x, l.norm2W, l.norm2B), layer, &hooks);
    return hooks.mlpKeys.at(layer);
}

torch::Tensor Transformer::headLogits(const torch::Tensor &hidden) const
{
    return torch::matmul(hidden, m_head.t());
}

double Transformer::ContinuationScore::meanLogProb() const
{
    if (tokenLogProbs.empty())
        return 0.0;
    double sum = 0;
    for (double value : tokenLogProbs)
        sum += value;
    return sum / static_cast<double>(tokenLogProbs.size());
}

std::vector<Transformer::ContinuationScore>
Transformer::scoreContinuations(const std::vector<std::vector<int64_t>> &prompts,
                                const std::vector<std::vector<int64_t>> &continuations, int64_t padId,
                                ForwardHooks *hooks) const
{
    if (prompts.size() != continuations.size())
        throw std::runtime_error("scoreContinuations: one continuation per prompt is expected");
    std::vector<std::vector<int64_t>> sequences;
    for (size_t i = 0; i < prompts.size(); ++i) {
        if (prompts[i].empty())
            throw std::runtime_error("scoreContinuations: an empty prompt has nothing to condition on");
        auto sequence = prompts[i];
        sequence.insert(sequence.end(), continuations[i].begin(), continuations[i].end());
        sequences.push_back(std::move(sequence));
    }
    torch::NoGradGuard noGrad;
    const Batch batch = padBatch(sequences, padId);
    const auto logProbs = torch::log_softmax(forward(batch.ids, batch.mask, hooks).to(torch::kFloat), -1).cpu();
    const auto best = logProbs.argmax(-1);
    std::vector<ContinuationScore> scores(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
        const auto start = static_cast<int64_t>(prompts[i].size());
        for (size_t j = 0; j < continuations[i].size(); ++j) {
            const int64_t position = start + static_cast<int64_t>(j) - 1, token = continuations[i][j];
            scores[i].tokenLogProbs.push_back(logProbs[i][position][token].item<double>());
            scores[i].tokenIsArgmax.push_back(best[i][position].item<int64_t>() == token);
        }
    }
    return scores;
}

std::vector<int64_t> Transformer::generate(const std::vector<int64_t> &prompt, int64_t maxNewTokens, int64_t topK,
                                           std::optional<int64_t> eosId, uint64_t seed) const
{
    if (prompt.empty())
        throw std::runtime_error("generate: the prompt is empty");
    torch::NoGradGuard noGrad;
    std::mt19937_64 random(seed);
    std::vector<int64_t> sequence = prompt, generated;
    for (int64_t step = 0; step < maxNewTokens; ++step) {
        if (m_config.family == Family::Gpt2 && static_cast<int64_t>(sequence.size()) >= m_config.maxPositions)
            break;
        const auto ids = torch::tensor(sequence, torch::kLong).unsqueeze(0);
        const auto last = forward(ids).index({0, -1}).to(torch::kFloat).cpu();
        int64_t next;
        if (topK <= 1) {
            next = last.argmax().item<int64_t>();
        } else {
            const auto top = last.topk(std::min<int64_t>(topK, last.size(0)));
            const auto probs = torch::softmax(std::get<0>(top), 0);
            std::vector<double> weights(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
            std::discrete_distribution<int64_t> pick(weights.begin(), weights.end());
            next = std::get<1>(top)[pick(random)].item<int64_t>();
        }
        generated.push_back(next);
        sequence.push_back(next);
        if (eosId && next == *eosId)
            break;
    }
    return generated;
}

torch::Tensor Transformer::mlpOutWeight(int64_t layer) const
{
    const auto &stored = m_layers.at(layer).mlpOutW;
    // GPT-2's Conv1D stores [d_k, d]; the editing convention is [d, d_k].
    return (m_config.family == Family::Gpt2 ? stored.t() : stored).detach().clone().contiguous();
}

void Transformer::setMlpOutWeight(int64_t layer, const torch::Tensor &weight)
{
    auto &stored = m_layers.at(layer).mlpOutW;
    const std::vector<int64_t> expected = {m_config.hidden, m_config.intermediate};
    if (weight.sizes().vec() != expected)
        throw std::runtime_error("setMlpOutWeight: expected shape " + shapeText(expected) + ", got " +
                                 shapeText(weight.sizes().vec()));
    torch::NoGradGuard noGrad;
    // In place, so the state dict (and anything saved from it) sees the edit.
    stored.copy_(m_config.family == Family::Gpt2 ? weight.t() : weight);
}

std::string Transformer::mlpOutWeightName(int64_t layer) const
{
    const std::string index = std::to_string(layer);
    return m_config.family == Family::Gpt2 ? "transformer.h." + index + ".mlp.c_proj.weight"
                                           : "model.layers." + index + ".mlp.down_proj.weight";
}

} // namespace oedit::model
