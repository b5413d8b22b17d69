// oedit run / runs / report / rollback / export: sequential editing runs kept in an
// edit ledger (SQLite), through the runs facade (oedit/runs.h). Progress goes
// to stderr; Ctrl-C stops a run after the edit in flight, leaving it
// resumable with `oedit run --db FILE --resume ID`.
#include "commands.h"

#include "oedit/engine.h"
#include "oedit/runs.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

namespace oedit::cli {

namespace {

std::atomic<bool> g_interrupted{false};

void onInterrupt(int)
{
    g_interrupted.store(true);
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

int runRuns(const std::string &db, bool json)
{
    const auto list = runs::listRuns(db);
    if (!list) {
        std::cerr << "oedit runs: " << list.message() << "\n";
        return 1;
    }
    if (json) {
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

int runExport(const std::string &db, long long runId, std::optional<long long> step, const std::string &out)
{
    Engine engine;
    const auto included = engine.exportRun(db, runId, step, out);
    if (!included) {
        std::cerr << "oedit export: " << included.message() << "\n";
        return 1;
    }
    std::cout << "wrote " << out << " (run " << runId << ", " << included.value() << " edits)\n";
    return 0;
}

struct RollbackArguments {
    std::string db;
    long long run = 0, toStep = 0, removeEdit = 0, undo = 0;
    bool json = false;
    std::vector<const CLI::Option *> choices; // --to-step, --remove-edit, --undo: exactly one
};

int runRollback(const RollbackArguments &args)
{
    const auto given = std::count_if(args.choices.begin(), args.choices.end(),
                                     [](const CLI::Option *choice) { return choice->count() > 0; });
    if (given != 1) {
        std::cerr << "oedit rollback: give exactly one of --to-step K, --remove-edit E and --undo EVENT\n"
                     "run 'oedit rollback --help' for the options\n";
        return 2;
    }
    runs::RollbackRequest request;
    request.runId = args.run;
    if (args.choices[0]->count() > 0)
        request.toStep = args.toStep;
    else if (args.choices[1]->count() > 0)
        request.removeEdit = args.removeEdit;
    else
        request.undoEvent = args.undo;
    const auto event = runs::rollback(args.db, request);
    if (!event) {
        std::cerr << "oedit rollback: " << event.message() << "\n";
        return 1;
    }
    if (args.json) {
        std::cout << runs::toJson(event.value()) << "\n";
        return 0;
    }
    std::cout << "rollback event " << event->eventId << " (" << event->kind << "): " << event->deactivated.size()
              << " edits deactivated, " << event->activated.size() << " re-activated; undo with --undo "
              << event->eventId << "\n";
    return 0;
}

// The ledger every ledger command names.
void addDb(CLI::App &command, std::string &db)
{
    required(command.add_option("--db", db, "the edit ledger (an SQLite file)")->type_name("FILE"),
             "--db FILE is required");
}

// --device for `oedit run`: cpu, cuda or cuda:N.
const CLI::Validator kDevice(
    [](const std::string &device) {
        const bool cudaIndex = device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
                               device.find_first_not_of("0123456789", 5) == std::string::npos;
        return device == "cpu" || device == "cuda" || cudaIndex
                   ? std::string()
                   : "'" + device + "' is not a device; give cpu, cuda or cuda:N";
    },
    "", "device");

// --dtype for `oedit run`.
const CLI::Validator kDtype(
    [](const std::string &dtype) {
        return dtype == "float32" || dtype == "bfloat16" || dtype == "float16"
                   ? std::string()
                   : "'" + dtype + "' is not a dtype; give float32, bfloat16 or float16";
    },
    "", "dtype");

struct RunArguments {
    std::string model, db, method, dataset, hparams, cache, label;
    long long edits = -1, every = 0, resume = 0;
    unsigned long long seed = 1;
    std::string device = "cpu", dtype = "float32";
    bool json = false;
    // The options a resumed run keeps from its start, to refuse them with --resume.
    std::vector<const CLI::Option *> fixedOnResume;
    const CLI::Option *resumeOption = nullptr;
};

int runRun(const RunArguments &args)
{
    const std::string &db = args.db;
    if (args.resumeOption->count() > 0) {
        for (const CLI::Option *other : args.fixedOnResume)
            if (other->count() > 0) {
                std::cerr << "oedit run: " << other->get_name()
                          << " cannot be changed on --resume (the run keeps its own)\n";
                return 2;
            }
    } else if (args.edits < 1) {
        std::cerr << "oedit run: --edits N (at least 1) is required\nrun 'oedit run --help' for the options\n";
        return 2;
    }
    // The device and dtype go with the run request (and the resumed run); a
    // CUDA device on a build without CUDA is refused before the ledger is touched.
    const std::string device = args.device, dtype = args.dtype;
    if (device != "cpu" && !Engine::buildInfo().cudaAvailable) {
        std::cerr << "oedit run: --device " << device
                  << ": this build of oedit has no CUDA (libtorch without CUDA, or no GPU visible); run on "
                     "--device cpu, or build against a CUDA libtorch\n";
        return 1;
    }

    const bool json = args.json;
    bool printed = false;
    // Ctrl-C, and the TERM a batch system (Slurm at a job's time limit, or
    // scancel) sends before it kills: both stop after the edit in flight.
    std::signal(SIGINT, onInterrupt);
    std::signal(SIGTERM, onInterrupt);
    struct RestoreSignal {
        ~RestoreSignal()
        {
            std::signal(SIGINT, SIG_DFL);
            std::signal(SIGTERM, SIG_DFL);
        }
    } restore;

    if (args.resumeOption->count() > 0) {
        Engine engine;
        const auto result = engine.resumeRun(db, args.resume, progressPrinter(&printed), device, dtype);
        return finishRun(result, db, json, printed, "run");
    }

    runs::RunRequest request;
    request.edits = args.edits;
    request.evalEvery = args.every;
    request.seed = args.seed;
    if (!args.method.empty())
        request.method = args.method;
    if (!args.dataset.empty())
        request.dataset = args.dataset;
    request.hparamsJson = args.hparams;
    request.cacheDir = args.cache;
    request.label = args.label;
    request.device = device;
    request.dtype = dtype;
    request.modelDir = !args.model.empty() ? args.model : Engine::defaultModelDirectory();
    if (request.modelDir.empty()) {
        std::cerr << "oedit run: no --model given and the default model is not installed; pass --model DIR\n";
        return 1;
    }
    Engine engine;
    const auto result = engine.startRun(db, request, progressPrinter(&printed));
    return finishRun(result, db, json, printed, "run");
}

} // namespace

void addRun(Commands &commands)
{
    auto args = std::make_shared<RunArguments>();
    CLI::App *command =
        commands.add("run", "A sequential editing run kept in an edit ledger.", [args] { return runRun(*args); });
    command->footer("Start a run with --edits N (evaluated every K edits and at the end), or continue one with\n"
                    "--resume RUN. Progress goes to stderr; Ctrl-C stops after the edit in flight and the run\n"
                    "stays resumable.");
    args->fixedOnResume.push_back(
        command->add_option("--model", args->model, "a Hugging Face model folder (default: the embedded model)")
            ->type_name("DIR"));
    addDb(*command, args->db);
    args->fixedOnResume.push_back(
        command->add_option("--method", args->method, "ft, rome, memit, alphaedit, oedit or oedit+ (default oedit+)")
            ->type_name("M"));
    args->fixedOnResume.push_back(addWholeNumber(*command, "--edits", args->edits, "the number of edits (at least 1)"));
    args->fixedOnResume.push_back(addWholeNumber(*command, "--every,--eval-every", args->every,
                                                 "evaluate every K edits (and at the end); default: at the end only")
                                      ->type_name("K"));
    args->fixedOnResume.push_back(
        addWholeNumber(*command, "--seed", args->seed, "seed of the edit sequence (default 1)")->type_name("S"));
    args->fixedOnResume.push_back(
        command
            ->add_option("--dataset", args->dataset,
                         "world (random facts of the model's world, the default) or a CounterFact/zsRE file")
            ->type_name("world|FILE"));
    args->fixedOnResume.push_back(
        command->add_option("--hparams", args->hparams, "overrides of the method's defaults, as a JSON object")
            ->type_name("JSON"));
    command->add_option("--cache", args->cache, "the statistics cache (default: the user's cache folder)")
        ->type_name("DIR");
    args->fixedOnResume.push_back(
        command
            ->add_option("--label", args->label,
                         "a name kept with the run (`oedit runs --json` lists it), for scripts that resume")
            ->type_name("NAME"));
    command->add_option("--device", args->device, "cpu, cuda or cuda:N (default cpu)")
        ->type_name("DEVICE")
        ->check(kDevice);
    command->add_option("--dtype", args->dtype, "float32, bfloat16 or float16 (default float32)")
        ->type_name("DTYPE")
        ->check(kDtype);
    args->resumeOption =
        addWholeNumber(*command, "--resume", args->resume, "continue this run of --db (it keeps its own settings)")
            ->type_name("RUN");
    command->add_flag("--json", args->json, "print the run's report as JSON");
}

void addRuns(Commands &commands)
{
    struct Arguments {
        std::string db;
        bool json = false;
    };
    auto args = std::make_shared<Arguments>();
    CLI::App *command = commands.add("runs", "The runs of an edit ledger with their status and step.",
                                     [args] { return runRuns(args->db, args->json); });
    addDb(*command, args->db);
    command->add_flag("--json", args->json, "print JSON");
}

void addReport(Commands &commands)
{
    struct Arguments {
        std::string db, csv;
        long long run = 0;
        bool json = false;
    };
    auto args = std::make_shared<Arguments>();
    CLI::App *command =
        commands.add("report", "A run's metrics at every checkpoint, its retention and its rollbacks.",
                     [args] { return reportRun(args->db, args->run, args->json, "report", args->csv); });
    addDb(*command, args->db);
    required(addWholeNumber(*command, "--run", args->run, "the run (as `oedit runs` lists them)")->type_name("RUN"),
             "--run RUN is required");
    command->add_flag("--json", args->json, "print JSON");
    command->add_option("--csv", args->csv, "also write the metrics per checkpoint as CSV")->type_name("FILE");
}

void addExport(Commands &commands)
{
    struct Arguments {
        std::string db, out;
        long long run = 0, step = -1;
    };
    auto args = std::make_shared<Arguments>();
    CLI::App *command =
        commands.add("export", "Write a run's weights at a step as an ordinary checkpoint folder.", [args] {
            return runExport(args->db, args->run, args->step >= 0 ? std::optional<long long>(args->step) : std::nullopt,
                             args->out);
        });
    addDb(*command, args->db);
    required(addWholeNumber(*command, "--run", args->run, "the run")->type_name("RUN"),
             "--run RUN and --out DIR are required");
    addWholeNumber(*command, "--step", args->step, "the step (default: now)");
    required(command->add_option("--out", args->out, "the checkpoint folder to write")->type_name("DIR"),
             "--run RUN and --out DIR are required");
}

void addRollback(Commands &commands)
{
    auto args = std::make_shared<RollbackArguments>();
    CLI::App *command = commands.add(
        "rollback", "Revert a run: deactivate edits after a step or one edit, or undo an earlier rollback.",
        [args] { return runRollback(*args); });
    addDb(*command, args->db);
    required(addWholeNumber(*command, "--run", args->run, "the run")->type_name("RUN"), "--run RUN is required");
    // --to / --remove are shorter spellings of --to-step / --remove-edit.
    args->choices.push_back(
        addWholeNumber(*command, "--to-step,--to", args->toStep, "deactivate the edits after step K (0: all of them)")
            ->type_name("K"));
    args->choices.push_back(addWholeNumber(*command, "--remove-edit,--remove", args->removeEdit,
                                           "deactivate one edit (its id, as `oedit report` lists)")
                                ->type_name("E"));
    args->choices.push_back(
        addWholeNumber(*command, "--undo", args->undo, "undo an earlier rollback")->type_name("EVENT"));
    command->add_flag("--json", args->json, "print the rollback event as JSON");
    command->footer("Give exactly one of --to-step, --remove-edit and --undo.");
}

} // namespace oedit::cli
