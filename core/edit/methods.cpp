// The editing methods (ft, rome, memit, alphaedit, oedit, oedit+), their
// shared value optimisation, and the registry with hyperparameter files.
// See shared/design/ALGORITHMS.md for the algorithms and their knobs.
#include "edit/closed_forms.h"
#include "edit/editor.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

namespace oedit::edit {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------------------
// Hyperparameter files

std::string hparamsFileName(const std::string &method)
{
    std::string name = method;
    if (!name.empty() && name.back() == '+')
        name = name.substr(0, name.size() - 1) + "_plus";
    return name + ".json";
}

bool presetMatches(const nlohmann::json &when, const model::ModelConfig &config)
{
    const std::string family = config.family == model::Family::Gpt2 ? "gpt2" : "llama";
    for (const auto &[key, value] : when.items()) {
        if (key == "family" && value.get<std::string>() != family)
            return false;
        if (key == "model_type" && value.get<std::string>() != config.modelType)
            return false;
        if (key == "min_layers" && config.layers < value.get<int64_t>())
            return false;
        if (key == "max_layers" && config.layers > value.get<int64_t>())
            return false;
        if (key == "min_hidden" && config.hidden < value.get<int64_t>())
            return false;
        if (key == "max_hidden" && config.hidden > value.get<int64_t>())
            return false;
    }
    return true;
}

std::string typeName(const nlohmann::json &v)
{
    if (v.is_boolean())
        return "a boolean";
    if (v.is_number())
        return "a number";
    if (v.is_string())
        return "a string";
    if (v.is_array())
        return "a list";
    return "an object";
}

bool sameKind(const nlohmann::json &a, const nlohmann::json &b)
{
    return (a.is_number() && b.is_number()) || (a.is_boolean() && b.is_boolean()) || (a.is_string() && b.is_string()) ||
           (a.is_array() && b.is_array());
}

void checkLayer(const std::string &method, const std::string &key, int64_t layer, const model::ModelConfig &config)
{
    if (layer < 0 || layer >= config.layers)
        throw EditError(method + ": " + key + " " + std::to_string(layer) +
                        " is out of range: the model has layers 0.." + std::to_string(config.layers - 1));
}

void checkChoice(const std::string &method, const nlohmann::json &hp, const std::string &key,
                 const std::vector<std::string> &allowed)
{
    if (!hp.contains(key))
        return;
    const auto value = hp[key].get<std::string>();
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
        std::string list;
        for (const auto &a : allowed)
            list += (list.empty() ? "" : ", ") + a;
        throw EditError(method + ": " + key + " '" + value + "' is not supported (choose " + list + ")");
    }
}

// ---------------------------------------------------------------------------
// Shared pieces of the locate-then-edit methods

std::vector<int64_t> targetTokens(const model::Tokenizer &tokenizer, const std::string &target)
{
    auto ids = tokenizer.encode(" " + target);
    if (ids.empty())
        throw EditError("the target '" + target + "' tokenizes to nothing");
    return ids;
}

// ROME's fact_token knob: "subject_last" (the default: the subject's last
// token) or "last" (the prompt's last token, where small models trained on
// one template per relation tend to look the fact up).
PromptTokens withLookup(PromptTokens p, const nlohmann::json &hp)
{
    if (hp.value("fact_token", std::string("subject_last")) == "last")
        p.lookup = static_cast<int64_t>(p.ids.size()) - 1;
    return p;
}

// Keys at `layer` at the subject's last token of every prompt.
torch::Tensor lookupKeys(const model::Transformer &model, const model::Tokenizer &tokenizer,
                         const std::vector<PromptTokens> &prompts, int64_t layer)
{
    torch::NoGradGuard noGrad;
    std::vector<std::vector<int64_t>> ids;
    for (const auto &p : prompts)
        ids.push_back(p.ids);
    const auto batch = model::padBatch(ids, tokenizer.eosId().value_or(0));
    const auto keys = model.mlpKeysAt(batch.ids, batch.mask, layer).to(torch::kCPU, torch::kFloat);
    std::vector<torch::Tensor> rows;
    for (size_t i = 0; i < prompts.size(); ++i)
        rows.push_back(keys[static_cast<int64_t>(i)][prompts[i].lookup]);
    return torch::stack(rows); // [n, d_k]
}

// What the value optimisation needs to know about where delta goes and what it protects.
struct ValueSpec {
    int64_t layer = 0;
    model::Site site = model::Site::MlpOut;
    torch::Tensor protect; // U_S [d, r] float32 on the CPU, or undefined
    double lambdaOrth = 0;
    bool project = false;
};

struct ValueOutcome {
    torch::Tensor delta; // [d]
    torch::Tensor vInit; // value at the bare prompt's lookup before the edit
    std::vector<double> lossCurve;
    double finalNll = 0;
};

