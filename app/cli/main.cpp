// oedit: the command-line face of the editing engine, for scripted runs.
// Argument dispatch only; the work happens in oedit_core.
#include "commands.h"

#include "oedit/engine.h"

#include <cstring>
#include <iostream>

namespace {

struct Command {
    const char *name;
    int (*run)(const oedit::cli::Args &);
    const char *summary;
};

const Command kCommands[] = {
    {"info", oedit::cli::runInfo, "the build, the backend and a model [--model DIR] [--json]"},
    {"train", oedit::cli::runTrain,
     "train a model on a world or on a data set's true facts (--world DIR | --dataset FILE) --out DIR ..."},
    {"eval-facts", oedit::cli::runEvalFacts, "how many world facts a model recalls [--model DIR] [--json]"},
    {"edit", oedit::cli::runEdit,
     "apply one edit and show before/after --method M --subject S --prompt TEXT --target T [--json]"},
    {"predict", oedit::cli::runPredict, "top next tokens and a greedy continuation --prompt TEXT [--top K] [--json]"},
    {"check-device", oedit::cli::runCheckDevice, "run a small computation on a device [--device cpu|cuda]"},
    {"demo", oedit::cli::runDemo, "a short headless demonstration of what the engine does"},
    {"run", oedit::cli::runRun,
     "a sequential editing run kept in a ledger --db FILE --method M --edits N [--every K] (or --resume RUN)"},
    {"runs", oedit::cli::runRuns, "the runs of a ledger with status and step --db FILE [--json]"},
    {"report", oedit::cli::runReport, "a run's metrics at every checkpoint --db FILE --run RUN [--json]"},
    {"rollback", oedit::cli::runRollback,
     "revert a run --db FILE --run RUN (--to-step K | --remove-edit E | --undo EVENT)"},
    {"export", oedit::cli::runExport, "a run's weights at a step as a checkpoint --db FILE --run RUN [--step N] --out DIR"},
    {"world", oedit::cli::runWorld,
     "generate the synthetic world (or one from --dataset FILE) and its tokenizer --out DIR [--seed N] ..."},
};

void printUsage(std::ostream &out)
{
    out << "usage: oedit <command> [options]\n\ncommands:\n";
    for (const auto &command : kCommands)
        out << "  " << command.name << std::string(14 - std::strlen(command.name), ' ') << command.summary << "\n";
    out << "\n  --version     print the version\n  --help        this text\n";
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        printUsage(std::cerr);
        return 2;
    }
    const std::string name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        printUsage(std::cout);
        return 0;
    }
    if (name == "--version") {
        std::cout << "oedit " << oedit::Engine::buildInfo().version << "\n";
        return 0;
    }
    const oedit::cli::Args args(argv + 2, argv + argc);
    for (const auto &command : kCommands) {
        if (name == command.name)
            return command.run(args);
    }
    std::cerr << "oedit: unknown command '" << name << "'; run 'oedit --help' for the list\n";
    return 2;
}
