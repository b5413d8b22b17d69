#!/usr/bin/env bash
# Checks the CUDA path on a machine with an NVIDIA GPU and PyTorch: builds
# core, `oedit`, the tests and the benchmarks against the CUDA libtorch that
# comes with PyTorch (GUI off), runs the tests labelled gpu and the CPU unit
# tests, then the benchmarks on the GPU, and writes every figure with the
# device and the command that made it into one Markdown file for the README to
# cite. A failing step does not stop the others: the file records it and the
# script exits 1 at the end.
#
#   scripts/gpu-check.sh              build, test, measure
#   scripts/gpu-check.sh --dry-run    print the commands, run nothing (no GPU needed)
#   scripts/gpu-check.sh --help
#
# Run it from anywhere; commands run from the project root.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${OEDIT_GPU_BUILD_DIR:-build-gpu}
report=${OEDIT_GPU_REPORT:-docs/gpu-check.md}
python=${OEDIT_GPU_PYTHON:-python3}
device=${OEDIT_GPU_DEVICE:-cuda}
dry_run=0
slow=0
edits=2000

usage() {
  cat <<EOF
usage: scripts/gpu-check.sh [--dry-run] [--slow] [--edits N] [--help]

Builds core, oedit, the tests and the benchmarks against PyTorch's CUDA
libtorch in their own folder, runs 'ctest -L gpu' and 'ctest -L unit', then on
the GPU: oedit check-device, bench_matmul, bench_forward (the default model, a
random GPT-2 small, a random Llama-shaped 1.1B), bench_edit (every method, on
the default model and on those two random shapes) and a sequential oedit+ run
(bench/bench_sequential.sh). Every figure goes, with its command, the GPU, driver, torch and CUDA versions, into
one Markdown file. Refuses to start (exit 2) when nvidia-smi fails, when
$python cannot import torch or when torch.cuda.is_available() is false; exits
1 when a step failed (the file says which), 0 otherwise.

options:
  --dry-run   print the commands without running them
  --slow      also run the tests labelled slow (several minutes; one starts a CUDA run)
  --edits N   edits of the sequential run (default 2000)
  --help      this text

environment:
  OEDIT_GPU_BUILD_DIR     build folder (default build-gpu; relative paths are from the project root)
  OEDIT_GPU_REPORT        the Markdown file (default docs/gpu-check.md, from the project root)
  OEDIT_GPU_PYTHON        the Python that has PyTorch (default python3)
  OEDIT_GPU_DEVICE        the benchmarks' device (default cuda; cuda:N for another GPU)
  OEDIT_GPU_TORCH_PREFIX  a CUDA libtorch to build against instead of PyTorch's
                          (its CMAKE_PREFIX_PATH); torch is still needed for the checks
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --slow) slow=1 ;;
    --edits)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        echo "gpu-check.sh: --edits needs a whole number of at least 1" >&2
        exit 2
      fi
      edits=$2
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *)
      echo "gpu-check.sh: unknown argument '$1'" >&2
      usage >&2
      exit 2
      ;;
  esac
  shift
done

cd "$root"
work="$build/gpu-check" # logs, the run's ledger and statistics caches

refuse() {
  echo "gpu-check.sh: $*" >&2
  exit 2
}

# --- Refuse early: no GPU, no torch, no CUDA in torch, a libtorch that cannot link.
if [ "$dry_run" = 0 ]; then
  command -v nvidia-smi >/dev/null 2>&1 ||
    refuse "nvidia-smi not found: this check needs an NVIDIA GPU and its driver (use --dry-run to see the commands)"
  smi_error=$(nvidia-smi -L 2>&1) ||
    refuse "nvidia-smi failed, so no GPU is usable here: ${smi_error%%$'\n'*}"
  "$python" -c 'import torch' 2>/dev/null ||
    refuse "$python cannot import torch: install PyTorch with CUDA (https://pytorch.org/get-started/locally/) or point OEDIT_GPU_PYTHON at a Python that has it"
  "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null ||
    refuse "torch.cuda.is_available() is False ($("$python" -c 'import torch; print("torch", torch.__version__, "built for CUDA", torch.version.cuda or "none (a CPU-only build)")' 2>&1 | tail -n 1)): install a CUDA build of PyTorch that this driver supports"
  # PyTorch's pip wheels before 2.7 use the old std::string ABI. Only the targets
  # that link torch get its -D_GLIBCXX_USE_CXX11_ABI=0; core's torch-free
  # modules (world, store) and the system libraries use the C++11 ABI, so the
  # link would fail with undefined std::__cxx11 symbols after a long build.
  if [ -z "${OEDIT_GPU_TORCH_PREFIX:-}" ] &&
    [ "$("$python" -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')" = 0 ]; then
    refuse "this PyTorch's libtorch uses the pre-C++11 string ABI (_GLIBCXX_USE_CXX11_ABI=0), which core's torch-free modules and the system libraries cannot link with; use a PyTorch built with the C++11 ABI (its pip wheels are from 2.7 on), or set OEDIT_GPU_TORCH_PREFIX to an unpacked cxx11-ABI CUDA libtorch (libtorch-cxx11-abi-shared-with-deps from pytorch.org)"
  fi
  command -v cmake >/dev/null 2>&1 || refuse "cmake not found (3.22 or later; pip install cmake, or apt-get install cmake)"
