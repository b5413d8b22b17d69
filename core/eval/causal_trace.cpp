#include "eval/causal_trace.h"

#include "edit/editor.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace oedit::eval {

namespace {

enum Group { FirstSubject, MiddleSubject, LastSubject, FirstAfter, FurtherAfter, LastToken, GroupCount };

// Token positions of the subject in a tokenized prompt: [first, last].
struct SubjectSpan {
    std::vector<int64_t> ids;
    int64_t first = 0, last = 0;
};

SubjectSpan locateSubject(const model::Tokenizer &tokenizer, const std::string &promptTemplate,
                          const std::string &subject)
{
    const size_t at = promptTemplate.find("{}");
    if (at == std::string::npos)
        throw std::runtime_error("the prompt '" + promptTemplate + "' has no {} for the subject");
    const auto tokens = edit::tokenizePrompt(tokenizer, promptTemplate, subject);
    // tokenizePrompt gives the space before the subject to the subject.
    const bool spaced = at > 0 && promptTemplate[at - 1] == ' ';
    const auto subjectIds = tokenizer.encode((spaced ? " " : "") + subject);
    SubjectSpan span;
    span.ids = tokens.ids;
    span.last = tokens.lookup;
    span.first = std::max<int64_t>(0, span.last - static_cast<int64_t>(subjectIds.size()) + 1);
    return span;
}

// Group of each position (-1 for tokens before the subject), ROME's way: the
// prompt's last token wins, then the subject's last, first and middle tokens.
std::vector<int> groupsOf(const SubjectSpan &span)
{
    const int64_t length = static_cast<int64_t>(span.ids.size());
    std::vector<int> groups(static_cast<size_t>(length), -1);
    for (int64_t t = 0; t < length; ++t) {
        int group = -1;
        if (t == length - 1)
            group = LastToken;
        else if (t == span.last)
            group = LastSubject;
        else if (t == span.first)
            group = FirstSubject;
        else if (t > span.first && t < span.last)
            group = MiddleSubject;
        else if (t == span.last + 1)
            group = FirstAfter;
        else if (t > span.last)
            group = FurtherAfter;
        groups[static_cast<size_t>(t)] = group;
    }
    return groups;
}

// The clean run's activations a sweep restores, captured at every layer.
model::ForwardHooks captureAll(int64_t layers, bool withAttention)
{
    model::ForwardHooks hooks;
    for (int64_t l = 0; l < layers; ++l) {
        hooks.captureBlockOut.push_back(l);
        hooks.captureMlpValues.push_back(l);
        if (withAttention)
            hooks.captureAttnOut.push_back(l);
    }
    return hooks;
}

// One noise draw: P(object) at the prompt's end with the subject corrupted
// (`corrupted`), and with one clean activation restored at a time, per layer
// a [T] tensor for each site: the hidden state after the block, the MLP
// output and (when asked) the attention output at each token.
struct RestoreSweep {
    double corrupted = 0;
    std::vector<torch::Tensor> hidden, mlp, attention;
};

RestoreSweep restoreSweep(const model::Transformer &model, const torch::Tensor &noisy, model::ForwardHooks &clean,
                          int64_t objectToken, bool withAttention)
{
    const int64_t layers = model.config().layers;
    const int64_t length = noisy.size(1);
    auto probabilityAtEnd = [&](const torch::Tensor &hidden) {
        const auto logits = model.headLogits(hidden.select(1, length - 1).unsqueeze(1)).squeeze(1);
        return torch::softmax(logits.to(torch::kFloat64), -1).select(1, objectToken).cpu();
    };
    RestoreSweep sweep;
    model::ForwardHooks corrupted = captureAll(layers, withAttention);
    sweep.corrupted = probabilityAtEnd(model.forwardFrom(0, noisy, {}, &corrupted)).item<double>();
    // Restoring at layer l changes nothing below it: start each batch from the
    // corrupted residual entering l. Rows 0..T-1 restore the hidden state
    // after block l at token t, rows T..2T-1 the MLP output, 2T..3T-1 the
    // attention output.
    const int64_t sites = withAttention ? 3 : 2;
    for (int64_t l = 0; l < layers; ++l) {
        const auto entering = l == 0 ? noisy : corrupted.blockOut.at(l - 1);
        model::ForwardHooks restore;
        std::vector<model::Intervention> interventions(static_cast<size_t>(sites));
        const model::Site kinds[] = {model::Site::BlockOut, model::Site::MlpOut, model::Site::AttnOut};
        for (int64_t k = 0; k < sites; ++k) {
            auto &intervention = interventions[static_cast<size_t>(k)];
            intervention.layer = l;
            intervention.site = kinds[k];
            for (int64_t t = 0; t < length; ++t) {
                intervention.rows.push_back(k * length + t);
                intervention.positions.push_back(t);
            }
        }
        interventions[0].delta = (clean.blockOut.at(l) - corrupted.blockOut.at(l))[0];
        interventions[1].delta = (clean.mlpValues.at(l) - corrupted.mlpValues.at(l))[0];
        if (withAttention)
            interventions[2].delta = (clean.attnOut.at(l) - corrupted.attnOut.at(l))[0];
        restore.interventions = std::move(interventions);
        const auto restored = probabilityAtEnd(
            model.forwardFrom(l, entering.expand({sites * length, length, entering.size(2)}).contiguous(), {}, &restore));
        sweep.hidden.push_back(restored.slice(0, 0, length));
        sweep.mlp.push_back(restored.slice(0, length, 2 * length));
        if (withAttention)
            sweep.attention.push_back(restored.slice(0, 2 * length, 3 * length));
    }
    return sweep;
}

// Gaussian noise of `std` on the subject's input embeddings.
torch::Tensor corruptSubject(const torch::Tensor &embedded, const SubjectSpan &span, double std)
{
    auto noisy = embedded.clone();
    noisy.slice(1, span.first, span.last + 1)
        .add_(torch::randn({1, span.last - span.first + 1, embedded.size(2)}, embedded.options()) * std);
    return noisy;
}

} // namespace

