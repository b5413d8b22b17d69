# The command line's one parser (-DOEDIT, -DWORK); needs no model:
#  - `oedit --help` lists the commands, and every command's --help has the
#    same layout (a "Usage: oedit <command>" line and an "Options:" section);
#  - usage errors exit with 2 and name what was wrong: an unknown option or
#    command, a missing value or required option, a malformed number, a bad
#    --device or --dtype of `oedit run`;
#  - `oedit run --device cuda` on a build without CUDA exits with 1 and says
#    so, before it touches the ledger.
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(db "${WORK}/runs.sqlite")

# Runs oedit with the given arguments into out/err; fails unless it exits with `expected`.
function(run_oedit expected)
  execute_process(COMMAND "${OEDIT}" ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL expected)
    message(FATAL_ERROR "oedit ${ARGN}: exit code ${rc}, expected ${expected}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()

# Fails unless `text` contains each of the strings after it.
function(expect_in what text)
  foreach(expected IN LISTS ARGN)
    string(FIND "${text}" "${expected}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${what} does not say '${expected}':\n${text}")
    endif()
  endforeach()
endfunction()

set(commands info train eval-facts edit predict check-device demo run runs report rollback export merge culprits blast-radius world)
run_oedit(0 --help)
expect_in("oedit --help" "${out}" "Usage:" "Options:" "Subcommands:" ${commands})
foreach(command IN LISTS commands)
  run_oedit(0 ${command} --help)
  expect_in("oedit ${command} --help" "${out}" "Usage: oedit ${command}" "Options:" "-h,--help")
endforeach()
run_oedit(0 run --help)
expect_in("oedit run --help" "${out}" "--db FILE" "--edits N" "--resume RUN" "--device" "--dtype")
run_oedit(0 edit --help)
expect_in("oedit edit --help" "${out}" "--method M" "--target T" "--db FILE")
run_oedit(2)
expect_in("oedit without a command" "${err}" "Usage:")

# Usage errors: exit code 2 and a message naming the option (or command).
run_oedit(2 frobnicate)
expect_in("an unknown command" "${err}" "unknown command 'frobnicate'")
run_oedit(2 runs --db "${db}" --frobnicate)
expect_in("an unknown option" "${err}" "oedit runs: unknown argument '--frobnicate'")
run_oedit(2 runs --db)
expect_in("a missing value" "${err}" "--db")
run_oedit(2 report --run 1)
expect_in("a missing --db" "${err}" "--db FILE is required")
run_oedit(2 merge "${WORK}/a.sqlite")
expect_in("merge without a target" "${err}" "--into FILE is required")
run_oedit(2 merge --into "${WORK}/all.sqlite")
expect_in("merge without a source" "${err}" "name at least one ledger to merge")
run_oedit(1 merge --into "${WORK}/all.sqlite" "${WORK}/missing.sqlite")
expect_in("merge of a missing ledger" "${err}" "missing.sqlite" "does not exist")
if(EXISTS "${WORK}/all.sqlite")
  message(FATAL_ERROR "a refused merge left the target it would have created")
endif()
run_oedit(2 report --db "${db}" --run one)
expect_in("a malformed number" "${err}" "--run needs a whole number")
run_oedit(2 run --db "${db}" --edits -3)
expect_in("a negative number" "${err}" "--edits needs a whole number")
run_oedit(2 rollback --db "${db}" --run 1 --to-step 1 --undo 1)
expect_in("exclusive options" "${err}" "exactly one")
run_oedit(2 world --out "${WORK}/world" --subjects many)
expect_in("oedit world --subjects many" "${err}" "--subjects")
run_oedit(2 run --db "${db}" --edits 1 --device warp)
expect_in("oedit run --device warp" "${err}" "--device" "'warp' is not a device" "cpu, cuda or cuda:N")
run_oedit(2 run --db "${db}" --edits 1 --dtype float8)
expect_in("oedit run --dtype float8" "${err}" "--dtype" "float32, bfloat16 or float16")
run_oedit(2 run --db "${db}" --edits 1 --device cuda:x)
expect_in("oedit run --device cuda:x" "${err}" "--device")
# A value that spells a command stays a value.
run_oedit(2 run --db "${db}" --dataset world --edits x)
expect_in("oedit run --dataset world" "${err}" "--edits needs a whole number")

# --device cuda without CUDA: refused as a failure of the work (1), and the
# ledger is not created.
run_oedit(0 info --json)
string(JSON cuda_devices GET "${out}" cuda_devices)
if(cuda_devices EQUAL 0)
  run_oedit(1 run --db "${db}" --edits 1 --device cuda)
  expect_in("oedit run --device cuda" "${err}" "this build of oedit has no CUDA" "--device cpu")
  run_oedit(1 run --db "${db}" --resume 1 --device cuda:1)
  expect_in("oedit run --resume --device cuda:1" "${err}" "no CUDA")
  if(EXISTS "${db}")
    message(FATAL_ERROR "oedit run --device cuda without CUDA created ${db}")
  endif()
else()
  message(STATUS "this build has CUDA (${cuda_devices} devices): the no-CUDA refusal is not checked")
endif()
message(STATUS "usage ok")
