# `oedit edit` end to end on the mini model (-DOEDIT, -DMODEL, -DPART, -DWORK):
#  PART=success: a ROME edit of a world fact in JSON: the new target wins on
#                the prompt, prompt/paraphrase/neighbour are probed, timings present;
#  PART=bad:     bad input fails with exit code 1 and a clear message, bad usage
#                with exit code 2.
# Statistics go to a cache under WORK, not the user's.
cmake_minimum_required(VERSION 3.20)
set(ENV{XDG_CACHE_HOME} "${WORK}/cache")
file(MAKE_DIRECTORY "${WORK}")

# The first fact of the world and another object of its relation.
file(READ "${MODEL}/world.json" world_json)
string(JSON subject GET "${world_json}" facts 0 subject)
string(JSON relation_id GET "${world_json}" facts 0 relation)
string(JSON old GET "${world_json}" facts 0 object)
string(JSON relation_count LENGTH "${world_json}" relations)
math(EXPR last "${relation_count} - 1")
foreach(i RANGE ${last})
  string(JSON id GET "${world_json}" relations ${i} id)
  if(id STREQUAL relation_id)
    string(JSON prompt GET "${world_json}" relations ${i} templates 0)
    string(JSON new GET "${world_json}" relations ${i} objects 0)
    if(new STREQUAL old)
      string(JSON new GET "${world_json}" relations ${i} objects 1)
    endif()
  endif()
endforeach()
if(NOT prompt)
  message(FATAL_ERROR "world.json: no relation '${relation_id}'")
endif()
string(REPLACE "{}" "${subject}" filled "${prompt}")

if(PART STREQUAL "success")
  execute_process(COMMAND "${OEDIT}" edit --model "${MODEL}" --method rome --subject "${subject}"
                  --prompt "${prompt}" --target "${new}" --json
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "oedit edit failed (${rc}): ${err}")
  endif()
  string(JSON succeeded GET "${out}" succeeded)
  string(JSON source GET "${out}" old_target_source)
  string(JSON probes LENGTH "${out}" probes)
  string(JSON p_new GET "${out}" probes 0 p_new_after)
  string(JSON p_old GET "${out}" probes 0 p_old_after)
  string(JSON total GET "${out}" timings total)
  string(JSON steps GET "${out}" diagnostics steps)
  message(STATUS "'${subject}': '${old}' -> '${new}': P(new) ${p_new}, P(old) ${p_old}, ${steps} steps, ${total} s")
  if(NOT succeeded OR NOT source STREQUAL "world" OR NOT probes EQUAL 3 OR steps LESS 1)
    message(FATAL_ERROR "unexpected outcome: ${out}")
  endif()
  # The plain-text report shows the same before/after table.
  execute_process(COMMAND "${OEDIT}" edit --model "${MODEL}" --method oedit+ --subject "${subject}"
                  --prompt "${prompt}" --target "${new}"
                  OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT text MATCHES "neighbour" OR NOT text MATCHES "remaining capacity"
     OR NOT text MATCHES "greedy continuation")
    message(FATAL_ERROR "oedit edit (text) failed (${rc}): ${text}")
  endif()
elseif(PART STREQUAL "bad")
  # name | expected exit code | expected message | arguments joined by ^ (a ; would split the cases)
  set(cases
    "subject not in prompt|1|is not in the prompt|--method^rome^--subject^Nobody Atall^--prompt^${filled}^--target^${new}"
    "empty target|1|new target is empty|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^ "
    "target is the true one|1|equals the true target|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${old}"
    "target already predicted|1|already answers|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${old}^--true-target^something"
    "layer out of range|1|out of range|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${new}^--hparams^{\"layer\": 42}"
    "unknown method|1|unknown editing method|--method^grace^--subject^${subject}^--prompt^${prompt}^--target^${new}"
    "unknown hyperparameter|1|unknown hyperparameter 'layerz'|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${new}^--hparams^{\"layerz\": 1}"
    "missing target|2|--target is required|--method^rome^--subject^${subject}^--prompt^${prompt}"
    "unknown option|2|unknown argument|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${new}^--frobnicate"
    "no ledger yet|2|--db is not available|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${new}^--db^edits.db")
  foreach(case IN LISTS cases)
    string(REPLACE "^" ";" case "${case}")
    string(REPLACE "|" ";" fields "${case}")
    list(GET fields 0 name)
    list(GET fields 1 expected_rc)
    list(GET fields 2 expected_message)
    list(SUBLIST fields 3 -1 arguments)
    execute_process(COMMAND "${OEDIT}" edit --model "${MODEL}" ${arguments}
                    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
    string(FIND "${err}" "${expected_message}" at)
    if(NOT rc EQUAL expected_rc OR at EQUAL -1)
      message(FATAL_ERROR "${name}: expected exit ${expected_rc} and '${expected_message}', got ${rc}: ${err}")
    endif()
    message(STATUS "${name}: exit ${rc}")
  endforeach()
else()
  message(FATAL_ERROR "PART must be success or bad")
endif()
