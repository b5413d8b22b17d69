# `oedit edit` end to end on the mini model (-DOEDIT, -DMODEL, -DPART, -DWORK):
#  PART=success: a ROME edit of a world fact in JSON: the new target wins on
#                the prompt, its five paraphrases and neighbours are probed, timings present;
#  PART=bad:     bad input fails with exit code 1 and a clear message, bad usage
#                with exit code 2;
#  PART=ledger:  --db records an edit as a new manual run, --run continues it on
#                top of its active edits (also after a rollback), and the
#                ledger commands see the steps.
# Statistics go to a cache under WORK, not the user's.
cmake_minimum_required(VERSION 3.20)
set(ENV{XDG_CACHE_HOME} "${WORK}/cache")
file(MAKE_DIRECTORY "${WORK}")

# Fact `index` of the world: its subject, relation, canonical prompt, object,
# and another object of its relation (the new target), into <prefix>_*.
file(READ "${MODEL}/world.json" world_json)
string(JSON relation_count LENGTH "${world_json}" relations)
math(EXPR last "${relation_count} - 1")
function(world_fact index prefix)
  string(JSON subject GET "${world_json}" facts ${index} subject)
  string(JSON relation GET "${world_json}" facts ${index} relation)
  string(JSON old GET "${world_json}" facts ${index} object)
  foreach(i RANGE ${last})
    string(JSON id GET "${world_json}" relations ${i} id)
    if(id STREQUAL relation)
      string(JSON prompt GET "${world_json}" relations ${i} templates 0)
      string(JSON new GET "${world_json}" relations ${i} objects 0)
      if(new STREQUAL old)
        string(JSON new GET "${world_json}" relations ${i} objects 1)
      endif()
    endif()
  endforeach()
  foreach(field subject relation old prompt new)
    set(${prefix}_${field} "${${field}}" PARENT_SCOPE)
  endforeach()
endfunction()

# The first fact of the world and another object of its relation.
world_fact(0 first)
set(subject "${first_subject}")
set(relation_id "${first_relation}")
set(old "${first_old}")
set(prompt "${first_prompt}")
set(new "${first_new}")
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
  if(NOT succeeded OR NOT source STREQUAL "world" OR probes LESS 7 OR steps LESS 1)
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
    "run without ledger|2|--run needs --db|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${new}^--run^1"
    "run id not a number|2|is not a run id|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${new}^--db^${WORK}/none.sqlite^--run^x"
    "ledger missing|1|does not exist|--method^rome^--subject^${subject}^--prompt^${prompt}^--target^${new}^--db^${WORK}/none.sqlite^--run^1")
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
elseif(PART STREQUAL "ledger")
  set(db "${WORK}/edits.sqlite")
  file(REMOVE "${db}")
  # A second fact: the first one of another relation.
  string(JSON fact_count LENGTH "${world_json}" facts)
  math(EXPR last_fact "${fact_count} - 1")
  foreach(f RANGE 1 ${last_fact})
    string(JSON relation2 GET "${world_json}" facts ${f} relation)
    if(NOT relation2 STREQUAL relation_id)
      world_fact(${f} second)
      break()
    endif()
  endforeach()
  set(subject2 "${second_subject}")
  set(prompt2 "${second_prompt}")
  set(new2 "${second_new}")
  function(edit_into expected_step expected_run)
    execute_process(COMMAND "${OEDIT}" edit --model "${MODEL}" --method oedit+ ${ARGN} --db "${db}" --json
                    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "oedit edit --db failed (${rc}): ${err}")
    endif()
    string(JSON run GET "${out}" run_id)
    string(JSON step GET "${out}" step)
    if(NOT run EQUAL expected_run OR NOT step EQUAL expected_step)
      message(FATAL_ERROR "expected step ${expected_step} of run ${expected_run}, got step ${step} of run ${run}")
    endif()
    message(STATUS "recorded step ${step} of run ${run}")
  endfunction()
  function(active_edits expected)
    execute_process(COMMAND "${OEDIT}" report --db "${db}" --run 1 --json
                    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
    string(JSON active GET "${out}" active_edits)
    if(NOT rc EQUAL 0 OR NOT active EQUAL expected)
      message(FATAL_ERROR "run 1 should have ${expected} active edits: ${rc} ${out} ${err}")
    endif()
  endfunction()
  edit_into(1 1 --subject "${subject}" --prompt "${prompt}" --target "${new}")
  # The run's first edit is in effect when the second is made: its fact
  # already answers the new target, so making it again is refused.
  execute_process(COMMAND "${OEDIT}" edit --model "${MODEL}" --method oedit+ --subject "${subject}"
                  --prompt "${prompt}" --target "${new}" --true-target "${old}" --db "${db}" --run 1
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "already answers")
    message(FATAL_ERROR "repeating the run's edit should be refused (its edit is loaded): ${rc} ${err}")
  endif()
  edit_into(2 1 --subject "${subject2}" --prompt "${prompt2}" --target "${new2}" --run 1)
  active_edits(2)
  execute_process(COMMAND "${OEDIT}" rollback --db "${db}" --run 1 --to 1 RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "oedit rollback --to 1 failed")
  endif()
  active_edits(1)
  # After the revert the second fact is unedited again and can be edited anew.
  edit_into(3 1 --subject "${subject2}" --prompt "${prompt2}" --target "${new2}" --run 1)
  active_edits(2)
  # A new run without --run.
  edit_into(1 2 --subject "${subject2}" --prompt "${prompt2}" --target "${new2}")
else()
  message(FATAL_ERROR "PART must be success, bad or ledger")
endif()
