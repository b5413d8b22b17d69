// oedit train / oedit eval-facts: build a model of a world (or of the true
// facts of an edit data set) and check it.
#include "commands.h"

#include "oedit/world_model.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <type_traits>
#include <utility>
#include <vector>

namespace oedit::cli {

namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_interrupted{false};

// A fresh directory under the system's temporary folder, removed with all it
// holds when this goes out of scope (on every return path of runTrain).
class TemporaryDirectory {
public:
    TemporaryDirectory()
    {
        std::error_code ec;
        std::string pattern = (fs::temp_directory_path(ec) / "oedit-dataset-XXXXXX").string();
        if (!ec && mkdtemp(pattern.data()))
            m_path = pattern;
    }
    ~TemporaryDirectory()
    {
        std::error_code ec;
        if (!m_path.empty())
            fs::remove_all(m_path, ec);
    }
    TemporaryDirectory(const TemporaryDirectory &) = delete;
    TemporaryDirectory &operator=(const TemporaryDirectory &) = delete;

    const std::string &path() const { return m_path; } // empty when it could not be created

private:
    std::string m_path;
};

// The rule writeDirectoryAtomically applies when the model is written, checked
// before training so a refused --out costs seconds, not the whole run.
bool outputAccepted(const std::string &outDir)
{
    std::error_code ec;
    const fs::path out(outDir);
    if (!fs::exists(out, ec))
        return true;
    if (!fs::is_directory(out, ec)) {
        std::cerr << "oedit train: --out " << outDir << " exists and is not a directory\n";
        return false;
    }
    if (!fs::is_empty(out, ec) && !fs::exists(out / "world.json", ec)) {
        std::cerr << "oedit train: refusing to replace --out " << outDir
                  << ": it is not empty and holds no earlier model or world\n";
        return false;
    }
    return true;
}

void onInterrupt(int)
{
    g_interrupted.store(true);
}

void printRecall(const FactRecallSummary &recall)
{
    std::cout << std::fixed << std::setprecision(2) << "canonical recall  " << 100.0 * recall.canonicalRate << "% of "
              << recall.facts << " facts\n"
              << "paraphrase recall " << 100.0 * recall.paraphraseRate << "% of " << recall.paraphrases
              << " paraphrase prompts\n";
    if (recall.heldOutFormPrompts > 0)
        std::cout << "held-out form     " << 100.0 * recall.heldOutFormRate << "% of " << recall.heldOutFormPrompts
                  << " prompts (a relation's last template on subjects never trained with it)\n";
    // A world from a data set has one relation per case: hundreds of rows.
    constexpr size_t kRowsShown = 40;
    for (size_t i = 0; i < recall.relations.size() && i < kRowsShown; ++i) {
        const auto &row = recall.relations[i];
        std::cout << "  " << std::left << std::setw(22) << row.relation << std::right << std::setw(6) << row.facts
                  << " facts  canonical " << std::setw(6) << 100.0 * row.canonicalRate << "%  paraphrase "
                  << std::setw(6) << 100.0 * row.paraphraseRate << "%\n";
    }
    if (recall.relations.size() > kRowsShown)
        std::cout << "  ... and " << recall.relations.size() - kRowsShown << " more relations (--json lists all)\n";
}

// The command line of `oedit train`, as parsed.
struct TrainArguments {
    std::string world, out, dataset, recipeFile;
    DatasetWorldRequest request;
    bool quiet = false;
    // Recipe values given on the command line, applied over --recipe.
    WorldModelRecipe given;
    std::vector<std::pair<const CLI::Option *, std::function<void(WorldModelRecipe &)>>> overrides;
    const CLI::Option *format = nullptr, *limit = nullptr, *vocab = nullptr;
};

// An option that sets one field of the recipe, over the --recipe file's value.
template<typename Field>
CLI::Option *addRecipeOption(CLI::App &command, TrainArguments &args, const std::string &name,
                             Field WorldModelRecipe::*field, const std::string &description)
{
    Field &target = args.given.*field;
    CLI::Option *option = nullptr;
    if constexpr (std::is_same_v<Field, std::string>)
        option = command.add_option(name, target, description);
    else if constexpr (std::is_integral_v<Field>)
        option = addWholeNumber(command, name, target, description);
    else
        option = addNumber(command, name, target, description);
    args.overrides.emplace_back(option,
                                [&args, field](WorldModelRecipe &recipe) { recipe.*field = args.given.*field; });
    return option;
}

int runTrain(const TrainArguments &args)
{
    std::string worldDir = args.world;
    const std::string &outDir = args.out, &dataset = args.dataset;
    if (worldDir.empty() == dataset.empty()) {
        std::cerr
            << "oedit train: give either --world DIR or --dataset FILE\nrun 'oedit train --help' for the options\n";
        return 2;
    }
    DatasetWorldRequest request = args.request;
    if (!dataset.empty()) {
        request.file = dataset;
        if (args.limit->count() > 0 && request.limit < 1) {
            std::cerr << "oedit train: --limit must be at least 1\n";
            return 2;
        }
        if (args.vocab->count() > 0 && (request.vocab < 257 || request.vocab > 65536)) {
            std::cerr << "oedit train: --vocab must be between 257 and 65536\n";
            return 2;
        }
    } else if (args.format->count() > 0 || args.limit->count() > 0 || args.vocab->count() > 0) {
        std::cerr << "oedit train: --format, --limit and --vocab need --dataset FILE (a world has its tokenizer)\n";
        return 2;
    }
    if (!outputAccepted(outDir))
        return 2;
    WorldModelRecipe recipe;
    if (const std::string &recipeFile = args.recipeFile; !recipeFile.empty()) {
        std::ifstream in(recipeFile);
        if (!in) {
            std::cerr << "oedit train: cannot read the recipe '" << recipeFile << "'\n";
            return 2;
        }
        std::stringstream text;
        text << in.rdbuf();
        auto parsed = WorldModelRecipe::fromJson(text.str());
        if (!parsed) {
            std::cerr << "oedit train: " << recipeFile << ": " << parsed.message() << "\n";
            return 2;
        }
        recipe = parsed.value();
    }
    for (const auto &[option, apply] : args.overrides)
        if (option->count() > 0)
            apply(recipe);
    const bool quiet = args.quiet;

    std::signal(SIGINT, onInterrupt);
    // A data set becomes a world folder in a temporary directory, which
    // trainWorldModel copies into the model folder; nothing goes to --out
    // unless the whole run succeeds.
    TemporaryDirectory scratch;
    if (!dataset.empty()) {
        if (scratch.path().empty()) {
            std::signal(SIGINT, SIG_DFL);
            std::cerr << "oedit train: cannot create a temporary directory\n";
            return 1;
        }
        worldDir = (fs::path(scratch.path()) / "world").string();
        int longest = 0;
        if (const int rc = writeDatasetWorld(request, worldDir, "train", &longest); rc != 0) {
            std::signal(SIGINT, SIG_DFL);
            return rc;
        }
        // Real prompts are longer than the synthetic world's: a fact cut into
        // windows would lose its subject, and recall could not score it.
        if (longest > recipe.maxPositions) {
            const int raised = (longest + 15) / 16 * 16;
            std::cerr << "oedit train: note: the longest fact sentence has " << longest
                      << " tokens; max_positions raised from " << recipe.maxPositions << " to " << raised << "\n";
            recipe.maxPositions = raised;
        }
    }
    int lastEpoch = 0;
    double lastReport = 0; // seconds: a line at least every 15 s and at each epoch's end
    const auto summary = trainWorldModel(worldDir, outDir, recipe, [&](const TrainingProgress &state) {
        const bool epochDone = state.sampleRecall >= 0;
        if (!quiet && (epochDone || state.seconds - lastReport >= 15)) {
            std::cerr << std::fixed << std::setprecision(3) << "epoch " << state.epoch << "/" << state.epochs
                      << "  step " << state.step << "/" << state.steps << "  loss " << state.loss << "  "
                      << std::setprecision(0) << state.tokensPerSecond << " tokens/s  " << state.seconds << " s";
            if (epochDone)
                std::cerr << std::setprecision(1) << "  recall (first facts) " << 100.0 * state.sampleRecall << "%";
            std::cerr << "\n";
            lastReport = state.seconds;
        }
        lastEpoch = state.epoch;
        return !g_interrupted.load();
    });
    std::signal(SIGINT, SIG_DFL);
    if (!summary) {
        std::cerr << "oedit train: " << summary.message() << "\n";
        return 1;
    }
    if (summary->cancelled) {
        std::cerr << "oedit train: cancelled after " << summary->steps << " steps; nothing was written to " << outDir
                  << "\n";
        return 130;
    }
    std::cout << std::fixed << std::setprecision(1) << "trained on " << summary->sentences << " sentences, "
              << summary->tokens << " tokens in " << summary->seconds << " s (" << summary->tokensPerSecond
              << " tokens/s), final loss " << std::setprecision(4) << summary->finalLoss << "\n";
    printRecall(summary->recall);
    std::cout << "model written to " << outDir << "\n";
    return 0;
}

struct EvalFactsArguments {
    std::string model, world;
    long long limit = 0;
    bool json = false;
};

int runEvalFacts(const EvalFactsArguments &args)
{
    const std::string modelDir = modelOrDefault(args.model, "eval-facts");
    if (modelDir.empty())
        return 2;
    const long long limit = args.limit;
    const auto recall = evaluateFacts(modelDir, args.world, limit);
    if (!recall) {
        std::cerr << "oedit eval-facts: " << recall.message() << "\n";
        return 1;
    }
    if (args.json) {
        printJsonWithModel(recall->toJson(), modelDir);
    } else {
        std::cout << "model " << modelDir << "\n";
        printRecall(recall.value());
    }
    return 0;
}

} // namespace