ValueOutcome optimiseValue(const model::Transformer &model, const model::Tokenizer &tokenizer,
                           const EditRequest &request, const std::vector<std::string> &prefixes,
                           const nlohmann::json &hp, const ValueSpec &spec)
{
    const auto target = targetTokens(tokenizer, request.targetNew);
    std::vector<std::vector<int64_t>> sequences;
    std::vector<int64_t> lookups, starts;
    for (const auto &prefix : prefixes) {
        const auto p = withLookup(tokenizePrompt(tokenizer, request.prompt, request.subject, prefix), hp);
        auto seq = p.ids;
        seq.insert(seq.end(), target.begin(), target.end() - 1);
        starts.push_back(static_cast<int64_t>(p.ids.size()) - 1); // logits here predict target[0]
        lookups.push_back(p.lookup);
        sequences.push_back(std::move(seq));
    }
    const int64_t rewriteRows = static_cast<int64_t>(sequences.size());
    // ROME's essence prompt: keeps what the model thinks the subject is.
    const auto essence = withLookup(tokenizePrompt(tokenizer, "{} is a", request.subject), hp);
    sequences.push_back(essence.ids);
    lookups.push_back(essence.lookup);
    // Left padding lines the rows up at their ends: every rewrite row ends
    // with the same prompt suffix and target, so the subject's last token
    // falls at (nearly) one position in all rows. Nothing before the earliest
    // lookup depends on delta (causal attention): those positions are run
    // once (freezePrefix), and each step recomputes only the positions from
    // there on, from spec.layer up.
    const auto batch = model::padBatch(sequences, tokenizer.eosId().value_or(0), /*padLeft=*/true);
    const auto device = model.device();
    const auto ids = batch.ids.to(device), mask = batch.mask.to(device);
    const int64_t length = batch.ids.size(1);
    for (size_t r = 0; r < sequences.size(); ++r) {
        const int64_t shift = length - static_cast<int64_t>(sequences[r].size());
        lookups[r] += shift;
        if (r < starts.size())
            starts[r] += shift;
    }
    const int64_t frozenEnd = *std::min_element(lookups.begin(), lookups.end());
    const auto frozen = model.freezePrefix(ids, mask, spec.layer, frozenEnd);
    std::vector<int64_t> relativeLookups;
    for (const auto lookup : lookups)
        relativeLookups.push_back(lookup - frozenEnd);

    std::vector<int64_t> rows(sequences.size());
    std::iota(rows.begin(), rows.end(), 0);
    const int64_t d = model.config().hidden;
    auto delta = torch::zeros({d}, torch::TensorOptions().dtype(torch::kFloat).device(device)).set_requires_grad(true);
    torch::optim::Adam optimiser({delta}, torch::optim::AdamOptions(hp.value("v_lr", 0.5)));

    // Gather indices of the target tokens: (row, position, token).
    std::vector<int64_t> tRows, tPos, tTok;
    for (int64_t r = 0; r < rewriteRows; ++r)
        for (size_t j = 0; j < target.size(); ++j) {
            tRows.push_back(r);
            tPos.push_back(starts[static_cast<size_t>(r)] + static_cast<int64_t>(j) - frozenEnd);
            tTok.push_back(target[j]);
        }
    // Logits are needed at the target positions and at the essence prompt's
    // lookup (KL) only: the vocabulary projection of every other position is skipped.
    std::vector<int64_t> pickRows = tRows, pickPos = tPos;
    pickRows.push_back(rewriteRows);
    pickPos.push_back(relativeLookups.back());
    const auto longOpts = torch::TensorOptions().dtype(torch::kLong).device(device);
    const auto pickRowsT = torch::tensor(pickRows, longOpts), pickPosT = torch::tensor(pickPos, longOpts),
               tTokT = torch::tensor(tTok, longOpts).unsqueeze(1);
    const int64_t targetCount = static_cast<int64_t>(tTok.size());
    const double perRow = static_cast<double>(target.size());

    const int64_t steps = hp.value("v_num_grad_steps", 25);
    const double stopAt = hp.value("v_loss_stop", 0.05), klFactor = hp.value("kl_factor", 0.0625),
                 weightDecay = hp.value("v_weight_decay", 0.5), clampFactor = hp.value("clamp_norm_factor", 4.0);
    torch::Tensor protect =
        spec.protect.defined() && spec.protect.size(1) > 0 ? spec.protect.to(device) : torch::Tensor();

    ValueOutcome out;
    torch::Tensor klInit;
    double maxNorm = 0;
    torch::AutoGradMode gradMode(true);
    for (int64_t step = 0; step <= steps; ++step) {
        model::ForwardHooks hooks;
        model::Intervention shift;
        shift.layer = spec.layer;
        shift.site = spec.site;
        shift.rows = rows;
        shift.positions = relativeLookups;
        shift.delta = delta;
        hooks.interventions.push_back(shift);
        if (step == 0) {
            if (spec.site == model::Site::MlpOut)
                hooks.captureMlpValues = {spec.layer};
            else
                hooks.captureBlockOut = {spec.layer};
        }
        const auto hidden = model.forwardSuffix(frozen, &hooks);
        const auto logProbs =
            torch::log_softmax(model.headLogits(hidden.index({pickRowsT, pickPosT})).to(torch::kFloat), -1);
        if (step == 0) {
            const auto &captured =
                spec.site == model::Site::MlpOut ? hooks.mlpValues.at(spec.layer) : hooks.blockOut.at(spec.layer);
            out.vInit = captured[0][relativeLookups[0]].detach().to(torch::kCPU, torch::kFloat).clone();
            maxNorm = clampFactor * out.vInit.norm().item<double>();
            klInit = logProbs[targetCount].detach();
        }
        const auto nll = -logProbs.narrow(0, 0, targetCount).gather(1, tTokT).sum() /
                         (perRow * static_cast<double>(rewriteRows));
        const auto klNow = logProbs[targetCount];
        const auto kl = (klNow.exp() * (klNow - klInit)).sum();
        const double vNorm2 = std::max(out.vInit.pow(2).sum().item<double>(), 1e-12);
        auto loss = nll + klFactor * kl + weightDecay * delta.norm() / vNorm2;
        // With projection (O-Edit+) delta starts at 0 and is put back into the
        // complement of U_S after every step, where the orthogonality term and
        // its gradient are zero: it only costs time there, so it is skipped.
        if (protect.defined() && spec.lambdaOrth > 0 && !spec.project)
            loss = loss + spec.lambdaOrth * protect.t().matmul(delta).pow(2).sum() / (delta.pow(2).sum() + 1e-12);
        out.lossCurve.push_back(loss.item<double>());
        out.finalNll = nll.item<double>();
        if (out.finalNll < stopAt || step == steps)
            break;
        optimiser.zero_grad();
        loss.backward();
        // O-Edit+: the step can only move delta inside the complement of U_S,
        // so Adam sees the gradient there too. Left in, the protected
        // components inflate Adam's second moments and shrink every useful
        // step; projected, O-Edit+ needs ~10-15% fewer steps (bench_edit).
        if (spec.project && protect.defined()) {
            torch::NoGradGuard noGrad;
            auto g = delta.mutable_grad();
            g.sub_(protect.matmul(protect.t().matmul(g)));
        }
        optimiser.step();
        torch::NoGradGuard noGrad;
        // O-Edit+: exact orthogonality, enforced before the norm clamp.
        if (spec.project && protect.defined())
            delta.sub_(protect.matmul(protect.t().matmul(delta)));
        const double n = delta.norm().item<double>();
        if (n > maxNorm && n > 0)
            delta.mul_(maxNorm / n);
    }
    out.delta = delta.detach().to(torch::kCPU, torch::kFloat).clone();
    return out;
}

