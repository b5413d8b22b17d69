// Engine::tracePrompt (oedit/trace.h): one prompt's causal trace on the open
// model, by eval::tracePrompt, the procedure `oedit trace` averages.
#include "engine/engine_impl.h"
#include "eval/causal_trace.h"
#include "oedit/trace.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace oedit {

int PromptTrace::peakMlpLayer() const
{
    if (subjectLast < 0 || subjectLast >= static_cast<int>(mlp.size()) || mlp[static_cast<size_t>(subjectLast)].empty())
        return -1;
    const auto &row = mlp[static_cast<size_t>(subjectLast)];
    return static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
}

std::string PromptTrace::toJson() const
{
    return nlohmann::json{{"tokens", tokens},
                          {"subject_first", subjectFirst},
                          {"subject_last", subjectLast},
                          {"layers", layers},
                          {"object", object},
                          {"noise_std", noiseStd},
                          {"clean", cleanProbability},
                          {"corrupted", corruptedProbability},
                          {"samples", samples},
                          {"peak_mlp_layer", peakMlpLayer()},
                          {"hidden", hidden},
                          {"mlp", mlp},
                          {"attention", attention}}
        .dump();
}

Expected<PromptTrace> Engine::tracePrompt(const PromptTraceQuery &query, const ProgressFn &progress)
{
    if (!d->open)
        return Status::failure("no model is open: open a model folder first");
    if (!d->tokenizer())
        return Status::failure("the model in '" + d->path() + "' has no tokenizer, so the prompt cannot be encoded");
    if (query.subject.empty())
        return Status::failure("no subject given: name the subject whose tokens are corrupted");
    if (query.samples < 1 || query.samples > 1000)
        return Status::failure("samples must be between 1 and 1000, not " + std::to_string(query.samples));
    if (!(query.noiseFactor > 0))
        return Status::failure("the noise factor must be positive");
    // The trace marks the subject's tokens: a prompt that contains the
    // subject verbatim gets its "{}" where the subject is.
    std::string form = query.prompt;
    if (form.find("{}") == std::string::npos) {
        const auto at = form.find(query.subject);
        if (at == std::string::npos)
            return Status::failure("the subject '" + query.subject + "' is not in the prompt '" + query.prompt +
                                   "': write it there, or {} where it goes");
        form.replace(at, query.subject.size(), "{}");
    }
    return runs::guarded([&]() -> Expected<PromptTrace> {
        eval::CausalTraceOptions options;
        options.samples = query.samples;
        options.noiseFactor = query.noiseFactor;
        options.seed = query.seed;
        const auto traced = eval::tracePrompt(*d->model(), *d->tokenizer(), {form, query.subject, query.object},
                                              options, progress);
        if (!traced.samples)
            return Status::failure("cancelled: no trace was made");
        PromptTrace out;
        out.tokens = traced.tokens;
        out.subjectFirst = static_cast<int>(traced.subjectFirst);
        out.subjectLast = static_cast<int>(traced.subjectLast);
        out.layers = static_cast<int>(d->model()->config().layers);
        out.object = traced.object;
        out.noiseStd = traced.noiseStd;
        out.cleanProbability = traced.cleanProbability;
        out.corruptedProbability = traced.corruptedProbability;
        out.samples = traced.samples;
        out.hidden = traced.hidden;
        out.mlp = traced.mlp;
        out.attention = traced.attention;
        return out;
    });
}

} // namespace oedit
