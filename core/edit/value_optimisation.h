// The value optimisation the locate-then-edit methods share (ROME's v*:
// the shift delta of one layer's output at the subject's last token that
// makes the model say the new target), and the key lookups around it.
#pragma once

#include "edit/editor.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace oedit::edit {

class EditContext;

// The tokens of " " + target; EditError when there are none.
std::vector<int64_t> targetTokens(const model::Tokenizer &tokenizer, const std::string &target);

// ROME's fact_token knob: "subject_last" (the default: the subject's last
// token) or "last" (the prompt's last token, where small models trained on
// one template per relation tend to look the fact up).
PromptTokens withLookup(PromptTokens p, const nlohmann::json &hp);

// Keys at `layer` at the lookup position of every prompt, [n, d_k] float32 on the CPU.
torch::Tensor lookupKeys(const model::Transformer &model, const model::Tokenizer &tokenizer,
                         const std::vector<PromptTokens> &prompts, int64_t layer);

// Prompts for keys: the bare prompt and each context prefix.
std::vector<PromptTokens> keyPrompts(const model::Tokenizer &tokenizer, const EditRequest &request,
                                     const std::vector<std::string> &prefixes, const nlohmann::json &hp);

// The run's context prefixes for these hyperparameters (context_template_count/length, seed).
const std::vector<std::string> &prefixesFor(EditContext &context, const model::Transformer &model,
                                            const model::Tokenizer &tokenizer, const nlohmann::json &hp);

// What the value optimisation needs to know about where delta goes and what it protects.
struct ValueSpec {
    int64_t layer = 0;
    model::Site site = model::Site::MlpOut;
    torch::Tensor protect; // U_S [d, r] float32 on the CPU, or undefined
    double lambdaOrth = 0; // weight of the orthogonality loss ||U_S^T delta||^2 / ||delta||^2
    bool project = false;  // O-Edit+: delta (and its gradient) projected off U_S after every step
};

struct ValueOutcome {
    torch::Tensor delta; // [d]
    torch::Tensor vInit; // value at the bare prompt's lookup before the edit
    std::vector<double> lossCurve;
    double finalNll = 0;
};

// Adam on delta (v_lr, v_num_grad_steps, v_loss_stop) over the prompt with every
// prefix, minimising target NLL + kl_factor KL(essence prompt) + v_weight_decay
// ||delta|| / ||v||^2 (+ the orthogonality term), with ||delta|| clamped to
// clamp_norm_factor ||v_init||.
ValueOutcome optimiseValue(const model::Transformer &model, const model::Tokenizer &tokenizer,
                           const EditRequest &request, const std::vector<std::string> &prefixes,
                           const nlohmann::json &hp, const ValueSpec &spec);

} // namespace oedit::edit
