# The `package` test: builds the .deb with CPack from BUILD_DIR, unpacks it
# with dpkg-deb into a temporary root under WORK (no root privileges needed,
# nothing touches the machine's /usr), checks its files and Depends, runs
# <root>/usr/bin/oedit info and oedit-workbench --version from there, and
# removes the root.
#   cmake -DBUILD_DIR=build -DWORK=build/package-test -DVERSION=0.1.0 -P check_package.cmake
cmake_minimum_required(VERSION 3.22)
foreach(var BUILD_DIR WORK VERSION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_package.cmake: -D${var}=... is required")
  endif()
endforeach()
find_program(DPKG_DEB dpkg-deb)
if(NOT DPKG_DEB)
  message(FATAL_ERROR "dpkg-deb is missing (package dpkg)")
endif()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

function(run_ok out_var)
  execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN} failed (${rc}):\n${out}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# 1. The package.
run_ok(cpack_log ${CMAKE_CPACK_COMMAND} -G DEB --config "${BUILD_DIR}/CPackConfig.cmake" -B "${WORK}/cpack")
file(GLOB debs "${WORK}/cpack/oedit-workbench_${VERSION}_*.deb")
list(LENGTH debs count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected one oedit-workbench_${VERSION}_*.deb in ${WORK}/cpack, found: ${debs}\n${cpack_log}")
endif()
file(SIZE "${debs}" deb_size)
message(STATUS "package ${debs} (${deb_size} bytes)")

# 2. Its control fields: Depends names the libraries the binaries link (from
#    dpkg-shlibdeps) and the BLAS libtorch loads at run time.
run_ok(depends ${DPKG_DEB} -f "${debs}" Depends)
string(STRIP "${depends}" depends)
message(STATUS "Depends: ${depends}")
foreach(package libtorch libqt6core6 libqt6widgets6 libqcustomplot libsqlite3 libicu libopenblas0-pthread libc6)
  if(NOT depends MATCHES "(^|[ ,])${package}")
    message(FATAL_ERROR "Depends lacks ${package}: ${depends}")
  endif()
endforeach()
run_ok(architecture ${DPKG_DEB} -f "${debs}" Architecture)
run_ok(version ${DPKG_DEB} -f "${debs}" Version)
string(STRIP "${version}" version)
if(NOT version STREQUAL VERSION)
  message(FATAL_ERROR "the package's Version is '${version}', expected '${VERSION}'")
endif()

# 3. Its files, unpacked into a temporary root.
set(root "${WORK}/root")
run_ok(ignored ${DPKG_DEB} -x "${debs}" "${root}")
set(share "${root}/usr/share")
foreach(path usr/bin/oedit usr/bin/oedit-workbench
             usr/share/oedit-workbench/models/default/config.json
             usr/share/oedit-workbench/models/default/model.safetensors
             usr/share/oedit-workbench/models/default/vocab.json
             usr/share/oedit-workbench/hparams/rome.json usr/share/oedit-workbench/hparams/oedit_plus.json
             usr/share/applications/oedit-workbench.desktop
             usr/share/icons/hicolor/scalable/apps/oedit-workbench.svg
             usr/share/metainfo/org.oedit.workbench.metainfo.xml)
  if(NOT EXISTS "${root}/${path}")
    file(GLOB_RECURSE listing RELATIVE "${root}" "${root}/*")
    message(FATAL_ERROR "the package lacks /${path}; it holds:\n${listing}")
  endif()
endforeach()
if(SENTENCEPIECE)
  file(GLOB_RECURSE module "${root}/usr/lib/*oedit_sentencepiece.so")
  if(NOT module)
    message(FATAL_ERROR "the package lacks the oedit_sentencepiece module under /usr/lib")
  endif()
endif()
file(STRINGS "${share}/applications/oedit-workbench.desktop" exec_line REGEX "^Exec=")
if(NOT exec_line STREQUAL "Exec=oedit-workbench")
  message(FATAL_ERROR "unexpected desktop entry ${exec_line}")
endif()
find_program(APPSTREAMCLI appstreamcli)
if(APPSTREAMCLI)
  run_ok(appstream_log ${APPSTREAMCLI} validate --no-net "${share}/metainfo/org.oedit.workbench.metainfo.xml")
  message(STATUS "AppStream metadata valid: ${appstream_log}")
else()
  message(STATUS "appstreamcli not installed (package appstream): AppStream metadata not validated")
endif()

# 4. The installed programs run from the root and find their data relative
#    to themselves, not in the source tree.
set(ENV{QT_QPA_PLATFORM} offscreen)
unset(ENV{OEDIT_DEFAULT_MODEL})
unset(ENV{OEDIT_HPARAMS_DIR})
run_ok(version_text "${root}/usr/bin/oedit" --version)
if(NOT version_text MATCHES "^oedit ${VERSION}")
  message(FATAL_ERROR "oedit --version printed '${version_text}'")
endif()
run_ok(info "${root}/usr/bin/oedit" info --json)
string(JSON model_path GET "${info}" model path)
string(JSON parameters GET "${info}" model parameters)
file(REAL_PATH "${model_path}" model_path)
file(REAL_PATH "${share}/oedit-workbench/models/default" expected_model)
if(NOT model_path STREQUAL expected_model)
  message(FATAL_ERROR "the installed oedit opened ${model_path}, not its own ${expected_model}")
endif()
if(parameters LESS 1000)
  message(FATAL_ERROR "the installed default model has ${parameters} parameters: ${info}")
endif()
run_ok(gui_version "${root}/usr/bin/oedit-workbench" --version)
if(NOT gui_version MATCHES "oedit-workbench ${VERSION}")
  message(FATAL_ERROR "oedit-workbench --version printed '${gui_version}'")
endif()
message(STATUS "from the package: ${version_text}${gui_version}model ${model_path}, ${parameters} parameters")

# 5. Remove the root (and the package).
file(REMOVE_RECURSE "${WORK}")
if(EXISTS "${root}")
  message(FATAL_ERROR "cannot remove ${root}")
endif()
