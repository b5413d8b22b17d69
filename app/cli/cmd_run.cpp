// oedit run / runs / report / rollback: sequential editing runs kept in an
// edit ledger (SQLite), through the runs facade (oedit/runs.h). Progress goes
// to stderr; Ctrl-C stops a run after the edit in flight, leaving it
// resumable with `oedit run --db FILE --resume ID`.
#include "commands.h"

#include "oedit/engine.h"
#include "oedit/runs.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace oedit::cli {

namespace {

const char *const kRunUsage =
    "usage: oedit run [--model DIR] --db FILE [--method M] --edits N [--every K] [--seed S]\n"
    "                 [--dataset world|FILE] [--hparams JSON] [--cache DIR] [--label NAME] [--json]\n"
    "       oedit run --db FILE --resume RUN [--json]\n"
    "  --method   ft, rome, memit, alphaedit, oedit or oedit+ (default oedit+)\n"
    "  --every    evaluate every K edits (and at the end); default: at the end only\n"
    "  --dataset  world (random facts of the model's world, the default) or a CounterFact/zsRE file\n"
    "  --label    a name kept with the run (`oedit runs --json` lists it), for scripts that resume\n"
    "Ctrl-C stops after the edit in flight; the run stays resumable.\n";
const char *const kRunsUsage = "usage: oedit runs --db FILE [--json]\n";
const char *const kReportUsage = "usage: oedit report --db FILE --run RUN [--json] [--csv FILE]\n"
                                 "  --csv FILE  also write the metrics per checkpoint as CSV\n";
const char *const kExportUsage =
    "usage: oedit export --db FILE --run RUN [--step N] --out DIR\n"
    "  writes the run's weights at step N (default: now) as an ordinary checkpoint folder\n";
const char *const kRollbackUsage =
    "usage: oedit rollback --db FILE --run RUN (--to-step K | --remove-edit E | --undo EVENT) [--json]\n"
    "  --to-step K      deactivate the edits after step K (0: all of them)\n"
    "  --remove-edit E  deactivate one edit (its id, as `oedit report` lists)\n"
    "  --undo EVENT     undo an earlier rollback\n";

std::atomic<bool> g_interrupted{false};

void onInterrupt(int)
{
    g_interrupted.store(true);
}

// Arguments as option -> value plus flags; false (message printed, exit 2) on
// anything unknown or a missing value.
struct Parsed {
    std::map<std::string, std::string> values;
    std::set<std::string> flags;
};

bool parse(const Args &args, const std::set<std::string> &valueOptions, const std::set<std::string> &flagOptions,
           const char *command, const char *usage, Parsed &out)
{
    for (size_t i = 0; i < args.size(); ++i) {
        const auto &arg = args[i];
        if (flagOptions.count(arg)) {
            out.flags.insert(arg);
        } else if (valueOptions.count(arg)) {
            if (i + 1 >= args.size()) {
                std::cerr << "oedit " << command << ": " << arg << " needs a value\n" << usage;
                return false;
            }
            out.values[arg] = args[++i];
        } else {
            std::cerr << "oedit " << command << ": unknown argument '" << arg << "'\n" << usage;
            return false;
        }
    }
    return true;
}

// A whole non-negative integer, or a message.
bool integer(const Parsed &parsed, const std::string &name, const char *command, long long &value)
{
    const auto it = parsed.values.find(name);
    if (it == parsed.values.end())
        return true;
    size_t used = 0;
    try {
        value = std::stoll(it->second, &used);
    } catch (const std::exception &) {
        used = 0;
    }
    if (used == 0 || used != it->second.size() || value < 0) {
        std::cerr << "oedit " << command << ": " << name << " needs a whole number >= 0, not '" << it->second
                  << "'\n";
        return false;
    }
    return true;
}

std::string duration(double seconds)
{
    char text[32];
    const long long s = static_cast<long long>(seconds + 0.5);
    if (s >= 3600)
        std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
    return text;
}

// Edits done / planned with the rate since this process started and the time
// left at that rate (evaluations included, since they fall between edits).
ProgressFn progressPrinter(bool *printed)
{
    using Clock = std::chrono::steady_clock;
    auto start = std::make_shared<Clock::time_point>(Clock::now());
    auto first = std::make_shared<long long>(-1);
    return [=](long long done, long long total) {
        if (*first < 0)
            *first = done;
        const double elapsed = std::chrono::duration<double>(Clock::now() - *start).count();
        std::cerr << "\redits " << done << "/" << total;
        if (done > *first) {
            const double perEdit = elapsed / double(done - *first);
            std::cerr << "  " << std::fixed << std::setprecision(2) << perEdit << " s/edit, about "
                      << duration(perEdit * double(total - done)) << " left";
        }
        std::cerr << "   " << std::flush;
        *printed = true;
        return !g_interrupted.load();
    };
}

int reportRun(const std::string &db, long long runId, bool json, const char *command,
              const std::string &csv = {});

int finishRun(const Expected<runs::RunSummary> &result, const std::string &db, bool json, bool printed,
              const char *command)
{
    if (printed)
        std::cerr << "\n";
    if (!result) {
        std::cerr << "oedit " << command << ": " << result.message() << "\n";
        return 1;
    }
    const auto &run = result.value();
    if (run.status == "cancelled")
        std::cerr << "oedit run: cancelled after " << run.steps << " of " << run.planned
                  << " edits; continue with: oedit run --db " << db << " --resume " << run.runId << "\n";
    else if (run.status == "failed")
        std::cerr << "oedit run: run " << run.runId << " failed: " << run.message << "\n";
    const int report = reportRun(db, run.runId, json, command);
    if (report != 0)
        return report;
    if (run.status == "cancelled")
        return 130;
    return run.status == "failed" ? 1 : 0;
}

std::string fixed(double value, int digits)
{
    std::ostringstream out;
    out << std::fixed << std::setprecision(digits) << value;
    return out.str();
}

int reportRun(const std::string &db, long long runId, bool json, const char *command, const std::string &csv)
{
    const auto report = runs::runReport(db, runId);
    if (!report) {
        std::cerr << "oedit " << command << ": " << report.message() << "\n";
        return 1;
    }
    if (!csv.empty()) {
        std::ofstream file(csv, std::ios::binary | std::ios::trunc);
        file << runs::toCsv(report.value());
        if (!file.flush()) {
            std::cerr << "oedit " << command << ": cannot write '" << csv << "'\n";
            return 1;
        }
    }
    if (json) {
        auto out = nlohmann::json::parse(report->toJson());
        // Each edit's compute time and capacity left: per-edit cost and where an
        // O-Edit layer fills, for scripts (bench/results.py) that report them.
        if (const auto edits = runs::listEdits(db, runId)) {
            nlohmann::json rows = nlohmann::json::array();
            for (const auto &e : edits.value())
                rows.push_back({e.step, e.active, e.seconds, e.remainingCapacity, e.maxAbsCosWithProtected});
            out["edit_log"] = {{"columns", {"step", "active", "seconds", "remaining_capacity", "max_abs_cos_with_protected"}},
                               {"rows", rows}};
        }
        std::cout << out.dump() << "\n";
        return 0;
    }
    const auto &run = report->run;
    std::cout << "run " << run.runId << "  " << run.method << " on " << run.dataset << "  " << run.status << "  "
              << run.steps << "/" << run.planned << " edits, " << run.activeEdits << " active\n";
    if (report->checkpoints.empty()) {
        std::cout << "no checkpoints yet\n";
    } else {
        // The headline metrics as columns; weight norms per layer below.
        const std::vector<std::string> columns = {"ES", "PS", "NS", "score", "gen_EM", "token_acc", "unedited_acc",
                                                  "heldout_ppl", "fluency", "active_edits"};
        std::cout << std::setw(6) << "step";
        for (const auto &column : columns)
            std::cout << " " << std::setw(12) << column;
        std::cout << "\n";
        for (const auto &checkpoint : report->checkpoints) {
            std::map<std::string, double> values(checkpoint.metrics.begin(), checkpoint.metrics.end());
            std::cout << std::setw(6) << checkpoint.step;
            for (const auto &column : columns) {
                const auto it = values.find(column);
                std::string cell = it == values.end() ? std::string("-")
                                                      : fixed(it->second, column == "active_edits" ? 0 : 3);
                // A perplexity of a wrecked model can be astronomically large: keep the columns apart.
                if (cell.size() > 12) {
                    std::ostringstream scientific;
                    scientific << std::setprecision(3) << std::scientific << it->second;
                    cell = scientific.str();
                }
                std::cout << " " << std::setw(12) << cell;
            }
            std::cout << "\n";
        }
        const auto &last = report->checkpoints.back();
        std::string weights;
        for (const auto &[name, value] : last.metrics)
            if (name.rfind("delta_norm_", 0) == 0 || name.rfind("cond_", 0) == 0)
                weights += "  " + name + " " + fixed(value, 4);
        if (!weights.empty())
            std::cout << "weights at step " << last.step << ":" << weights << "\n";
        long long held = 0;
        for (const auto &[edit, success] : last.editSuccess)
            held += success > 0.5 ? 1 : 0;
        std::cout << "retention at step " << last.step << ": " << held << " of " << last.editSuccess.size()
                  << " edits hold\n";
    }
    for (const auto &event : report->rollbacks) {
        std::cout << "rollback event " << event.eventId << ": " << event.kind;
        if (event.targetStep)
            std::cout << " to step " << *event.targetStep;
        if (event.targetEdit)
            std::cout << " of edit " << *event.targetEdit;
        if (event.targetEvent)
            std::cout << " of event " << *event.targetEvent;
        std::cout << " (" << event.deactivated.size() << " deactivated, " << event.activated.size()
                  << " re-activated)" << (event.undoneBy ? " undone by event " + std::to_string(*event.undoneBy) : "")
                  << "\n";
    }
    return 0;
}

bool requireDb(const Parsed &parsed, const char *command, const char *usage)
{
    if (parsed.values.count("--db") && !parsed.values.at("--db").empty())
        return true;
    std::cerr << "oedit " << command << ": --db FILE is required\n" << usage;
    return false;
}

} // namespace

