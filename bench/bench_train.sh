#!/usr/bin/env bash
# Training throughput of the world-model trainer: one epoch of the default
# world with the default recipe (width 256, 4 layers), at 1 and at 2 intra-op
# threads. Prints tokens/s as `oedit train` reports it. Usage:
#   bench/bench_train.sh [path/to/oedit]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
oedit=${1:-$root/build/app/oedit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$oedit" world --preset default --out "$work/world" > /dev/null
for threads in 1 2; do
  rm -rf "$work/model"
  line=$(OMP_NUM_THREADS=$threads "$oedit" train --world "$work/world" --out "$work/model" \
           --recipe "$root/resources/recipes/default.json" --epochs 1 --quiet | grep '^trained')
  echo "OMP_NUM_THREADS=$threads: $line"
done
