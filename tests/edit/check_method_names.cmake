# Method names are compared in one place: the method registry
# (core/edit/registry.cpp). Everywhere else in core/, app/ and ui/ code asks
# the registry (edit::protectsSubspace, edit::storesKeys, ...) or the facade's
# oedit::methodCapabilities instead of testing a name. This script fails with
# file:line for every comparison of a method name it finds outside the
# registry: `x == "oedit+"`, `"rome" != x`, `method == "..."`,
# QStringLiteral("alphaedit") == x, x.compare("memit"), and the like.
# Literals that are not compared (defaults such as setCurrentText("oedit+"),
# colour tables, hyperparameter defaults) are fine.
#
#   cmake -DSOURCE_DIR=<repository> -P check_method_names.cmake
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "pass -DSOURCE_DIR=<repository root>")
endif()

# CMake's regular expressions allow few groups: wrappers and operators are classes.
set(names "(ft|rome|memit|alphaedit|oedit[+]?|oedit_plus)")
set(wrap "[A-Za-z_:0-9]*[ \t]*[(]?[ \t]*u?") # QStringLiteral( QLatin1String( std::string( or nothing
set(literal "${wrap}\"${names}\"[ \t]*[)]?")
set(patterns
  "[=!]=[ \t]*${literal}"                     # x == "oedit"
  "${literal}[ \t]*[=!]="                     # "oedit" == x
  "[Mm]ethod[A-Za-z_]*[ \t]*[=!]=[ \t]*${wrap}\"" # method == "anything"
  "(compare|startsWith|endsWith)[ \t]*[(][ \t]*${literal}")
list(JOIN patterns "|" regex)

file(GLOB_RECURSE sources
  ${SOURCE_DIR}/core/*.h ${SOURCE_DIR}/core/*.cpp
  ${SOURCE_DIR}/app/*.h ${SOURCE_DIR}/app/*.cpp
  ${SOURCE_DIR}/ui/*.h ${SOURCE_DIR}/ui/*.cpp)
set(registry ${SOURCE_DIR}/core/edit/registry.cpp)
list(REMOVE_ITEM sources ${registry})
list(LENGTH sources count)
if(count LESS 20 OR NOT EXISTS ${registry})
  message(FATAL_ERROR "found ${count} sources and no ${registry}: wrong SOURCE_DIR?")
endif()

set(problems "")
foreach(file IN LISTS sources)
  # Cheap first pass: only files with a candidate line are read line by line.
  file(STRINGS ${file} hits REGEX "${regex}" ENCODING UTF-8)
  if(NOT hits)
    continue()
  endif()
  file(READ ${file} content)
  # One list element per line: characters that CMake lists treat specially are masked.
  string(REPLACE "\\" "<backslash>" content "${content}")
  string(REPLACE ";" "<semicolon>" content "${content}")
  string(REPLACE "[" "<lbracket>" content "${content}")
  string(REPLACE "]" "<rbracket>" content "${content}")
  string(REPLACE "\n" ";" lines "${content}")
  set(number 0)
  foreach(line IN LISTS lines)
    math(EXPR number "${number} + 1")
    # Comments may talk about names: drop whole-line comments and trailing ones without quotes.
    string(REGEX REPLACE "^[ \t]*(//|\\*|/\\*).*$" "" code "${line}")
    string(REGEX REPLACE "//[^\"]*$" "" code "${code}")
    if(code MATCHES "${regex}")
      string(REPLACE "<semicolon>" ";" shown "${line}")
      string(REPLACE "<lbracket>" "[" shown "${shown}")
      string(REPLACE "<rbracket>" "]" shown "${shown}")
      string(REPLACE "<backslash>" "\\" shown "${shown}")
      string(STRIP "${shown}" shown)
      file(RELATIVE_PATH relative ${SOURCE_DIR} ${file})
      string(APPEND problems "${relative}:${number}: ${shown}\n")
    endif()
  endforeach()
endforeach()

if(problems)
  message(FATAL_ERROR "method names compared outside core/edit/registry.cpp "
                      "(ask edit::protectsSubspace / edit::storesKeys or oedit::methodCapabilities):\n${problems}")
endif()
message(STATUS "method names ok: ${count} files checked, comparisons only in the registry")
