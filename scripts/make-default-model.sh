#!/usr/bin/env bash
# Regenerates the embedded default model in resources/models/default from its
# recipe: the default world (seed 1, 600 subjects) and resources/recipes/default.json.
# Takes about an hour on 2 cores. Needs a built `oedit` (scripts/quickstart.sh builds one).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
oedit=${OEDIT:-$root/build/app/oedit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$oedit" world --preset default --out "$work/world"
# One intra-op thread: the matrices are small and OpenMP threads on top of
# OpenBLAS's own cost more than they bring on two cores.
OMP_NUM_THREADS=1 "$oedit" train --world "$work/world" --recipe "$root/resources/recipes/default.json" \
  --out "$work/model"
rm -rf "$root/resources/models/default"
mkdir -p "$root/resources/models"
mv "$work/model" "$root/resources/models/default"
"$oedit" eval-facts --model "$root/resources/models/default"
