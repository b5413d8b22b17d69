#!/usr/bin/env python3
"""The results benchmark: runs every editing method on the same sequences with
`oedit`, keeps every run in one ledger, and writes docs/RESULTS.md from it.

  bench/results.py run    [--out DIR] [--plan FILE] [--jobs N] [--stages ...] [--seeds 1,2] [--device cuda]
  bench/results.py run    --backend slurm [--partition P] [--time T] [--gres gpu:1] [--cpus-per-task N]
                          [--sbatch-arg ARG ...] [--no-wait]
  bench/results.py status  [--out DIR]
  bench/results.py collect [--out DIR]
  bench/results.py report [--out DIR] [--plan FILE] [--doc docs/RESULTS.md] [--figures docs/results]

`run` is resumable: each run carries a label made of everything that defines
it (method, hyperparameter overrides, sequence seed, model, data set, length),
so a second call skips finished runs, resumes interrupted ones and starts only
what is missing. A shorter run is served by a longer one with the same label
prefix (the sequence of a seed is a prefix of its longer sequence, and runs are
deterministic). `report` reads only the ledger (and the machine description
that `run` recorded); every number in the document comes from there.

Backends. `local` (the default) runs `--jobs` runs at a time on this machine,
all into the one ledger. `slurm` submits the runs that are not finished as one
Slurm job array per stage (`sbatch --array`); each task runs one `oedit run`
into a ledger of its own under OUT/ledgers/ (no two processes share a file on
a cluster's file system), resuming the run that ledger already holds. The
driver waits for the array (or, with --no-wait, returns; `status` shows the
tasks and a later `run` goes on), then `collect` merges the finished ledgers
into the one ledger with `oedit merge`. Calling `run` again after failures,
cancels or time limits submits only what is missing, and a task whose run was
stopped resumes it.

Only the Python standard library is used.
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import math
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("tune", "world", "ablation", "counterfact")
METRIC_NAMES = {
    "ES": "ES",
    "PS": "PS",
    "NS": "NS",
    "score": "score",
    "overall": "overall",
    "gen_EM": "gen EM",
    "unedited_acc": "unedited acc",
    "heldout_ppl": "held-out ppl",
    "edit_seconds": "s/edit",
}


class DriverError(Exception):
    pass


# The oedit processes running now: a batch system's TERM (a time limit,
# scancel) is passed on to them, and the driver waits for them to stop after
# the edit in flight, leaving their runs resumable and marked cancelled.
CHILDREN = set()
CHILDREN_LOCK = threading.Lock()


def pass_term_on(signum, _frame):
    with CHILDREN_LOCK:
        for process in CHILDREN:
            try:
                process.send_signal(signum)
            except OSError:
                pass


# ---------------------------------------------------------------------------
# oedit calls

class Oedit:
    def __init__(self, binary, ledger, log=None):
        self.binary = binary
        self.ledger = ledger
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.lock = threading.Lock()

    def call(self, args, threads=None, capture=True):
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        process = subprocess.Popen([self.binary] + args, env=env, text=True,
                                   stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE)
        with CHILDREN_LOCK:
            CHILDREN.add(process)
        try:
            stdout, stderr = process.communicate()
        finally:
            with CHILDREN_LOCK:
                CHILDREN.discard(process)
        if process.returncode != 0:
            tail = (stderr or "").strip().splitlines()[-3:]
            raise DriverError("`oedit %s` failed (exit %d): %s" % (
                " ".join(shlex.quote(a) for a in args[:4]), process.returncode, " / ".join(tail)))
        return stdout

    def runs(self):
        if not os.path.exists(self.ledger):
            return []
        return json.loads(self.call(["runs", "--db", self.ledger, "--json"]))["runs"]

    def report(self, run_id):
        return json.loads(self.call(["report", "--db", self.ledger, "--run", str(run_id), "--json"]))

    def info(self, model=None):
        args = ["info", "--json"] + (["--model", model] if model else [])
        return json.loads(self.call(args))


# ---------------------------------------------------------------------------
# Runs, named by what defines them

def canonical(overrides):
    return json.dumps(overrides, sort_keys=True, separators=(",", ":"))


class Job:
    """One sequential run: `oedit run` with these arguments."""

    def __init__(self, method, overrides, edits, seed, every, model=None, dataset="world", device=None):
        self.method = method
        self.overrides = dict(overrides)
        self.edits = int(edits)
        self.seed = int(seed)
        self.every = int(every)
        self.model = model
        self.dataset = dataset
        # A run on a GPU is another run (other rounding): its label says so.
        self.device = device if device and device != "cpu" else None

    def prefix(self):
        # Everything but the length: a longer run with this prefix serves a shorter one.
        model = os.path.basename(os.path.normpath(self.model)) if self.model else "default"
        dataset = self.dataset if self.dataset == "world" else os.path.basename(self.dataset)
        return "results|%s|%s|seed=%d|every=%d|model=%s|data=%s|%s" % (
            self.method, canonical(self.overrides), self.seed, self.every, model, dataset,
            "device=%s|" % self.device if self.device else "")

    def label(self):
        return self.prefix() + "edits=%d" % self.edits

    def command(self, ledger):
        args = ["run", "--db", ledger, "--method", self.method, "--edits", str(self.edits),
                "--every", str(self.every), "--seed", str(self.seed), "--label", self.label()]
        if self.overrides:
            args += ["--hparams", canonical(self.overrides)]
        if self.model:
            args += ["--model", self.model]
        if self.dataset != "world":
            args += ["--dataset", self.dataset]
        if self.device:
            args += ["--device", self.device]
        return args

    def to_dict(self):
        return {"method": self.method, "overrides": self.overrides, "edits": self.edits, "seed": self.seed,
                "every": self.every, "model": self.model, "dataset": self.dataset, "device": self.device}

    @staticmethod
    def from_dict(d):
        return Job(d["method"], d["overrides"], d["edits"], d["seed"], d["every"], d.get("model"),
                   d.get("dataset", "world"), d.get("device"))


def label_edits(label):
    try:
        return int(label.rsplit("edits=", 1)[1])
    except (IndexError, ValueError):
        return -1


def serves(edits, job):
    """A run of `edits` edits with job's prefix has job's checkpoint at job.edits."""
    return edits >= job.edits and job.every > 0 and job.edits % job.every == 0


def find_run(runs, job):
    """The finished run that serves `job` (its label, or a longer one), else the
    unfinished run with exactly its label, else None."""
    best = None
    for run in runs:
        label = run.get("label", "")
        if label != job.label() and not (serves(label_edits(label), job) and label.startswith(job.prefix())):
            continue
        if run["status"] == "finished":
            if best is None or best["status"] != "finished" or label_edits(label) < label_edits(best["label"]):
                best = run
        elif label == job.label() and best is None:
            best = run
    return best


def execute(oedit, job, threads):
    """Makes sure `job` has a finished run in the ledger; returns its run id."""
    with oedit.lock:
        existing = find_run(oedit.runs(), job)
    if existing and existing["status"] == "finished":
        return existing["run_id"]
    if existing:
        oedit.log("resume run %d: %s" % (existing["run_id"], job.label()))
        oedit.call(["run", "--db", oedit.ledger, "--resume", str(existing["run_id"]), "--json"], threads)
        return existing["run_id"]
    oedit.log("start: oedit " + " ".join(shlex.quote(a) for a in job.command(oedit.ledger)))
    out = json.loads(oedit.call(job.command(oedit.ledger) + ["--json"], threads))
    if out.get("status") != "finished":
        raise DriverError("run %s ended %s: %s" % (out.get("run_id"), out.get("status"), out.get("message", "")))
    return out["run_id"]


# ---------------------------------------------------------------------------
# Metrics

def harmonic(values):
    if any(v is None for v in values):
        return None
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


def checkpoint_metrics(report, step):
    """The run's metrics at checkpoint `step`, with 'overall' and the mean edit time
    of edits 1..step added; None when the run has no checkpoint there."""
    for point in report["curve"]:
        if int(point["step"]) == step:
            out = dict(point)
            out["overall"] = harmonic([point.get("ES"), point.get("PS"), point.get("NS"), point.get("unedited_acc")])
            rows = report.get("edit_log", {}).get("rows", [])
            seconds = [row[2] for row in rows if row[0] <= step]
            out["edit_seconds"] = statistics.mean(seconds) if seconds else None
            return out
    return None


def capacity_exhausted_at(report):
    """The first step after which an O-Edit layer had no room left, or None."""
    for step, _active, _seconds, remaining, _cos in report.get("edit_log", {}).get("rows", []):
        if remaining == 0:
            return step
    return None


# ---------------------------------------------------------------------------
# The plan

def load_plan(path):
    with open(path) as f:
        return json.load(f)


def resolve(path, base):
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def world_model(plan):
    """The model of the world stages: the plan's "model" folder, else the default model."""
    return resolve(plan["model"], ROOT) if plan.get("model") else None


