// oedit edit: apply one edit to a model and show what it did (probabilities
// of the new and the old target before and after, greedy continuations,
// diagnostics and timings). Without --db the edited weights are not written
// anywhere: this is for trying an edit. With --db the edit is recorded in the
// edit ledger as a run of data set "manual" (a new one, or --run ID continued
// on top of its active edits), where oedit report/rollback/export see it.
#include "commands.h"

#include "oedit/editing.h"
#include "oedit/engine.h"
#include "oedit/probe_counts.h"
#include "oedit/runs.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include <unistd.h>

namespace oedit::cli {

namespace {

const char *const kEditNotes =
    "Shows P(new) and P(old) before and after on the prompt, a paraphrase and a neighbour, greedy\n"
    "continuations, diagnostics and timings. O-Edit on MEMIT: --method oedit --hparams '{\"base\": \"memit\"}'.\n"
    "Without --db the edit is applied to the weights in memory only; nothing is written.";

// The command line of `oedit edit`, as parsed.
struct EditArguments {
    std::string model, method, subject, prompt, target, trueTarget, hparams, statsText, device, dtype, db, run;
    bool allowNonFinite = false;
    bool allowUnfamiliarTarget = false;
    bool json = false;
};

std::atomic<bool> g_interrupted{false};

void onInterrupt(int)
{
    g_interrupted.store(true);
}

// --hparams: JSON object text as is, otherwise the name of a file holding it.
bool readHparams(const std::string &value, std::string &json)
{
    const auto first = value.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || value[first] == '{') {
        json = value;
        return true;
    }
    std::ifstream in(value);
    if (!in) {
        std::cerr << "oedit edit: --hparams '" << value
                  << "' is neither a JSON object nor a readable file; give e.g. '{\"layer\": 2}'\n";
        return false;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    json = buffer.str();
    return true;
}

std::string probability(double p)
{
    if (p < 0)
        return "     -";
    std::ostringstream out;
    out << std::fixed << std::setprecision(4) << p;
    return out.str();
}

// A target of several tokens, each with its probability after the edit on the
// prompt (given the pieces before it), so one piece that will not move shows.
void printPieces(const EditOutcome &o)
{
    if (o.targetPieces.size() < 2 || o.probes.empty())
        return;
    const auto &prompt = o.probes.front();
    std::cout << "\ntarget spelled as " << o.targetPieces.size() << " tokens, P on the prompt before -> after:\n";
    for (size_t i = 0; i < o.targetPieces.size(); ++i)
        std::cout << "  '" << o.targetPieces[i] << "'  "
                  << probability(i < prompt.pieceProbsBefore.size() ? prompt.pieceProbsBefore[i] : -1) << " -> "
                  << probability(i < prompt.pieceProbsAfter.size() ? prompt.pieceProbsAfter[i] : -1) << "\n";
}

void printOutcome(const EditOutcome &o)
{
    std::cout << "edit " << o.id << ": " << o.method << ", '" << o.subject << "' -> '" << o.targetNew << "'";
    if (!o.oldTarget.empty())
        std::cout << " (was '" << o.oldTarget << "', from the " << o.oldTargetSource << ")";
    std::cout << "\n";
    for (const auto &l : o.layers)
        std::cout << "  layer " << l.layer << ": " << l.kind << " update, rank "
                  << (l.rank < 0 ? std::string("?") : std::to_string(l.rank)) << ", ||dW|| " << std::setprecision(4)
                  << std::defaultfloat << l.norm << "\n";

    std::cout << "\n            P(new)  before  after    P(old)  before  after   prompt\n";
    for (const auto &p : o.probes) {
        std::cout << "  " << std::left << std::setw(10) << p.kind << std::right << "        " << probability(p.newBefore)
                  << " " << probability(p.newAfter) << "            " << probability(p.oldBefore) << " "
                  << probability(p.oldAfter) << "   " << p.text;
        if (p.kind == "neighbour" && !p.oldTarget.empty())
            std::cout << "  (old: its own '" << p.oldTarget << "')";
        std::cout << "\n";
    }
    std::cout << "\ngreedy continuation\n";
    for (const auto &p : o.probes)
        std::cout << "  " << std::left << std::setw(10) << p.kind << std::right << " before: " << p.text
                  << p.continuationBefore << "\n"
                  << "  " << std::setw(10) << "" << " after:  " << p.text << p.continuationAfter << "\n";

    printPieces(o);
    const ProbeCounts counts = countProbes(o);
    if (counts.paraphrases || counts.neighbours)
        std::cout << "\nparaphrases now saying '" << o.targetNew << "': " << counts.paraphrasesSayingNew << " of "
                  << counts.paraphrases << "; neighbours keeping their own object: " << counts.neighboursKeepingOwn
                  << " of " << counts.neighbours << "\n";

    const auto &g = o.diagnostics;
    std::cout << "\ndiagnostics\n";
    if (!g.lossCurve.empty())
        std::cout << "  loss            " << std::setprecision(4) << g.lossCurve.front() << " -> "
                  << g.lossCurve.back() << " in " << g.lossCurve.size() << " steps (target NLL "
                  << g.finalTargetNll << ")\n";
    std::cout << "  max |cos| with earlier updates   " << std::scientific << std::setprecision(2)
              << g.maxAbsCosWithEarlier << "\n"
              << "  max |cos| of the key with earlier keys   " << g.maxKeyCosWithEarlier << "\n";
    if (const auto capabilities = methodCapabilities(o.method); capabilities && capabilities->protectsSubspace)
        std::cout << "  max |cos| with protected basis   " << g.maxAbsCosWithProtected << std::defaultfloat << "\n"
                  << "  protected rank  " << g.protectedRank << "\n"
                  << "  remaining capacity " << g.remainingCapacity << " edit directions\n";
    std::cout << std::defaultfloat;
    if (!g.capacityNote.empty())
        std::cout << "  capacity        " << g.capacityNote << "\n";
    const auto &t = o.timings;
    std::cout << std::fixed << std::setprecision(3) << "\ntimings (s): statistics " << t.statistics << ", key "
              << t.key << ", value " << t.value << ", update " << t.update << ", apply " << t.apply << ", probes "
              << t.probes << ", total " << t.total << "\n";
    std::cout << std::defaultfloat;
    if (o.succeeded())
        std::cout << "succeeded: '" << o.targetNew << "' is now the prompt's most likely continuation\n";
    else
        std::cout << "did not succeed: '" << o.targetNew << "' is not the prompt's most likely continuation ("
                  << "it says '" << (o.probes.empty() ? std::string() : o.probes.front().continuationAfter)
                  << "')\n";
}


int runEdit(const EditArguments &args)
{
    EditSpec spec;
    spec.method = args.method;
    spec.subject = args.subject;
    spec.prompt = args.prompt;
    spec.targetNew = args.target;
    if (!args.trueTarget.empty())
        spec.targetTrue = args.trueTarget;
    if (!args.hparams.empty() && !readHparams(args.hparams, spec.hparamsJson))
        return 2;
    if (!args.statsText.empty())
        spec.statisticsText = args.statsText;
    spec.allowUnfamiliarTarget = args.allowUnfamiliarTarget;
    const bool json = args.json;
    long long runId = 0;
    if (!args.run.empty()) {
        if (args.db.empty()) {
            std::cerr << "oedit edit: --run needs --db FILE (the ledger that holds the run)\n";
            return 2;
        }
        try {
            size_t used = 0;
            runId = std::stoll(args.run, &used);
            if (used != args.run.size() || runId < 1)
                throw std::invalid_argument("not a run id");
        } catch (const std::exception &) {
            std::cerr << "oedit edit: --run '" << args.run
                      << "' is not a run id (a positive number, see oedit runs --db FILE)\n";
            return 2;
        }
    }

    Engine engine;
    const std::string directory = !args.model.empty() ? args.model : Engine::defaultModelDirectory();
    if (directory.empty()) {
        std::cerr << "oedit edit: no --model given and the default model is not installed; pass --model DIR\n";
        return 1;
    }
    OpenOptions options;
    if (!args.device.empty())
        options.device = args.device;
    if (!args.dtype.empty())
        options.dtype = args.dtype;
    options.allowNonFiniteWeights = args.allowNonFinite;
    if (const Status opened = engine.openModel(directory, options); !opened) {
        std::cerr << "oedit edit: " << opened.message() << "\n";
        return 1;
    }
    printModelWarnings(engine, "edit");

    // With a ledger the session is attached to it: the edit is appended as it
    // is made (a new "manual" run, or the next step of --run on top of its
    // active edits).
    if (!args.db.empty())
        if (const Status attached = engine.attachLedger(args.db, runId); !attached) {
            std::cerr << "oedit edit: " << attached.message() << "\n";
            return 1;
        }

    // Statistics are computed once per model and text (then cached): show
    // progress on stderr, and let Ctrl+C cancel cleanly.
    std::signal(SIGINT, onInterrupt);
    bool progressShown = false;
    const auto progress = [&](long long done, long long total) {
        if (total > 0) {
            std::cerr << "\rcomputing statistics: " << done << "/" << total << " passages" << std::flush;
            progressShown = true;
        }
        return !g_interrupted.load();
    };
    const auto outcome = engine.applyEdit(spec, progress);
    std::signal(SIGINT, SIG_DFL);
    if (progressShown)
        std::cerr << "\n";
    if (!outcome) {
        std::cerr << "oedit edit: " << outcome.message() << "\n";
        return 1;
    }
    std::optional<runs::RunSummary> recorded;
    if (!args.db.empty()) {
        const auto edits = runs::listEdits(args.db, outcome->runId);
        if (!edits) {
            std::cerr << "oedit edit: the edit was recorded in '" << args.db
                      << "' but the run cannot be read back: " << edits.message() << "\n";
            return 1;
        }
        runs::RunSummary summary;
        summary.runId = outcome->runId;
        for (const auto &entry : edits.value()) {
            summary.steps = std::max(summary.steps, entry.step);
            summary.activeEdits += entry.active ? 1 : 0;
        }
        recorded = summary;
    }
    if (json) {
        auto object = nlohmann::json::parse(outcome->toJson());
        if (recorded) {
            object["run_id"] = recorded->runId;
            object["step"] = recorded->steps;
        }
        std::cout << object.dump() << "\n";
    } else {
        printOutcome(outcome.value());
        if (recorded)
            std::cout << "recorded as step " << recorded->steps << " of run " << recorded->runId << " in '" << args.db
                      << "' (" << recorded->activeEdits << " active edits)\n";
    }
    return 0;
}

} // namespace

void addEdit(Commands &commands)
{
    auto args = std::make_shared<EditArguments>();
    CLI::App *command =
        commands.add("edit", "Apply one edit to a model and show what it did.", [args] { return runEdit(*args); });
    command->add_option("--model", args->model, "a Hugging Face model folder (default: the embedded model)")
        ->type_name("DIR");
    required(
        command->add_option("--method", args->method, "ft, rome, memit, alphaedit, oedit or oedit+")->type_name("M"),
        "--method is required");
    required(command->add_option("--subject", args->subject, "the subject of the fact")->type_name("S"),
             "--subject is required");
    required(command
                 ->add_option("--prompt", args->prompt,
                              "the prompt with {} where the subject goes, or containing the subject verbatim")
                 ->type_name("TEXT"),
             "--prompt is required");
    required(command->add_option("--target", args->target, "the new object")->type_name("T"), "--target is required");
    command
        ->add_option("--true-target", args->trueTarget,
                     "the object the fact has now (default: from the model's world, else its own answer)")
        ->type_name("T");
    command
        ->add_option("--hparams", args->hparams,
                     "overrides of the method's defaults, as a JSON object or a file holding one")
        ->type_name("JSON-or-FILE");
    command
        ->add_option("--stats-text", args->statsText,
                     "text (one passage per line) for the statistics (default: the model's general_train.txt)")
        ->type_name("FILE");
    command->add_flag("--json", args->json, "print the outcome as JSON");
    command->add_option("--device", args->device, "cpu, cuda or cuda:N (default cpu)")->type_name("DEVICE");
    command->add_option("--dtype", args->dtype, "float32, bfloat16 or float16 (default float32)")->type_name("DTYPE");
    command->add_flag("--allow-nonfinite", args->allowNonFinite,
                      "open a model whose weights hold NaN or infinities (refused otherwise); edits whose result is "
                      "not finite are still refused");
    command->add_flag("--allow-unfamiliar-target", args->allowUnfamiliarTarget,
                      "edit a world model towards a word it has never read (refused otherwise: it is spelled from "
                      "fragments the model has no meaning for)");
    command
        ->add_option("--db", args->db,
                     "also record the edit in this ledger: a new run of data set 'manual', or with --run the next step")
        ->type_name("FILE");
    command->add_option("--run", args->run, "the run of --db to continue, on top of its active edits")->type_name("ID");
    command->footer(kEditNotes);
}

} // namespace oedit::cli
