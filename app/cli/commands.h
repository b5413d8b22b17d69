// Subcommands of the `oedit` tool. Each takes its arguments (after the
// subcommand name) and returns the process exit code; errors go to stderr.
#pragma once

#include <string>
#include <vector>

namespace oedit::cli {

using Args = std::vector<std::string>;

int runInfo(const Args &args);
int runCheckDevice(const Args &args);
int runDemo(const Args &args);
int runWorld(const Args &args); // cmd_world.cpp
int runPredict(const Args &args);
int runTrain(const Args &args);
int runEvalFacts(const Args &args);
int runEdit(const Args &args); // cmd_edit.cpp
int runRun(const Args &args);      // cmd_run.cpp
int runRuns(const Args &args);     // cmd_run.cpp
int runReport(const Args &args);   // cmd_run.cpp
int runRollback(const Args &args); // cmd_run.cpp
int runExport(const Args &args);   // cmd_run.cpp

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
