# OEDIT_BUILD_FUZZERS: builds tests/fuzz (libFuzzer targets of the parsers)
# with clang as an ExternalProject in <build>/fuzz, whatever compiler the
# product uses, and registers their short runs with CTest (label fuzz).
include(ExternalProject)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(OEDIT_FUZZ_CXX ${CMAKE_CXX_COMPILER} CACHE FILEPATH "clang++ for the fuzz targets")
else()
  find_program(OEDIT_FUZZ_CXX NAMES clang++ clang++-16 clang++-15 clang++-14 DOC "clang++ for the fuzz targets")
endif()
if(NOT OEDIT_FUZZ_CXX)
  message(FATAL_ERROR "OEDIT_BUILD_FUZZERS needs clang++ with libFuzzer (Debian 12: apt-get install clang "
                      "libclang-rt-14-dev), or configure with -DOEDIT_BUILD_FUZZERS=OFF")
endif()
set(OEDIT_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz target runs in its CTest test")
set(OEDIT_FUZZ_JOBS 2 CACHE STRING "Parallel compile jobs of the fuzz build")

set(_oedit_fuzz_bin ${CMAKE_BINARY_DIR}/fuzz)
ExternalProject_Add(oedit_fuzzers
  SOURCE_DIR ${PROJECT_SOURCE_DIR}/tests/fuzz
  BINARY_DIR ${_oedit_fuzz_bin}
  CMAKE_GENERATOR ${CMAKE_GENERATOR}
  CMAKE_ARGS -DCMAKE_CXX_COMPILER=${OEDIT_FUZZ_CXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo
             -DOEDIT_SOURCE_DIR=${PROJECT_SOURCE_DIR}
  CMAKE_CACHE_ARGS -DCMAKE_PREFIX_PATH:STRING=${CMAKE_PREFIX_PATH}
  BUILD_COMMAND ${CMAKE_COMMAND} --build ${_oedit_fuzz_bin} --parallel ${OEDIT_FUZZ_JOBS}
  BUILD_ALWAYS ON
  INSTALL_COMMAND ""
  EXCLUDE_FROM_ALL OFF)

if(OEDIT_BUILD_TESTS)
  enable_testing()
  include(${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_targets.cmake)
  oedit_add_fuzz_tests(${_oedit_fuzz_bin} ${OEDIT_FUZZ_SECONDS})
endif()
