#!/usr/bin/env bash
# A long sequential run: wall time and peak memory of `oedit run` (edits,
# evaluation checkpoints and ledger writes included), then the slowest
# rollback on the finished run (bench_rollback).
#
# Usage: bench/bench_sequential.sh [BUILD_DIR] [EDITS] [EVAL_EVERY] [METHOD] [DEVICE]
#   defaults: build 2000 100 oedit+ cpu (the default model, its world, seed 1);
#   DEVICE is `oedit run --device`: cpu, cuda or cuda:N
# The ledger is left in $OEDIT_BENCH_DIR (default: a temporary folder) so the
# run can be inspected with `oedit report` afterwards.
set -euo pipefail
build=${1:-build}
edits=${2:-2000}
every=${3:-100}
method=${4:-oedit+}
device=${5:-cpu}
out=${OEDIT_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$out"
db="$out/sequential.sqlite"
rm -f "$db" "$db-wal" "$db-shm"
if [ ! -x /usr/bin/time ]; then
    echo "bench_sequential: /usr/bin/time is needed for the peak memory (apt-get install time)" >&2
    exit 1
fi
# One thread per process is faster for this model size on 2 cores (less
# synchronisation than work in libtorch's small ops).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
echo "== $method, $edits edits, evaluation every $every, device $device, ledger $db"
/usr/bin/time -f "wall %e s, peak RSS %M KB" "$build/app/oedit" run --method "$method" --edits "$edits" \
    --eval-every "$every" --seed 1 --device "$device" --db "$db" --json >"$out/run.json" 2>"$out/run.err" || {
    tail -c 2000 "$out/run.err" >&2
    exit 1
}
tail -n 1 "$out/run.err"
"$build/app/oedit" report --db "$db" --run 1 --csv "$out/curve.csv" >/dev/null
echo "curve: $out/curve.csv"
grep -o '"final":{[^}]*}' "$out/run.json" || true
echo "== rollback on the finished run"
"$build/bench/bench_rollback" --db "$db" --run 1 --repeats 3