void addTrain(Commands &commands)
{
    auto args = std::make_shared<TrainArguments>();
    CLI::App *command = commands.add("train", "Train a model on a world or on the true facts of an edit data set.",
                                     [args] { return runTrain(*args); });
    command->footer("Give --world DIR or --dataset FILE. The model folder (--out) is written whole or not at all.");
    command->add_option("--world", args->world, "a world folder as 'oedit world' writes it (world files and tokenizer)")
        ->type_name("DIR");
    command
        ->add_option("--dataset", args->dataset,
                     "a CounterFact or zsRE file: the model learns its true facts and neighbourhood prompts")
        ->type_name("FILE.json");
    args->format = command
                       ->add_option("--format", args->request.format,
                                    "auto, counterfact (flat EasyEdit format), counterfact-rome or zsre (default auto)")
                       ->type_name("F");
    args->limit = addWholeNumber(*command, "--limit", args->request.limit, "only the first N cases of --dataset");
    args->vocab = addWholeNumber(*command, "--vocab", args->request.vocab,
                                 "tokenizer size for --dataset, 257..65536 (default by the data, 1000..8000)")
                      ->type_name("V");
    required(command->add_option("--out", args->out, "the model folder, written whole or not at all")->type_name("DIR"),
             "--out DIR is required");
    command->add_option("--recipe", args->recipeFile, "a training recipe (JSON); the options below override it")
        ->type_name("FILE");
    addRecipeOption(*command, *args, "--epochs", &WorldModelRecipe::epochs, "training epochs");
    addRecipeOption(*command, *args, "--hidden", &WorldModelRecipe::hidden, "hidden size");
    addRecipeOption(*command, *args, "--layers", &WorldModelRecipe::layers, "transformer layers");
    addRecipeOption(*command, *args, "--heads", &WorldModelRecipe::heads, "attention heads");
    addRecipeOption(*command, *args, "--intermediate", &WorldModelRecipe::intermediate, "MLP size");
    addRecipeOption(*command, *args, "--batch", &WorldModelRecipe::batchSize, "batch size");
    addRecipeOption(*command, *args, "--lr", &WorldModelRecipe::learningRate, "peak learning rate")->type_name("X");
    addRecipeOption(*command, *args, "--warmup", &WorldModelRecipe::warmupSteps, "warm-up steps");
    addRecipeOption(*command, *args, "--seed", &WorldModelRecipe::seed, "seed of initialisation and order");
    addRecipeOption(*command, *args, "--family", &WorldModelRecipe::family, "gpt2 or llama")->type_name("gpt2|llama");
    addRecipeOption(*command, *args, "--device", &WorldModelRecipe::device, "cpu or cuda")->type_name("DEVICE");
    command->add_flag("--quiet", args->quiet, "no progress on stderr");
}

void addEvalFacts(Commands &commands)
{
    auto args = std::make_shared<EvalFactsArguments>();
    CLI::App *command =
        commands.add("eval-facts", "How many facts of its world a model recalls (top-1, canonical and paraphrase).",
                     [args] { return runEvalFacts(*args); });
    command->add_option("--model", args->model, "a model folder (default: the embedded model)")->type_name("DIR");
    command->add_option("--world", args->world, "the world to test (default: the model's own)")->type_name("DIR");
    addWholeNumber(*command, "--limit", args->limit, "only the first N facts (default: all)");
    command->add_flag("--json", args->json, "print JSON");
}

} // namespace oedit::cli
