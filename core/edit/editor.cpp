// The pieces every method shares: requests and results, applying and
// un-applying updates, prompt tokenization with the lookup position, and
// input validation.
#include "edit/editor.h"

#include "edit/closed_forms.h"
#include "edit/registry.h"

#include <cmath>

namespace oedit::edit {

nlohmann::json EditRequest::toJson() const
{
    nlohmann::json j = {{"subject", subject}, {"prompt", prompt}, {"target_new", targetNew}};
    if (targetTrue)
        j["target_true"] = *targetTrue;
    return j;
}

EditRequest EditRequest::fromJson(const nlohmann::json &json)
{
    EditRequest r;
    r.subject = json.value("subject", std::string());
    r.prompt = json.value("prompt", std::string());
    r.targetNew = json.value("target_new", std::string());
    if (json.contains("target_true"))
        r.targetTrue = json["target_true"].get<std::string>();
    return r;
}

torch::Tensor LayerUpdate::matrix() const
{
    if (rankOne())
        return torch::outer(right.to(torch::kCPU, torch::kFloat), left.to(torch::kCPU, torch::kFloat));
    if (!dense.defined())
        throw EditError("layer update of layer " + std::to_string(layer) + " holds no tensor");
    return dense.to(torch::kCPU, torch::kFloat).contiguous();
}

double LayerUpdate::cosWith(const LayerUpdate &other) const
{
    if (!rankOne() || !other.rankOne())
        return frobeniusCos(matrix(), other.matrix());
    const auto f = [](const torch::Tensor &t) { return t.detach().to(torch::kCPU, torch::kDouble); };
    const auto r1 = f(right), l1 = f(left), r2 = f(other.right), l2 = f(other.left);
    const double norms = r1.norm().item<double>() * l1.norm().item<double>() * r2.norm().item<double>() *
                         l2.norm().item<double>();
    if (norms == 0)
        return 0.0;
    return torch::dot(r1, r2).item<double>() * torch::dot(l1, l2).item<double>() / norms;
}

nlohmann::json EditResult::summaryJson() const
{
    nlohmann::json layersJson = nlohmann::json::array();
    for (size_t i = 0; i < layers.size(); ++i)
        layersJson.push_back({{"layer", layers[i].layer},
                              {"rank_one", layers[i].rankOne()},
                              {"norm", i < diagnostics.updateNorms.size() ? diagnostics.updateNorms[i] : 0.0}});
    return {{"id", id},
            {"method", method},
            {"hparams", hparams},
            {"request", request.toJson()},
            {"layers", layersJson},
            {"diagnostics",
             {{"loss_curve", diagnostics.lossCurve},
              {"final_target_nll", diagnostics.finalTargetNll},
              {"value_shift_norm", diagnostics.valueShiftNorm},
              {"update_norms", diagnostics.updateNorms},
              {"max_abs_cos_with_earlier", diagnostics.maxAbsCosWithEarlier},
              {"max_key_cos_with_earlier", diagnostics.maxKeyCosWithEarlier},
              {"max_abs_cos_with_protected", diagnostics.maxAbsCosWithProtected},
              {"protected_rank", diagnostics.protectedRank},
              {"remaining_capacity", diagnostics.remainingCapacity},
              {"capacity_note", diagnostics.capacityNote},
              {"lookup_position", diagnostics.lookupPosition}}},
            {"timings",
             {{"statistics", timings.statistics},
              {"key", timings.key},
              {"value", timings.value},
              {"update", timings.update},
              {"total", timings.total}}}};
}

void EditResult::save(const std::string &path) const
{
    torch::serialize::OutputArchive archive;
    write(archive);
    archive.save_to(path);
}

EditResult EditResult::load(const std::string &path)
{
    torch::serialize::InputArchive archive;
    try {
        archive.load_from(path);
    } catch (const std::exception &e) {
        throw EditError("cannot read the edit '" + path + "': " + e.what());
    }
    return read(archive);
}

void EditResult::write(torch::serialize::OutputArchive &archive) const
{
    const std::string text = summaryJson().dump();
    archive.write(
        "summary",
        torch::from_blob(const_cast<char *>(text.data()), {static_cast<int64_t>(text.size())}, torch::kUInt8).clone());
    for (size_t i = 0; i < layers.size(); ++i) {
        const std::string p = "layer." + std::to_string(i) + ".";
        if (layers[i].rankOne()) {
            archive.write(p + "right", layers[i].right);
            archive.write(p + "left", layers[i].left);
        } else {
            archive.write(p + "dense", layers[i].dense);
        }
    }
    for (const auto &[layer, K] : keys)
        archive.write("keys." + std::to_string(layer), K);
}

EditResult EditResult::read(torch::serialize::InputArchive &archive)
{
    torch::Tensor raw;
    archive.read("summary", raw);
    const auto j =
        nlohmann::json::parse(std::string(static_cast<const char *>(raw.data_ptr()), static_cast<size_t>(raw.numel())));
    EditResult r;
    r.id = j["id"];
    r.method = j["method"];
    r.hparams = j["hparams"];
    r.request = EditRequest::fromJson(j["request"]);
    const auto &d = j["diagnostics"];
    r.diagnostics.lossCurve = d["loss_curve"].get<std::vector<double>>();
    r.diagnostics.finalTargetNll = d["final_target_nll"];
    // Named delta_norm before it was called what it is.
    r.diagnostics.valueShiftNorm = d.value("value_shift_norm", d.value("delta_norm", 0.0));
    r.diagnostics.updateNorms = d["update_norms"].get<std::vector<double>>();
    r.diagnostics.maxAbsCosWithEarlier = d["max_abs_cos_with_earlier"];
    r.diagnostics.maxKeyCosWithEarlier = d.value("max_key_cos_with_earlier", 0.0); // absent in older results
    r.diagnostics.maxAbsCosWithProtected = d["max_abs_cos_with_protected"];
    r.diagnostics.protectedRank = d["protected_rank"];
    r.diagnostics.remainingCapacity = d["remaining_capacity"];
    r.diagnostics.capacityNote = d["capacity_note"];
    r.diagnostics.lookupPosition = d["lookup_position"];
    const auto &t = j["timings"];
    r.timings = {t["statistics"], t["key"], t["value"], t["update"], t["total"]};
    for (size_t i = 0; i < j["layers"].size(); ++i) {
        const auto &l = j["layers"][i];
        LayerUpdate u;
        u.layer = l["layer"];
        const std::string p = "layer." + std::to_string(i) + ".";
        if (l["rank_one"].get<bool>()) {
            archive.read(p + "right", u.right);
            archive.read(p + "left", u.left);
        } else {
            archive.read(p + "dense", u.dense);
        }
        r.layers.push_back(u);
    }
    // The keys of a method that keeps them: every edited layer's when the
    // method always does (a result without them is damaged), else those written.
    if (storesKeys(r.method, r.hparams)) {
        const bool always = findEditMethod(r.method)->keys == KeyStorage::Always;
        for (const auto &u : r.layers) {
            const std::string name = "keys." + std::to_string(u.layer);
            torch::Tensor K;
            if (always)
                archive.read(name, K);
            else if (!archive.try_read(name, K))
                continue;
            r.keys[u.layer] = K;
        }
    }
    return r;
}

namespace {

void addUpdates(model::Transformer &model, const EditResult &result, double sign)
{
    // Check every layer first, so a bad result changes nothing.
    for (const auto &update : result.layers) {
        if (update.layer < 0 || update.layer >= model.config().layers)
            throw EditError("edit " + std::to_string(result.id) + " changes layer " + std::to_string(update.layer) +
                            ", but the model has " + std::to_string(model.config().layers) + " layers");
        const auto M = update.matrix();
        if (M.size(0) != model.config().hidden || M.size(1) != model.mlpKeyWidth())
            throw EditError("edit " + std::to_string(result.id) + " does not fit this model's layer shapes");
    }
    for (const auto &update : result.layers) {
        const auto W = model.mlpOutWeight(update.layer);
        const auto M = update.matrix().to(W.device(), W.scalar_type());
        model.setMlpOutWeight(update.layer, sign > 0 ? W + M : W - M);
    }
}

} // namespace

void applyEdit(model::Transformer &model, const EditResult &result, EditContext *context)
{
    addUpdates(model, result, +1);
    if (context)
        context->recordApplied(result);
}

void unapplyEdit(model::Transformer &model, const EditResult &result, EditContext *context)
{
    addUpdates(model, result, -1);
    if (context)
        context->recordUnapplied(result);
}

std::string filledPrompt(const std::string &prompt, const std::string &subject)
{
    const auto at = prompt.find("{}");
    if (at == std::string::npos)
        return prompt;
    return prompt.substr(0, at) + subject + prompt.substr(at + 2);
}

PromptTokens tokenizePrompt(const model::Tokenizer &tokenizer, const std::string &prompt, const std::string &subject,
                            const std::string &contextPrefix)
{
    if (subject.empty())
        throw EditError("the subject is empty: name the entity whose fact you want to change");
    std::string prefix, suffix;
    if (const auto at = prompt.find("{}"); at != std::string::npos) {
        prefix = prompt.substr(0, at);
        suffix = prompt.substr(at + 2);
    } else if (const auto literal = prompt.find(subject); literal != std::string::npos) {
        prefix = prompt.substr(0, literal);
        suffix = prompt.substr(literal + subject.size());
    } else {
        throw EditError("the subject '" + subject + "' is not in the prompt '" + prompt +
                        "': write the prompt with {} where the subject goes, or include the subject verbatim");
    }
    prefix = contextPrefix + prefix;
    // Byte-level BPE attaches a space to the word after it, so " Subject" is
    // what the model saw in training.
    std::string subjectText = subject;
    if (!prefix.empty() && prefix.back() == ' ') {
        prefix.pop_back();
        subjectText = " " + subjectText;
    }
    PromptTokens out;
    if (tokenizer.addsBosByDefault() && tokenizer.bosId())
        out.ids.push_back(*tokenizer.bosId());
    const auto p = tokenizer.encode(prefix), s = tokenizer.encode(subjectText), x = tokenizer.encode(suffix);
    out.ids.insert(out.ids.end(), p.begin(), p.end());
    out.ids.insert(out.ids.end(), s.begin(), s.end());
    if (s.empty())
        throw EditError("the subject '" + subject + "' tokenizes to nothing");
    out.lookup = static_cast<int64_t>(out.ids.size()) - 1;
    out.ids.insert(out.ids.end(), x.begin(), x.end());
    return out;
}

double targetProbability(const model::Transformer &model, const model::Tokenizer &tokenizer,
                         const std::vector<int64_t> &promptIds, const std::string &target)
{
    const auto targetIds = tokenizer.encode(" " + target);
    const auto scores = model.scoreContinuations({promptIds}, {targetIds}, tokenizer.eosId().value_or(0));
    return std::exp(scores.at(0).meanLogProb());
}

namespace {
bool finite(const torch::Tensor &t)
{
    return !t.defined() || torch::isfinite(t).all().item<bool>();
}
} // namespace

void requireFiniteResult(const EditResult &result)
{
    const std::string edit = "the edit '" + filledPrompt(result.request.prompt, result.request.subject) + "' -> '" +
                             result.request.targetNew + "' was refused: ";
    const auto &loss = result.diagnostics.lossCurve;
    for (size_t i = 0; i < loss.size(); ++i)
        if (!std::isfinite(loss[i]))
            throw EditError(edit + "the value optimisation diverged (its loss is not finite at iteration " +
                            std::to_string(i + 1) + "); " +
                            (i == 0 ? "the model's outputs are not finite even before the update: check its weights "
                                      "with `oedit info`"
                                    : "lower the learning rate (v_lr)") +
                            ". Nothing was changed");
    for (const auto &[layer, keys] : result.keys)
        if (!finite(keys))
            throw EditError(edit + "the keys at layer " + std::to_string(layer) +
                            " are not finite (the model's activations overflow at the subject). Nothing was changed");
    for (const auto &update : result.layers)
        if (!finite(update.right) || !finite(update.left) || !finite(update.dense))
            throw EditError(edit + "the closed-form update of layer " + std::to_string(update.layer) +
                            " holds NaN or infinite values (the layer's statistics may be singular or not finite: "
                            "raise mom2_update_weight or recompute them). Nothing was changed");
}

void requireFiniteOutputs(const model::Transformer &model, const model::Tokenizer &tokenizer,
                          const EditRequest &request)
{
    torch::NoGradGuard noGrad;
    const auto prompt = tokenizePrompt(tokenizer, request.prompt, request.subject);
    const double p = targetProbability(model, tokenizer, prompt.ids, request.targetNew);
    if (!std::isfinite(p))
        throw EditError("the edit '" + filledPrompt(request.prompt, request.subject) + "' -> '" + request.targetNew +
                        "' was refused: with its update the model's outputs are not finite (the weights overflow). "
                        "Nothing was recorded");
}

void validateRequest(const model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                     bool refuseSatisfied)
{
    auto trim = [](const std::string &s) {
        const auto b = s.find_first_not_of(" \t\r\n");
        return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
    };
    if (trim(request.targetNew).empty())
        throw EditError("the new target is empty: give the object the fact should have after the edit");
    const auto prompt = tokenizePrompt(tokenizer, request.prompt, request.subject);
    if (model.config().maxPositions > 0 &&
        static_cast<int64_t>(prompt.ids.size() + tokenizer.encode(" " + request.targetNew).size()) + 12 >
            model.config().maxPositions)
        throw EditError("the prompt and target are too long for this model's " +
                        std::to_string(model.config().maxPositions) + " positions");
    if (request.targetTrue && trim(*request.targetTrue) == trim(request.targetNew))
        throw EditError("the new target equals the true target '" + request.targetNew + "': nothing to change");
    if (!refuseSatisfied)
        return;
    // The model's own greedy answer, as many tokens as the target has.
    const auto targetIds = tokenizer.encode(" " + trim(request.targetNew));
    const auto greedy = model.generate(prompt.ids, static_cast<int64_t>(targetIds.size()));
    if (greedy == targetIds)
        throw EditError("the model already answers '" + trim(request.targetNew) + "' to '" +
                        filledPrompt(request.prompt, request.subject) + "': nothing to edit");
}

} // namespace oedit::edit