def world_job(plan, chosen, system, seed):
    world = plan["world"]
    return Job(system["method"], system_overrides(system, chosen), world["edits"], seed,
               world["eval_every"], model=world_model(plan), device=plan.get("device"))


def tuning_job(plan, method, overrides):
    tuning = plan["tuning"]
    return Job(method, overrides, tuning["edits"], tuning["seed"], tuning["edits"], model=world_model(plan),
               device=plan.get("device"))


def tuning_jobs(plan):
    return [tuning_job(plan, method, overrides)
            for method, grid in plan["tuning"]["grids"].items() for overrides in grid]


def chosen_configs(oedit, plan):
    """method -> (overrides, {canonical overrides: tuning metrics}) from the finished tuning runs."""
    tuning = plan["tuning"]
    runs = oedit.runs()
    out = {}
    for method, grid in tuning["grids"].items():
        scored = {}
        for overrides in grid:
            run = find_run(runs, tuning_job(plan, method, overrides))
            if run is None or run["status"] != "finished":
                continue
            scored[canonical(overrides)] = checkpoint_metrics(oedit.report(run["run_id"]), tuning["edits"])
        if not scored:
            continue
        key = tuning.get("select_by", "overall")
        best = max(grid, key=lambda o: (scored.get(canonical(o)) or {}).get(key) or -1.0)
        out[method] = (best, scored)
    return out


def system_overrides(system, chosen):
    base = dict(chosen[system["method"]][0]) if system["method"] in chosen else {}
    base.update(system.get("overrides", {}))
    return base


def world_jobs(plan, chosen, seeds):
    return [world_job(plan, chosen, s, seed) for s in plan["systems"] for seed in seeds]


def ablation_jobs(plan, chosen):
    ablation = plan["ablation"]
    base = dict(chosen.get(ablation["base"], ({}, {}))[0])
    out = []
    for variant in ablation["variants"]:
        overrides = dict(base)
        overrides.update(variant.get("overrides", {}))
        for key in variant.get("drop", []):
            overrides.pop(key, None)
        out.append((variant["name"], Job(variant.get("method", ablation["base"]), overrides,
                                         ablation["edits"], ablation["seed"], ablation["eval_every"],
                                         model=world_model(plan), device=plan.get("device"))))
    return out


def counterfact_paths(plan, out_dir):
    """The data file and the model folder, named by how many cases it learnt
    (a model trained on other cases is another model, in another folder)."""
    cf = plan["counterfact"]
    args = cf["train_args"]
    limit = args[args.index("--limit") + 1] if "--limit" in args else "all"
    return resolve(cf["train_file"], ROOT), os.path.join(os.path.abspath(out_dir), "cf-model-%s" % limit)


def counterfact_job(plan, chosen, system, out_dir):
    cf = plan["counterfact"]
    data, model = counterfact_paths(plan, out_dir)
    return Job(system["method"], system_overrides(system, chosen), cf["edits"], 1, cf["eval_every"],
               model=model, dataset=data, device=plan.get("device"))


def counterfact_jobs(plan, chosen, out_dir):
    return [counterfact_job(plan, chosen, s, out_dir) for s in plan["systems"]]


# ---------------------------------------------------------------------------
# run

