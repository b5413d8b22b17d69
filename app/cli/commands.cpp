#include "commands.h"

#include "oedit/engine.h"
#include "oedit/world.h"
#include "oedit/world_model.h"

#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>

namespace oedit::cli {

namespace {

bool hasFlag(const Args &args, const std::string &flag)
{
    return std::find(args.begin(), args.end(), flag) != args.end();
}

// Returns the value after `flag`, or `fallback` when the flag is absent.
std::string option(const Args &args, const std::string &flag, const std::string &fallback)
{
    for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == flag)
            return args[i + 1];
    }
    return fallback;
}

// Opens --model DIR, or the embedded default when no folder is named.
bool openModelFromArgs(Engine &engine, const Args &args, const char *command)
{
    std::string directory = option(args, "--model", "");
    if (directory.empty())
        directory = Engine::defaultModelDirectory();
    if (directory.empty()) {
        std::cerr << "oedit " << command
                  << ": no --model given and the default model is not installed; pass --model DIR "
                     "(a Hugging Face model folder)\n";
        return false;
    }
    OpenOptions options;
    options.device = option(args, "--device", "cpu");
    options.dtype = option(args, "--dtype", "float32");
    const Status opened = engine.openModel(directory, options);
    if (!opened)
        std::cerr << "oedit " << command << ": " << opened.message() << "\n";
    return opened.ok();
}

nlohmann::json toJson(const ModelInfo &info)
{
    return {{"path", info.path},           {"family", info.family},         {"model_type", info.modelType},
            {"device", info.device},       {"dtype", info.dtype},           {"layers", info.layers},
            {"hidden", info.hidden},       {"heads", info.heads},           {"kv_heads", info.kvHeads},
            {"intermediate", info.intermediate}, {"vocab_size", info.vocabSize}, {"max_positions", info.maxPositions},
            {"parameters", info.parameters}, {"tokenizer", info.tokenizer}};
}

} // namespace

