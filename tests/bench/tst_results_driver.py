#!/usr/bin/env python3
"""bench/results.py end to end on the mini model, with a plan cut to a few edits:
the driver fills one ledger, a second call starts nothing, a shorter run is
served by a longer one, and the report's tables hold the ledger's numbers
(and, with a workbench, the plots exist).

usage: tst_results_driver.py OEDIT MINI_MODEL WORK [WORKBENCH]
"""

import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "bench", "results.py")
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def driver(*args):
    result = subprocess.run([sys.executable, DRIVER] + list(args), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    return result.returncode, result.stdout, result.stderr


def oedit_json(oedit, *args):
    return json.loads(subprocess.run([oedit] + list(args), check=True, text=True, stdout=subprocess.PIPE).stdout)


def main():
    oedit, model, work = sys.argv[1:4]
    workbench = sys.argv[4] if len(sys.argv) > 4 else None
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(ROOT, "bench", "results-plan.json")) as f:
        plan = json.load(f)
    # The real plan, shrunk: two configurations per method, a few edits.
    plan["model"] = model
    plan["tuning"]["edits"] = 3
    plan["tuning"]["grids"] = {m: g[:2] for m, g in plan["tuning"]["grids"].items() if m in ("rome", "oedit+")}
    plan["systems"] = [s for s in plan["systems"] if s["name"] in ("ROME", "O-Edit+")]
    plan["world"].update(edits=4, eval_every=2, seeds=[1], checkpoints=[2, 4])
    plan["ablation"].update(edits=2, eval_every=2, checkpoints=[2])
    plan["ablation"]["variants"] = plan["ablation"]["variants"][:2]
    plan_path = os.path.join(work, "plan.json")
    with open(plan_path, "w") as f:
        json.dump(plan, f)
    out = os.path.join(work, "out")
    common = ["--plan", plan_path, "--out", out, "--oedit", oedit]

    code, _stdout, stderr = driver("run", *common, "--stages", "tune,world,ablation", "--jobs", "2")
    check(code == 0, "the first run succeeds: " + stderr[-2000:])
    ledger = os.path.join(out, "results.sqlite")
    runs = oedit_json(oedit, "runs", "--db", ledger, "--json")["runs"]
    # 2 methods x 2 configurations + 2 world runs + the ablation's 'edit subspace only'
    # (its 'both subspaces' variant is the tuned O-Edit+: served by the longer world run).
    check(len(runs) == 7, "seven runs in the ledger, got %d" % len(runs))
    check(all(r["status"] == "finished" for r in runs), "every run finished")
    check(all(r["label"].startswith("results|") for r in runs), "every run carries the driver's label")

    code, _stdout, stderr = driver("run", *common, "--stages", "tune,world,ablation", "--jobs", "2")
    check(code == 0, "the second run succeeds")
    check("start:" not in stderr and "resume" not in stderr, "the second run starts nothing: " + stderr[-500:])
    check(len(oedit_json(oedit, "runs", "--db", ledger, "--json")["runs"]) == 7, "still seven runs")

    doc = os.path.join(work, "RESULTS.md")
    figures = os.path.join(work, "figures")
    report_args = ["report", *common, "--doc", doc, "--figures", figures]
    report_args += ["--workbench", workbench] if workbench else ["--workbench", ""]
    code, _stdout, stderr = driver(*report_args)
    check(code == 0, "the report is written: " + stderr[-2000:])
    text = open(doc).read() if os.path.exists(doc) else ""

    # The ROME row at T = 4 holds the ledger's ES and unedited accuracy.
    rome = next(r for r in runs if r["method"] == "rome" and "|data=world|edits=4" in r["label"])
    final = oedit_json(oedit, "report", "--db", ledger, "--run", str(rome["run_id"]), "--json")["final"]
    section = text.split("### T = 4 ", 1)[1] if "### T = 4 " in text else ""
    row = next((line for line in section.splitlines() if line.startswith("| ROME |")), "")
    cells = [c.strip() for c in row.strip("|").split("|")]
    check(len(cells) == 11, "the T = 4 table has a ROME row with its seeds and every metric: %r" % row)
    if len(cells) == 11:
        check(cells[1] == "1", "the row names the seed it was measured on")
        check(cells[2] == "%.3f" % final["ES"], "ES in the table is the ledger's (%s vs %.3f)" % (cells[2], final["ES"]))
        check(cells[8] == "%.3f" % final["unedited_acc"], "unedited accuracy is the ledger's")
    check("chosen" in text, "the tuning table marks the chosen configurations")
    check(re.search(r"O-Edit\+ >= 2 x ROME \| [0-9.]+ \| [0-9.]+ \| (holds|does not hold|unreachable)", text) is not None,
          "the target is checked from measured numbers")
    check("oedit run --db results/results.sqlite --method rome" in text, "the reproduction commands are listed")
    if workbench:
        for name in ("world-score.png", "world-unedited-acc.png", "ablation-overall.png"):
            path = os.path.join(figures, name)
            check(os.path.isfile(path) and os.path.getsize(path) > 1000, "the plot %s is rendered" % name)
        check("world-score.png" in text, "the report links its plots")

    code, _stdout, stderr = driver("run", *common, "--stages", "nonsense")
    check(code != 0 and "unknown stage" in stderr, "an unknown stage is refused with a message")
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("results driver: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