def machine_description(oedit):
    info = oedit.info()
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform(), "blas": info.get("blas"),
            "libtorch": info.get("libtorch"), "cuda_devices": info.get("cuda_devices"),
            "oedit_version": info.get("version"), "threads_per_run": 1,
            "recorded": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def train_counterfact_model(oedit, plan, out_dir, threads):
    data, model = counterfact_paths(plan, out_dir)
    if os.path.isfile(os.path.join(model, "model.safetensors")):
        return
    if not os.path.isfile(data):
        raise DriverError("the CounterFact file '%s' is missing: put ../shared/data beside the project or "
                          "drop the counterfact stage (--stages)" % data)
    oedit.log("train: the CounterFact model in " + model)
    oedit.call(["train", "--dataset", data, "--out", model, "--quiet"] + plan["counterfact"]["train_args"], threads)


def without_served(jobs):
    """The jobs less those a longer job of the same batch serves, one per label, longest first."""
    jobs = [job for job in jobs if not any(other is not job and other.prefix() == job.prefix() and
                                           other.edits > job.edits and serves(other.edits, job) for other in jobs)]
    return sorted({job.label(): job for job in jobs}.values(), key=lambda j: -j.edits)


def counterfact_model_missing(plan, out_dir):
    return not os.path.isfile(os.path.join(counterfact_paths(plan, out_dir)[1], "model.safetensors"))


def run_parallel(oedit, jobs, workers, threads):
    """Runs the jobs, `workers` at a time, longest first; raises after all ended if any failed."""
    jobs = without_served(jobs)
    failures = []
    if jobs and not os.path.exists(oedit.ledger):
        # The first run creates the ledger alone: two processes must not both create its schema.
        first = jobs.pop()
        execute(oedit, first, threads)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(execute, oedit, job, threads): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            try:
                future.result()
            except DriverError as error:
                failures.append(str(error))
                oedit.log("failed: " + str(error))
    if failures:
        raise DriverError("%d run(s) failed; run again to retry them:\n  %s" % (len(failures), "\n  ".join(failures)))


class LocalBackend:
    """Runs on this machine, `--jobs` runs at a time, all into the one ledger."""

    def __init__(self, oedit, args, plan):
        self.oedit = oedit
        self.args = args
        self.plan = plan

    def run_stage(self, stage, jobs, train=False):
        """Runs the jobs (and trains the CounterFact model beside them when
        `train`); True once everything asked for is finished."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as trainer:
            training = trainer.submit(train_counterfact_model, self.oedit, self.plan, self.args.out,
                                      self.args.threads) if train else None
            run_parallel(self.oedit, jobs, self.args.jobs - (1 if training else 0) or 1, self.args.threads)
            if training:
                training.result()
        return True


# ---------------------------------------------------------------------------
# Slurm: one job array per stage, one ledger per run, merged by `collect`

ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                 "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED"}


def slurm_dir(out_dir):
    return os.path.join(os.path.abspath(out_dir), "slurm")


def run_ledger(out_dir, job):
    """The ledger of one run of a Slurm sweep, named by its label."""
    digest = hashlib.sha1(job.label().encode()).hexdigest()[:20]
    return os.path.join(os.path.abspath(out_dir), "ledgers", digest + ".sqlite")


def read_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def write_json(path, value):
    """Written whole or not at all: a kill in the middle leaves the old file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def squeue_states(job_id):
    """The states of a job's tasks as squeue lists them; [] once Slurm has forgotten it."""
    try:
        result = subprocess.run(["squeue", "-h", "-j", str(job_id), "-t", "all", "-o", "%T"], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise DriverError("squeue is not on the PATH: run on a machine of the Slurm cluster (a login node)")
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return []
        raise DriverError("squeue -j %s failed: %s" % (job_id, result.stderr.strip()))
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def summarize_states(states):
    counts = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return ", ".join("%d %s" % (n, state.lower()) for state, n in sorted(counts.items())) or "ended"


def ledger_runs(oedit_binary, ledger):
    if not os.path.exists(ledger):
        return []
    return Oedit(oedit_binary, ledger).runs()


def collect(oedit, out_dir):
    """Merges every per-run ledger whose runs are all finished into the one
    ledger (`oedit merge`); a ledger merged before and unchanged since is not
    read again. Returns how many runs were added."""
    folder = os.path.join(os.path.abspath(out_dir), "ledgers")
    if not os.path.isdir(folder):
        return 0
    record_path = os.path.join(folder, "merged.json")
    merged = read_json(record_path, {})
    ready = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".sqlite"):
            continue
        path = os.path.join(folder, name)
        stat = os.stat(path)
        stamp = [stat.st_size, stat.st_mtime_ns]
        if merged.get(name) == stamp:
            continue
        runs = ledger_runs(oedit.binary, path)
        if runs and all(run["status"] == "finished" for run in runs):
            ready.append((name, path, stamp))
    added = 0
    for begin in range(0, len(ready), 100):
        chunk = ready[begin:begin + 100]
        out = json.loads(oedit.call(["merge", "--into", oedit.ledger, "--json"] + [path for _n, path, _s in chunk]))
        for source in out["sources"]:
            added += len(source["added"])
            for warning in source["warnings"]:
                oedit.log("collect: %s: %s" % (source["path"], warning))
        for name, _path, stamp in chunk:
            merged[name] = stamp
        write_json(record_path, merged)
    if ready:
        oedit.log("collect: %d ledger(s) read, %d run(s) added to %s" % (len(ready), added, oedit.ledger))
    return added


