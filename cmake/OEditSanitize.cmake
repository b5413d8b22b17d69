# OEDIT_SANITIZE="address;undefined" (or any subset, "thread" on its own):
# instruments every target of the project. Libraries from the system
# (libtorch, Qt, SQLite) are not instrumented, so leaks they keep until exit
# are not reported (tests/sanitizers/lsan.supp) and UBSan checks only our code.
set(_oedit_sanitizers ${OEDIT_SANITIZE})
foreach(_sanitizer IN LISTS _oedit_sanitizers)
  if(NOT _sanitizer MATCHES "^(address|undefined|leak|thread)$")
    message(FATAL_ERROR "OEDIT_SANITIZE: unknown sanitizer '${_sanitizer}' (known: address, undefined, leak, thread)")
  endif()
endforeach()
if("thread" IN_LIST _oedit_sanitizers AND "address" IN_LIST _oedit_sanitizers)
  message(FATAL_ERROR "OEDIT_SANITIZE: thread and address cannot be combined; build them in separate folders")
endif()
list(JOIN _oedit_sanitizers "," _oedit_sanitize_flag)
# vptr checks need RTTI of every class they see, and libtorch's polymorphic
# types come from an uninstrumented library: they give false reports there.
set(_oedit_sanitize_options -fsanitize=${_oedit_sanitize_flag} -fno-omit-frame-pointer -g)
if("undefined" IN_LIST _oedit_sanitizers)
  list(APPEND _oedit_sanitize_options -fno-sanitize=vptr)
endif()
add_compile_options(${_oedit_sanitize_options})
add_link_options(-fsanitize=${_oedit_sanitize_flag})
message(STATUS "Sanitizers: ${_oedit_sanitize_flag}")

# AddressSanitizer refuses dlopen(RTLD_DEEPBIND), which is how core loads the
# SentencePiece module (see core/CMakeLists.txt); tokenizer.model support is
# therefore off in such builds and its tests skip with a message saying so.
if(("address" IN_LIST _oedit_sanitizers OR "thread" IN_LIST _oedit_sanitizers) AND OEDIT_WITH_SENTENCEPIECE)
  message(STATUS "OEDIT_SANITIZE: SentencePiece support is off (the sanitizers refuse RTLD_DEEPBIND)")
  set(OEDIT_WITH_SENTENCEPIECE OFF CACHE BOOL "Link libsentencepiece for Llama/Mistral tokenizer.model files" FORCE)
endif()

# Run-time options for every CTest test (tests/CMakeLists.txt appends them).
set(OEDIT_SANITIZER_TEST_ENVIRONMENT
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
  "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/sanitizers/lsan.supp:print_suppressions=0"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=${PROJECT_SOURCE_DIR}/tests/sanitizers/ubsan.supp")