// Raises the diagnostics' largest |cos| with earlier updates of `layer`:
// of the whole update (Frobenius) and of its key-side factor (rank one only).
// O(d + d_k) per earlier update when both are rank one (ROME, MEMIT and
// O-Edit edits of one fact), so the diagnostic stays cheap over long runs.
void noteCosWithHistory(EditContext &context, int64_t layer, const LayerUpdate &update, EditDiagnostics &diagnostics)
{
    const double leftNorm = update.rankOne() ? update.left.norm().item<double>() : 0.0;
    for (const auto &entry : context.history(layer)) {
        const auto &earlier = entry.second;
        diagnostics.maxAbsCosWithEarlier = std::max(diagnostics.maxAbsCosWithEarlier, std::abs(update.cosWith(earlier)));
        if (leftNorm > 0 && earlier.rankOne()) {
            const double norms = leftNorm * earlier.left.norm().item<double>();
            if (norms > 0)
                diagnostics.maxKeyCosWithEarlier =
                    std::max(diagnostics.maxKeyCosWithEarlier,
                             std::abs(torch::dot(update.left, earlier.left).item<double>()) / norms);
        }
    }
}

// Prompts for keys: the bare prompt and each context prefix.
std::vector<PromptTokens> keyPrompts(const model::Tokenizer &tokenizer, const EditRequest &request,
                                     const std::vector<std::string> &prefixes, const nlohmann::json &hp)
{
    std::vector<PromptTokens> prompts;
    for (const auto &prefix : prefixes)
        prompts.push_back(withLookup(tokenizePrompt(tokenizer, request.prompt, request.subject, prefix), hp));
    return prompts;
}

const std::vector<std::string> &prefixesFor(EditContext &context, const model::Transformer &model,
                                            const model::Tokenizer &tokenizer, const nlohmann::json &hp)
{
    return context.contextPrefixes(model, tokenizer, hp.value("context_template_count", 5),
                                   hp.value("context_template_length", 5), hp.value("seed", 0));
}

// ---------------------------------------------------------------------------
// Factorisations of the statistics, computed once per run and layer: every
// edit would otherwise redo an O(d_k^3) factorisation of the same matrix.

// The Cholesky factor of the ridged C, or undefined when C is not positive
// definite (the closed forms then solve with C directly).
torch::Tensor choleskyFor(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples)
{
    auto &L = context.derived("cholesky-L" + std::to_string(layer) + "-n" + std::to_string(samples));
    if (!L.defined()) {
        L = ridgedCholesky(C);
        if (!L.defined())
            L = torch::empty({0}, torch::kDouble); // marks "tried": not positive definite
    }
    return L.numel() ? L : torch::Tensor();
}

const torch::Tensor &nullSpaceProjectorFor(EditContext &context, const torch::Tensor &C, int64_t layer,
                                           int64_t samples, double threshold, bool relative)
{
    auto &P = context.derived("nullspace-L" + std::to_string(layer) + "-n" + std::to_string(samples) + "-t" +
                              std::to_string(threshold) + (relative ? "-rel" : "-abs"));
    if (!P.defined())
        P = nullSpaceProjector(C, threshold, relative);
    return P;
}

// ---------------------------------------------------------------------------
// O-Edit's protected basis and capacity

struct Protection {
    torch::Tensor basis;    // U_S, float32 [d, r]
    int64_t remaining = -1; // capacity before this edit
    bool relaxed = false;   // layer full: projection off, soft loss only
    std::string note;
};

int64_t rankCap(const nlohmann::json &hp, int64_t d)
{
    return std::clamp<int64_t>(static_cast<int64_t>(std::floor(hp.value("rank_cap_fraction", 0.75) * double(d))), 1, d);
}

// U_S = [edit basis, implicit basis] capped at `cap` columns, for either side.
// The ablation knobs protect_edits / protect_implicit leave one part out of U_S
// (the edit basis is still grown: capacity reports and rollback use it).
Protection combinedProtection(const nlohmann::json &hp, const torch::Tensor &editBasis, int64_t width, int64_t cap,
                              const torch::Tensor &implicitBasis, const torch::Tensor &implicitEnergy,
                              const std::string &droppedNote)
{
    Protection p;
    const bool edits = hp.value("protect_edits", true) && editBasis.defined() && editBasis.size(1) > 0;
    const auto E = edits ? editBasis : torch::zeros({width, 0}, torch::kDouble);
    p.remaining = cap - E.size(1);
    int64_t dropped = 0;
    p.basis = protectedBasis(E, hp.value("protect_implicit", true) ? implicitBasis : torch::Tensor(), implicitEnergy,
                             cap, &dropped)
                  .to(torch::kFloat);
    if (dropped > 0)
        p.note = droppedNote + ": " + std::to_string(dropped) + " weakest directions dropped to keep room for edits";
    return p;
}

Protection protectionFor(EditContext &context, const model::Transformer &model, const model::Tokenizer &tokenizer,
                         const nlohmann::json &hp, int64_t layer)
{
    auto &state = context.oeditLayer(layer);
    const int64_t d = model.config().hidden, cap = rankCap(hp, d);
    if (!state.implicitBasis.defined()) {
        const auto &gram = context.implicitGram(model, tokenizer, layer, hp.value("implicit_n_samples", 1000));
        auto basis = energyBasis(gram, hp.value("eps_I", 0.95), cap);
        state.implicitBasis = basis.first.to(torch::kFloat);
        state.implicitEnergy = basis.second.to(torch::kFloat);
    }
    return combinedProtection(hp, state.editBasis(), d, cap, state.implicitBasis, state.implicitEnergy,
                              "layer " + std::to_string(layer) + " implicit knowledge");
}