class SlurmBackend:
    """Submits the runs that are not finished as a Slurm job array, each task
    one `oedit run` into a ledger of its own; waits (unless --no-wait) and
    merges the finished ledgers into the one ledger."""

    def __init__(self, oedit, args, plan):
        self.oedit = oedit
        self.args = args
        self.plan = plan
        self.folder = slurm_dir(args.out)
        os.makedirs(os.path.join(self.folder, "logs"), exist_ok=True)
        self.submissions_path = os.path.join(self.folder, "submissions.json")

    def active_submissions(self):
        active = []
        for submission in read_json(self.submissions_path, []):
            states = squeue_states(submission["job_id"])
            if any(state in ACTIVE_STATES for state in states):
                active.append((submission, states))
        return active

    def wait(self, job_id):
        last = None
        while True:
            states = squeue_states(job_id)
            summary = summarize_states(states)
            if summary != last:
                self.oedit.log("slurm job %s: %s" % (job_id, summary))
                last = summary
            if not any(state in ACTIVE_STATES for state in states):
                return states
            time.sleep(self.args.poll)

    def submit(self, stage, tasks):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        tasks_path = os.path.join(self.folder, "%s-%s.json" % (stage, stamp))
        write_json(tasks_path, {"oedit": os.path.abspath(self.oedit.binary), "out": os.path.abspath(self.args.out),
                                "tasks": tasks})
        script = os.path.join(self.folder, "%s-%s.sh" % (stage, stamp))
        with open(script, "w") as f:
            f.write("#!/bin/sh\n# One task of a results sweep: bench/results.py task, run by Slurm's job array.\n"
                    "exec \"${OEDIT_PYTHON:-python3}\" %s task --tasks %s --index \"$SLURM_ARRAY_TASK_ID\"\n" % (
                        shlex.quote(os.path.abspath(__file__)), shlex.quote(tasks_path)))
        os.chmod(script, 0o755)
        array = "0-%d" % (len(tasks) - 1) + ("%%%d" % self.args.max_parallel if self.args.max_parallel else "")
        command = ["sbatch", "--parsable", "--array=" + array, "--job-name=oedit-" + stage,
                   "--output=" + os.path.join(self.folder, "logs", "%A_%a.log")]
        for option, value in (("--partition", self.args.partition), ("--time", self.args.time),
                              ("--gres", self.args.gres), ("--cpus-per-task", self.args.cpus_per_task)):
            if value:
                command.append("%s=%s" % (option, value))
        for extra in self.args.sbatch_arg or []:
            command += shlex.split(extra)
        command.append(script)
        try:
            result = subprocess.run(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise DriverError("sbatch is not on the PATH: run on a machine of the Slurm cluster (a login node), "
                              "or use --backend local")
        if result.returncode != 0:
            raise DriverError("sbatch refused the job array (%s): %s" % (
                " ".join(shlex.quote(c) for c in command), result.stderr.strip()))
        job_id = result.stdout.strip().split(";")[0]
        submissions = read_json(self.submissions_path, [])
        submissions.append({"job_id": job_id, "stage": stage, "tasks": tasks_path, "count": len(tasks),
                            "submitted": stamp})
        write_json(self.submissions_path, submissions)
        self.oedit.log("slurm job %s: %d task(s) of stage %s submitted (logs in %s)" % (
            job_id, len(tasks), stage, os.path.join(self.folder, "logs")))
        return job_id

    def run_stage(self, stage, jobs, train=False):
        """Submits what of `jobs` (and the CounterFact model's training) is not
        finished; True once all of it is, False when it was left to run
        (--no-wait, or an earlier submission still runs)."""
        active = self.active_submissions()
        if active:
            if self.args.no_wait:
                for submission, states in active:
                    self.oedit.log("slurm job %s (%s) is not done: %s; nothing more is submitted until it ends "
                                   "(`results.py status --out %s`)" % (submission["job_id"], submission["stage"],
                                                                      summarize_states(states), self.args.out))
                return False
            for submission, _states in active:
                self.wait(submission["job_id"])
        collect(self.oedit, self.args.out)
        runs = self.oedit.runs()
        missing = [job for job in without_served(jobs)
                   if (find_run(runs, job) or {}).get("status") != "finished"]
        tasks = [{"kind": "run", "job": job.to_dict(), "ledger": run_ledger(self.args.out, job)} for job in missing]
        if train and counterfact_model_missing(self.plan, self.args.out):
            tasks.append({"kind": "train", "plan": self.plan})
        if not tasks:
            return True
        job_id = self.submit(stage, tasks)
        if self.args.no_wait:
            self.oedit.log("not waiting: `results.py status --out %s` shows the tasks; run this command again "
                           "to go on once they end" % self.args.out)
            return False
        self.wait(job_id)
        collect(self.oedit, self.args.out)
        runs = self.oedit.runs()
        failed = [job for job in missing if (find_run(runs, job) or {}).get("status") != "finished"]
        problems = ["%s (ledger %s)" % (job.label(), run_ledger(self.args.out, job)) for job in failed]
        if train and counterfact_model_missing(self.plan, self.args.out):
            problems.append("the CounterFact model was not trained")
        if problems:
            raise DriverError("%d task(s) of slurm job %s did not finish (task logs in %s); run the same command "
                              "again to submit only those, resuming their runs:\n  %s" % (
                                  len(problems), job_id, os.path.join(self.folder, "logs"), "\n  ".join(problems)))
        return True


def command_task(args):
    """One task of a Slurm job array: its run, started or resumed in its own ledger."""
    spec = read_json(args.tasks, None)
    if spec is None:
        raise DriverError("no task file '%s'" % args.tasks)
    index = args.index if args.index is not None else os.environ.get("SLURM_ARRAY_TASK_ID")
    if index is None or not str(index).isdigit() or int(index) >= len(spec["tasks"]):
        raise DriverError("task index %r is not one of the %d tasks of %s" % (index, len(spec["tasks"]), args.tasks))
    task = spec["tasks"][int(index)]
    # Slurm sends TERM to every process of the task, then KILL: had this
    # process died at once, Slurm would have taken the task for ended and
    # killed oedit in the middle of an edit.
    signal.signal(signal.SIGTERM, pass_term_on)
    threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "1") or 1)
    if task["kind"] == "train":
        train_counterfact_model(Oedit(spec["oedit"], None), task["plan"], spec["out"], threads)
        return
    os.makedirs(os.path.dirname(task["ledger"]), exist_ok=True)
    run_id = execute(Oedit(spec["oedit"], task["ledger"]), Job.from_dict(task["job"]), threads)
    print("run %d finished in %s" % (run_id, task["ledger"]))


def command_status(args):
    folder = slurm_dir(args.out)
    submissions = read_json(os.path.join(folder, "submissions.json"), [])
    if not submissions:
        print("no Slurm submissions in %s" % folder)
        return
    for submission in submissions:
        states = squeue_states(submission["job_id"])
        spec = read_json(submission["tasks"], {"tasks": []})
        finished = stopped = not_started = 0
        lines = []
        for task in spec["tasks"]:
            if task["kind"] != "run":
                continue
            run = find_run(ledger_runs(args.oedit, task["ledger"]), Job.from_dict(task["job"]))
            if run is None:
                not_started += 1
            elif run["status"] == "finished":
                finished += 1
            else:
                stopped += 1
                lines.append("    %s: %s after %d of %d edits" % (run["label"], run["status"], run["edits"],
                                                                run["planned"]))
        print("slurm job %s, stage %s, %d task(s): %s; runs finished %d, stopped or running %d, not started %d" % (
            submission["job_id"], submission["stage"], submission["count"], summarize_states(states), finished,
            stopped, not_started))
        for line in lines:
            print(line)


