#include "oedit/world_model.h"

#include "eval/fact_recall.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/world.h"
#include "train/lm_trainer.h"
#include "train/loaded_world_model.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace oedit {

namespace fs = std::filesystem;

namespace {

const char *const kTokenizerFiles[] = {"vocab.json", "merges.txt", "tokenizer.json"};
constexpr int64_t kRecallSample = 300;
const char *const kWorldFiles[] = {"world.json", "general_train.txt", "general_heldout.txt"};

// Whether a model of `recipe` was trained on biographies that kept each
// relation's held-out form from half the subjects. Otherwise every form was
// trained and there is no held-out figure to report.
bool heldOutFormApplies(const WorldModelRecipe &recipe)
{
    return recipe.text == "biographies" && recipe.heldOutForm;
}

FactRecallSummary summarise(const eval::FactRecall &recall, bool reportHeldOutForm)
{
    FactRecallSummary summary;
    summary.facts = recall.facts;
    summary.canonicalRecalled = recall.canonicalRecalled;
    summary.paraphrases = recall.paraphrases;
    summary.paraphrasesRecalled = recall.paraphrasesRecalled;
    summary.canonicalRate = recall.canonicalRate();
    summary.paraphraseRate = recall.paraphraseRate();
    if (reportHeldOutForm) {
        summary.heldOutFormPrompts = recall.heldOutForm;
        summary.heldOutFormRecalled = recall.heldOutFormRecalled;
        summary.heldOutFormRate = recall.heldOutFormRate();
    }
    for (const auto &relation : recall.relations) {
        if (!relation.facts)
            continue;
        summary.relations.push_back(
            {relation.relation, relation.facts, double(relation.canonicalRecalled) / double(relation.facts),
             relation.paraphrases ? double(relation.paraphrasesRecalled) / double(relation.paraphrases) : 0.0});
    }
    summary.canonicalMisses = recall.canonicalMisses;
    return summary;
}

model::ModelConfig configFor(const WorldModelRecipe &recipe, const model::Tokenizer &tokenizer)
{
    model::ModelConfig config;
    if (recipe.family == "gpt2") {
        config.family = model::Family::Gpt2;
        config.modelType = "gpt2";
        config.activation = "gelu_new";
        config.tiedHead = true;
        config.normEps = 1e-5;
    } else if (recipe.family == "llama") {
        config.family = model::Family::Llama;
        config.modelType = "llama";
        config.activation = "silu";
        config.tiedHead = false;
        config.normEps = 1e-6;
    } else {
        throw std::runtime_error("unknown model family '" + recipe.family + "' in the recipe: use gpt2 or llama");
    }
    config.vocabSize = tokenizer.vocabSize();
    config.hidden = recipe.hidden;
    config.layers = recipe.layers;
    config.heads = recipe.heads;
    config.kvHeads = recipe.heads;
    config.intermediate = recipe.intermediate;
    config.maxPositions = recipe.maxPositions;
    config.torchDtype = "float32";
    if (tokenizer.eosId()) {
        config.eosTokenId = *tokenizer.eosId();
        config.bosTokenId = *tokenizer.eosId();
    }
    return config;
}

std::vector<std::string> trainingText(const world::World &world, const WorldModelRecipe &recipe)
{
    if (recipe.text == "templates")
        return world::trainingSentences(world);
    return world::biographyTrainingText(world, {recipe.passagesPerSubject, recipe.heldOutForm, recipe.attributeLists});
}

} // namespace

std::string FactRecallSummary::toJson() const
{
    nlohmann::json rows = nlohmann::json::array();
    for (const auto &row : relations)
        rows.push_back({{"relation", row.relation},
                        {"facts", row.facts},
                        {"canonical_recall", row.canonicalRate},
                        {"paraphrase_recall", row.paraphraseRate}});
    return nlohmann::json{{"facts", facts},
                          {"canonical_recalled", canonicalRecalled},
                          {"canonical_recall", canonicalRate},
                          {"paraphrase_prompts", paraphrases},
                          {"paraphrase_recalled", paraphrasesRecalled},
                          {"paraphrase_recall", paraphraseRate},
                          {"held_out_form_prompts", heldOutFormPrompts},
                          {"held_out_form_recalled", heldOutFormRecalled},
                          {"held_out_form_recall", heldOutFormRate},
                          {"relations", rows},
                          {"canonical_misses", canonicalMisses}}
        .dump(2);
}

