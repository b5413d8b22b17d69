#include "commands.h"

#include "oedit/engine.h"
#include "oedit/world.h"
#include "oedit/world_model.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

namespace oedit::cli {

CLI::App *Commands::add(const std::string &name, const std::string &description, Action action)
{
    CLI::App *command = m_tool.add_subcommand(name, description);
    m_actions.emplace_back(command, std::move(action));
    return command;
}

const Action *Commands::chosen() const
{
    for (const auto &[command, action] : m_actions)
        if (command->parsed())
            return &action;
    return nullptr;
}

std::string modelOrDefault(const std::string &given, const char *command)
{
    std::string modelDir = given.empty() ? Engine::defaultModelDirectory() : given;
    if (modelDir.empty())
        std::cerr << "oedit " << command << ": no --model given and the default model is not installed\n";
    return modelDir;
}

void printModelWarnings(const Engine &engine, const char *command)
{
    for (const auto &warning : engine.modelInfo().warnings)
        std::cerr << "oedit " << command << ": warning: " << warning << "\n";
}

void printJsonWithModel(const std::string &summaryJson, const std::string &modelDir)
{
    auto json = nlohmann::json::parse(summaryJson);
    json["model"] = modelDir;
    std::cout << json.dump(2) << "\n";
}

unsigned long long parseWholeNumber(const std::string &name, const std::string &text, unsigned long long max)
{
    unsigned long long value = 0;
    const char *end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc() || stop != end || value > max)
        throw CLI::ValidationError(
            name + " needs a whole number >= 0" +
            (error == std::errc::result_out_of_range || value > max ? " up to " + std::to_string(max) : std::string()) +
            ", not '" + text + "'");
    return value;
}

CLI::Option *addNumber(CLI::App &command, const std::string &name, double &target, const std::string &description)
{
    return command
        .add_option_function<std::string>(
            name,
            [&target, name](const std::string &text) {
                std::istringstream in(text);
                double value = 0;
                if (!(in >> value) || !in.eof())
                    throw CLI::ValidationError(name + " expects a number, not '" + text + "'");
                target = value;
            },
            description)
        ->type_name("X");
}

namespace {

std::map<const CLI::Option *, std::string> &requiredMessages()
{
    static std::map<const CLI::Option *, std::string> messages;
    return messages;
}

} // namespace

CLI::Option *required(CLI::Option *option, std::string message)
{
    requiredMessages()[option] = std::move(message);
    return option->required();
}

std::string requiredMessage(const CLI::Option *option)
{
    const auto it = requiredMessages().find(option);
    return it == requiredMessages().end() ? std::string() : it->second;
}