// O-Edit+'s input side of `layer`: V_S = [V_E, V~_I] in key space, V_I the
// top eigenvectors of C (the keys the layer mostly sees, GPM-style), capped
// like U_S at rank_cap_fraction of the key width.
Protection keyProtectionFor(EditContext &context, const torch::Tensor &C, const nlohmann::json &hp, int64_t layer)
{
    auto &state = context.oeditLayer(layer);
    const int64_t dk = C.size(0), cap = rankCap(hp, dk);
    if (!state.implicitKeyBasis.defined()) {
        auto basis = energyBasis(C, hp.value("eps_I_input", 0.5), cap);
        state.implicitKeyBasis = basis.first.to(torch::kFloat);
        state.implicitKeyEnergy = basis.second.to(torch::kFloat);
    }
    return combinedProtection(hp, state.keyBasis(), dk, cap, state.implicitKeyBasis, state.implicitKeyEnergy,
                              "layer " + std::to_string(layer) + " input side keys");
}

// DeltaW = right left^T with its key side moved off V: left <- s (I - V V^T) left.
// Dividing by (P left).k to keep DeltaW k exactly blows up when k lies mostly
// in V (keys of different subjects are close), so s solves the ridge problem
// min (s a - b)^2 + ridge b^2 s^2 with a = (P left).k, b = left.k instead.
// Returns the share of DeltaW k kept (s a / b, at most 1).
double projectKeySide(const torch::Tensor &V, torch::Tensor &left, const torch::Tensor &key, double ridge)
{
    const auto l = left.to(torch::kDouble).flatten(), k = key.to(torch::kDouble).flatten();
    const double b = l.dot(k).item<double>();
    const auto pl = projectOut(V.to(torch::kDouble), l);
    const double a = pl.dot(k).item<double>();
    const double denominator = a * a + ridge * b * b;
    const double scale = denominator > 0 ? a * b / denominator : 0.0;
    left = (pl * scale).reshape(left.sizes()).to(left.scalar_type());
    return b != 0 ? scale * a / b : 0.0;
}

std::string percent(double share)
{
    return std::to_string(static_cast<int>(std::lround(100 * share))) + "%";
}

// ---------------------------------------------------------------------------
// Methods

class LocateEditMethod : public EditMethod {
public:
    explicit LocateEditMethod(std::string name) : m_name(std::move(name)) {}
    std::string name() const override { return m_name; }

    void prepare(model::Transformer &model, const model::Tokenizer &tokenizer, EditContext &context) override
    {
        const int64_t samples = m_hparams.value("mom2_n_samples", 0);
        for (const auto layer : statLayers()) {
            const auto &C = context.secondMoment(model, tokenizer, layer, samples);
            if (name() == "alphaedit")
                nullSpaceProjectorFor(context, C, layer, samples, m_hparams.value("nullspace_threshold", 2e-2),
                                      m_hparams.value("nullspace_relative", true));
            else if (m_hparams.value("mom2_adjustment", true))
                choleskyFor(context, C, layer, samples);
        }
        if (isOEdit())
            for (const auto layer : editLayers())
                context.implicitGram(model, tokenizer, layer, m_hparams.value("implicit_n_samples", 1000));
        prefixesFor(context, model, tokenizer, m_hparams);
    }

protected:
    virtual std::vector<int64_t> editLayers() const = 0;
    virtual std::vector<int64_t> statLayers() const { return editLayers(); }
    bool isOEdit() const { return m_name == "oedit" || m_name == "oedit+"; }

    // The common start of every edit: refuse bad requests before any work, seed,
    // and a result that already names the method, its hyperparameters and the request.
    EditResult begin(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                     const EditContext &context)
    {
        validateRequest(model, tokenizer, request, !context.options().editSatisfiedTargets);
        torch::manual_seed(m_hparams.value("seed", 0));
        EditResult result;
        result.method = m_name;
        result.hparams = m_hparams;
        result.request = request;
        return result;
    }

    std::string m_name;
};

// ROME (and the ROME base of O-Edit / O-Edit+).
class RomeMethod : public LocateEditMethod {
public:
    using LocateEditMethod::LocateEditMethod;

