// `oedit world`: generates the synthetic knowledge world, trains a byte-level
// BPE tokenizer on its text and writes both into one directory, atomically.
#include "commands.h"

#include "oedit/bpe_trainer.h"
#include "oedit/world.h"

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <optional>

namespace oedit::cli {

namespace {

const char *const kWorldUsage =
    "usage: oedit world --out DIR [--preset default|mini] [--seed N] [--subjects K] [--vocab V]\n"
    "  Generates the synthetic knowledge world and a GPT-2 style BPE tokenizer\n"
    "  trained on its text, and writes world.json, general_train.txt,\n"
    "  general_heldout.txt, vocab.json and merges.txt into DIR.\n"
    "  --preset   default (600 subjects, seed 1) or mini (30 subjects); default: default\n"
    "  --seed     generator seed, 0..2^64-1 (default: the preset's)\n"
    "  --subjects number of subjects, 1..100000 (default: the preset's)\n"
    "  --vocab    tokenizer vocabulary size, 257..65536 (default: by world size,\n"
    "             3000 for the default world, 1400 for mini)\n";

std::optional<uint64_t> parseUnsigned(const std::string &text)
{
    if (text.empty() || text.size() > 20 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        const uint64_t digit = static_cast<uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

int usageError(const std::string &message)
{
    std::cerr << "oedit world: " << message << "\nrun 'oedit world --help' for the options\n";
    return 2;
}

} // namespace

int runWorld(const Args &args)
{
    std::string out, preset = "default";
    std::optional<uint64_t> seed, subjects;
    std::optional<uint64_t> vocab;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string &flag = args[i];
        if (flag == "--help" || flag == "-h") {
            std::cout << kWorldUsage;
            return 0;
        }
        if (flag != "--out" && flag != "--preset" && flag != "--seed" && flag != "--subjects" && flag != "--vocab")
            return usageError("unknown option '" + flag + "'");
        if (i + 1 >= args.size())
            return usageError(flag + " needs a value");
        const std::string &value = args[++i];
        if (flag == "--out") {
            out = value;
            continue;
        }
        if (flag == "--preset") {
            preset = value;
            continue;
        }
        const std::optional<uint64_t> number = parseUnsigned(value);
        if (!number)
            return usageError(flag + " expects a non-negative integer, not '" + value + "'");
        if (flag == "--seed")
            seed = number;
        else if (flag == "--subjects")
            subjects = number;
        else
            vocab = number;
    }
    if (out.empty())
        return usageError("--out DIR is required");
    if (subjects && (*subjects < 1 || *subjects > 100000))
        return usageError("--subjects must be between 1 and 100000");
    if (vocab && (*vocab < 257 || *vocab > 65536))
        return usageError("--vocab must be between 257 and 65536");

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

} // namespace oedit::cli
