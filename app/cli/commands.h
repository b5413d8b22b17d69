// Subcommands of the `oedit` tool, declared on one CLI11 parser so that every
// subcommand has the same help layout and the same usage errors.
//
// Each add* function declares one subcommand: its options, bound to state its
// action owns, and the action that runs once the arguments have been parsed.
// An action returns the process exit code: 0; 1 when the work itself fails;
// 2 for bad usage the parser cannot see (a combination of options). Errors go
// to stderr as "oedit <command>: ...". The parser itself refuses unknown
// options, missing values and malformed numbers with exit code 2 (main.cpp).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace oedit {
class Engine;
}

namespace oedit::cli {

// What a subcommand does once its arguments are parsed; returns the exit code.
using Action = std::function<int()>;

// The tool's parser and the action of each of its subcommands.
class Commands {
public:
    explicit Commands(CLI::App &tool) : m_tool(tool) {}

    // A new subcommand of the tool; `action` runs when it is the one chosen.
    CLI::App *add(const std::string &name, const std::string &description, Action action);

    // The action of the subcommand that was parsed; nullptr when none was.
    const Action *chosen() const;

private:
    CLI::App &m_tool;
    std::vector<std::pair<const CLI::App *, Action>> m_actions;
};

void addInfo(Commands &commands);        // commands.cpp
void addPredict(Commands &commands);     // commands.cpp
void addCheckDevice(Commands &commands); // commands.cpp
void addDemo(Commands &commands);        // commands.cpp
void addTrain(Commands &commands);       // cmd_train.cpp
void addEvalFacts(Commands &commands);   // cmd_train.cpp
void addWorld(Commands &commands);       // cmd_world.cpp
void addTrace(Commands &commands);       // cmd_trace.cpp
void addProbe(Commands &commands);       // cmd_trace.cpp
void addEdit(Commands &commands);        // cmd_edit.cpp
void addRun(Commands &commands);         // cmd_run.cpp
void addRuns(Commands &commands);        // cmd_run.cpp
void addReport(Commands &commands);      // cmd_run.cpp
void addRollback(Commands &commands);    // cmd_run.cpp
void addExport(Commands &commands);      // cmd_run.cpp
void addMerge(Commands &commands);       // cmd_merge.cpp
void addCulprits(Commands &commands);    // cmd_interference.cpp
void addBlastRadius(Commands &commands); // cmd_interference.cpp

// Option helpers shared by the subcommands (commands.cpp). Each returns the
// option, for ->type_name() and the like.

// The value of option `name` as a whole decimal number from 0 to `max` ("010"
// is ten, not octal); throws CLI::ValidationError naming the option otherwise.
// The model folder a command works on: `given`, else the embedded default
// model's; empty (with a message naming `command` on stderr) when neither.
std::string modelOrDefault(const std::string &given, const char *command);
// Prints what the open model's load let through (ModelInfo::warnings) on stderr.
void printModelWarnings(const Engine &engine, const char *command);
// Prints a facade summary's JSON with the model folder it came from added.
void printJsonWithModel(const std::string &summaryJson, const std::string &modelDir);

unsigned long long parseWholeNumber(const std::string &name, const std::string &text, unsigned long long max);

// A whole decimal number >= 0 into `target`; the parser refuses anything else
// with a usage error naming the option.
template<typename Integer>
CLI::Option *addWholeNumber(CLI::App &command, const std::string &name, Integer &target, const std::string &description)
{
    static_assert(std::is_integral_v<Integer>, "a whole number option needs an integer");
    return command
        .add_option_function<std::string>(
            name,
            [&target, name](const std::string &text) {
                target = static_cast<Integer>(parseWholeNumber(name, text, std::numeric_limits<Integer>::max()));
            },
            description)
        ->type_name("N");
}
// A decimal number (e.g. a learning rate) into `target`.
CLI::Option *addNumber(CLI::App &command, const std::string &name, double &target, const std::string &description);

// Marks `option` required; when it is missing the usage error says `message`
// (e.g. "--db FILE is required") instead of the parser's wording.
CLI::Option *required(CLI::Option *option, std::string message);
// The message `required` registered for `option`; empty when none.
std::string requiredMessage(const CLI::Option *option);

// A world built from an edit data set, for `oedit world --dataset` and
// `oedit train --dataset` (cmd_world.cpp).
struct DatasetWorldRequest {
    std::string file;
    std::string format = "auto"; // auto, counterfact (= counterfact-flat), counterfact-rome, zsre
    long long limit = 0;         // > 0: only the first `limit` cases
    int vocab = 0;               // tokenizer size; 0: world::suggestedDatasetVocabSize
};

// Loads the data set, builds its world and BPE tokenizer and writes them
// (world files, vocab.json, merges.txt) into `dir` through a temporary
// directory. Prints a summary to stdout; notes and errors go to stderr as
// "oedit <command>: ...". Returns 0; 2 for an unknown format; 1 for bad data
// or a failed write, with nothing written to `dir`. `longestSentenceTokens`
// receives the length in tokens of the longest fact sentence ("prompt
// object."), end-of-text token included.
int writeDatasetWorld(const DatasetWorldRequest &request, const std::string &dir, const char *command,
                      int *longestSentenceTokens = nullptr);

} // namespace oedit::cli
