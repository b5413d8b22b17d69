// The facade of core/eval/causal_trace: loads a model folder and its world,
// picks the facts and turns the results into plain values.
#include "eval/causal_trace.h"
#include "oedit/world_model.h"
#include "train/loaded_world_model.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <map>

namespace oedit {

namespace {

nlohmann::json finiteOrNull(const std::vector<std::vector<double>> &rows)
{
    nlohmann::json out = nlohmann::json::array();
    for (const auto &row : rows) {
        nlohmann::json values = nlohmann::json::array();
        for (double v : row)
            values.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
        out.push_back(values);
    }
    return out;
}

} // namespace

std::string CausalTraceSummary::toJson() const
{
    return nlohmann::json{{"layers", layers},
                          {"facts", facts},
                          {"skipped", skipped},
                          {"noise_std", noiseStd},
                          {"clean_probability", cleanProbability},
                          {"corrupted_probability", corruptedProbability},
                          {"token_groups", tokenGroups},
                          {"hidden", finiteOrNull(hidden)},
                          {"mlp", finiteOrNull(mlp)}}
        .dump(2);
}

std::string ProbeSummary::toJson() const
{
    nlohmann::json rows = nlohmann::json::array();
    for (const auto &row : relations)
        rows.push_back({{"relation", row.relation},
                        {"train", row.train},
                        {"test", row.test},
                        {"accuracy", row.accuracy},
                        {"majority", row.majority}});
    return nlohmann::json{{"layers", layers}, {"accuracy", accuracy}, {"majority", majority}, {"relations", rows}}
        .dump(2);
}

Expected<CausalTraceSummary> traceFacts(const std::string &modelDir, const std::string &worldDir,
                                        const CausalTraceOptions &options, const ProgressFn &progress)
{
    try {
        if (options.facts < 1 || options.samples < 1 || !(options.noiseFactor > 0))
            return Status::failure("trace options: facts and samples must be at least 1 and the noise factor positive");
        auto loaded = loadWorldModel(modelDir, worldDir);
        if (!loaded)
            return loaded.status();
        const auto &world = loaded.value().world;
        // Facts spread over the whole world (every k-th), so every kind and
        // relation is in the average, canonical prompts.
        std::vector<eval::TraceCase> cases;
        const size_t total = world.facts.size();
        const size_t wanted = std::min<size_t>(total, static_cast<size_t>(options.facts));
        for (size_t i = 0; i < wanted; ++i) {
            const auto &fact = world.facts[i * total / wanted];
            cases.push_back({world.relationOf(fact).templates[0], world.subjectName(fact), world.objectName(fact)});
        }
        eval::CausalTraceOptions traceOptions;
        traceOptions.samples = options.samples;
        traceOptions.noiseFactor = options.noiseFactor;
        traceOptions.seed = options.seed;
        const auto trace = eval::causalTrace(*loaded.value().transformer, *loaded.value().tokenizer, cases,
                                             traceOptions, progress);
        CausalTraceSummary summary;
        summary.layers = static_cast<int>(trace.layers);
        summary.facts = trace.facts;
        summary.skipped = trace.skipped;
        summary.noiseStd = trace.noiseStd;
        summary.cleanProbability = trace.cleanProbability;
        summary.corruptedProbability = trace.corruptedProbability;
        summary.tokenGroups = eval::traceTokenGroups();
        summary.hidden = trace.hidden;
        summary.mlp = trace.mlp;
        return summary;
    } catch (const std::exception &e) {
        return Status::failure("cannot trace '" + modelDir + "': " + e.what());
    }
}

Expected<ProbeSummary> probeFacts(const std::string &modelDir, const std::string &worldDir,
                                  const ProgressFn &progress)
{
    try {
        auto loaded = loadWorldModel(modelDir, worldDir);
        if (!loaded)
            return loaded.status();
        const auto &world = loaded.value().world;
        std::vector<eval::ProbeRelation> relations(world.relations.size());
        for (size_t r = 0; r < world.relations.size(); ++r) {
            relations[r].relation = world.relations[r].id;
            relations[r].classes = static_cast<int64_t>(world.relations[r].objects.size());
        }
        for (const auto &fact : world.facts) {
            relations[static_cast<size_t>(fact.relation)].subjects.push_back(world.subjectName(fact));
            relations[static_cast<size_t>(fact.relation)].objects.push_back(fact.object);
        }
        const auto scores = eval::linearProbe(*loaded.value().transformer, *loaded.value().tokenizer, relations, 1,
                                              progress);
        ProbeSummary summary;
        summary.layers = loaded.value().transformer->config().layers;
        summary.accuracy.assign(static_cast<size_t>(summary.layers), 0.0);
        long long tested = 0;
        for (const auto &score : scores) {
            ProbeRow row{score.relation, score.train, score.test, score.accuracy, score.majority};
            for (size_t l = 0; l < row.accuracy.size(); ++l)
                summary.accuracy[l] += row.accuracy[l] * double(row.test);
            summary.majority += row.majority * double(row.test);
            tested += row.test;
            summary.relations.push_back(std::move(row));
        }
        if (tested == 0)
            return Status::failure("no relation of the world has the 8 subjects a probe needs");
        for (double &a : summary.accuracy)
            a /= double(tested);
        summary.majority /= double(tested);
        return summary;
    } catch (const std::exception &e) {
        return Status::failure("cannot probe '" + modelDir + "': " + e.what());
    }
}

} // namespace oedit