int runRun(const Args &args)
{
    Parsed parsed;
    if (!parse(args, {"--model", "--db", "--method", "--edits", "--every", "--eval-every", "--seed", "--dataset",
                      "--hparams", "--cache", "--resume", "--label"},
               {"--json"}, "run", kRunUsage, parsed) ||
        !requireDb(parsed, "run", kRunUsage))
        return 2;
    const std::string db = parsed.values.at("--db");
    const bool json = parsed.flags.count("--json") > 0;
    bool printed = false;
    std::signal(SIGINT, onInterrupt);
    struct RestoreSignal {
        ~RestoreSignal() { std::signal(SIGINT, SIG_DFL); }
    } restore;

    if (parsed.values.count("--resume")) {
        for (const char *other : {"--model", "--method", "--edits", "--every", "--eval-every", "--seed", "--dataset",
                                  "--hparams", "--label"})
            if (parsed.values.count(other)) {
                std::cerr << "oedit run: " << other << " cannot be changed on --resume (the run keeps its own)\n";
                return 2;
            }
        long long runId = 0;
        if (!integer(parsed, "--resume", "run", runId))
            return 2;
        Engine engine;
        const auto result = engine.resumeRun(db, runId, progressPrinter(&printed));
        return finishRun(result, db, json, printed, "run");
    }

    runs::RunRequest request;
    long long edits = -1, every = 0, seed = 1;
    if (!integer(parsed, "--edits", "run", edits) || !integer(parsed, "--every", "run", every) ||
        !integer(parsed, "--eval-every", "run", every) || !integer(parsed, "--seed", "run", seed))
        return 2;
    if (edits < 1) {
        std::cerr << "oedit run: --edits N (at least 1) is required\n" << kRunUsage;
        return 2;
    }
    request.edits = edits;
    request.evalEvery = every;
    request.seed = static_cast<unsigned long long>(seed);
    if (parsed.values.count("--method"))
        request.method = parsed.values.at("--method");
    if (parsed.values.count("--dataset"))
        request.dataset = parsed.values.at("--dataset");
    if (parsed.values.count("--hparams"))
        request.hparamsJson = parsed.values.at("--hparams");
    if (parsed.values.count("--cache"))
        request.cacheDir = parsed.values.at("--cache");
    if (parsed.values.count("--label"))
        request.label = parsed.values.at("--label");
    request.modelDir = parsed.values.count("--model") ? parsed.values.at("--model") : Engine::defaultModelDirectory();
    if (request.modelDir.empty()) {
        std::cerr << "oedit run: no --model given and the default model is not installed; pass --model DIR\n";
        return 1;
    }
    Engine engine;
    const auto result = engine.startRun(db, request, progressPrinter(&printed));
    return finishRun(result, db, json, printed, "run");
}

