# Runs one fuzz target for SECONDS from the seed corpus SEEDS (read only;
# new inputs go to WORK/corpus) and fails on anything libFuzzer reports.
#   cmake -DFUZZER=... -DSEEDS=... -DWORK=... -DSECONDS=20 -P run_fuzzer.cmake
foreach(var FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT EXISTS ${FUZZER})
  message(FATAL_ERROR "${FUZZER} is missing: build the fuzz targets first (OEDIT_BUILD_FUZZERS=ON)")
endif()
file(GLOB seeds ${SEEDS}/*)
list(LENGTH seeds seed_count)
if(seed_count EQUAL 0)
  message(FATAL_ERROR "the seed corpus ${SEEDS} is empty")
endif()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts ${WORK}/tmp)
# The targets' scratch files (ScratchDir in fuzz_util.h) go here: libFuzzer
# ends a timed run with _Exit, so they are not removed by the process.
set(ENV{TMPDIR} ${WORK}/tmp)
# -rss_limit_mb bounds the whole process and, by default, every single
# allocation too: a parser that sizes a buffer from the file without a
# bound fails here. -timeout: one input taking 10 s is a hang.
execute_process(COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048
                        -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/ ${WORK}/corpus ${SEEDS}
                RESULT_VARIABLE rc ERROR_VARIABLE log OUTPUT_VARIABLE out)
string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" runs "${log}")
string(REGEX MATCH "INITED[^\n]*" inited "${log}")
if(NOT rc EQUAL 0)
  message("${log}")
  file(GLOB crashes ${WORK}/artifacts/*)
  message(FATAL_ERROR "${FUZZER} found a problem (exit code ${rc}); the input is ${crashes}. Reproduce with "
                      "`${FUZZER} FILE`, fix the parser and add the file to ${SEEDS}.")
endif()
if(NOT runs OR NOT inited)
  message("${log}")
  message(FATAL_ERROR "${FUZZER} ran no inputs: the libFuzzer statistics are missing from its output")
endif()
string(REGEX MATCH "[0-9]+$" count "${runs}")
if(count LESS seed_count)
  message(FATAL_ERROR "${FUZZER} ran ${count} inputs, fewer than the ${seed_count} seeds")
endif()
message("${FUZZER}: ${inited}; ${count} inputs in ${SECONDS} s, no problem found")
