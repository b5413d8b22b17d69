// oedit merge: the runs of several ledgers gathered into one (a cluster
// sweep's per-task ledgers, runs made on other machines), through the merge
// facade (oedit/merge.h).
#include "commands.h"

#include "oedit/merge.h"

#include <iostream>
#include <memory>

namespace oedit::cli {

namespace {

int runMerge(const std::string &into, const std::vector<std::string> &sources, bool json)
{
    const auto result = runs::mergeLedgers(into, sources);
    if (!result) {
        std::cerr << "oedit merge: " << result.message() << "\n";
        return 1;
    }
    if (json) {
        std::cout << result->toJson() << "\n";
        return 0;
    }
    long long added = 0, present = 0;
    for (const auto &source : result->sources) {
        std::cout << source.path << ": " << source.added.size() << " runs added (" << source.edits << " edits, "
                  << source.checkpoints << " checkpoints, " << source.rollbacks << " rollbacks)";
        if (!source.alreadyPresent.empty())
            std::cout << ", " << source.alreadyPresent.size() << " already in " << into;
        std::cout << "\n";
        for (const auto &[from, to] : source.added)
            std::cout << "  run " << from << " -> run " << to << "\n";
        for (const auto &warning : source.warnings)
            std::cerr << "oedit merge: warning: " << source.path << ": " << warning << "\n";
        added += static_cast<long long>(source.added.size());
        present += static_cast<long long>(source.alreadyPresent.size());
    }
    std::cout << (result->created ? "created " : "merged into ") << into << ": " << added << " runs added, " << present
              << " already there\n";
    return 0;
}

} // namespace

void addMerge(Commands &commands)
{
    struct Arguments {
        std::string into;
        std::vector<std::string> sources;
        bool json = false;
    };
    auto args = std::make_shared<Arguments>();
    CLI::App *command = commands.add("merge", "Copy the runs of ledgers into one ledger (created if missing).",
                                     [args] { return runMerge(args->into, args->sources, args->json); });
    required(command->add_option("--into", args->into, "the ledger the runs are copied into")->type_name("FILE"),
             "--into FILE is required");
    required(command->add_option("ledgers", args->sources, "the ledgers whose runs are copied")->type_name("LEDGER"),
             "name at least one ledger to merge");
    command->add_flag("--json", args->json, "print what was merged as JSON");
    command->footer("Runs already in the target (same definition, start time and content) are skipped, so merging "
                    "again adds nothing. All or nothing: on any refusal the target is left as it was.");
}

} // namespace oedit::cli