int runRuns(const Args &args)
{
    Parsed parsed;
    if (!parse(args, {"--db"}, {"--json"}, "runs", kRunsUsage, parsed) || !requireDb(parsed, "runs", kRunsUsage))
        return 2;
    const auto list = runs::listRuns(parsed.values.at("--db"));
    if (!list) {
        std::cerr << "oedit runs: " << list.message() << "\n";
        return 1;
    }
    if (parsed.flags.count("--json")) {
        nlohmann::json out = {{"runs", nlohmann::json::array()}};
        for (const auto &run : list.value())
            out["runs"].push_back({{"run_id", run.runId},
                                   {"method", run.method},
                                   {"edits", run.steps},
                                   {"planned", run.planned},
                                   {"active_edits", run.activeEdits},
                                   {"status", run.status},
                                   {"dataset", run.dataset},
                                   {"label", run.label},
                                   {"seed", run.seed},
                                   {"model", run.modelPath},
                                   {"hparams", nlohmann::json::parse(run.hparamsJson)},
                                   {"created", run.created}});
        std::cout << out.dump() << "\n";
        return 0;
    }
    if (list->empty()) {
        std::cout << "no runs\n";
        return 0;
    }
    std::cout << std::left << std::setw(6) << "run" << std::setw(11) << "method" << std::setw(11) << "status"
              << std::setw(12) << "step" << std::setw(8) << "active" << "created\n";
    for (const auto &run : list.value())
        std::cout << std::setw(6) << run.runId << std::setw(11) << run.method << std::setw(11) << run.status
                  << std::setw(12) << (std::to_string(run.steps) + "/" + std::to_string(run.planned)) << std::setw(8)
                  << run.activeEdits << run.created << "\n";
    return 0;
}