std::string WorldModelRecipe::toJson() const
{
    return nlohmann::json{{"family", family},
                          {"hidden", hidden},
                          {"layers", layers},
                          {"heads", heads},
                          {"intermediate", intermediate},
                          {"max_positions", maxPositions},
                          {"epochs", epochs},
                          {"batch_size", batchSize},
                          {"learning_rate", learningRate},
                          {"final_learning_rate_fraction", finalLearningRateFraction},
                          {"warmup_steps", warmupSteps},
                          {"weight_decay", weightDecay},
                          {"seed", seed},
                          {"device", device},
                          {"text", text},
                          {"passages_per_subject", passagesPerSubject},
                          {"held_out_form", heldOutForm},
                          {"attribute_lists", attributeLists}}
        .dump(2);
}

Expected<WorldModelRecipe> WorldModelRecipe::fromJson(const std::string &text)
{
    try {
        const auto json = nlohmann::json::parse(text);
        WorldModelRecipe recipe;
        recipe.family = json.value("family", recipe.family);
        recipe.hidden = json.value("hidden", recipe.hidden);
        recipe.layers = json.value("layers", recipe.layers);
        recipe.heads = json.value("heads", recipe.heads);
        recipe.intermediate = json.value("intermediate", recipe.intermediate);
        recipe.maxPositions = json.value("max_positions", recipe.maxPositions);
        recipe.epochs = json.value("epochs", recipe.epochs);
        recipe.batchSize = json.value("batch_size", recipe.batchSize);
        recipe.learningRate = json.value("learning_rate", recipe.learningRate);
        recipe.finalLearningRateFraction = json.value("final_learning_rate_fraction", recipe.finalLearningRateFraction);
        recipe.warmupSteps = json.value("warmup_steps", recipe.warmupSteps);
        recipe.weightDecay = json.value("weight_decay", recipe.weightDecay);
        recipe.seed = json.value("seed", recipe.seed);
        recipe.device = json.value("device", recipe.device);
        recipe.text = json.value("text", recipe.text);
        recipe.passagesPerSubject = json.value("passages_per_subject", recipe.passagesPerSubject);
        recipe.heldOutForm = json.value("held_out_form", recipe.heldOutForm);
        recipe.attributeLists = json.value("attribute_lists", recipe.attributeLists);
        if (recipe.text != "biographies" && recipe.text != "templates")
            return Status::failure("the recipe's \"text\" is '" + recipe.text +
                                   "': use \"biographies\" or \"templates\"");
        if (recipe.passagesPerSubject < 1 || recipe.passagesPerSubject > 1000)
            return Status::failure("the recipe's \"passages_per_subject\" must be between 1 and 1000, not " +
                                   std::to_string(recipe.passagesPerSubject));
        return recipe;
    } catch (const std::exception &e) {
        return Status::failure(std::string("the recipe is not valid JSON of the expected shape: ") + e.what());
    }
}

