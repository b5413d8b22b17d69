#!/usr/bin/env python3
"""bench/results.py's Slurm backend on a real single-node Slurm (started here,
stopped at the end), on the mini model with a plan cut to five short runs:

- a sweep submitted as job arrays finishes, each run in a ledger of its own,
  and `collect` merges them into the one ledger;
- a run stopped part way (its ledger cut back to step 1, as a kill or a time
  limit leaves it) is resumed by its task, not started again;
- --no-wait returns after submitting, `status` shows the job; a task
  cancelled part way (scancel: TERM) leaves its run cancelled, and the same
  `run` again submits only it and resumes it; a last call submits nothing;
- the merged ledger's reports equal those of the same plan run by the local
  backend into one ledger (ids and timings aside);
- merging the per-run ledgers once more adds nothing.

Needs root and the Debian packages slurm-wlm and munge (the README's set-up
installs them); exits 77 (skipped) without them.

usage: tst_slurm_sweep.py OEDIT MINI_MODEL WORK
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DRIVER = os.path.join(ROOT, "bench", "results.py")
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "bench"))
import slurm_cluster  # noqa: E402
import results  # noqa: E402

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return condition


def driver(env, *args):
    result = subprocess.run([sys.executable, DRIVER] + list(args), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    return result.returncode, result.stdout, result.stderr


def oedit_json(oedit, *args):
    return json.loads(subprocess.run([oedit] + list(args), check=True, text=True, stdout=subprocess.PIPE).stdout)


def cut_back_to_step_one(ledger):
    """What a kill after the first edit leaves: the run's later edits, their
    updates and checkpoints gone, its status not finished."""
    db = sqlite3.connect(ledger)
    with db:
        db.execute("DELETE FROM metrics WHERE checkpoint IN (SELECT id FROM checkpoints WHERE step > 1)")
        db.execute("DELETE FROM checkpoints WHERE step > 1")
        db.execute("DELETE FROM updates WHERE edit IN (SELECT id FROM edits WHERE step > 1)")
        db.execute("DELETE FROM edits WHERE step > 1")
        db.execute("UPDATE runs SET status = 'cancelled'")
    db.close()


def close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= 1e-4 * max(1.0, abs(a), abs(b))
    return a == b


def comparable(oedit, ledger, run):
    """A run's report without what differs between two ledgers or two
    machines: ids (retention by step), timings."""
    report = oedit_json(oedit, "report", "--db", ledger, "--run", str(run["run_id"]), "--json")
    steps = sorted(int(edit) for edit in report["retention"])
    curve = [{k: v for k, v in point.items() if "second" not in k and "time" not in k} for point in report["curve"]]
    return {"status": report["status"], "edits": report["edits"], "active_edits": report["active_edits"],
            "curve": curve, "retention": [report["retention"][str(edit)] for edit in steps]}


def same_report(a, b):
    if a.keys() != b.keys() or a["retention"] != b["retention"] or len(a["curve"]) != len(b["curve"]):
        return False
    for x, y in zip(a["curve"], b["curve"]):
        if x.keys() != y.keys() or not all(close(x[k], y[k]) for k in x):
            return False
    return all(a[k] == b[k] for k in ("status", "edits", "active_edits"))


def main():
    oedit, model, work = (os.path.abspath(a) for a in sys.argv[1:4])
    reason = slurm_cluster.unavailable()
    if reason:
        print("skipped: " + reason)
        return 77
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o755)
    with open(os.path.join(ROOT, "bench", "results-plan.json")) as f:
        plan = json.load(f)
    # Two configurations each of two methods, then one world run: five runs.
    plan["model"] = model
    plan["tuning"]["edits"] = 3
    plan["tuning"]["grids"] = {m: g[:2] for m, g in plan["tuning"]["grids"].items() if m in ("rome", "oedit+")}
    plan["systems"] = [s for s in plan["systems"] if s["name"] == "ROME"]
    # Long enough to be cancelled part way (a few seconds).
    plan["world"].update(edits=60, eval_every=20, seeds=[1], checkpoints=[20, 60])
    plan_path = os.path.join(work, "plan.json")
    with open(plan_path, "w") as f:
        json.dump(plan, f)
    slurm_out = os.path.join(work, "slurm-out")
    local_out = os.path.join(work, "local-out")

    # A run stopped after its first edit, in the ledger its task will use.
    stopped_job = results.tuning_jobs(plan)[0]
    stopped_ledger = results.run_ledger(slurm_out, stopped_job)
    os.makedirs(os.path.dirname(stopped_ledger))
    subprocess.run([oedit] + stopped_job.command(stopped_ledger), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    cut_back_to_step_one(stopped_ledger)
    check(oedit_json(oedit, "runs", "--db", stopped_ledger, "--json")["runs"][0]["edits"] == 1,
          "the stopped run holds one edit")

    with slurm_cluster.LocalSlurm(os.path.join(work, "cluster")) as cluster:
        env = dict(cluster.env, OMP_NUM_THREADS="1")
        common = ["--plan", plan_path, "--out", slurm_out, "--oedit", oedit, "--backend", "slurm", "--poll", "0.5"]

        code, _out, err = driver(env, "run", *common, "--stages", "tune", "--time", "10")
        check(code == 0, "the tuning array finishes: " + err[-3000:])
        check("4 task(s) of stage tune submitted" in err, "four tuning tasks were submitted: " + err[-1500:])
        logs = os.path.join(slurm_out, "slurm", "logs")
        log_text = "".join(open(os.path.join(logs, name)).read() for name in sorted(os.listdir(logs)))
        check("resume run 1: " + stopped_job.label() in log_text, "the stopped run was resumed by its task")
        runs = oedit_json(oedit, "runs", "--db", stopped_ledger, "--json")["runs"]
        check(len(runs) == 1 and runs[0]["status"] == "finished" and runs[0]["edits"] == 3,
              "the resumed run finished in its own ledger: %r" % runs)
        ledgers = [n for n in os.listdir(os.path.join(slurm_out, "ledgers")) if n.endswith(".sqlite")]
        check(len(ledgers) == 4, "one ledger per run: %r" % ledgers)

        code, _out, err = driver(env, "run", *common, "--stages", "tune,world", "--no-wait")
        check(code == 0, "--no-wait submits and returns: " + err[-2000:])
        check("1 task(s) of stage later submitted" in err and "not waiting" in err,
              "the world run was submitted without waiting: " + err[-1500:])
        code, out, err = driver(env, "status", "--plan", plan_path, "--out", slurm_out, "--oedit", oedit)
        check(code == 0 and "stage later, 1 task(s)" in out and "stage tune, 4 task(s)" in out,
              "status lists both jobs: " + out + err)
        check("runs finished 4" in out, "status counts the finished tuning runs: " + out)

        # scancel once the world run is part way: Slurm's TERM stops it after
        # the edit in flight, and the next call resumes it.
        with open(os.path.join(slurm_out, "slurm", "submissions.json")) as f:
            world_submission = json.load(f)[-1]
        with open(world_submission["tasks"]) as f:
            world_ledger = json.load(f)["tasks"][0]["ledger"]
        deadline = time.time() + 300
        edits = 0
        while edits < 2 and time.time() < deadline:
            time.sleep(0.2)
            if os.path.exists(world_ledger):
                runs = oedit_json(oedit, "runs", "--db", world_ledger, "--json")["runs"]
                edits = runs[0]["edits"] if runs else 0
        subprocess.run(["scancel", world_submission["job_id"]], env=env, check=True)
        cluster.wait(world_submission["job_id"], timeout=60)
        runs = oedit_json(oedit, "runs", "--db", world_ledger, "--json")["runs"]
        check(len(runs) == 1 and runs[0]["status"] == "cancelled" and runs[0]["edits"] < 60,
              "the cancelled task stopped its run part way, as cancelled: %r" % runs)

        code, _out, err = driver(env, "run", *common, "--stages", "tune,world")
        check(code == 0, "the same run again waits and finishes: " + err[-2000:])
        check("1 task(s) of stage later submitted" in err, "only the cancelled run was submitted again: " + err[-1500:])
        with open(os.path.join(slurm_out, "slurm", "submissions.json")) as f:
            again = json.load(f)[-1]
        log_path = os.path.join(slurm_out, "slurm", "logs", "%s_0.log" % again["job_id"])
        log_text = open(log_path).read() if os.path.exists(log_path) else ""
        check(again["job_id"] != world_submission["job_id"] and "resume run 1" in log_text,
              "the cancelled world run was resumed by its new task: " + log_text[-800:])
        code, _out, err = driver(env, "run", *common, "--stages", "tune,world")
        check(code == 0 and "submitted" not in err, "a last call submits nothing: " + err[-1500:])

    merged_ledger = os.path.join(slurm_out, plan["ledger"])
    merged = oedit_json(oedit, "runs", "--db", merged_ledger, "--json")["runs"]
    check(len(merged) == 5 and all(r["status"] == "finished" for r in merged),
          "five finished runs in the merged ledger: %r" % [(r["label"], r["status"]) for r in merged])

    # Merging every per-run ledger again adds nothing.
    folder = os.path.join(slurm_out, "ledgers")
    again = oedit_json(oedit, "merge", "--into", merged_ledger, "--json",
                       *[os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".sqlite")])
    check(all(not s["added"] for s in again["sources"]), "merging again adds no run")
    check(len(oedit_json(oedit, "runs", "--db", merged_ledger, "--json")["runs"]) == 5, "still five runs")

    # The same plan, local backend, one ledger.
    code, _out, err = driver(dict(os.environ, OMP_NUM_THREADS="1"), "run", "--plan", plan_path, "--out", local_out,
                             "--oedit", oedit, "--stages", "tune,world", "--jobs", "2")
    check(code == 0, "the local backend runs the same plan: " + err[-2000:])
    local_ledger = os.path.join(local_out, plan["ledger"])
    local = {r["label"]: r for r in oedit_json(oedit, "runs", "--db", local_ledger, "--json")["runs"]}
    check(sorted(local) == sorted(r["label"] for r in merged), "the same runs by label")
    for run in merged:
        if run["label"] in local:
            a = comparable(oedit, merged_ledger, run)
            b = comparable(oedit, local_ledger, local[run["label"]])
            check(same_report(a, b), "the merged report of %s equals the local one:\n%r\n%r" % (run["label"], a, b))

    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("slurm sweep: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