std::vector<std::string> traceTokenGroups()
{
    return {"first subject token", "middle subject tokens", "last subject token", "first token after",
            "further tokens",      "last token"};
}

CausalTrace causalTrace(const model::Transformer &model, const model::Tokenizer &tokenizer,
                        const std::vector<TraceCase> &cases, const CausalTraceOptions &options,
                        const ProgressFn &progress)
{
    torch::NoGradGuard noGrad;
    const int64_t layers = model.config().layers;
    const auto device = model.device();
    CausalTrace trace;
    trace.layers = layers;
    std::vector<std::vector<double>> hiddenSum(GroupCount, std::vector<double>(static_cast<size_t>(layers), 0.0));
    auto mlpSum = hiddenSum;
    std::vector<int64_t> groupCounts(GroupCount, 0);

    std::vector<SubjectSpan> spans;
    for (const auto &c : cases)
        spans.push_back(locateSubject(tokenizer, c.promptTemplate, c.subject));

    // Noise scale: ROME's 3 x the standard deviation of the subjects' input
    // embeddings, measured on these cases.
    {
        std::vector<torch::Tensor> rows;
        for (const auto &span : spans) {
            const auto ids = torch::tensor(span.ids, torch::kLong).unsqueeze(0).to(device);
            const auto embedded = model.residualBefore(ids, {}, 0)[0];
            rows.push_back(embedded.slice(0, span.first, span.last + 1).to(torch::kFloat64).cpu());
        }
        trace.noiseStd = rows.empty() ? 0.0 : options.noiseFactor * torch::cat(rows).std().item<double>();
    }

    torch::manual_seed(options.seed);
    for (size_t i = 0; i < cases.size(); ++i) {
        const auto &span = spans[i];
        const int64_t length = static_cast<int64_t>(span.ids.size());
        const auto objectIds = tokenizer.encode(" " + cases[i].object);
        if (objectIds.empty())
            continue;
        const int64_t objectToken = objectIds[0];
        const auto ids = torch::tensor(span.ids, torch::kLong).unsqueeze(0).to(device);
        auto probabilityAtEnd = [&](const torch::Tensor &hidden) {
            const auto logits = model.headLogits(hidden.select(1, length - 1).unsqueeze(1)).squeeze(1);
            return torch::softmax(logits.to(torch::kFloat64), -1).select(1, objectToken).cpu();
        };

        model::ForwardHooks clean = captureAll(layers, false);
        const auto embedded = model.residualBefore(ids, {}, 0);
        const auto cleanHidden = model.forwardFrom(0, embedded, {}, &clean);
        const auto cleanLogits = model.headLogits(cleanHidden.select(1, length - 1).unsqueeze(1)).squeeze(1);
        if (cleanLogits.argmax(-1).item<int64_t>() != objectToken) {
            ++trace.skipped;
            continue;
        }
        const double cleanProbability = probabilityAtEnd(cleanHidden).item<double>();

        const auto groups = groupsOf(span);
        std::vector<std::vector<double>> hiddenFact(GroupCount, std::vector<double>(static_cast<size_t>(layers), 0.0));
        auto mlpFact = hiddenFact;
        std::vector<int64_t> tokensInGroup(GroupCount, 0);
        for (int g : groups)
            if (g >= 0)
                ++tokensInGroup[static_cast<size_t>(g)];
        double corruptedProbability = 0;

        for (int s = 0; s < options.samples; ++s) {
            const auto sweep =
                restoreSweep(model, corruptSubject(embedded, span, trace.noiseStd), clean, objectToken, false);
            corruptedProbability += sweep.corrupted;
            for (int64_t l = 0; l < layers; ++l) {
                const auto hidden = sweep.hidden[static_cast<size_t>(l)].accessor<double, 1>();
                const auto mlp = sweep.mlp[static_cast<size_t>(l)].accessor<double, 1>();
                for (int64_t t = 0; t < length; ++t) {
                    const int g = groups[static_cast<size_t>(t)];
                    if (g < 0)
                        continue;
                    hiddenFact[static_cast<size_t>(g)][static_cast<size_t>(l)] += hidden[t];
                    mlpFact[static_cast<size_t>(g)][static_cast<size_t>(l)] += mlp[t];
                }
            }
        }
        // Mean over noise samples and over the tokens of each group, then
        // summed over facts.
        for (int g = 0; g < GroupCount; ++g) {
            if (!tokensInGroup[static_cast<size_t>(g)])
                continue;
            ++groupCounts[static_cast<size_t>(g)];
            const double scale = 1.0 / (options.samples * double(tokensInGroup[static_cast<size_t>(g)]));
            for (int64_t l = 0; l < layers; ++l) {
                hiddenSum[static_cast<size_t>(g)][static_cast<size_t>(l)] +=
                    hiddenFact[static_cast<size_t>(g)][static_cast<size_t>(l)] * scale;
                mlpSum[static_cast<size_t>(g)][static_cast<size_t>(l)] +=
                    mlpFact[static_cast<size_t>(g)][static_cast<size_t>(l)] * scale;
            }
        }
        ++trace.facts;
        trace.cleanProbability += cleanProbability;
        trace.corruptedProbability += corruptedProbability / options.samples;
        if (progress && !progress(static_cast<long long>(i + 1), static_cast<long long>(cases.size())))
            break;
    }

    const double nan = std::numeric_limits<double>::quiet_NaN();
    trace.hidden.assign(GroupCount, std::vector<double>(static_cast<size_t>(layers), nan));
    trace.mlp = trace.hidden;
    for (int g = 0; g < GroupCount; ++g) {
        if (!groupCounts[static_cast<size_t>(g)])
            continue;
        for (int64_t l = 0; l < layers; ++l) {
            trace.hidden[static_cast<size_t>(g)][static_cast<size_t>(l)] =
                hiddenSum[static_cast<size_t>(g)][static_cast<size_t>(l)] / double(groupCounts[static_cast<size_t>(g)]);
            trace.mlp[static_cast<size_t>(g)][static_cast<size_t>(l)] =
                mlpSum[static_cast<size_t>(g)][static_cast<size_t>(l)] / double(groupCounts[static_cast<size_t>(g)]);
        }
    }
    trace.groupCounts = groupCounts;
    if (trace.facts) {
        trace.cleanProbability /= double(trace.facts);
        trace.corruptedProbability /= double(trace.facts);
    }
    return trace;
}

