// `oedit world`: generates the synthetic knowledge world (or builds one from
// a real editing data set), trains a byte-level BPE tokenizer on its text and
// writes both into one directory, atomically.
#include "commands.h"

#include "oedit/bpe_trainer.h"
#include "oedit/dataset_world.h"
#include "oedit/datasets.h"
#include "oedit/world.h"

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>

namespace oedit::cli {

namespace {

int usageError(const std::string &message)
{
    std::cerr << "oedit world: " << message << "\nrun 'oedit world --help' for the options\n";
    return 2;
}

// Notes beyond this many are counted, not printed: a whole CounterFact file
// gives about a hundred.
constexpr size_t kNotesShown = 8;

} // namespace

int writeDatasetWorld(const DatasetWorldRequest &request, const std::string &dir, const char *command,
                      int *longestSentenceTokens)
{
    const std::string prefix = std::string("oedit ") + command + ": ";
    // "counterfact" is the format most files come in (EasyEdit's flat one).
    const Expected<world::DatasetFormat> format =
        world::parseDatasetFormat(request.format == "counterfact" ? "counterfact-flat" : request.format);
    if (!format) {
        std::cerr << prefix << "--format: " << format.message() << "\n";
        return 2;
    }
    Expected<std::vector<world::EditCase>> cases = world::loadEditCases(request.file, format.value());
    if (!cases) {
        std::cerr << prefix << cases.message() << "\n";
        return 1;
    }
    std::vector<world::EditCase> &selected = cases.value();
    const size_t total = selected.size();
    if (request.limit > 0 && selected.size() > static_cast<size_t>(request.limit))
        selected.resize(static_cast<size_t>(request.limit));

    world::DatasetWorldReport report;
    const Expected<world::World> built = world::worldFromEditCases(selected, request.file, &report);
    if (!built) {
        std::cerr << prefix << built.message() << "\n";
        return 1;
    }
    for (size_t i = 0; i < report.notes.size() && i < kNotesShown; ++i)
        std::cerr << prefix << "note: " << report.notes[i] << "\n";
    if (report.notes.size() > kNotesShown)
        std::cerr << prefix << "note: ... and " << report.notes.size() - kNotesShown << " more\n";

    const world::World &w = built.value();
    const int vocabSize = request.vocab > 0 ? request.vocab : world::suggestedDatasetVocabSize(w);
    const Expected<world::BpeModel> bpe = world::trainByteLevelBpe(world::tokenizerCorpus(w), vocabSize);
    if (!bpe) {
        std::cerr << prefix << bpe.message() << "\n";
        return 1;
    }
    const Status written = world::writeDirectoryAtomically(dir, [&](const std::string &tmp) {
        if (Status status = world::writeWorldFiles(w, tmp); !status)
            return status;
        return world::writeBpeFiles(bpe.value(), tmp);
    });
    if (!written) {
        std::cerr << prefix << written.message() << "\n";
        return 1;
    }

    // Token counts tell whether the model's context holds every sentence and
    // whether objects stayed whole.
    world::BpeEncoder encoder(bpe.value());
    size_t longest = 0, templates = 0, objectTokens = 0, singleTokenObjects = 0;
    // Facts only: longer general text is cut into windows, which costs a
    // neighbour line little, but a fact cut in two loses its subject.
    for (const std::string &sentence : world::trainingSentences(w, false))
        longest = std::max(longest, encoder.encode(sentence).size() + 1); // + <|endoftext|>
    for (const world::Relation &relation : w.relations)
        templates += relation.templates.size();
    for (const world::Fact &fact : w.facts) {
        const size_t n = encoder.encode(" " + w.objectName(fact)).size();
        objectTokens += n;
        singleTokenObjects += n == 1;
    }
    if (longestSentenceTokens)
        *longestSentenceTokens = static_cast<int>(longest);
    std::cout << std::fixed << std::setprecision(2) << "dataset     " << request.file << " ("
              << world::datasetFormatName(format.value()) << "): " << selected.size() << " of " << total << " cases -> "
              << report.facts << " facts (" << report.skippedCases << " skipped), " << w.subjects.size()
              << " subjects, " << templates << " templates, " << w.generalTrain.size() << " neighbourhood lines\n";
    std::cout << "tokenizer   vocab " << bpe->vocab.size() << "; " << singleTokenObjects << "/" << w.facts.size()
              << " true objects are one token ("
              << static_cast<double>(objectTokens) / static_cast<double>(std::max<size_t>(1, w.facts.size()))
              << " tokens each); longest fact sentence " << longest << " tokens\n";
    return 0;
}

namespace {

// The command line of `oedit world`, as parsed.
struct WorldArguments {
    std::string out, preset = "default", dataset, format = "auto";
    uint64_t seed = 0, subjects = 0, limit = 0, vocab = 0;
    const CLI::Option *presetOption = nullptr, *seedOption = nullptr, *subjectsOption = nullptr, *limitOption = nullptr,
                      *vocabOption = nullptr;
};

int runWorld(const WorldArguments &args)
{
    const std::string &out = args.out, &preset = args.preset, &dataset = args.dataset, &format = args.format;
    const bool presetGiven = args.presetOption->count() > 0;
    const auto given = [](const CLI::Option *option, uint64_t value) {
        return option->count() > 0 ? std::optional<uint64_t>(value) : std::nullopt;
    };
    const std::optional<uint64_t> seed = given(args.seedOption, args.seed),
                                  subjects = given(args.subjectsOption, args.subjects),
                                  limit = given(args.limitOption, args.limit),
                                  vocab = given(args.vocabOption, args.vocab);
    if (subjects && (*subjects < 1 || *subjects > 100000))
        return usageError("--subjects must be between 1 and 100000");
    if (vocab && (*vocab < 257 || *vocab > 65536))
        return usageError("--vocab must be between 257 and 65536");
    if (!dataset.empty()) {
        if (presetGiven || seed || subjects)
            return usageError("--preset, --seed and --subjects describe the synthetic world, not --dataset");
        if (limit && *limit < 1)
            return usageError("--limit must be at least 1");
        DatasetWorldRequest request;
        request.file = dataset;
        request.format = format;
        request.limit = limit ? static_cast<long long>(std::min<uint64_t>(*limit, INT64_MAX)) : 0;
        request.vocab = vocab ? static_cast<int>(*vocab) : 0;
        const int rc = writeDatasetWorld(request, out, "world");
        if (rc == 0)
            std::cout << "wrote       " << out
                      << ": world.json general_train.txt general_heldout.txt vocab.json merges.txt\n";
        return rc;
    }
    if (format != "auto" || limit)
        return usageError("--format and --limit need --dataset FILE");

    Expected<world::WorldOptions> options = world::worldPreset(preset);
    if (!options)
        return usageError(options.message());
    if (seed)
        options.value().seed = *seed;
    if (subjects)
        options.value().subjects = static_cast<int>(*subjects);

    Expected<world::World> generated = world::generateWorld(options.value());
    if (!generated) {
        std::cerr << "oedit world: " << generated.message() << "\n";
        return 1;
    }
    const world::World &w = generated.value();
    const int vocabSize = vocab ? static_cast<int>(*vocab) : world::suggestedVocabSize(w.options);
    Expected<world::BpeModel> bpe = world::trainByteLevelBpe(world::tokenizerCorpus(w), vocabSize);
    if (!bpe) {
        std::cerr << "oedit world: " << bpe.message() << "\n";
        return 1;
    }
    const Status written = world::writeDirectoryAtomically(out, [&](const std::string &dir) {
        if (Status status = world::writeWorldFiles(w, dir); !status)
            return status;
        return world::writeBpeFiles(bpe.value(), dir);
    });
    if (!written) {
        std::cerr << "oedit world: " << written.message() << "\n";
        return 1;
    }

    // Subject names mostly follow a space inside a prompt ("The mother tongue
    // of X is"), so they are measured as " X".
    world::BpeEncoder encoder(bpe.value());
    size_t nameTokens = 0, minTokens = SIZE_MAX, maxTokens = 0;
    for (const world::Subject &subject : w.subjects) {
        const size_t n = encoder.encode(" " + subject.name).size();
        nameTokens += n;
        minTokens = std::min(minTokens, n);
        maxTokens = std::max(maxTokens, n);
    }
    size_t factNameTokens = 0;
    for (const world::Fact &fact : w.facts)
        factNameTokens += encoder.encode(" " + w.subjectName(fact)).size();
    size_t objects = 0, singleTokenObjects = 0;
    for (const world::Relation &relation : w.relations)
        for (const std::string &object : relation.objects) {
            ++objects;
            singleTokenObjects += encoder.encode(" " + object).size() == 1;
        }
    size_t templates = 0, trainBytes = 0, heldoutBytes = 0;
    for (const world::Relation &relation : w.relations)
        templates += relation.templates.size();
    for (const std::string &line : w.generalTrain)
        trainBytes += line.size() + 1;
    for (const std::string &line : w.generalHeldout)
        heldoutBytes += line.size() + 1;

    std::cout << std::fixed << std::setprecision(2);
    std::cout << "world       seed " << w.options.seed << ": " << w.subjects.size() << " subjects (" << w.kinds.size()
              << " kinds), " << w.relations.size() << " relations (" << templates << " templates), " << w.facts.size()
              << " facts\n";
    std::cout << "general     " << w.generalTrain.size() << " train lines (" << trainBytes / 1024 << " KiB), "
              << w.generalHeldout.size() << " held-out lines (" << heldoutBytes / 1024 << " KiB)\n";
    std::cout << "tokenizer   vocab " << bpe->vocab.size() << " (" << bpe->merges.size() << " merges); tokens per name "
              << static_cast<double>(nameTokens) / static_cast<double>(std::max<size_t>(1, w.subjects.size()))
              << " per subject (" << minTokens << "-" << maxTokens << "), "
              << static_cast<double>(factNameTokens) / static_cast<double>(std::max<size_t>(1, w.facts.size()))
              << " per fact; " << singleTokenObjects << "/" << objects << " objects are one token\n";
    std::cout << "wrote       " << out << ": world.json general_train.txt general_heldout.txt vocab.json merges.txt\n";
    return 0;
}

} // namespace

void addWorld(Commands &commands)
{
    auto args = std::make_shared<WorldArguments>();
    CLI::App *command =
        commands.add("world", "Generate the synthetic knowledge world (or one from a data set) and its tokenizer.",
                     [args] { return runWorld(*args); });
    command->footer("Generates the synthetic world, or builds one from the true facts of a CounterFact or zsRE\n"
                    "file (--dataset), trains a GPT-2 style BPE tokenizer on its text and writes world.json,\n"
                    "general_train.txt, general_heldout.txt, vocab.json and merges.txt into --out DIR, atomically.");
    required(command->add_option("--out", args->out, "the world folder to write")->type_name("DIR"),
             "--out DIR is required");
    args->presetOption =
        command->add_option("--preset", args->preset, "default (600 subjects, seed 1), shared-names (the same, names made of shared parts) or mini (30 subjects)")
            ->type_name("default|shared-names|mini");
    args->seedOption =
        addWholeNumber(*command, "--seed", args->seed, "generator seed, 0..2^64-1 (default: the preset's)");
    args->subjectsOption =
        addWholeNumber(*command, "--subjects", args->subjects, "number of subjects, 1..100000 (default: the preset's)")
            ->type_name("K");
    command
        ->add_option("--dataset", args->dataset,
                     "a CounterFact or zsRE file: one fact per case, its neighbourhood prompts as general text")
        ->type_name("FILE.json");
    command
        ->add_option("--format", args->format,
                     "auto, counterfact (flat EasyEdit format), counterfact-rome or zsre (default auto)")
        ->type_name("F");
    args->limitOption = addWholeNumber(*command, "--limit", args->limit, "only the first N cases of the data set");
    args->vocabOption = addWholeNumber(*command, "--vocab", args->vocab,
                                       "tokenizer size, 257..65536 (default: 3000, mini 1400, a data set 1000..8000)")
                            ->type_name("V");
}

} // namespace oedit::cli
