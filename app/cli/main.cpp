// oedit: the command-line face of the editing engine, for scripted runs.
// Argument parsing only (one CLI11 parser for every subcommand); the work
// happens in oedit_core.
#include "commands.h"

#include "oedit/engine.h"

#include <csignal>
#include <iostream>
#include <string>

namespace {

// The subcommand the arguments named, or nullptr (the tool itself).
const CLI::App *chosenCommand(const CLI::App &tool)
{
    const auto chosen = tool.get_subcommands();
    return chosen.empty() ? nullptr : chosen.back();
}

// A parse error as the usage error the tool prints: what was wrong, naming
// the option (or the command) and where the options are listed.
void printUsageError(const CLI::App &tool, const CLI::ParseError &error)
{
    const CLI::App *command = chosenCommand(tool);
    const std::string prefix = command ? "oedit " + command->get_name() + ": " : std::string("oedit: ");
    const std::string help = command ? "run 'oedit " + command->get_name() + " --help' for the options\n"
                                     : std::string("run 'oedit --help' for the list\n");
    std::string message = error.what();
    if (dynamic_cast<const CLI::ExtrasError *>(&error)) {
        const auto unknown = (command ? command : &tool)->remaining();
        if (!command && !unknown.empty() && unknown.front().rfind("-", 0) != 0) {
            std::cerr << "oedit: unknown command '" << unknown.front() << "'; " << help;
            return;
        }
        if (!unknown.empty())
            message = "unknown argument '" + unknown.front() + "'";
    } else if (dynamic_cast<const CLI::RequiredError *>(&error) && command) {
        for (const CLI::Option *option : command->get_options())
            if (option->get_required() && option->count() == 0 && !oedit::cli::requiredMessage(option).empty()) {
                message = oedit::cli::requiredMessage(option);
                break;
            }
    }
    std::cerr << prefix << message << "\n" << help;
}

} // namespace

int main(int argc, char **argv)
{
    // A file that outgrows the user's size limit (ulimit -f) must fail its
    // write with EFBIG, reported like a full disk, rather than kill the tool
    // in the middle of a run.
    signal(SIGXFSZ, SIG_IGN);
    CLI::App tool("oedit: sequential knowledge editing of language models, for scripts.", "oedit");
    // Every option: the last of repeated ones counts; help in one layout.
    tool.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    tool.get_formatter()->column_width(28);
    // At most one subcommand: once it is named, a value that spells another
    // one (`--dataset world`) stays a value.
    tool.require_subcommand(0, 1);
    tool.set_version_flag(
        "--version", [] { return "oedit " + oedit::Engine::buildInfo().version; }, "print the version");

    oedit::cli::Commands commands(tool);
    oedit::cli::addInfo(commands);
    oedit::cli::addTrain(commands);
    oedit::cli::addEvalFacts(commands);
    oedit::cli::addTrace(commands);
    oedit::cli::addProbe(commands);
    oedit::cli::addEdit(commands);
    oedit::cli::addPredict(commands);
    oedit::cli::addCheckDevice(commands);
    oedit::cli::addDemo(commands);
    oedit::cli::addRun(commands);
    oedit::cli::addRuns(commands);
    oedit::cli::addReport(commands);
    oedit::cli::addRollback(commands);
    oedit::cli::addExport(commands);
    oedit::cli::addMerge(commands);
    oedit::cli::addCulprits(commands);
    oedit::cli::addBlastRadius(commands);
    oedit::cli::addWorld(commands);
    tool.footer("Run 'oedit <command> --help' for a command's options.");

    if (argc < 2) {
        std::cerr << tool.help();
        return 2;
    }
    if (std::string(argv[1]) == "help") {
        std::cout << tool.help();
        return 0;
    }
    try {
        tool.parse(argc, argv);
    } catch (const CLI::CallForHelp &request) {
        return tool.exit(request);
    } catch (const CLI::CallForAllHelp &request) {
        return tool.exit(request);
    } catch (const CLI::CallForVersion &request) {
        return tool.exit(request);
    } catch (const CLI::ParseError &error) {
        printUsageError(tool, error);
        return 2;
    }
    const oedit::cli::Action *action = commands.chosen();
    if (!action) {
        std::cerr << tool.help();
        return 2;
    }
    return (*action)();
}