PromptTrace tracePrompt(const model::Transformer &model, const model::Tokenizer &tokenizer, const TraceCase &c,
                        const CausalTraceOptions &options, const ProgressFn &progress)
{
    torch::NoGradGuard noGrad;
    const int64_t layers = model.config().layers;
    const auto span = locateSubject(tokenizer, c.promptTemplate, c.subject);
    const int64_t length = static_cast<int64_t>(span.ids.size());
    PromptTrace trace;
    trace.subjectFirst = span.first;
    trace.subjectLast = span.last;
    for (int64_t id : span.ids)
        trace.tokens.push_back(tokenizer.decode({id}));

    const auto ids = torch::tensor(span.ids, torch::kLong).unsqueeze(0).to(model.device());
    model::ForwardHooks clean = captureAll(layers, true);
    const auto embedded = model.residualBefore(ids, {}, 0);
    const auto cleanHidden = model.forwardFrom(0, embedded, {}, &clean);
    const auto cleanProbabilities =
        torch::softmax(model.headLogits(cleanHidden.select(1, length - 1).unsqueeze(1)).squeeze(1).to(torch::kFloat64),
                       -1)[0]
            .cpu();
    int64_t objectToken = cleanProbabilities.argmax().item<int64_t>();
    if (!c.object.empty()) {
        const auto objectIds = tokenizer.encode(" " + c.object);
        if (!objectIds.empty())
            objectToken = objectIds[0];
    }
    trace.object = c.object.empty() ? tokenizer.decode({objectToken}) : c.object;
    trace.cleanProbability = cleanProbabilities[objectToken].item<double>();
    trace.noiseStd = options.noiseFactor * embedded[0]
                                               .slice(0, span.first, span.last + 1)
                                               .to(torch::kFloat64)
                                               .std()
                                               .item<double>();

    const auto sum = [&](std::vector<torch::Tensor> &into, const std::vector<torch::Tensor> &add) {
        if (into.empty())
            into = add;
        else
            for (size_t l = 0; l < into.size(); ++l)
                into[l] = into[l] + add[l];
    };
    std::vector<torch::Tensor> hidden, mlp, attention;
    torch::manual_seed(options.seed);
    for (int s = 0; s < options.samples; ++s) {
        const auto sweep = restoreSweep(model, corruptSubject(embedded, span, trace.noiseStd), clean, objectToken, true);
        trace.corruptedProbability += sweep.corrupted;
        sum(hidden, sweep.hidden);
        sum(mlp, sweep.mlp);
        sum(attention, sweep.attention);
        ++trace.samples;
        if (progress && !progress(s + 1, options.samples))
            break;
    }
    if (!trace.samples)
        return trace;
    trace.corruptedProbability /= trace.samples;
    const auto table = [&](const std::vector<torch::Tensor> &perLayer) {
        std::vector<std::vector<double>> out(static_cast<size_t>(length), std::vector<double>(static_cast<size_t>(layers)));
        for (int64_t l = 0; l < layers; ++l) {
            const auto values = perLayer[static_cast<size_t>(l)].contiguous();
            const auto v = values.accessor<double, 1>();
            for (int64_t t = 0; t < length; ++t)
                out[static_cast<size_t>(t)][static_cast<size_t>(l)] = v[t] / trace.samples;
        }
        return out;
    };
    trace.hidden = table(hidden);
    trace.mlp = table(mlp);
    trace.attention = table(attention);
    return trace;
}