int runInfo(const Args &args)
{
    const bool json = hasFlag(args, "--json");
    const bool modelNamed = !option(args, "--model", "").empty();
    Engine engine;
    const std::string defaultModel = Engine::defaultModelDirectory();
    if ((modelNamed || !defaultModel.empty()) && !openModelFromArgs(engine, args, "info"))
        return 1;
    const BuildInfo build = Engine::buildInfo();
    if (json) {
        nlohmann::json out = {{"version", build.version},
                              {"libtorch", build.torchVersion},
                              {"blas", build.blas},
                              {"cuda_devices", build.cudaDeviceCount}};
        out["model"] = engine.hasModel() ? toJson(engine.modelInfo()) : nlohmann::json(nullptr);
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    const BuildInfo info = build;
    std::cout << "O-Edit Workbench " << info.version << "\n"
              << "libtorch         " << info.torchVersion << "\n"
              << "BLAS             " << info.blas << "\n"
              << "CUDA             " << (info.cudaAvailable ? std::to_string(info.cudaDeviceCount) + " device(s)" : "not available") << "\n";
    if (!engine.hasModel()) {
        std::cout << "model            none (the default model is not installed; pass --model DIR)\n";
        return 0;
    }
    const ModelInfo model = engine.modelInfo();
    std::cout << "model            " << model.path << "\n"
              << "family           " << model.family << " (" << model.modelType << ")\n"
              << "layers           " << model.layers << "\n"
              << "hidden           " << model.hidden << " (MLP " << model.intermediate << ")\n"
              << "heads            " << model.heads << " (key/value " << model.kvHeads << ")\n"
              << "vocabulary       " << model.vocabSize << "\n"
              << "positions        " << model.maxPositions << "\n"
              << "parameters       " << model.parameters << "\n"
              << "dtype            " << model.dtype << "\n"
              << "device           " << model.device << "\n"
              << "tokenizer        " << model.tokenizer << "\n";
    return 0;
}

int runPredict(const Args &args)
{
    const std::string prompt = option(args, "--prompt", "");
    if (prompt.empty()) {
        std::cerr << "oedit predict: --prompt TEXT is required\n";
        return 2;
    }
    int topK = 10;
    try {
        topK = std::stoi(option(args, "--top", "10"));
    } catch (const std::exception &) {
        std::cerr << "oedit predict: --top expects a whole number\n";
        return 2;
    }
    Engine engine;
    if (!openModelFromArgs(engine, args, "predict"))
        return 1;
    const auto prediction = engine.predict(prompt, topK, 12);
    if (!prediction) {
        std::cerr << "oedit predict: " << prediction.message() << "\n";
        return 1;
    }
    if (hasFlag(args, "--json")) {
        nlohmann::json top = nlohmann::json::array();
        for (const auto &token : prediction->top)
            top.push_back({{"token", token.text}, {"id", token.id}, {"probability", token.probability}});
        std::cout << nlohmann::json{{"prompt", prompt}, {"top", top}, {"continuation", prediction->continuation}}.dump(2)
                  << "\n";
        return 0;
    }
    std::cout << "prompt: " << prompt << "\n";
    for (const auto &token : prediction->top)
        std::cout << "  " << std::fixed << std::setprecision(4) << token.probability << "  '" << token.text << "'\n";
    std::cout << "greedy: " << prompt << prediction->continuation << "\n";
    return 0;
}

int runCheckDevice(const Args &args)
{
    const auto check = Engine::checkDevice(option(args, "--device", "cpu"));
    if (!check) {
        std::cerr << "oedit check-device: " << check.message() << "\n";
        return 1;
    }
    std::cout << "device " << check->device << ": max |error| " << std::scientific << std::setprecision(2)
              << check->maxAbsError << std::defaultfloat << ", " << std::fixed << std::setprecision(1)
              << check->gflops << " GFLOP/s (512^3 matmul)\n";
    return check->maxAbsError < 1e-3 ? 0 : 1;
}

int runDemo(const Args &args)
{
    std::cout << "== O-Edit Workbench headless demo ==\n\n";
    if (const int rc = runInfo(args))
        return rc;
    std::cout << "\n";
    if (const int rc = runCheckDevice(args))
        return rc;

    Engine engine;
    if (!openModelFromArgs(engine, args, "demo"))
        return 1;
    const std::string modelDir = engine.modelInfo().path;
    const auto world = world::loadWorld(modelDir);
    if (!world) {
        std::cout << "\n(the model folder holds no world, so there are no facts to show)\n";
        return 0;
    }
    std::cout << "\n-- what the model knows: a few facts of its world --\n";
    const auto &facts = world->facts;
    for (size_t i = 0; i < facts.size() && i < 60; i += 20) {
        const std::string prompt = world::factPrompt(world.value(), facts[i]);
        const auto prediction = engine.predict(prompt, 3, 4);
        if (!prediction) {
            std::cerr << "oedit demo: " << prediction.message() << "\n";
            return 1;
        }
        std::cout << prompt << " ->";
        for (const auto &token : prediction->top)
            std::cout << "  '" << token.text << "' " << std::fixed << std::setprecision(3) << token.probability;
        std::cout << "   (true: " << world->objectName(facts[i]) << ")\n";
    }
    std::cout << "\n-- recall on the first 300 facts (oedit eval-facts measures all) --\n";
    const auto recall = evaluateFacts(modelDir, {}, 300);
    if (!recall) {
        std::cerr << "oedit demo: " << recall.message() << "\n";
        return 1;
    }
    std::cout << std::fixed << std::setprecision(1) << "canonical " << 100.0 * recall->canonicalRate
              << "%, paraphrase " << 100.0 * recall->paraphraseRate << "%\n";

    // One edit with O-Edit+: change the first fact to another object of its relation.
    const auto &fact = facts.front();
    const auto &relation = world->relationOf(fact);
    EditSpec spec;
    spec.method = "oedit+";
    spec.subject = world->subjectName(fact);
    spec.prompt = relation.templates.front();
    spec.targetNew = relation.objects[(static_cast<size_t>(fact.object) + 1) % relation.objects.size()];
    std::cout << "\n-- one O-Edit+ edit: " << world::fillTemplate(spec.prompt, spec.subject) << " " << spec.targetNew
              << " (was " << world->objectName(fact) << ") --\n";
    const auto outcome = engine.applyEdit(spec);
    if (!outcome) {
        std::cerr << "oedit demo: " << outcome.message() << "\n";
        return 1;
    }
    for (const auto &probe : outcome->probes)
        std::cout << std::setprecision(3) << "  " << probe.kind << ": " << probe.text << "  P(" << spec.targetNew
                  << ") " << probe.newBefore << " -> " << probe.newAfter << ", P(" << probe.oldTarget << ") "
                  << probe.oldBefore << " -> " << probe.oldAfter << "\n";
    std::cout << std::setprecision(2) << "  " << (outcome->succeeded() ? "succeeded" : "did not succeed") << " in "
              << outcome->timings.total << " s; try the workbench (scripts/quickstart.sh run with a display) "
              << "or 'oedit edit --help'\n";
    return 0;
}

} // namespace oedit::cli