fi

# --- What to build against.
if [ -n "${OEDIT_GPU_TORCH_PREFIX:-}" ]; then
  torch_prefix=$OEDIT_GPU_TORCH_PREFIX
elif [ "$dry_run" = 0 ] || "$python" -c 'import torch' 2>/dev/null; then
  torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
else
  torch_prefix="\$($python -c 'import torch;print(torch.utils.cmake_prefix_path)')" # shown, never run
fi
configure=(cmake -S . -B "$build")
notes=()
if command -v ninja >/dev/null 2>&1; then
  configure+=(-G Ninja)
else
  configure+=(-G "Unix Makefiles")
  notes+=("ninja not found: built with Make (pip install ninja, or apt-get install ninja-build, for Ninja)")
fi
configure+=(-DCMAKE_BUILD_TYPE=Release -DOEDIT_BUILD_GUI=OFF -DOEDIT_BUILD_TESTS=ON -DOEDIT_BUILD_BENCH=ON)
# SentencePiece only reads Llama tokenizer.model files; none of the figures needs it.
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists sentencepiece; }; then
  configure+=(-DOEDIT_WITH_SENTENCEPIECE=OFF)
  notes+=("libsentencepiece not found by pkg-config: built with OEDIT_WITH_SENTENCEPIECE=OFF")
fi
configure+=("-DCMAKE_PREFIX_PATH=$torch_prefix")
# find_package(Torch) of a CUDA libtorch looks for the CUDA toolkit (nvcc, headers).
if ! command -v nvcc >/dev/null 2>&1; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  else
    notes+=("nvcc not found: find_package(Torch) of a CUDA libtorch may need the CUDA toolkit of torch.version.cuda's major version (or CUDAToolkit_ROOT)")
  fi
fi
jobs=$(nproc 2>/dev/null || echo 4)

# --- Steps: each runs from the project root, its output goes to a log, and the
# report gets the command, the status and the output (whole for figures, the
# end for builds and tests).
declare -a summary=()
failures=0 skipped=0
body=""

slug() { echo "$1" | tr -c 'A-Za-z0-9\n' '-' | tr '[:upper:]' '[:lower:]'; }
# A command as it can be pasted into a shell: plain words bare, the rest in
# single quotes; the dry run's $(python3 ...) stand-in in double quotes.
shown() {
  local out="" arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=+,@%-]+$ ]]; then
      out+=" $arg"
    elif [ "$dry_run" = 1 ] && [[ "$arg" == *'$('* ]]; then
      out+=" \"$arg\""
    else
      out+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '%s' "${out# }"
}

# record NAME STATUS SECONDS COMMAND LOG LINES
record() {
  local name=$1 status=$2 seconds=$3 command=$4 log=$5 lines=$6
  summary+=("| $name | $status | ${seconds:+$seconds s} |")
  body+=$'\n'"### $name"$'\n\n'"\`\`\`sh"$'\n'"$command"$'\n'"\`\`\`"$'\n\n'"$status${seconds:+, $seconds s}"
  if [ -n "$log" ] && [ -s "$log" ]; then
    local total
    total=$(wc -l <"$log")
    if [ "$total" -gt "$lines" ]; then
      body+=" (the last $lines of $total lines of output; all of it in \`$log\`)"
    fi
    body+=$'\n\n'"\`\`\`text"$'\n'"$(tail -n "$lines" "$log")"$'\n'"\`\`\`"
  fi
  body+=$'\n'
}

skip() { # skip NAME WHY COMMAND...
  local name=$1 why=$2
  shift 2
  if [ "$dry_run" = 1 ]; then
    shown "$@"
    echo
    return 0
  fi
  echo "== $name: skipped ($why)"
  skipped=$((skipped + 1))
  record "$name" "skipped: $why" "" "$(shown "$@")" "" 0
}