def command_collect(args):
    plan = load_plan(args.plan)
    oedit = Oedit(args.oedit, os.path.join(args.out, plan["ledger"]))
    added = collect(oedit, args.out)
    print("%d run(s) added to %s" % (added, oedit.ledger))


def command_run(args):
    plan = load_plan(args.plan)
    plan["device"] = args.device
    os.makedirs(args.out, exist_ok=True)
    oedit = Oedit(args.oedit, os.path.join(args.out, plan["ledger"]))
    stages = args.stages.split(",") if args.stages else list(STAGES)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise DriverError("unknown stage(s) %s; the stages are %s" % (", ".join(unknown), ", ".join(STAGES)))
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else plan["world"]["seeds"]
    if args.systems:
        wanted = args.systems.split(",")
        unknown = [n for n in wanted if n not in [s["name"] for s in plan["systems"]]]
        if unknown:
            raise DriverError("unknown system(s) %s; the plan has %s" % (
                ", ".join(unknown), ", ".join(s["name"] for s in plan["systems"])))
        plan["systems"] = [s for s in plan["systems"] if s["name"] in wanted]
    backend = (SlurmBackend if args.backend == "slurm" else LocalBackend)(oedit, args, plan)
    machine = machine_description(oedit)
    machine.update(backend=args.backend, device=args.device or "cpu")
    with open(os.path.join(args.out, "machine.json"), "w") as f:
        json.dump(machine, f, indent=2)
    # Tuning first: every later stage uses its choices. The CounterFact model
    # trains beside it, when that stage is asked for.
    first = tuning_jobs(plan) if "tune" in stages else []
    train = "counterfact" in stages and counterfact_model_missing(plan, args.out)
    if not backend.run_stage("tune", first, train=train):
        return
    chosen = chosen_configs(oedit, plan)
    missing = [s["method"] for s in plan["systems"] if s["method"] not in chosen]
    if missing and any(s in stages for s in ("world", "ablation", "counterfact")):
        raise DriverError("no finished tuning runs for %s: run the 'tune' stage first" % ", ".join(missing))
    later = []
    if "world" in stages:
        later += world_jobs(plan, chosen, seeds)
    if "ablation" in stages:
        later += [job for _name, job in ablation_jobs(plan, chosen)]
    if "counterfact" in stages:
        later += counterfact_jobs(plan, chosen, args.out)
    if not backend.run_stage("later", later):
        return
    oedit.log("all runs finished; ledger " + oedit.ledger)


# ---------------------------------------------------------------------------
# report

def fmt(value, metric):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if metric == "heldout_ppl":
        return "%.3g" % value if value < 1000 else "%.2e" % value
    if metric == "edit_seconds":
        return "%.3f" % value
    if metric == "unedited_n":
        return "%d" % round(value)
    return "%.3f" % value


def aggregate(values, metric):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt(values[0], metric)
    mean = statistics.mean(values)
    return "%s (%s-%s)" % (fmt(mean, metric), fmt(min(values), metric), fmt(max(values), metric))


def mean_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


class Results:
    """Everything the report needs, read from the ledger once."""

    def __init__(self, oedit, plan, out_dir):
        self.oedit = oedit
        self.plan = plan
        self.out_dir = out_dir
        self.runs = oedit.runs()
        self.reports = {}
        self.chosen = chosen_configs(oedit, plan)

    def report_for(self, job):
        run = find_run(self.runs, job)
        if run is None or run["status"] != "finished":
            return None, None
        if run["run_id"] not in self.reports:
            self.reports[run["run_id"]] = self.oedit.report(run["run_id"])
        return run, self.reports[run["run_id"]]

    def metrics(self, job, step):
        _run, report = self.report_for(job)
        return checkpoint_metrics(report, step) if report else None


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def display_path(arg, out_dir):
    """Paths as a reader types them from the project root: the output folder as
    'results', everything else relative to the root."""
    if not os.path.isabs(arg):
        return arg
    out_dir = os.path.abspath(out_dir)
    if arg == out_dir or arg.startswith(out_dir + os.sep):
        return os.path.join("results", os.path.relpath(arg, out_dir))
    return os.path.relpath(arg, ROOT)


def oedit_command(args, out_dir):
    return "build/app/oedit " + " ".join(shlex.quote(display_path(a, out_dir)) for a in args)