namespace {

// --model, --device and --dtype: the model a command opens and how.
struct ModelArguments {
    std::string directory; // empty: the embedded default model
    std::string device = "cpu";
    std::string dtype = "float32";
    bool allowNonFinite = false;
};

void addModelOptions(CLI::App &command, ModelArguments &model)
{
    command.add_flag("--allow-nonfinite", model.allowNonFinite,
                     "open a model whose weights hold NaN or infinities (refused otherwise), with a warning");
    command.add_option("--model", model.directory, "a Hugging Face model folder (default: the embedded model)")
        ->type_name("DIR");
    command.add_option("--device", model.device, "cpu, cuda or cuda:N (default cpu)")->type_name("DEVICE");
    command.add_option("--dtype", model.dtype, "float32, bfloat16 or float16 (default float32)")->type_name("DTYPE");
}

// Opens the model, or the embedded default when no folder is named.
bool openModel(Engine &engine, const ModelArguments &model, const char *command)
{
    std::string directory = model.directory;
    if (directory.empty())
        directory = Engine::defaultModelDirectory();
    if (directory.empty()) {
        std::cerr << "oedit " << command
                  << ": no --model given and the default model is not installed; pass --model DIR "
                     "(a Hugging Face model folder)\n";
        return false;
    }
    OpenOptions options;
    options.device = model.device;
    options.dtype = model.dtype;
    options.allowNonFiniteWeights = model.allowNonFinite;
    const Status opened = engine.openModel(directory, options);
    if (!opened)
        std::cerr << "oedit " << command << ": " << opened.message() << "\n";
    else
        printModelWarnings(engine, command);
    return opened.ok();
}

nlohmann::json toJson(const ModelInfo &info)
{
    return {{"path", info.path},           {"family", info.family},         {"model_type", info.modelType},
            {"device", info.device},       {"dtype", info.dtype},           {"layers", info.layers},
            {"hidden", info.hidden},       {"heads", info.heads},           {"kv_heads", info.kvHeads},
            {"intermediate", info.intermediate}, {"vocab_size", info.vocabSize}, {"max_positions", info.maxPositions},
            {"parameters", info.parameters}, {"tokenizer", info.tokenizer}, {"warnings", info.warnings}};
}

int runInfo(const ModelArguments &arguments, bool json)
{
    Engine engine;
    const std::string defaultModel = Engine::defaultModelDirectory();
    if ((!arguments.directory.empty() || !defaultModel.empty()) && !openModel(engine, arguments, "info"))
        return 1;
    const BuildInfo info = Engine::buildInfo();
    if (json) {
        nlohmann::json out = {{"version", info.version},
                              {"libtorch", info.torchVersion},
                              {"blas", info.blas},
                              {"cuda_devices", info.cudaDeviceCount}};
        out["model"] = engine.hasModel() ? toJson(engine.modelInfo()) : nlohmann::json(nullptr);
        std::cout << out.dump(2) << "\n";
        return 0;
    }
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

struct PredictArguments {
    ModelArguments model;
    std::string prompt;
    int top = 10;
    bool json = false;
};

int runPredict(const PredictArguments &args)
{
    const std::string &prompt = args.prompt;
    if (prompt.empty()) {
        std::cerr << "oedit predict: --prompt TEXT is required\n";
        return 2;
    }
    Engine engine;
    if (!openModel(engine, args.model, "predict"))
        return 1;
    const int topK = args.top;
    const auto prediction = engine.predict(prompt, topK, 12);
    if (!prediction) {
        std::cerr << "oedit predict: " << prediction.message() << "\n";
        return 1;
    }
    if (args.json) {
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

int runCheckDevice(const std::string &device)
{
    const auto check = Engine::checkDevice(device);
    if (!check) {
        std::cerr << "oedit check-device: " << check.message() << "\n";
        return 1;
    }
    std::cout << "device " << check->device << ": max |error| " << std::scientific << std::setprecision(2)
              << check->maxAbsError << std::defaultfloat << ", " << std::fixed << std::setprecision(1)
              << check->gflops << " GFLOP/s (512^3 matmul)\n";
    return check->maxAbsError < 1e-3 ? 0 : 1;
}

int runDemo(const ModelArguments &model)
{
    std::cout << "== O-Edit Workbench headless demo ==\n\n";
    if (const int rc = runInfo(model, false))
        return rc;
    std::cout << "\n";
    if (const int rc = runCheckDevice(model.device))
        return rc;

    Engine engine;
    if (!openModel(engine, model, "demo"))
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

} // namespace

void addInfo(Commands &commands)
{
    struct Arguments {
        ModelArguments model;
        bool json = false;
    };
    auto args = std::make_shared<Arguments>();
    CLI::App *command = commands.add("info", "The build, the backend and a model (by default the embedded one).",
                                     [args] { return runInfo(args->model, args->json); });
    addModelOptions(*command, args->model);
    command->add_flag("--json", args->json, "print JSON");
}

void addPredict(Commands &commands)
{
    auto args = std::make_shared<PredictArguments>();
    CLI::App *command = commands.add("predict", "Top next tokens and a greedy continuation of a prompt.",
                                     [args] { return runPredict(*args); });
    required(command->add_option("--prompt", args->prompt, "the text to continue")->type_name("TEXT"),
             "--prompt TEXT is required");
    addWholeNumber(*command, "--top", args->top, "how many next tokens to show (default 10)")->type_name("K");
    addModelOptions(*command, args->model);
    command->add_flag("--json", args->json, "print JSON");
}

void addCheckDevice(Commands &commands)
{
    auto device = std::make_shared<std::string>("cpu");
    CLI::App *command = commands.add("check-device", "Run a small computation (a 512^3 matmul) on a device.",
                                     [device] { return runCheckDevice(*device); });
    command->add_option("--device", *device, "cpu, cuda or cuda:N (default cpu)")->type_name("DEVICE");
}

void addDemo(Commands &commands)
{
    auto model = std::make_shared<ModelArguments>();
    CLI::App *command = commands.add("demo", "A short headless demonstration of what the engine does.",
                                     [model] { return runDemo(*model); });
    addModelOptions(*command, *model);
}

} // namespace oedit::cli
