// oedit edit: apply one edit to a model and show what it did (probabilities
// of the new and the old target before and after, greedy continuations,
// diagnostics and timings). Without --db the edited weights are not written
// anywhere: this is for trying an edit. With --db the edit is recorded in the
// edit ledger as a run of data set "manual" (a new one, or --run ID continued
// on top of its active edits), where oedit report/rollback/export see it.
#include "commands.h"

#include "oedit/editing.h"
#include "oedit/engine.h"
#include "oedit/runs.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>

#include <unistd.h>

namespace oedit::cli {

namespace {

const char *const kEditUsage =
    "usage: oedit edit [--model DIR] --method M --subject S --prompt TEXT --target T\n"
    "                  [--true-target T] [--hparams JSON-or-FILE] [--stats-text FILE] [--json]\n"
    "                  [--device cpu|cuda] [--dtype float32|bfloat16|float16] [--db FILE [--run ID]]\n"
    "  --method      ft, rome, memit, alphaedit, oedit or oedit+ (O-Edit on MEMIT: --hparams '{\"base\": \"memit\"}')\n"
    "  --prompt      the prompt with {} where the subject goes, or containing the subject verbatim\n"
    "  --true-target the object the fact has now (default: from the model's world, else its own answer)\n"
    "  --hparams     overrides of the method's defaults, as a JSON object or a file holding one\n"
    "  --stats-text  text file (one passage per line) for the statistics; default: the model's general_train.txt\n"
    "  --db          record the edit in this edit ledger (created when missing) as a new run of data set\n"
    "                'manual', or with --run ID as the next step of that run, applied on top of its active edits\n"
    "Without --db the edit is applied to the weights in memory only; nothing is written.\n";

const std::set<std::string> kValueOptions = {"--model",   "--method",     "--subject", "--prompt",
                                             "--target",  "--true-target", "--hparams", "--stats-text",
                                             "--device",  "--dtype",       "--db",      "--run"};
const std::set<std::string> kFlags = {"--json"};

std::atomic<bool> g_interrupted{false};

void onInterrupt(int)
{
    g_interrupted.store(true);
}

// Every argument is a known option with its value, or a known flag; the
// values are collected into `values`. False (with a message) otherwise.
bool parseArguments(const Args &args, std::map<std::string, std::string> &values, std::set<std::string> &flags)
{
    for (size_t i = 0; i < args.size(); ++i) {
        const auto &arg = args[i];
        if (kFlags.count(arg)) {
            flags.insert(arg);
        } else if (kValueOptions.count(arg)) {
            if (i + 1 >= args.size()) {
                std::cerr << "oedit edit: " << arg << " needs a value\n" << kEditUsage;
                return false;
            }
            values[arg] = args[++i];
        } else {
            std::cerr << "oedit edit: unknown argument '" << arg << "'\n" << kEditUsage;
            return false;
        }
    }
    return true;
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
              << t.probes << ", total " << t.total << "\n"
              << (o.succeeded() ? "the edit holds: P(new) > P(old) on the prompt\n"
                                : "the edit does not hold on the prompt: P(new) <= P(old)\n");
}

} // namespace

int runEdit(const Args &args)
{
    if (std::find(args.begin(), args.end(), "--help") != args.end()) {
        std::cout << kEditUsage;
        return 0;
    }
    std::map<std::string, std::string> values;
    std::set<std::string> flags;
    if (!parseArguments(args, values, flags))
        return 2;
    for (const char *required : {"--method", "--subject", "--prompt", "--target"})
        if (!values.count(required)) {
            std::cerr << "oedit edit: " << required << " is required\n" << kEditUsage;
            return 2;
        }
    EditSpec spec;
    spec.method = values["--method"];
    spec.subject = values["--subject"];
    spec.prompt = values["--prompt"];
    spec.targetNew = values["--target"];
    if (values.count("--true-target"))
        spec.targetTrue = values["--true-target"];
    if (values.count("--hparams") && !readHparams(values["--hparams"], spec.hparamsJson))
        return 2;
    if (values.count("--stats-text"))
        spec.statisticsText = values["--stats-text"];
    const bool json = flags.count("--json") > 0;
    long long runId = 0;
    if (values.count("--run")) {
        if (!values.count("--db")) {
            std::cerr << "oedit edit: --run needs --db FILE (the ledger that holds the run)\n";
            return 2;
        }
        try {
            size_t used = 0;
            runId = std::stoll(values["--run"], &used);
            if (used != values["--run"].size() || runId < 1)
                throw std::invalid_argument("not a run id");
        } catch (const std::exception &) {
            std::cerr << "oedit edit: --run '" << values["--run"] << "' is not a run id (a positive number, see oedit runs --db FILE)\n";
            return 2;
        }
    }

    Engine engine;
    std::string directory = values.count("--model") ? values["--model"] : Engine::defaultModelDirectory();
    if (directory.empty()) {
        std::cerr << "oedit edit: no --model given and the default model is not installed; pass --model DIR\n";
        return 1;
    }
    OpenOptions options;
    if (values.count("--device"))
        options.device = values["--device"];
    if (values.count("--dtype"))
        options.dtype = values["--dtype"];
    if (const Status opened = engine.openModel(directory, options); !opened) {
        std::cerr << "oedit edit: " << opened.message() << "\n";
        return 1;
    }

    // With a ledger the session is attached to it: the edit is appended as it
    // is made (a new "manual" run, or the next step of --run on top of its
    // active edits).
    if (values.count("--db"))
        if (const Status attached = engine.attachLedger(values["--db"], runId); !attached) {
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
    if (values.count("--db")) {
        const auto edits = runs::listEdits(values["--db"], outcome->runId);
        if (!edits) {
            std::cerr << "oedit edit: the edit was recorded in '" << values["--db"]
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
            std::cout << "recorded as step " << recorded->steps << " of run " << recorded->runId << " in '"
                      << values["--db"] << "' (" << recorded->activeEdits << " active edits)\n";
    }
    return 0;
}

} // namespace oedit::cli