def render_plots(workbench, specs, figures_dir):
    if not workbench:
        return "plots not rendered: no oedit-workbench given (--workbench)"
    os.makedirs(figures_dir, exist_ok=True)
    spec_path = os.path.join(figures_dir, ".plots.json")
    with open(spec_path, "w") as f:
        json.dump({"plots": specs}, f)
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        result = subprocess.run([workbench, "--plot", spec_path, "--out-dir", figures_dir], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        os.remove(spec_path)
    if result.returncode != 0:
        raise DriverError("oedit-workbench --plot failed: " + result.stderr.strip())
    return None


def series(name, points, key=None):
    xs = [x for x, _y in points]
    ys = [y for _x, y in points]
    return {"name": name, "x": xs, "y": ys, "color_key": key or name}


def curve_points(results, jobs, metric):
    """(step, mean over the jobs' runs) for every checkpoint the runs share."""
    reports = [results.report_for(job)[1] for job in jobs]
    reports = [r for r in reports if r]
    if not reports:
        return []
    steps = sorted(set.intersection(*[set(int(p["step"]) for p in r["curve"]) for r in reports]))
    # A job served by a longer run shows its own length only.
    steps = [step for step in steps if step <= min(job.edits for job in jobs)]
    out = []
    for step in steps:
        values = [(checkpoint_metrics(r, step) or {}).get(metric) for r in reports]
        out.append((step, mean_or_none(values)))
    return out


def command_report(args):
    plan = load_plan(args.plan)
    plan["device"] = args.device
    oedit = Oedit(args.oedit, os.path.join(args.out, plan["ledger"]))
    if not os.path.exists(oedit.ledger):
        raise DriverError("no ledger at '%s': run `bench/results.py run --out %s` first" % (oedit.ledger, args.out))
    results = Results(oedit, plan, args.out)
    try:
        with open(os.path.join(args.out, "machine.json")) as f:
            machine = json.load(f)
    except OSError:
        machine = None
    doc_dir = os.path.dirname(os.path.abspath(args.doc))
    figures_rel = os.path.relpath(os.path.abspath(args.figures), doc_dir)
    world = plan["world"]
    systems = plan["systems"]
    seeds_present = sorted({run.get("seed") for run in results.runs
                            if run.get("label", "").startswith("results|") and run["status"] == "finished"
                            and "|data=world|" in run["label"] and "|seed=%d|" % plan["tuning"]["seed"]
                            not in run["label"]})
    seeds = [s for s in world["seeds"] if s in seeds_present] or world["seeds"][:1]
    default_info = oedit.info(world_model(plan))["model"]
    d, d_k = default_info["hidden"], default_info["intermediate"]
    metrics = ["ES", "PS", "NS", "score", "overall", "gen_EM", "unedited_acc", "heldout_ppl", "edit_seconds"]
    out = []
    out.append("# Results: sequential editing with O-Edit and its baselines\n")
    out.append("This file is written by `bench/results.py report` from the ledger that `bench/results.py run` "
               "fills; no number in it is typed by hand. How to reproduce it is at the end.\n")
    if machine:
        out.append("**Machine.** %s, %s cores, %s; libtorch %s with %s; CUDA devices: %s; one thread per run "
                   "(runs in parallel); recorded %s." % (
                       machine["cpu"], machine["cores"], machine["system"], machine["libtorch"], machine["blas"],
                       machine["cuda_devices"], machine["recorded"]))
    out.append("\n**Metrics.** ES, PS, NS: efficacy, paraphrase success and neighbourhood specificity "
               "(CounterFact's teacher-forced P(new) > P(old) convention); score: their harmonic mean (the "
               "literature's score); overall: the harmonic mean of ES, PS, NS and the accuracy on a fixed sample of "
               "facts never edited (the model's other knowledge), the number tuning maximises; gen EM: greedy "
               "generation exact match of the new target; held-out ppl: perplexity on held-out general text; "
               "s/edit: mean compute time of one edit up to that point (one CPU thread).\n")

    # -- the default world
    out.append("## Sequential edits on the default world\n")
    out.append("The default model (%d layers, width d = %d, MLP width d_k = %d) edited one fact at a time: "
               "every method on the same sequences (seeds %s), with the configuration chosen by tuning. "
               "T is also given as a multiple of d (the output side's room for exactly orthogonal directions) "
               "and of d_k (the input side's).\n" % (default_info["layers"], d, d_k, ", ".join(map(str, seeds))))
    out.append(table(["method", "oedit method", "hyperparameters over the method's defaults"],
                     [[s["name"], s["method"], "`%s`" % canonical(system_overrides(s, results.chosen)) +
                       (" (the tuned O-Edit+ configuration with a variant's changes)" if s.get("variant") else "")]
                      for s in systems]) + "\n")
    for step in world["checkpoints"]:
        rows = []
        for system in systems:
            jobs = [world_job(plan, results.chosen, system, seed) for seed in seeds]
            values = [results.metrics(job, step) for job in jobs]
            measured = [str(seed) for seed, v in zip(seeds, values) if v]
            rows.append([system["name"], ",".join(measured) or "none"] +
                        [aggregate([(v or {}).get(m) for v in values], m) for m in metrics])
        out.append("### T = %d (%.2f d, %.2f d_k)\n" % (step, step / d, step / d_k))
        if len(seeds) > 1:
            out.append("Mean over the seeds measured, (min-max) beside it.\n")
        out.append(table(["method", "seeds"] + [METRIC_NAMES[m] for m in metrics], rows) + "\n")

    # -- the target, checked from the table's numbers
    final = world["checkpoints"][-1]
    def world_mean(method_name, metric, step=final):
        system = next((s for s in systems if s["name"] == method_name), None)
        if system is None:
            return None
        jobs = [world_job(plan, results.chosen, system, seed) for seed in seeds]
        return mean_or_none([(results.metrics(job, step) or {}).get(metric) for job in jobs])
    out.append("### The target at T = %d\n" % final)
    out.append("O-Edit+ (or a variant of ours) should reach at least twice the score of sequential ROME and "
               "MEMIT, and at least AlphaEdit's. Each line compares the mean over the seeds.\n")
    checks = []
    ours_names = [s["name"] for s in systems if s["method"] == "oedit+"]
    for metric in ("score", "overall"):
        for name in ours_names:
            ours = world_mean(name, metric)
            for other, factor in (("ROME", 2.0), ("MEMIT", 2.0), ("AlphaEdit", 1.0)):
                theirs = world_mean(other, metric)
                if ours is None or theirs is None:
                    verdict = "not measured"
                elif factor * theirs > 1.0:
                    verdict = "unreachable: the bound is above 1, the largest value the metric takes"
                else:
                    verdict = "holds" if ours >= factor * theirs else "does not hold"
                checks.append([metric, "%s >= %s x %s" % (name, "%g" % factor, other), fmt(ours, metric),
                               fmt(None if theirs is None else factor * theirs, metric), verdict])
    out.append(table(["metric", "target", "O-Edit+", "bound", "verdict"], checks) + "\n")

    # -- rankings, stated from the numbers
    out.append("### Who leads where\n")
    lines = []
    for step in world["checkpoints"]:
        for metric in ("score", "overall", "unedited_acc"):
            ranked = sorted(((world_mean(s["name"], metric, step), s["name"]) for s in systems),
                            key=lambda pair: -1.0 if pair[0] is None else pair[0], reverse=True)
            ranked = [(v, n) for v, n in ranked if v is not None]
            if not ranked:
                continue
            ours = [i + 1 for i, (_v, n) in enumerate(ranked) if n == "O-Edit+"]
            lines.append("- T = %d, %s: best %s (%s)%s." % (
                step, METRIC_NAMES[metric], ranked[0][1], fmt(ranked[0][0], metric),
                "; O-Edit+ ranks %d of %d" % (ours[0], len(ranked)) if ours else ""))
    out.append("\n".join(lines) + "\n")

    # -- capacity
    out.append("### Where O-Edit's capacity runs out\n")
    cap_rows = []
    for system in systems:
        if not system["method"].startswith("oedit"):
            continue
        for seed in seeds:
            job = world_job(plan, results.chosen, system, seed)
            _run, report = results.report_for(job)
            if report:
                at = capacity_exhausted_at(report)
                cap_rows.append([system["name"], seed, "never" if at is None else at,
                                 "n/a" if at is None else "%.2f d, %.2f d_k" % (at / d, at / d_k)])
    out.append("The first edit after which the edited layer had no exactly orthogonal direction left "
               "(the run goes on with the capacity policy, `relax` by default).\n")
    out.append(table(["method", "seed", "layer full after edit", "as multiples"], cap_rows) + "\n")
    capacity_series = []
    for system in systems:
        if not system["method"].startswith("oedit"):
            continue
        _run, report = results.report_for(world_job(plan, results.chosen, system, seeds[0]))
        rows = (report or {}).get("edit_log", {}).get("rows", [])
        points = [(row[0], row[3]) for row in rows if row[3] is not None and row[3] >= 0 and
                  (row[0] % 10 == 0 or row[0] == 1)]
        if points:
            capacity_series.append(series(system["name"], points))
    if capacity_series:
        specs_capacity = {"file": "world-capacity.png", "title": "Exactly orthogonal directions left (seed %d)" % seeds[0],
                          "x_label": "sequential edits T", "y_label": "directions left in the edited layer",
                          "series": capacity_series}
        out.append("![Capacity left](%s/world-capacity.png)\n" % figures_rel)
    else:
        specs_capacity = None

    # -- plots of the world runs
    specs = [specs_capacity] if specs_capacity else []
    world_jobs_by_system = {s["name"]: [world_job(plan, results.chosen, s, seed) for seed in seeds]
                            for s in systems}
    for metric, title, log in (("score", "Score (harmonic mean of ES, PS, NS)", False),
                               ("unedited_acc", "Accuracy on facts never edited", False),
                               ("ES", "Efficacy of the edits made so far", False),
                               ("heldout_ppl", "Held-out perplexity", True)):
        specs.append({"file": "world-%s.png" % metric.replace("_", "-"), "title": title,
                      "x_label": "sequential edits T", "y_label": METRIC_NAMES[metric], "y_log": log,
                      "series": [series(name, curve_points(results, jobs, metric), key=name)
                                 for name, jobs in world_jobs_by_system.items()]})
        if not log:
            specs[-1]["y_range"] = [0, 1]
        if metric in ("score", "ES"):
            specs[-1]["legend"] = "bottom-left"  # these curves stay high: keep the legend off them
    out.append("![Score against the number of edits](%s/world-score.png)\n" % figures_rel)
    out.append("![Accuracy on unedited facts](%s/world-unedited-acc.png)\n" % figures_rel)
    out.append("![Efficacy](%s/world-ES.png)\n" % figures_rel)
    out.append("![Held-out perplexity](%s/world-heldout-ppl.png)\n" % figures_rel)

    # -- CounterFact
    cf = plan["counterfact"]
    data, model = counterfact_paths(plan, args.out)
    cf_jobs = {s["name"]: [counterfact_job(plan, results.chosen, s, args.out)] for s in systems}
    out.append("## Sequential edits on a model trained on CounterFact\n")
    cf_model_info = None
    if os.path.isdir(model):
        try:
            cf_model_info = oedit.info(model)["model"]
        except DriverError:
            cf_model_info = None
    if cf_model_info:
        train_args = cf["train_args"]
        limit = train_args[train_args.index("--limit") + 1] if "--limit" in train_args else "all"
        out.append("A model trained with `oedit train --dataset` on the true facts of the first %s CounterFact "
                   "cases of `%s` (%d layers, width %d, MLP width %d), then given the requested rewrites of the "
                   "first %d of them one at a time, in file order (one sequence, so one seed); the remaining "
                   "cases are never edited. Paraphrase and neighbourhood prompts are the cases' own; the "
                   "unedited-fact sample is a fixed sample of the model's facts less those edited so far. The "
                   "model has no held-out general text, so no perplexity. The configurations are the ones tuned "
                   "on the world (no tuning on these cases).\n" % (
                       limit, os.path.relpath(data, ROOT), cf_model_info["layers"], cf_model_info["hidden"],
                       cf_model_info["intermediate"], cf["edits"]))
        for step in cf["checkpoints"]:
            rows = []
            for system in systems:
                values = [results.metrics(job, step) for job in cf_jobs[system["name"]]]
                rows.append([system["name"]] + [aggregate([(v or {}).get(m) for v in values], m)
                                                for m in metrics + ["unedited_n"]])
            out.append("### T = %d\n" % step)
            out.append(table(["method"] + [METRIC_NAMES[m] for m in metrics] + ["unedited facts sampled"], rows) + "\n")
        specs.append({"file": "counterfact-score.png", "title": "CounterFact model: score",
                      "x_label": "sequential edits T", "y_label": "score", "y_range": [0, 1],
                      "series": [series(name, curve_points(results, jobs, "score"), key=name)
                                 for name, jobs in cf_jobs.items()]})
        out.append("![CounterFact score](%s/counterfact-score.png)\n" % figures_rel)
    else:
        out.append("Not run: the CounterFact model is missing (the counterfact stage needs ../shared/data).\n")

    # -- ablation
    ablation = plan["ablation"]
    out.append("## Ablation of O-Edit+\n")
    out.append(ablation.get("about", "") + " Seed %d.\n" % ablation["seed"])
    ab_rows = []
    ab_series = []
    for name, job in ablation_jobs(plan, results.chosen):
        for step in ablation["checkpoints"]:
            m = results.metrics(job, step) or {}
            ab_rows.append([name, step, job.method, "`%s`" % canonical(job.overrides)] +
                           [fmt(m.get(k), k) for k in metrics])
        ab_series.append(series(name, curve_points(results, [job], "overall"), key=name))
    out.append(table(["variant", "T", "method", "overrides"] + [METRIC_NAMES[m] for m in metrics], ab_rows) + "\n")
    specs.append({"file": "ablation-overall.png", "title": "O-Edit+ ablation: overall", "x_label": "sequential edits T",
                  "y_label": "overall", "y_range": [0, 1], "legend": "bottom-left", "series": ab_series})
    out.append("![Ablation](%s/ablation-overall.png)\n" % figures_rel)

    # -- tuning
    tuning = plan["tuning"]
    out.append("## Tuning\n")
    out.append("Every method got the same budget: %d configurations, each run for %d edits on its own sequence "
               "(seed %d, not a reported one); the one with the best %s at T = %d was kept.\n" % (
                   max(len(g) for g in tuning["grids"].values()), tuning["edits"], tuning["seed"],
                   tuning.get("select_by", "overall"), tuning["edits"]))
    tune_rows = []
    for method, grid in tuning["grids"].items():
        best, scored = results.chosen.get(method, ({}, {}))
        for overrides in grid:
            m = scored.get(canonical(overrides)) or {}
            tune_rows.append([method, "`%s`" % canonical(overrides), fmt(m.get("score"), "score"),
                              fmt(m.get("overall"), "overall"), fmt(m.get("unedited_acc"), "unedited_acc"),
                              "chosen" if overrides == best else ""])
    out.append(table(["method", "overrides", "score", "overall", "unedited acc", ""], tune_rows) + "\n")

    # -- discussion (hand-written, without numbers) and reproduction
    if args.discussion and os.path.isfile(args.discussion):
        with open(args.discussion) as f:
            out.append(f.read().strip() + "\n")
    out.append("## Reproducing\n")
    out.append("From the project root, with the project built in `build/` and `../shared/data` beside it "
               "(`--stages`, `--seeds` and `--systems` run parts of the plan):\n")
    out.append("```sh\nbench/results.py run --out results --jobs 2\n"
               "bench/results.py report --out results --doc docs/RESULTS.md --figures docs/results\n```\n")
    out.append("Each run in the ledger is one `oedit` command (the `--label` lets the driver find it again), "
               "and the CounterFact model is one `oedit train`:\n")
    ledger = os.path.join(os.path.abspath(args.out), plan["ledger"])
    commands = [oedit_command(job.command(ledger), args.out) for job in tuning_jobs(plan)]
    for jobs in world_jobs_by_system.values():
        commands += [oedit_command(job.command(ledger), args.out) for job in jobs]
    commands += [oedit_command(job.command(ledger), args.out) for _n, job in ablation_jobs(plan, results.chosen)]
    commands.append(oedit_command(["train", "--dataset", data, "--out", model, "--quiet"] +
                                  plan["counterfact"]["train_args"], args.out))
    for jobs in cf_jobs.values():
        commands += [oedit_command(job.command(ledger), args.out) for job in jobs]
    out.append("```sh\n" + "\n".join(dict.fromkeys(commands)) + "\n```\n")

    problem = render_plots(args.workbench, specs, args.figures)
    if problem:
        out.append("\n_%s_\n" % problem)
    os.makedirs(doc_dir, exist_ok=True)
    tmp = args.doc + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out))
    os.replace(tmp, args.doc)
    print("wrote " + args.doc)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "report", "status", "collect"):
        p = sub.add_parser(name)
        p.add_argument("--out", default="results", help="folder of the ledger and the CounterFact model")
        p.add_argument("--plan", default=os.path.join(ROOT, "bench", "results-plan.json"))
        p.add_argument("--oedit", default=os.path.join(ROOT, "build", "app", "oedit"))
    for name in ("run", "report"):
        sub.choices[name].add_argument("--device", help="where the runs compute: cpu (default), cuda or cuda:N; a "
                                                        "GPU run is labelled as such, so give the same to report")
    run = sub.choices["run"]
    run.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at a time (local backend)")
    run.add_argument("--threads", type=int, default=1, help="threads per run (local backend)")
    run.add_argument("--stages", help="comma-separated subset of " + ",".join(STAGES))
    run.add_argument("--seeds", help="comma-separated world seeds (default: the plan's)")
    run.add_argument("--systems", help="comma-separated system names of the plan (default: all)")
    run.add_argument("--backend", choices=("local", "slurm"), default="local",
                     help="local: runs on this machine; slurm: one job array per stage (sbatch)")
    slurm = run.add_argument_group("slurm backend")
    slurm.add_argument("--partition", help="sbatch --partition")
    slurm.add_argument("--time", help="sbatch --time, per run (a run stopped by it resumes on the next call)")
    slurm.add_argument("--gres", help="sbatch --gres, e.g. gpu:1 (with --device cuda)")
    slurm.add_argument("--cpus-per-task", type=int, help="sbatch --cpus-per-task; also each run's threads")
    slurm.add_argument("--max-parallel", type=int, help="at most this many tasks of an array at once (--array=...%%N)")
    slurm.add_argument("--sbatch-arg", action="append", help="more sbatch arguments, e.g. --sbatch-arg=--account=A "
                                                             "(repeatable)")
    slurm.add_argument("--no-wait", action="store_true",
                       help="return once submitted; `status` shows the tasks, the same `run` again goes on")
    slurm.add_argument("--poll", type=float, default=5.0, help="seconds between squeue polls while waiting")
    task = sub.add_parser("task", help=argparse.SUPPRESS)
    task.add_argument("--tasks", required=True)
    task.add_argument("--index", type=int)
    report = sub.choices["report"]
    report.add_argument("--doc", default=os.path.join(ROOT, "docs", "RESULTS.md"))
    report.add_argument("--figures", default=os.path.join(ROOT, "docs", "results"))
    report.add_argument("--discussion", default=os.path.join(ROOT, "bench", "results-discussion.md"))
    report.add_argument("--workbench", default=os.path.join(ROOT, "build", "app", "oedit-workbench"))
    args = parser.parse_args()
    if args.command != "task" and not os.access(args.oedit, os.X_OK):
        print("results.py: no oedit at '%s': build the project or pass --oedit" % args.oedit, file=sys.stderr)
        return 2
    if args.command == "report" and args.workbench and not os.access(args.workbench, os.X_OK):
        args.workbench = None
    if args.command == "run" and args.backend == "slurm" and args.cpus_per_task:
        args.threads = args.cpus_per_task
    commands = {"run": command_run, "report": command_report, "status": command_status,
                "collect": command_collect, "task": command_task}
    try:
        commands[args.command](args)
    except DriverError as error:
        print("results.py: " + str(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("results.py: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
