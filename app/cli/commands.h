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

} // namespace oedit::cli