    EditResult edit(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                    EditContext &context) override
    {
        const auto start = Clock::now();
        EditResult result = begin(model, tokenizer, request, context);
        int64_t layer = m_hparams["layer"];

        // O-Edit: pick the layer (capacity policy) and its protected basis.
        const std::string side = m_hparams.value("side", std::string("output"));
        bool valueSide = isOEdit() && side != "input";
        Protection protection;
        const double statBefore = context.statisticsSeconds();
        if (valueSide) {
            protection = protectionFor(context, model, tokenizer, m_hparams, layer);
            if (protection.remaining <= 0) {
                const std::string policy = m_hparams.value("capacity_policy", "relax");
                const std::string full = "layer " + std::to_string(layer) + " is full (" +
                                         std::to_string(rankCap(m_hparams, model.config().hidden)) +
                                         " edit directions)";
                if (policy == "refuse")
                    throw EditError(full + ": the capacity policy is 'refuse'; roll back edits, raise "
                                           "rank_cap_fraction or choose another policy");
                if (policy == "input") {
                    protection.relaxed = true;
                    protection.note = full + "; this edit is made on the input side";
                } else if (policy == "spread") {
                    bool moved = false;
                    for (const auto &next : m_hparams.value("spread_layers", std::vector<int64_t>{})) {
                        auto candidate = protectionFor(context, model, tokenizer, m_hparams, next);
                        if (candidate.remaining > 0) {
                            protection = candidate;
                            protection.note = full + "; edit moved to layer " + std::to_string(next);
                            layer = next;
                            moved = true;
                            break;
                        }
                    }
                    if (!moved)
                        throw EditError(full + " and so are the spread_layers: roll back edits or raise "
                                               "rank_cap_fraction");
                } else {
                    protection.relaxed = true;
                    protection.note = full + ": exact orthogonality relaxed to the soft loss for this edit";
                }
            }
        }
        const bool keySide = isOEdit() && (side == "input" || side == "both" ||
                                           (protection.relaxed && m_hparams.value("capacity_policy", "") == "input"));
        if (keySide && side != "both")
            valueSide = false; // the input side alone: the value is learnt as the base method learns it
        const bool mom2 = m_hparams.value("mom2_adjustment", true);
        torch::Tensor C, choleskyOfC;
        double factorSeconds = 0; // the Cholesky factor, computed on the first edit of the run
        if (mom2 || keySide) {
            const int64_t samples = m_hparams.value("mom2_n_samples", 0);
            C = context.secondMoment(model, tokenizer, layer, samples);
            const auto factorStart = Clock::now();
            if (mom2)
                choleskyOfC = choleskyFor(context, C, layer, samples);
            factorSeconds = since(factorStart);
        }
        const auto &prefixes = prefixesFor(context, model, tokenizer, m_hparams);
        result.timings.statistics = context.statisticsSeconds() - statBefore + factorSeconds;

        auto t = Clock::now();
        const auto prompts = keyPrompts(tokenizer, request, prefixes, m_hparams);
        const auto keys = lookupKeys(model, tokenizer, prompts, layer);
        const auto kStar = keys.mean(0), kBare = keys[0];
        result.diagnostics.lookupPosition = prompts[0].lookup;
        result.timings.key = since(t);

        t = Clock::now();
        ValueSpec spec;
        spec.layer = layer;
        spec.site = model::Site::MlpOut;
        if (valueSide) {
            spec.protect = protection.basis;
            spec.lambdaOrth =
                m_name == "oedit+" && !m_hparams.value("keep_loss", true) ? 0.0 : m_hparams.value("lambda_o", 1.0);
            spec.project = m_name == "oedit+" && !protection.relaxed;
        }
        const auto value = optimiseValue(model, tokenizer, request, prefixes, m_hparams, spec);
        result.timings.value = since(t);

        t = Clock::now();
        // (W + DeltaW) k = W k + b + delta: the residual is delta itself.
        auto factors = romeRankOne(mom2 ? C : torch::Tensor(), kStar, kBare, value.delta, mom2, choleskyOfC);
        if (spec.project)
            factors.first = projectOut(protection.basis, factors.first);
        Protection keyProtection;
        if (keySide) {
            keyProtection = keyProtectionFor(context, C, m_hparams, layer);
            if (keyProtection.remaining <= 0) {
                const std::string full = "the input side of layer " + std::to_string(layer) + " is full (" +
                                         std::to_string(rankCap(m_hparams, C.size(0))) + " key directions)";
                if (m_hparams.value("capacity_policy", "") == "refuse")
                    throw EditError(full + ": the capacity policy is 'refuse'; roll back edits or raise "
                                           "rank_cap_fraction");
                keyProtection.relaxed = true;
                keyProtection.note = full + ": this edit is not projected";
            }
            if (!keyProtection.relaxed) {
                const double kept = projectKeySide(keyProtection.basis, factors.second, kBare, m_hparams.value("input_ridge", 0.01));
                if (kept < 0.99)
                    keyProtection.note += (keyProtection.note.empty() ? "" : "; ") + std::string("input side: the update keeps ") +
                                 percent(kept) + " of its effect on the edit's key";
            }
        }
        LayerUpdate update;
        update.layer = layer;
        update.right = factors.first;
        update.left = factors.second;
        const auto M = update.matrix();
        result.layers.push_back(update);
        result.diagnostics.updateNorms.push_back(M.norm().item<double>());
        noteCosWithHistory(context, layer, update, result.diagnostics);
        if (valueSide) {
            // Rank one: work on the factors, not on the [d, d_k] matrix (an SVD of it costs more than the edit).
            result.diagnostics.maxAbsCosWithProtected = maxCosWithBasisRankOne(protection.basis, update.right);
            result.diagnostics.protectedRank = protection.basis.size(1);
            const auto grown = growBasisRankOne(context.oeditLayer(layer).editBasis(), update.right, update.left,
                                                m_hparams.value("eps_E", 0.99));
            result.diagnostics.remainingCapacity = std::max<int64_t>(protection.remaining - grown.size(1), 0);
        }
        if (keySide) {
            result.diagnostics.maxAbsCosWithProtected =
                std::max(result.diagnostics.maxAbsCosWithProtected, maxCosWithBasisRankOne(keyProtection.basis, update.left));
            result.diagnostics.protectedRank = std::max(result.diagnostics.protectedRank, keyProtection.basis.size(1));
            // V_E grows from the edit's key (kept with the result for rollback), or from the update's key side.
            const bool keysBasis = m_hparams.value("input_edit_basis", std::string("updates")) == "keys";
            const auto key = kBare.detach().to(torch::kCPU, torch::kFloat);
            if (keysBasis)
                result.keys[layer] = key.unsqueeze(1);
            const auto grown = growBasisRankOne(context.oeditLayer(layer).keyBasis(), keysBasis ? key : update.left,
                                                update.right, m_hparams.value("eps_E", 0.99));
            const int64_t left = std::max<int64_t>(keyProtection.remaining - grown.size(1), 0);
            result.diagnostics.remainingCapacity =
                valueSide && !protection.relaxed ? std::min(result.diagnostics.remainingCapacity, left) : left;
        }
        if (isOEdit())
            result.diagnostics.capacityNote =
                protection.note + (!protection.note.empty() && !keyProtection.note.empty() ? "; " : "") + keyProtection.note;
        result.timings.update = since(t);
        result.diagnostics.lossCurve = value.lossCurve;
        result.diagnostics.finalTargetNll = value.finalNll;
        result.diagnostics.deltaNorm = value.delta.norm().item<double>();
        result.id = context.nextEditId();
        result.timings.total = since(start);
        return result;
    }

protected:
    std::vector<int64_t> editLayers() const override
    {
        std::vector<int64_t> layers = {m_hparams["layer"].get<int64_t>()};
        if (isOEdit())
            for (const auto &l : m_hparams.value("spread_layers", std::vector<int64_t>{}))
                layers.push_back(l);
        return layers;
    }
};