int runReport(const Args &args)
{
    Parsed parsed;
    if (!parse(args, {"--db", "--run", "--csv"}, {"--json"}, "report", kReportUsage, parsed) ||
        !requireDb(parsed, "report", kReportUsage))
        return 2;
    long long runId = -1;
    if (!integer(parsed, "--run", "report", runId))
        return 2;
    if (runId < 0) {
        std::cerr << "oedit report: --run RUN is required\n" << kReportUsage;
        return 2;
    }
    return reportRun(parsed.values.at("--db"), runId, parsed.flags.count("--json") > 0, "report",
                     parsed.values.count("--csv") ? parsed.values.at("--csv") : std::string());
}

int runExport(const Args &args)
{
    Parsed parsed;
    if (!parse(args, {"--db", "--run", "--step", "--out"}, {}, "export", kExportUsage, parsed) ||
        !requireDb(parsed, "export", kExportUsage))
        return 2;
    long long runId = -1, step = -1;
    if (!integer(parsed, "--run", "export", runId) || !integer(parsed, "--step", "export", step))
        return 2;
    if (runId < 0 || !parsed.values.count("--out")) {
        std::cerr << "oedit export: --run RUN and --out DIR are required\n" << kExportUsage;
        return 2;
    }
    const auto out = parsed.values.at("--out");
    Engine engine;
    const auto included = engine.exportRun(parsed.values.at("--db"), runId,
                                          step >= 0 ? std::optional<long long>(step) : std::nullopt, out);
    if (!included) {
        std::cerr << "oedit export: " << included.message() << "\n";
        return 1;
    }
    std::cout << "wrote " << out << " (run " << runId << ", " << included.value() << " edits)\n";
    return 0;
}

int runRollback(const Args &args)
{
    Parsed parsed;
    if (!parse(args, {"--db", "--run", "--to-step", "--to", "--remove-edit", "--remove", "--undo"}, {"--json"},
               "rollback", kRollbackUsage, parsed) ||
        !requireDb(parsed, "rollback", kRollbackUsage))
        return 2;
    runs::RollbackRequest request;
    long long runId = -1, value = 0;
    if (!integer(parsed, "--run", "rollback", runId))
        return 2;
    if (runId < 0) {
        std::cerr << "oedit rollback: --run RUN is required\n" << kRollbackUsage;
        return 2;
    }
    request.runId = runId;
    // --to / --remove are the spellings of --to-step / --remove-edit.
    const std::pair<const char *, std::optional<long long> *> choices[] = {
        {"--to-step", &request.toStep}, {"--to", &request.toStep},     {"--remove-edit", &request.removeEdit},
        {"--remove", &request.removeEdit}, {"--undo", &request.undoEvent}};
    int given = 0;
    for (const auto &[name, slot] : choices) {
        if (!parsed.values.count(name))
            continue;
        if (!integer(parsed, name, "rollback", value))
            return 2;
        *slot = value;
        ++given;
    }
    if (given != 1) {
        std::cerr << "oedit rollback: give exactly one of --to-step K, --remove-edit E and --undo EVENT\n"
                  << kRollbackUsage;
        return 2;
    }
    const auto event = runs::rollback(parsed.values.at("--db"), request);
    if (!event) {
        std::cerr << "oedit rollback: " << event.message() << "\n";
        return 1;
    }
    if (parsed.flags.count("--json")) {
        std::cout << runs::toJson(event.value()) << "\n";
        return 0;
    }
    std::cout << "rollback event " << event->eventId << " (" << event->kind << "): " << event->deactivated.size()
              << " edits deactivated, " << event->activated.size() << " re-activated; undo with --undo "
              << event->eventId << "\n";
    return 0;
}

} // namespace oedit::cli
