// oedit trace / oedit probe: where a world model keeps its facts (causal
// tracing and linear probes, core/eval/causal_trace.h).
#include "commands.h"

#include "oedit/engine.h"
#include "oedit/world_model.h"

#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>

namespace oedit::cli {

namespace {

int usageError(const std::string &message)
{
    std::cerr << "oedit trace: " << message << "\nrun 'oedit trace --help' for the options\n";
    return 2;
}

struct TraceArguments {
    std::string model, world;
    CausalTraceOptions options;
    bool json = false;
    bool samplesGiven = false;
    // One prompt instead of the world's facts.
    std::string prompt, subject, object;
};

// Progress on stderr, one line rewritten in place.
ProgressFn progressLine(const char *what)
{
    return [what](long long done, long long total) {
        std::cerr << "\r" << what << " " << done << "/" << total << std::flush;
        if (done == total)
            std::cerr << "\n";
        return true;
    };
}

void printTable(const char *title, const std::vector<std::string> &groups, const std::vector<std::vector<double>> &rows)
{
    std::cout << title << "\n" << std::setw(24) << std::left << "token" << std::right;
    const size_t layers = rows.empty() ? 0 : rows[0].size();
    for (size_t l = 0; l < layers; ++l)
        std::cout << std::setw(8) << ("L" + std::to_string(l));
    std::cout << "\n";
    for (size_t g = 0; g < rows.size(); ++g) {
        std::cout << std::setw(24) << std::left << groups[g] << std::right;
        for (double v : rows[g]) {
            if (std::isfinite(v))
                std::cout << std::setw(8) << std::fixed << std::setprecision(3) << v;
            else
                std::cout << std::setw(8) << "-";
        }
        std::cout << "\n";
    }
}

// --prompt: one prompt traced token by token on the model, as the
// workbench's Trace tab shows it.
int runPromptTrace(const TraceArguments &args, const std::string &modelDir)
{
    if (!args.world.empty() || args.options.facts != CausalTraceOptions().facts)
        return usageError("--prompt traces one prompt; --world and --facts belong to the trace over a world");
    if (args.subject.empty())
        return usageError("--prompt needs --subject: the subject whose tokens are corrupted");
    Engine engine;
    if (const Status opened = engine.openModel(modelDir); !opened) {
        std::cerr << "oedit trace: " << opened.message() << "\n";
        return 1;
    }
    PromptTraceQuery query;
    query.prompt = args.prompt;
    query.subject = args.subject;
    query.object = args.object;
    if (args.samplesGiven)
        query.samples = static_cast<int>(args.options.samples);
    const auto trace = engine.tracePrompt(query, args.json ? ProgressFn{} : progressLine("noise draws"));
    if (!trace) {
        std::cerr << "oedit trace: " << trace.message() << "\n";
        return 1;
    }
    if (args.json) {
        printJsonWithModel(trace->toJson(), modelDir);
        return 0;
    }
    std::vector<std::string> tokens;
    for (size_t t = 0; t < trace->tokens.size(); ++t) {
        const bool inSubject = static_cast<int>(t) >= trace->subjectFirst && static_cast<int>(t) <= trace->subjectLast;
        tokens.push_back("'" + trace->tokens[t] + "'" + (inSubject ? " *" : ""));
    }
    std::cout << "model " << modelDir << "\n"
              << "answer '" << trace->object << "', " << trace->samples << " noise draws, noise std "
              << std::setprecision(3) << trace->noiseStd << " (* marks the subject's tokens)\n"
              << std::fixed << std::setprecision(3) << "P(answer): clean " << trace->cleanProbability
              << ", subject corrupted " << trace->corruptedProbability << "\n\n";
    printTable("P(answer) with one hidden state restored (token x layer):", tokens, trace->hidden);
    std::cout << "\n";
    printTable("P(answer) with one MLP output restored (token x layer):", tokens, trace->mlp);
    std::cout << "\n";
    printTable("P(answer) with one attention output restored (token x layer):", tokens, trace->attention);
    if (trace->peakMlpLayer() >= 0)
        std::cout << "\nthe MLP output at the subject's last token restores most at layer " << trace->peakMlpLayer()
                  << "\n";
    return 0;
}

int runTrace(const TraceArguments &args)
{
    const std::string modelDir = modelOrDefault(args.model, "trace");
    if (modelDir.empty())
        return 2;
    if (!args.prompt.empty())
        return runPromptTrace(args, modelDir);
    if (!args.subject.empty() || !args.object.empty())
        return usageError("--subject and --object go with --prompt");
    const auto trace = traceFacts(modelDir, args.world, args.options, args.json ? ProgressFn{} : progressLine("traced"));
    if (!trace) {
        std::cerr << "oedit trace: " << trace.message() << "\n";
        return 1;
    }
    if (args.json) {
        printJsonWithModel(trace->toJson(), modelDir);
        return 0;
    }
    std::cout << "model " << modelDir << "\n"
              << trace->facts << " facts traced (" << trace->skipped << " not recalled by the clean model, left out), "
              << args.options.samples << " noise draws each, noise std " << std::setprecision(3) << trace->noiseStd
              << "\n"
              << std::fixed << std::setprecision(3) << "P(object): clean " << trace->cleanProbability
              << ", subject corrupted " << trace->corruptedProbability << "\n\n";
    printTable("P(object) with one hidden state restored (token group x layer):", trace->tokenGroups, trace->hidden);
    std::cout << "\n";
    printTable("P(object) with one MLP output restored (token group x layer):", trace->tokenGroups, trace->mlp);
    return 0;
}

struct ProbeArguments {
    std::string model, world;
    bool json = false;
};

int runProbe(const ProbeArguments &args)
{
    const std::string modelDir = modelOrDefault(args.model, "probe");
    if (modelDir.empty())
        return 2;
    const auto probe = probeFacts(modelDir, args.world, args.json ? ProgressFn{} : progressLine("relations probed"));
    if (!probe) {
        std::cerr << "oedit probe: " << probe.message() << "\n";
        return 1;
    }
    if (args.json) {
        printJsonWithModel(probe->toJson(), modelDir);
        return 0;
    }
    std::cout << "model " << modelDir << "\n"
              << "held-out subjects' objects predicted from the hidden state at the name's last token\n"
              << std::setw(22) << std::left << "relation" << std::right << std::setw(6) << "test";
    for (int l = 0; l < probe->layers; ++l)
        std::cout << std::setw(8) << ("L" + std::to_string(l));
    std::cout << std::setw(10) << "majority" << "\n" << std::fixed << std::setprecision(3);
    auto row = [](const std::string &name, long long test, const std::vector<double> &accuracy, double majority) {
        std::cout << std::setw(22) << std::left << name << std::right << std::setw(6) << test;
        for (double a : accuracy)
            std::cout << std::setw(8) << a;
        std::cout << std::setw(10) << majority << "\n";
    };
    long long tested = 0;
    for (const auto &relation : probe->relations) {
        row(relation.relation, relation.test, relation.accuracy, relation.majority);
        tested += relation.test;
    }
    row("all", tested, probe->accuracy, probe->majority);
    return 0;
}

} // namespace

void addTrace(Commands &commands)
{
    auto args = std::make_shared<TraceArguments>();
    CLI::App *command = commands.add(
        "trace", "Causal trace: where the model's facts are recalled (token group x layer), averaged over facts.",
        [args] { return runTrace(*args); });
    command->footer("The subject's input embeddings are corrupted with noise, then one clean hidden state or MLP "
                    "output at a time is restored; the table is the true object's mean probability.");
    command->add_option("--model", args->model, "a model folder (default: the embedded model)")->type_name("DIR");
    command->add_option("--world", args->world, "the world whose facts to trace (default: the model's own)")
        ->type_name("DIR");
    addWholeNumber(*command, "--facts", args->options.facts, "facts to trace, spread over the world (default 200)");
    const CLI::Option *samples =
        addWholeNumber(*command, "--samples", args->options.samples,
                       "noise draws per fact (default 3; with --prompt 10)");
    command->add_option("--prompt", args->prompt,
                        "trace this one prompt token by token instead (with {} where the subject goes, or the "
                        "subject written in it)")
        ->type_name("TEXT");
    command->add_option("--subject", args->subject, "with --prompt: the subject whose tokens are corrupted")
        ->type_name("S");
    command->add_option("--object", args->object, "with --prompt: the answer to trace (default: the model's own)")
        ->type_name("O");
    command->add_flag("--json", args->json, "print JSON");
    command->parse_complete_callback([args, samples] { args->samplesGiven = samples->count() > 0; });
}

void addProbe(Commands &commands)
{
    auto args = std::make_shared<ProbeArguments>();
    CLI::App *command = commands.add(
        "probe", "Linear probes: how well each relation's object can be read from the subject's name alone, per layer.",
        [args] { return runProbe(*args); });
    command->footer("A softmax regression per relation and layer, fitted on half the subjects and scored on the others.");
    command->add_option("--model", args->model, "a model folder (default: the embedded model)")->type_name("DIR");
    command->add_option("--world", args->world, "the world to probe (default: the model's own)")->type_name("DIR");
    command->add_flag("--json", args->json, "print JSON");
}

} // namespace oedit::cli