// MEMIT, AlphaEdit, and the MEMIT base of O-Edit / O-Edit+.
class MemitMethod : public LocateEditMethod {
public:
    using LocateEditMethod::LocateEditMethod;

    EditResult edit(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                    EditContext &context) override
    {
        const auto start = Clock::now();
        EditResult result = begin(model, tokenizer, request, context);
        const auto layers = editLayers();
        const int64_t last = layers.back();
        const bool alpha = m_name == "alphaedit";
        const double statBefore = context.statisticsSeconds();

        std::map<int64_t, Protection> protections;
        torch::Tensor unionBasis;
        if (isOEdit()) {
            std::vector<torch::Tensor> parts;
            for (const auto layer : layers) {
                protections[layer] = protectionFor(context, model, tokenizer, m_hparams, layer);
                if (protections[layer].remaining <= 0) {
                    const std::string policy = m_hparams.value("capacity_policy", "relax");
                    const std::string full = "layer " + std::to_string(layer) + " is full";
                    if (policy == "refuse")
                        throw EditError(full + ": the capacity policy is 'refuse'; roll back edits, raise "
                                               "rank_cap_fraction or choose another policy");
                    // MEMIT spreads by itself; a full layer gets the soft loss only.
                    protections[layer].relaxed = true;
                    protections[layer].note = full + ": exact orthogonality relaxed to the soft loss";
                }
                if (!protections[layer].relaxed)
                    parts.push_back(protections[layer].basis);
            }
            // delta lives in the residual stream that every edited layer writes to.
            if (!parts.empty()) {
                const auto all = torch::cat(parts, 1).to(torch::kDouble);
                const auto svd = torch::svd(all);
                const int64_t r = (std::get<1>(svd) > 1e-6).sum().item<int64_t>();
                unionBasis = std::get<0>(svd).narrow(1, 0, r).to(torch::kFloat).contiguous();
            }
        }
        std::map<int64_t, torch::Tensor> stats, cholesky; // C or P, and C's Cholesky factor, per layer
        const int64_t samples = m_hparams.value("mom2_n_samples", 0);
        double factorSeconds = 0; // factorisations, computed on the first edit of the run
        for (const auto layer : layers) {
            const auto &C = context.secondMoment(model, tokenizer, layer, samples);
            const auto factorStart = Clock::now();
            if (alpha) {
                stats[layer] = nullSpaceProjectorFor(context, C, layer, samples,
                                                     m_hparams.value("nullspace_threshold", 2e-2),
                                                     m_hparams.value("nullspace_relative", true));
            } else {
                stats[layer] = C;
                cholesky[layer] = choleskyFor(context, C, layer, samples);
            }
            factorSeconds += since(factorStart);
        }
        const auto &prefixes = prefixesFor(context, model, tokenizer, m_hparams);
        result.timings.statistics = context.statisticsSeconds() - statBefore + factorSeconds;

        auto t = Clock::now();
        ValueSpec spec;
        spec.layer = last;
        spec.site = model::Site::BlockOut;
        if (isOEdit()) {
            spec.protect = unionBasis;
            spec.lambdaOrth =
                m_name == "oedit+" && !m_hparams.value("keep_loss", true) ? 0.0 : m_hparams.value("lambda_o", 1.0);
            spec.project = m_name == "oedit+" && unionBasis.defined();
        }
        const auto value = optimiseValue(model, tokenizer, request, prefixes, m_hparams, spec);
        const auto z = value.vInit + value.delta;
        result.timings.value = since(t);

        const auto prompts = keyPrompts(tokenizer, request, prefixes, m_hparams);
        result.diagnostics.lookupPosition = prompts[0].lookup;
        // Layers change while we go (later residuals depend on earlier
        // updates); the originals come back by copy, so edit() leaves no trace.
        std::map<int64_t, torch::Tensor> originals;
        for (const auto layer : layers)
            originals[layer] = model.mlpOutWeight(layer);
        try {
            for (size_t i = 0; i < layers.size(); ++i) {
                const int64_t layer = layers[i];
                t = Clock::now();
                const auto keys = lookupKeys(model, tokenizer, prompts, layer);
                // MEMIT: half the bare prompt, half the mean over prefixed prompts.
                const auto k =
                    keys.size(0) > 1 ? 0.5 * (keys[0] + keys.narrow(0, 1, keys.size(0) - 1).mean(0)) : keys[0];
                const auto K = k.unsqueeze(1);
                result.timings.key += since(t);
                t = Clock::now();
                torch::Tensor h;
                {
                    torch::NoGradGuard noGrad;
                    const auto ids = torch::tensor(prompts[0].ids, torch::kLong).unsqueeze(0);
                    if (last + 1 < model.config().layers) { // the block's output enters the next layer
                        h = model.residualBefore(ids, {}, last + 1)[0][prompts[0].lookup].to(torch::kCPU, torch::kFloat);
                    } else {
                        model::ForwardHooks hooks;
                        hooks.captureBlockOut = {last};
                        model.forward(ids, {}, &hooks);
                        h = hooks.blockOut.at(last)[0][prompts[0].lookup].to(torch::kCPU, torch::kFloat);
                    }
                }
                const auto R = ((z - h) / double(layers.size() - i)).unsqueeze(1);
                std::pair<torch::Tensor, torch::Tensor> factors; // DeltaW = first * second^T, rank n = 1 here
                if (alpha) {
                    const auto &Cp = context.alphaEditKeyGram(layer, model.mlpKeyWidth());
                    factors = alphaEditFactors(stats[layer], Cp, K, R, m_hparams.value("L2", 10.0));
                    result.keys[layer] = K.clone();
                } else {
                    factors = memitFactors(stats[layer], K, R, m_hparams.value("mom2_update_weight", 15000.0),
                                           cholesky[layer]);
                }
                // O-Edit+: (I - U U^T) DeltaW only touches the value-side factor.
                if (m_name == "oedit+" && !protections[layer].relaxed)
                    factors.first = projectOut(protections[layer].basis, factors.first);
                LayerUpdate update;
                update.layer = layer;
                if (factors.first.size(1) == 1) {
                    update.right = factors.first.squeeze(1).to(torch::kFloat);
                    update.left = factors.second.squeeze(1).to(torch::kFloat);
                } else {
                    update.dense = factors.first.matmul(factors.second.t()).to(torch::kFloat);
                }
                const auto M = update.matrix();
                result.layers.push_back(update);
                result.diagnostics.updateNorms.push_back(M.norm().item<double>());
                noteCosWithHistory(context, layer, update, result.diagnostics);
                if (isOEdit()) {
                    const auto &p = protections[layer];
                    const auto U = context.oeditLayer(layer).editBasis();
                    const double eps = m_hparams.value("eps_E", 0.99);
                    result.diagnostics.maxAbsCosWithProtected =
                        std::max(result.diagnostics.maxAbsCosWithProtected,
                                 update.rankOne() ? maxCosWithBasisRankOne(p.basis, update.right)
                                                  : maxCosWithBasis(p.basis, M));
                    result.diagnostics.protectedRank = std::max(result.diagnostics.protectedRank, p.basis.size(1));
                    const auto grown = update.rankOne() ? growBasisRankOne(U, update.right, update.left, eps)
                                                        : growBasis(U, M, eps);
                    const int64_t left = std::max<int64_t>(p.remaining - grown.size(1), 0);
                    result.diagnostics.remainingCapacity = result.diagnostics.remainingCapacity < 0
                                                               ? left
                                                               : std::min(result.diagnostics.remainingCapacity, left);
                    if (!p.note.empty())
                        result.diagnostics.capacityNote +=
                            (result.diagnostics.capacityNote.empty() ? "" : "; ") + p.note;
                }
                const auto W = model.mlpOutWeight(layer);
                model.setMlpOutWeight(layer, W + M.to(W.device(), W.scalar_type()));
                result.timings.update += since(t);
            }
        } catch (...) {
            for (const auto &[layer, W] : originals)
                model.setMlpOutWeight(layer, W);
            throw;
        }
        for (const auto &[layer, W] : originals)
            model.setMlpOutWeight(layer, W);
        result.diagnostics.lossCurve = value.lossCurve;
        result.diagnostics.finalTargetNll = value.finalNll;
        result.diagnostics.deltaNorm = value.delta.norm().item<double>();
        result.id = context.nextEditId();
        result.timings.total = since(start);
        return result;
    }

protected:
    std::vector<int64_t> editLayers() const override { return m_hparams["layers"].get<std::vector<int64_t>>(); }
};