# run_step NAME KIND COMMAND... ; KIND: build | tests | tests-or-none | figure
# tests-or-none: a label no test carries is noted, not a failure.
run_step() {
  local name=$1 kind=$2
  shift 2
  if [ "$dry_run" = 1 ]; then
    shown "$@"
    echo
    return 0
  fi
  local log
  log="$work/logs/$(slug "$name").log"
  echo "== $name: $(shown "$@")"
  local start=$SECONDS rc=0
  "$@" >"$log" 2>&1 || rc=$?
  local seconds=$((SECONDS - start)) status lines=200
  case "$kind" in
    build | tests | tests-or-none) lines=30 ;;
  esac
  if [ "$rc" -eq 0 ]; then
    status="ok"
    if [ "$kind" != figure ] && grep -q "No tests were found" "$log"; then
      if [ "$kind" = tests-or-none ] && ! ctest --test-dir "$build" -N 2>/dev/null | grep -q "^Total Tests: 0$"; then
        status="ok: no test carries this label, nothing ran"
      else
        # With the GUI off the suites are built only when Qt6 Test is installed.
        status="FAILED: no test suite was built (Qt6 Test not found? apt-get install qt6-base-dev)"
        failures=$((failures + 1))
      fi
    fi
  else
    status="FAILED (exit $rc)"
    failures=$((failures + 1))
  fi
  echo "   $status, $seconds s"
  record "$name" "$status" "$seconds" "$(shown "$@")" "$log" "$lines"
  return "$rc"
}

# figure NAME FILE COMMAND...: run the figure step when FILE was built by this
# run (a failed build may leave an older binary behind).
figure() {
  local name=$1 file=$2
  shift 2
  if [ "$dry_run" = 0 ] && { [ "$benchmarks_built" = 0 ] || [ ! -x "$file" ]; }; then
    skip "$name" "$file was not built" "$@"
    return 0
  fi
  run_step "$name" figure "$@" || true
}

machine_table() {
  local gpu torch_line cpu commit
  gpu=$(nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/$/; /' | tr -d '\n')
  torch_line=$("$python" -c '
import torch
p = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}; "
      f"{torch.cuda.device_count()} device(s), device 0: {p.name}, compute capability {p.major}.{p.minor}, "
      f"{p.total_memory / 2**30:.0f} GiB")' 2>&1 | tail -n 1)
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit+=" with local changes"
  fi
  echo "| | |"
  echo "|---|---|"
  echo "| GPU (nvidia-smi: index, name, driver, memory) | ${gpu%; } |"
  echo "| PyTorch | $torch_line |"
  echo "| libtorch built against | \`$torch_prefix\` |"
  echo "| CPU | ${cpu:-unknown}, $jobs cores |"
  echo "| project | commit $commit |"
  echo "| build | \`$build\`: $(shown "${configure[@]}") |"
}

finished=0
write_report() {
  local outcome=$1
  [ "$dry_run" = 1 ] && return 0
  [ "$finished" = 1 ] && return 0
  finished=1
  mkdir -p "$(dirname "$report")"
  {
    echo "# GPU check"
    echo
    echo "Written by \`scripts/gpu-check.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); every figure below is"
    echo "the output of the command above it, copied by the script, not typed. Commands"
    echo "run from the project root. Float32 unless a command says otherwise; libtorch's"
    echo "defaults (no TF32 for float32 matmuls)."
    echo
    machine_table
    echo
    echo "$outcome"
    for note in "${notes[@]+"${notes[@]}"}"; do
      echo
      echo "Note: $note."
    done
    echo
    echo "## Summary"
    echo
    echo "| step | status | time |"
    echo "|---|---|---|"
    printf '%s\n' "${summary[@]+"${summary[@]}"}"
    echo
    echo "## Steps"
    printf '%s' "$body"
  } >"$report"
  echo "== report: $report"
}

interrupted() {
  write_report "**Interrupted** after ${#summary[@]} steps, $failures failed, $skipped skipped; the rest did not run."
  exit 130
}

if [ "$dry_run" = 1 ]; then
  echo "# dry run: nothing is run. For real, the script first refuses (exit 2) unless nvidia-smi"
  echo "# works, $python imports torch, torch.cuda.is_available() is True and torch was built"
  echo "# with the C++11 ABI (or OEDIT_GPU_TORCH_PREFIX is set); then, from $root:"
  for note in "${notes[@]+"${notes[@]}"}"; do echo "# note: $note"; done
else
  mkdir -p "$work/logs"
  trap interrupted INT TERM
fi