std::vector<ProbeScore> linearProbe(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                    const std::vector<ProbeRelation> &relations, uint64_t seed,
                                    const ProgressFn &progress)
{
    const int64_t layers = model.config().layers;
    const auto device = model.device();
    // Hidden state after every block at the name's last token, once per subject.
    std::map<std::string, torch::Tensor> features; // [layers, d]
    {
        torch::NoGradGuard noGrad;
        for (const auto &relation : relations)
            for (const auto &subject : relation.subjects) {
                if (features.count(subject))
                    continue;
                const auto ids = tokenizer.encodeForModel(subject);
                model::ForwardHooks hooks;
                for (int64_t l = 0; l < layers; ++l)
                    hooks.captureBlockOut.push_back(l);
                model.forward(torch::tensor(ids, torch::kLong).unsqueeze(0).to(device), {}, &hooks);
                std::vector<torch::Tensor> perLayer;
                for (int64_t l = 0; l < layers; ++l)
                    perLayer.push_back(hooks.blockOut.at(l)[0][static_cast<int64_t>(ids.size()) - 1]
                                           .to(torch::kFloat32)
                                           .cpu());
                features[subject] = torch::stack(perLayer);
            }
    }

    std::vector<ProbeScore> scores;
    torch::manual_seed(seed);
    for (size_t r = 0; r < relations.size(); ++r) {
        const auto &relation = relations[r];
        if (relation.subjects.size() < 8 || relation.classes < 2)
            continue;
        std::vector<torch::Tensor> trainX, testX;
        std::vector<int64_t> trainY, testY;
        for (size_t i = 0; i < relation.subjects.size(); ++i) {
            (i % 2 ? testX : trainX).push_back(features.at(relation.subjects[i]));
            (i % 2 ? testY : trainY).push_back(relation.objects[i]);
        }
        ProbeScore score;
        score.relation = relation.relation;
        score.train = static_cast<int64_t>(trainY.size());
        score.test = static_cast<int64_t>(testY.size());
        std::vector<int64_t> counts(static_cast<size_t>(relation.classes), 0);
        for (int64_t y : trainY)
            ++counts[static_cast<size_t>(y)];
        const int64_t common = std::max_element(counts.begin(), counts.end()) - counts.begin();
        score.majority = double(std::count(testY.begin(), testY.end(), common)) / double(testY.size());
        const auto xTrainAll = torch::stack(trainX); // [n, layers, d]
        const auto xTestAll = torch::stack(testX);
        const auto yTrain = torch::tensor(trainY, torch::kLong);
        const auto yTest = torch::tensor(testY, torch::kLong);
        for (int64_t l = 0; l < layers; ++l) {
            auto xTrain = xTrainAll.select(1, l);
            auto xTest = xTestAll.select(1, l);
            const auto mean = xTrain.mean(0, true);
            const auto std = xTrain.std(0, true, true) + 1e-6;
            xTrain = (xTrain - mean) / std;
            xTest = (xTest - mean) / std;
            // Softmax regression with a small L2 penalty, full-batch L-BFGS.
            auto weight = torch::zeros({xTrain.size(1), relation.classes}, torch::requires_grad());
            auto bias = torch::zeros({relation.classes}, torch::requires_grad());
            torch::optim::LBFGS optimiser({weight, bias},
                                          torch::optim::LBFGSOptions(1.0).max_iter(200).line_search_fn("strong_wolfe"));
            const double l2 = 1e-3;
            auto closure = [&] {
                optimiser.zero_grad();
                const auto loss = torch::nn::functional::cross_entropy(xTrain.matmul(weight) + bias, yTrain) +
                                  l2 * weight.pow(2).sum();
                loss.backward();
                return loss;
            };
            optimiser.step(closure);
            torch::NoGradGuard noGrad;
            const auto predicted = (xTest.matmul(weight) + bias).argmax(1);
            score.accuracy.push_back(predicted.eq(yTest).to(torch::kFloat64).mean().item<double>());
        }
        scores.push_back(std::move(score));
        if (progress && !progress(static_cast<long long>(r + 1), static_cast<long long>(relations.size())))
            break;
    }
    return scores;
}

} // namespace oedit::eval