// Fine-tuning of one MLP output projection, each entry of DeltaW bounded by
// norm_constraint (FT-L's L-infinity constraint): the naive baseline.
class FineTuneMethod : public EditMethod {
public:
    std::string name() const override { return "ft"; }

    EditResult edit(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                    EditContext &context) override
    {
        const auto start = Clock::now();
        validateRequest(model, tokenizer, request, !context.options().editSatisfiedTargets);
        torch::manual_seed(m_hparams.value("seed", 0));
        EditResult result;
        result.method = "ft";
        result.hparams = m_hparams;
        result.request = request;
        const int64_t layer = m_hparams["layer"];
        const auto prompt = tokenizePrompt(tokenizer, request.prompt, request.subject);
        const auto target = targetTokens(tokenizer, request.targetNew);
        auto seq = prompt.ids;
        seq.insert(seq.end(), target.begin(), target.end() - 1);
        const auto ids = torch::tensor(seq, torch::kLong).unsqueeze(0).to(model.device());
        const int64_t first = static_cast<int64_t>(prompt.ids.size()) - 1;
        const auto targetT = torch::tensor(target, torch::kLong).to(model.device());

        // The stored weight itself takes gradients for the duration (the
        // tensor handle shares storage with the model); restored below.
        torch::Tensor weight = model.weights().at(model.mlpOutWeightName(layer));
        const auto original = weight.detach().clone();
        const auto originalEditView = model.mlpOutWeight(layer);
        const double bound = m_hparams.value("norm_constraint", 5e-3);
        auto t = Clock::now();
        try {
            weight.set_requires_grad(true);
            torch::optim::Adam optimiser({weight}, torch::optim::AdamOptions(m_hparams.value("lr", 5e-3)));
            torch::AutoGradMode gradMode(true);
            const int64_t steps = m_hparams.value("num_steps", 25);
            for (int64_t step = 0; step <= steps; ++step) {
                const auto logProbs = torch::log_softmax(model.forward(ids).to(torch::kFloat)[0], -1);
                const auto positions = torch::arange(first, first + static_cast<int64_t>(target.size()),
                                                     torch::TensorOptions().dtype(torch::kLong).device(model.device()));
                const auto nll = -logProbs.index({positions, targetT}).mean();
                result.diagnostics.lossCurve.push_back(nll.item<double>());
                result.diagnostics.finalTargetNll = nll.item<double>();
                if (nll.item<double>() < m_hparams.value("loss_stop", 0.05) || step == steps)
                    break;
                optimiser.zero_grad();
                nll.backward();
                optimiser.step();
                torch::NoGradGuard noGrad;
                weight.copy_(torch::max(torch::min(weight, original + bound), original - bound));
            }
        } catch (...) {
            torch::NoGradGuard noGrad;
            weight.set_requires_grad(false);
            weight.copy_(original);
            throw;
        }
        {
            torch::NoGradGuard noGrad;
            weight.set_requires_grad(false);
        }
        const auto M = (model.mlpOutWeight(layer) - originalEditView).to(torch::kCPU, torch::kFloat);
        {
            torch::NoGradGuard noGrad;
            weight.copy_(original);
        }
        result.timings.value = since(t);
        LayerUpdate update;
        update.layer = layer;
        update.dense = M;
        result.layers.push_back(update);
        result.diagnostics.updateNorms.push_back(M.norm().item<double>());
        noteCosWithHistory(context, layer, update, result.diagnostics);
        result.diagnostics.lookupPosition = prompt.lookup;
        result.id = context.nextEditId();
        result.timings.total = since(start);
        return result;
    }
};

} // namespace

