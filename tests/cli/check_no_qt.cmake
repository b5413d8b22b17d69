# The CLI must link core only, never Qt.
#
# Debian's libtorch itself pulls in Qt 5 (libtorch_cpu -> libopencv_highgui ->
# libQt5*), so a plain `ldd oedit` lists Qt 5 libraries that are libtorch's, not
# ours. What this checks: oedit names no Qt library among its own NEEDED
# entries, no Qt 6 library (the one the workbench uses) is loaded at all, and
# every Qt library that is loaded comes in through libtorch.
execute_process(COMMAND readelf -d ${BINARY} OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "readelf -d ${BINARY} failed")
endif()
if(dynamic MATCHES "NEEDED[^\n]*libQt")
  message(FATAL_ERROR "oedit links Qt directly:\n${dynamic}")
endif()
if(NOT dynamic MATCHES "NEEDED[^\n]*libtorch")
  message(FATAL_ERROR "oedit does not link libtorch: readelf did not see the real binary")
endif()

execute_process(COMMAND ldd ${BINARY} OUTPUT_VARIABLE loaded)
if(loaded MATCHES "libQt6")
  message(FATAL_ERROR "oedit loads Qt 6:\n${loaded}")
endif()
string(REGEX MATCH "libtorch_cpu[^ ]* => ([^ ]+)" _ "${loaded}")
set(torch_cpu "${CMAKE_MATCH_1}")
string(REGEX MATCHALL "libQt5[A-Za-z]+" qt_loaded "${loaded}")
if(qt_loaded)
  execute_process(COMMAND ldd ${torch_cpu} OUTPUT_VARIABLE torch_loaded)
  foreach(library IN LISTS qt_loaded)
    if(NOT torch_loaded MATCHES "${library}")
      message(FATAL_ERROR "${library} is loaded by oedit but not through libtorch")
    endif()
  endforeach()
  message(STATUS "oedit links no Qt; libtorch (${torch_cpu}) brings ${qt_loaded}")
else()
  message(STATUS "oedit loads no Qt library at all")
endif()
