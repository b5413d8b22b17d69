# The fuzz targets (tests/fuzz/fuzz_<name>.cpp, seeds in corpus/<name>/) and
# their CTest tests, shared by tests/fuzz/CMakeLists.txt and the main build's
# cmake/OEditFuzzers.cmake.
set(OEDIT_FUZZ_TARGETS safetensors model_config tokenizer_json vocab_merges datasets world_json ledger)
set(OEDIT_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

# fuzz_<name>: each target for `seconds` from its seed corpus (label fuzz).
# The test fails when libFuzzer reports a crash, a sanitizer error, a leak or
# an allocation over its limit; the input is kept in <bindir>/fuzz-work/<name>/.
function(oedit_add_fuzz_tests bindir seconds)
  foreach(target IN LISTS OEDIT_FUZZ_TARGETS)
    add_test(NAME fuzz_${target} COMMAND ${CMAKE_COMMAND}
      -DFUZZER=${bindir}/fuzz_${target} -DSEEDS=${OEDIT_FUZZ_DIR}/corpus/${target}
      -DWORK=${CMAKE_CURRENT_BINARY_DIR}/fuzz-work/${target} -DSECONDS=${seconds}
      -P ${OEDIT_FUZZ_DIR}/run_fuzzer.cmake)
    set_tests_properties(fuzz_${target} PROPERTIES LABELS fuzz TIMEOUT 300)
  endforeach()
endfunction()