# --- Build.
configured=1 benchmarks_built=0
if ! run_step "configure" build "${configure[@]}"; then
  configured=0
fi
if [ "$configured" = 1 ]; then
  [ "$dry_run" = 1 ] && echo "# (if the full build fails, the script still builds: oedit bench_matmul bench_forward bench_edit bench_rollback)"
  if run_step "build" build cmake --build "$build" --parallel "$jobs"; then
    benchmarks_built=1
  # The benchmarks may still build when a test or a link check does not.
  elif run_step "build (oedit and the benchmarks only)" build cmake --build "$build" --parallel "$jobs" \
    --target oedit bench_matmul bench_forward bench_edit bench_rollback; then
    benchmarks_built=1
  fi
else
  skip "build" "configure failed" cmake --build "$build" --parallel "$jobs"
fi

# --- Tests, also after a failed build: ctest reports the suites that did not
# build as failed and runs the others. No test may carry the gpu label yet;
# that is said, not failed.
tests=(ctest --test-dir "$build" --output-on-failure --timeout 1500)
if [ "$configured" = 1 ]; then
  run_step "tests labelled gpu" tests-or-none "${tests[@]}" -L gpu || true
  # The unit suites include the CUDA-aware ones (build info, `oedit run --device`
  # checks) and train the mini model once (a minute or two).
  run_step "tests labelled unit (CPU)" tests "${tests[@]}" -L unit || true
  if [ "$slow" = 1 ]; then
    run_step "tests labelled slow" tests "${tests[@]}" -L slow || true
  fi
else
  skip "tests labelled gpu" "configure failed" "${tests[@]}" -L gpu
  skip "tests labelled unit (CPU)" "configure failed" "${tests[@]}" -L unit
fi

# --- Figures on the GPU.
oedit="$build/app/oedit"
bench="$build/bench"
figure "oedit check-device" "$oedit" "$oedit" check-device --device "$device"
figure "bench_matmul, GPU" "$bench/bench_matmul" "$bench/bench_matmul" "$device"
figure "bench_matmul, CPU (for reference)" "$bench/bench_matmul" "$bench/bench_matmul" cpu
# The README's row on the GPU: batch 32 x 32, random GPT-2 small and the default model.
figure "forward vs matmul: random GPT-2 small and the default model" "$bench/bench_forward" \
  "$bench/bench_forward" --device "$device" --gpt2-small --model resources/models/default
figure "forward vs matmul: random Llama-shaped 1.1B" "$bench/bench_forward" \
  "$bench/bench_forward" --device "$device" --llama-1b
# The README's row on the GPU: every method, 30 sequential edits, 1 CPU thread
# for what stays on the CPU (statistics' sums, closed-form solves).
figure "per-edit latency of every method, default model" "$bench/bench_edit" \
  "$bench/bench_edit" --edits 30 --threads 1 --device "$device"
figure "per-edit latency of every method, random GPT-2 small" "$bench/bench_edit" \
  "$bench/bench_edit" --edits 10 --threads 1 --device "$device" --shape gpt2-small
figure "per-edit latency of every method, random Llama-shaped 1.1B" "$bench/bench_edit" \
  "$bench/bench_edit" --edits 5 --threads 1 --device "$device" --shape llama-1b
# A fresh statistics cache, so the run's wall time includes computing them as
# the README's CPU figure does.
if [ "$dry_run" = 1 ]; then
  echo "rm -rf $work/sequential $work/sequential-cache"
else
  rm -rf "$work/sequential" "$work/sequential-cache"
fi
if [ "$dry_run" = 0 ] && ! command -v /usr/bin/time >/dev/null 2>&1; then
  notes+=("/usr/bin/time not found, which bench_sequential.sh needs for the peak memory (apt-get install time)")
fi
figure "a $edits-edit O-Edit+ run, evaluation every 100 edits" "$oedit" \
  env "XDG_CACHE_HOME=$work/sequential-cache" "OEDIT_BENCH_DIR=$work/sequential" \
  bench/bench_sequential.sh "$build" "$edits" 100 oedit+ "$device"

if [ "$dry_run" = 1 ]; then
  echo "# then the figures, the device and these commands go to $report"
  exit 0
fi
trap - INT TERM
if [ "$failures" -eq 0 ] && [ "$skipped" -eq 0 ]; then
  write_report "**All ${#summary[@]} steps passed.**"
  exit 0
fi
write_report "**$failures of ${#summary[@]} steps failed, $skipped skipped** (the script exited 1); see their output below."
echo "gpu-check.sh: $failures step(s) failed; see $report" >&2
exit 1