std::vector<std::string> editMethodNames()
{
    return {"ft", "rome", "memit", "alphaedit", "oedit", "oedit+"};
}

std::string hparamsDirectory()
{
    std::vector<fs::path> candidates;
    if (const char *env = std::getenv("OEDIT_HPARAMS_DIR"); env && *env)
        candidates.emplace_back(env);
    // Installed: <prefix>/bin/oedit -> <prefix>/share/oedit-workbench/hparams.
    std::error_code ec;
    const fs::path executable = fs::read_symlink("/proc/self/exe", ec);
    if (!ec)
        candidates.emplace_back(executable.parent_path().parent_path() / "share" / "oedit-workbench" / "hparams");
    candidates.emplace_back("/usr/share/oedit-workbench/hparams");
    candidates.emplace_back(fs::path(OEDIT_SOURCE_RESOURCES) / "hparams");
    for (const auto &candidate : candidates) {
        if (fs::exists(candidate / "rome.json", ec))
            return candidate.string();
    }
    return (fs::path(OEDIT_SOURCE_RESOURCES) / "hparams").string();
}

nlohmann::json resolveHparams(const std::string &method, const nlohmann::json &overrides,
                              const model::ModelConfig &config)
{
    const auto names = editMethodNames();
    if (std::find(names.begin(), names.end(), method) == names.end()) {
        std::string list;
        for (const auto &n : names)
            list += (list.empty() ? "" : ", ") + n;
        throw EditError("unknown editing method '" + method + "' (known: " + list + ")");
    }
    const auto path = fs::path(hparamsDirectory()) / hparamsFileName(method);
    std::ifstream in(path);
    if (!in)
        throw EditError("cannot read the default hyperparameters of '" + method + "' from " + path.string() +
                        " (set OEDIT_HPARAMS_DIR to the resources/hparams folder)");
    nlohmann::json file;
    try {
        file = nlohmann::json::parse(in);
    } catch (const std::exception &e) {
        throw EditError(path.string() + ": " + e.what());
    }
    nlohmann::json hp = file.at("defaults");
    for (const auto &preset : file.value("presets", nlohmann::json::array()))
        if (presetMatches(preset.value("when", nlohmann::json::object()), config))
            for (const auto &[key, value] : preset.at("set").items())
                hp[key] = value;
    if (!overrides.is_null() && !overrides.is_object())
        throw EditError(method + ": hyperparameters must be a JSON object of name: value");
    if (overrides.is_object())
        for (const auto &[key, value] : overrides.items()) {
            if (!hp.contains(key)) {
                std::string known;
                for (const auto &[k, v] : hp.items())
                    known += (known.empty() ? "" : ", ") + k;
                throw EditError(method + ": unknown hyperparameter '" + key + "' (known: " + known + ")");
            }
            if (!sameKind(hp[key], value))
                throw EditError(method + ": hyperparameter '" + key + "' must be " + typeName(hp[key]) + ", got " +
                                typeName(value));
            hp[key] = value;
        }
    if (hp.contains("layer"))
        checkLayer(method, "layer", hp["layer"].get<int64_t>(), config);
    for (const char *listKey : {"layers", "spread_layers"})
        if (hp.contains(listKey))
            for (const auto &l : hp[listKey])
                checkLayer(method, listKey, l.get<int64_t>(), config);
    if (hp.contains("layers") && hp["layers"].empty())
        throw EditError(method + ": 'layers' is empty: list the layers to edit");
    checkChoice(method, hp, "base", {"rome", "memit"});
    checkChoice(method, hp, "side", {"output", "input", "both"});
    checkChoice(method, hp, "capacity_policy", {"relax", "spread", "refuse", "input"});
    checkChoice(method, hp, "input_edit_basis", {"keys", "updates"});
    // The orthogonality loss acts on the learnt value only; the input side is
    // a projection of the key side, which only O-Edit+ does.
    if (method == "oedit" && (hp.value("side", std::string("output")) != "output" ||
                              hp.value("capacity_policy", std::string()) == "input"))
        throw EditError("oedit: the input side works by projection: use oedit+ for side 'input'/'both' or "
                        "capacity_policy 'input'");
    if (hp.value("base", std::string("rome")) == "memit" &&
        (hp.value("side", std::string("output")) != "output" || hp.value("capacity_policy", std::string()) == "input"))
        throw EditError(method + ": the input side is made on the ROME base; with base 'memit' use side 'output' "
                                 "and capacity_policy relax or refuse (MEMIT spreads over its layers by itself)");
    checkChoice(method, hp, "fact_token", {"subject_last", "last"});
    return hp;
}

std::unique_ptr<EditMethod> createEditMethod(const std::string &method, const nlohmann::json &overrides,
                                             const model::ModelConfig &config)
{
    auto hp = resolveHparams(method, overrides, config);
    std::unique_ptr<EditMethod> m;
    if (method == "ft")
        m = std::make_unique<FineTuneMethod>();
    else if (method == "rome")
        m = std::make_unique<RomeMethod>(method);
    else if (method == "memit" || method == "alphaedit")
        m = std::make_unique<MemitMethod>(method);
    else if (hp.value("base", std::string("rome")) == "memit")
        m = std::make_unique<MemitMethod>(method);
    else
        m = std::make_unique<RomeMethod>(method);
    m->m_hparams = std::move(hp);
    return m;
}

} // namespace oedit::edit