Expected<TrainingSummary> trainWorldModel(const std::string &worldDir, const std::string &outDir,
                                          const WorldModelRecipe &recipe,
                                          const std::function<bool(const TrainingProgress &)> &progress)
{
    try {
        auto world = world::loadWorld(worldDir);
        if (!world)
            return world.status();
        std::unique_ptr<model::Tokenizer> tokenizer;
        try {
            tokenizer = model::loadTokenizer(worldDir);
        } catch (const std::exception &e) {
            return Status::failure("the world folder '" + worldDir + "' has no usable tokenizer (" + e.what() +
                                   "); create worlds with 'oedit world', which writes one");
        }
        if (!tokenizer->eosId())
            return Status::failure("the world's tokenizer has no end-of-text token (<|endoftext|>)");

        const int64_t endOfText = *tokenizer->eosId();
        std::vector<std::vector<int64_t>> sequences;
        for (const auto &sentence : trainingText(world.value(), recipe)) {
            auto ids = tokenizer->encode(sentence);
            ids.push_back(endOfText);
            // Long lines of general text are cut into windows the model can see.
            for (size_t start = 0; start < ids.size(); start += static_cast<size_t>(recipe.maxPositions)) {
                const size_t end = std::min(ids.size(), start + static_cast<size_t>(recipe.maxPositions));
                if (end - start >= 2)
                    sequences.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(start),
                                           ids.begin() + static_cast<std::ptrdiff_t>(end));
            }
        }

        torch::manual_seed(recipe.seed);
        const auto config = configFor(recipe, *tokenizer);
        model::Transformer transformer(config, model::initialWeights(config, recipe.seed));
        transformer.to(torch::Device(recipe.device), torch::kFloat32);

        train::TrainOptions options;
        options.epochs = recipe.epochs;
        options.batchSize = recipe.batchSize;
        options.learningRate = recipe.learningRate;
        options.finalLearningRateFraction = recipe.finalLearningRateFraction;
        options.warmupSteps = recipe.warmupSteps;
        options.weightDecay = recipe.weightDecay;
        options.seed = recipe.seed;
        const int64_t stepsPerEpoch =
            (static_cast<int64_t>(sequences.size()) + recipe.batchSize - 1) / std::max(1, recipe.batchSize);
        const auto report = train::trainLanguageModel(
            transformer, sequences, endOfText, options, [&](const train::TrainProgress &state) {
                if (!progress)
                    return true;
                TrainingProgress out;
                out.epoch = state.epoch;
                out.epochs = state.epochs;
                out.step = state.step;
                out.steps = state.steps;
                out.loss = state.loss;
                out.tokensPerSecond = state.tokensPerSecond;
                out.seconds = state.seconds;
                if (state.step % stepsPerEpoch == 0)
                    out.sampleRecall =
                        eval::evaluateFactRecall(transformer, *tokenizer, world.value(), 128, kRecallSample)
                            .canonicalRate();
                return progress(out);
            });

        TrainingSummary summary;
        summary.cancelled = report.cancelled;
        summary.steps = report.steps;
        summary.tokens = report.tokens;
        summary.sentences = static_cast<long long>(sequences.size());
        summary.finalLoss = report.finalLoss;
        summary.seconds = report.seconds;
        summary.tokensPerSecond = report.tokens / std::max(1e-9, report.seconds);
        if (report.cancelled)
            return summary; // nothing is written for a cancelled run

        summary.recall =
            summarise(eval::evaluateFactRecall(transformer, *tokenizer, world.value()), heldOutFormApplies(recipe));
        const Status written = world::writeDirectoryAtomically(outDir, [&](const std::string &dir) {
            try {
                transformer.to(torch::kCPU, torch::kFloat32);
                model::saveCheckpoint(dir, config, transformer.weights(), torch::kFloat32);
                for (const auto *files : {&kTokenizerFiles, &kWorldFiles}) {
                    for (const char *name : *files) {
                        if (fs::exists(fs::path(worldDir) / name))
                            fs::copy_file(fs::path(worldDir) / name, fs::path(dir) / name);
                    }
                }
                std::ofstream(fs::path(dir) / "recipe.json") << recipe.toJson() << "\n";
                nlohmann::json training = {{"steps", summary.steps},
                                           {"tokens", summary.tokens},
                                           {"sentences", summary.sentences},
                                           {"final_loss", summary.finalLoss},
                                           {"seconds", summary.seconds},
                                           {"tokens_per_second", summary.tokensPerSecond},
                                           {"recall", nlohmann::json::parse(summary.recall.toJson())}};
                std::ofstream(fs::path(dir) / "training.json") << training.dump(2) << "\n";
                return Status::success();
            } catch (const std::exception &e) {
                return Status::failure(std::string("writing the model failed: ") + e.what());
            }
        });
        if (!written)
            return written;
        return summary;
    } catch (const std::exception &e) {
        return Status::failure(std::string("training failed: ") + e.what());
    }
}

Expected<LoadedWorldModel> loadWorldModel(const std::string &modelDir, const std::string &worldDir)
{
    auto world = world::loadWorld(worldDir.empty() ? modelDir : worldDir);
    if (!world)
        return Status::failure(world.message() +
                               (worldDir.empty() ? " (the model folder holds no world; pass --world DIR)" : ""));
    LoadedWorldModel loaded;
    loaded.world = std::move(world.value());
    loaded.tokenizer = model::loadTokenizer(modelDir);
    loaded.transformer = std::make_unique<model::Transformer>(model::loadModelConfig(modelDir),
                                                              model::loadStateDict(modelDir, torch::kFloat32));
    return loaded;
}

Expected<FactRecallSummary> evaluateFacts(const std::string &modelDir, const std::string &worldDir, long long limit,
                                          const ProgressFn &progress)
{
    try {
        auto loaded = loadWorldModel(modelDir, worldDir);
        if (!loaded)
            return loaded.status();
        // The held-out form counts only for a model whose recipe held it out,
        // and only on the world it was trained on.
        bool applies = false;
        if (worldDir.empty()) {
            std::ifstream recipeFile(fs::path(modelDir) / "recipe.json");
            std::stringstream recipeText;
            recipeText << recipeFile.rdbuf();
            const auto recipe = WorldModelRecipe::fromJson(recipeText.str());
            applies = recipeFile.is_open() && recipe && heldOutFormApplies(recipe.value());
        }
        torch::NoGradGuard noGrad;
        const LoadedWorldModel &model = loaded.value();
        return summarise(
            eval::evaluateFactRecall(*model.transformer, *model.tokenizer, model.world, 128, limit, progress),
            applies);
    } catch (const std::exception &e) {
        return Status::failure("cannot evaluate '" + modelDir + "': " + e.what());
    }
}

} // namespace oedit
