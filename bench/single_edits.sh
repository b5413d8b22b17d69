#!/usr/bin/env bash
# Single edits, each on the unedited model, as ROME's paper evaluates them:
# N one-edit runs (seeds 1..N: each run edits the first fact of its seeded
# sequence) and the mean of their efficacy (ES), paraphrase (PS) and
# neighbourhood (NS) scores. Runs are kept in one ledger, one run each.
#
# Usage: bench/single_edits.sh [BUILD_DIR] [N] [METHOD] [HPARAMS_JSON] [MODEL_DIR]
#   defaults: build 100 rome '{}' (the embedded model)
# Example, ROME at the subject's last token of layer 1:
#   bench/single_edits.sh build 100 rome '{"fact_token":"subject_last","layer":1}'
set -euo pipefail
build=${1:-build}
count=${2:-100}
method=${3:-rome}
hparams=${4:-'{}'}
model=${5:-}
out=${OEDIT_BENCH_DIR:-$(mktemp -d)}
mkdir -p "$out"
db="$out/single.sqlite"
rm -f "$db" "$db-wal" "$db-shm" "$out/single.jsonl"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
model_args=()
if [ -n "$model" ]; then model_args=(--model "$model"); fi
for seed in $(seq 1 "$count"); do
    "$build/app/oedit" run "${model_args[@]}" --db "$db" --method "$method" --hparams "$hparams" --edits 1 \
        --seed "$seed" --cache "$out/cache" --json 2>>"$out/single.err" |
        python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["final"]))' >>"$out/single.jsonl"
done
python3 - "$out/single.jsonl" "$method" "$hparams" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"{sys.argv[2]} {sys.argv[3]}: {len(rows)} single edits")
for key in ("ES", "PS", "NS", "unedited_acc"):
    values = [r[key] for r in rows if key in r]
    if values:
        print(f"  {key:13s} {sum(values) / len(values):.3f}  (over {len(values)} edits)")
PY
