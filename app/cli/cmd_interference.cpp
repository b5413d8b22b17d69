// oedit culprits / oedit blast-radius: the interference explorer on the
// command line (oedit/interference.h). Which edits of a run moved a fact, and
// which facts one edit hurt most.
#include "commands.h"

#include "oedit/engine.h"

#include <iomanip>
#include <iostream>
#include <memory>

namespace oedit::cli {

namespace {

struct CulpritArguments {
    std::string db;
    runs::FactQuery query;
    bool json = false;
};

int runCulprits(const CulpritArguments &args)
{
    Engine engine;
    const auto result = engine.explainFact(args.db, args.query);
    if (!result) {
        std::cerr << "oedit culprits: " << result.message() << "\n";
        return 1;
    }
    if (args.json) {
        std::cout << result->toJson() << "\n";
        return 0;
    }
    const auto &e = result.value();
    std::cout << std::fixed << std::setprecision(4) << "'" << e.text << "' -> '" << e.target << "' "
              << (e.holds ? "holds" : "is lost") << " after " << e.activeEdits << " edits of run " << e.runId
              << ": P(target) " << e.pTarget << ", P('" << e.rival << "') " << e.pRival << ", margin " << e.margin
              << " (unedited model: " << e.basePTarget << ", " << e.basePRival << ", margin " << e.baseMargin
              << ")\n\n"
              << "  step     edit  first-order  margin without  P(target) without  edit\n";
    for (const auto &c : e.culprits)
        std::cout << std::setw(6) << c.step << std::setw(9) << c.editId << std::setw(13) << c.firstOrder
                  << std::setw(16) << c.marginWithout << std::setw(19) << c.pTargetWithout << "  " << c.method
                  << ": '" << c.subject << "' '" << c.prompt << "' -> '" << c.targetNew << "'\n";
    std::cout << "\nfirst-order: the change the edit made to the margin (log P(target) - log P(rival)), ranked "
                 "most harmful first; 'without': the fact scored again with that edit removed, exactly\n";
    return 0;
}

struct BlastArguments {
    std::string db;
    long long run = 0, edit = 0;
    int top = 20;
    bool json = false;
};

int runBlast(const BlastArguments &args)
{
    Engine engine;
    const auto result = engine.blastRadius(args.db, args.run, args.edit, args.top);
    if (!result) {
        std::cerr << "oedit blast-radius: " << result.message() << "\n";
        return 1;
    }
    if (args.json) {
        std::cout << result->toJson() << "\n";
        return 0;
    }
    const auto &b = result.value();
    std::cout << "edit " << b.editId << " (step " << b.step << ", '" << b.text << "' -> '" << b.targetNew
              << "'): " << b.lost << " of " << b.factsScored << " facts recalled without it are lost with it\n\n"
              << std::fixed << std::setprecision(4) << "  P with  P without  recalled  kind   fact\n";
    for (const auto &f : b.hurt)
        std::cout << std::setw(8) << f.pWith << std::setw(11) << f.pWithout << "  " << std::setw(8)
                  << (f.recalledWith ? "yes" : f.recalledWithout ? "lost" : "no") << "  " << std::setw(5) << f.kind
                  << "  '" << f.text << "' -> '" << f.target << "'\n";
    return 0;
}

} // namespace

void addCulprits(Commands &commands)
{
    auto args = std::make_shared<CulpritArguments>();
    CLI::App *command = commands.add("culprits", "Which edits of a run moved a fact, with the fact scored without each.",
                                     [args] { return runCulprits(*args); });
    required(command->add_option("--db", args->db, "the edit ledger")->type_name("FILE"), "--db FILE is required");
    required(addWholeNumber(*command, "--run", args->query.runId, "the run")->type_name("RUN"),
             "--run RUN is required");
    required(command->add_option("--subject", args->query.subject, "the fact's subject"), "--subject is required");
    required(command->add_option("--prompt", args->query.prompt, "the prompt, with {} for the subject"),
             "--prompt is required");
    required(command->add_option("--target", args->query.target,
                                 "what the fact should say (the true object, or an earlier edit's new target)"),
             "--target is required");
    addWholeNumber(*command, "--top", args->query.exactTop, "culprits scored again without them (default 10)");
    command->add_option("--what-if", args->query.whatIf, "more edits (ids) to score the fact without")
        ->type_name("EDIT");
    command->add_flag("--json", args->json, "print JSON");
}

void addBlastRadius(Commands &commands)
{
    auto args = std::make_shared<BlastArguments>();
    CLI::App *command = commands.add("blast-radius", "The facts one edit of a run hurts most, with and without it.",
                                     [args] { return runBlast(*args); });
    required(command->add_option("--db", args->db, "the edit ledger")->type_name("FILE"), "--db FILE is required");
    required(addWholeNumber(*command, "--run", args->run, "the run")->type_name("RUN"), "--run RUN is required");
    required(addWholeNumber(*command, "--edit", args->edit, "the edit (its id, as `oedit report` lists)")
                 ->type_name("EDIT"),
             "--edit EDIT is required");
    addWholeNumber(*command, "--top", args->top, "facts listed (default 20)");
    command->add_flag("--json", args->json, "print JSON");
}

} // namespace oedit::cli
