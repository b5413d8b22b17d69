#!/usr/bin/env bash
# Regenerates an embedded model from its recipe: the default world (seed 1,
# 600 subjects) trained with resources/recipes/NAME.json into
# resources/models/NAME, then its recall, its averaged causal trace and its
# linear probes.
#
#   scripts/make-default-model.sh               # NAME=default: template text (about an hour)
#   scripts/make-default-model.sh biographies   # biography text (about an hour on one core)
#
# The shipped default model carries the world it was trained on (world.json in
# its folder); the generator's world has changed since (names, templates), so
# regenerating "default" gives a model of the same recipe on today's world, not
# the shipped bytes. Needs a built `oedit` (scripts/quickstart.sh builds one).
set -euo pipefail
name=${1:-default}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
recipe="$root/resources/recipes/$name.json"
if [ ! -f "$recipe" ]; then
  echo "make-default-model.sh: no recipe $recipe; the names are those of resources/recipes/*.json" >&2
  exit 2
fi
oedit=${OEDIT:-$root/build/app/oedit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$oedit" world --preset default --out "$work/world"
# Debian's OpenBLAS does not recognise some AVX-512 processors (virtual
# machines report a generic model) and falls back to its SSE3 kernels, three
# times slower here; name the kernel when the processor has AVX-512 and the
# caller has not chosen one.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SkylakeX
fi
# One intra-op thread: the matrices are small and OpenMP threads on top of
# OpenBLAS's own cost more than they bring on two cores.
OMP_NUM_THREADS=1 "$oedit" train --world "$work/world" --recipe "$recipe" --out "$work/model"
rm -rf "$root/resources/models/$name"
mkdir -p "$root/resources/models"
mv "$work/model" "$root/resources/models/$name"
"$oedit" eval-facts --model "$root/resources/models/$name"
# Where the facts live: the averaged causal trace and the linear probes.
"$oedit" trace --model "$root/resources/models/$name"
"$oedit" probe --model "$root/resources/models/$name"
