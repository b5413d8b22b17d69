# `oedit train --dataset` end to end.
#   cmake -DOEDIT=path/to/oedit -DWORK=dir -DPART=bad -P check_dataset_train.cmake
#     bad data sets and arguments: the right exit code, a message naming the
#     record, and nothing written to --out (no data needed)
#   cmake -DOEDIT=... -DWORK=dir -DPART=train -DDATA=counterfact.json -DRECIPE=recipe.json -P ...
#     trains on the first 40 cases and checks the model with eval-facts; prints
#     "dataset test skipped" (SKIP_REGULAR_EXPRESSION) when DATA is absent,
#     since the real data sets are never copied into the repository.
set(ENV{OMP_NUM_THREADS} 1) # tiny matrices: threads cost more than they bring
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# Runs oedit with the given arguments; fails unless it exits with `expected`.
function(run_oedit expected)
  execute_process(COMMAND "${OEDIT}" ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL expected)
    message(FATAL_ERROR "oedit ${ARGN}: exit code ${rc}, expected ${expected}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()

if(PART STREQUAL "bad")
  set(good [=[{"case_id": 1, "prompt": "Toko Yasuda, the", "subject": "Toko Yasuda", "target_new": "piano", "ground_truth": "guitar", "rephrase_prompt": "Toko Yasuda plays the", "locality_prompt": "John Lennon performs on the", "locality_ground_truth": "guitar"}]=])
  string(REPLACE [=["subject": "Toko Yasuda"]=] [=["subject": "Yoko Tasuda"]=] wrong_subject "${good}")
  string(REPLACE [=["case_id": 1]=] [=["case_id": 2]=] second "${good}")
  file(WRITE "${WORK}/empty.json" "")
  file(WRITE "${WORK}/no_records.json" "[]")
  file(WRITE "${WORK}/wrong_subject.json" "[${good},\n${wrong_subject}]")
  file(WRITE "${WORK}/duplicate_ids.json" "[${good},\n${good}]")
  file(WRITE "${WORK}/duplicate_case.json" "[${good},\n${second}]")
  # In each case: exit code, then what the message must say.
  foreach(item "empty.json|not valid JSON" "no_records.json|holds no records"
               "wrong_subject.json|record 1 (case_id 1): the subject 'Yoko Tasuda' does not occur"
               "duplicate_ids.json|record 1 (case_id 1): duplicate case_id 1"
               "duplicate_case.json|record 1 (case_id 2): duplicate of record 0")
    string(REPLACE "|" ";" item "${item}")
    list(GET item 0 file)
    list(GET item 1 expected)
    run_oedit(1 train --dataset "${WORK}/${file}" --out "${WORK}/model" --epochs 1)
    string(FIND "${err}" "${expected}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "oedit train --dataset ${file}: the message does not say '${expected}':\n${err}")
    endif()
    if(EXISTS "${WORK}/model")
      message(FATAL_ERROR "oedit train --dataset ${file} failed but wrote ${WORK}/model")
    endif()
  endforeach()
  run_oedit(1 world --dataset "${WORK}/wrong_subject.json" --out "${WORK}/world")
  if(EXISTS "${WORK}/world")
    message(FATAL_ERROR "oedit world --dataset failed but wrote ${WORK}/world")
  endif()
  run_oedit(2 train --dataset "${WORK}/duplicate_ids.json" --format nonsense --out "${WORK}/model")
  run_oedit(2 train --dataset "${WORK}/duplicate_ids.json" --world "${WORK}" --out "${WORK}/model")
  run_oedit(2 train --dataset "${WORK}/duplicate_ids.json" --limit 0 --out "${WORK}/model")
  run_oedit(2 world --dataset "${WORK}/duplicate_ids.json" --subjects 3 --out "${WORK}/model")
  # An --out that holds something else is refused before any training.
  file(WRITE "${WORK}/occupied/notes.txt" "mine")
  run_oedit(2 train --dataset "${WORK}/duplicate_ids.json" --out "${WORK}/occupied")
  # A good data set as a world folder: it loads as one (world files and tokenizer).
  run_oedit(0 world --dataset "${WORK}/duplicate_case.json" --limit 1 --out "${WORK}/world")
  foreach(name world.json general_train.txt general_heldout.txt vocab.json merges.txt)
    if(NOT EXISTS "${WORK}/world/${name}")
      message(FATAL_ERROR "oedit world --dataset wrote no ${name}")
    endif()
  endforeach()
  file(GLOB leftovers "${WORK}/.*")
  if(leftovers)
    message(FATAL_ERROR "temporary directories left behind: ${leftovers}")
  endif()
  return()
endif()

if(NOT EXISTS "${DATA}")
  message(STATUS "dataset test skipped: ${DATA} is absent (the real data sets live in ../shared/data)")
  return()
endif()
run_oedit(0 train --dataset "${DATA}" --limit 40 --recipe "${RECIPE}" --out "${WORK}/model" --quiet)
message(STATUS "${out}")
if(NOT out MATCHES "40 of [0-9]+ cases -> 40 facts")
  message(FATAL_ERROR "oedit train --dataset --limit 40 did not build 40 facts:\n${out}")
endif()
run_oedit(0 eval-facts --model "${WORK}/model" --json)
string(JSON facts GET "${out}" facts)
string(JSON canonical GET "${out}" canonical_recall)
string(JSON paraphrase GET "${out}" paraphrase_recall)
message(STATUS "dataset model: ${facts} facts, canonical recall ${canonical}, paraphrase recall ${paraphrase}")
if(NOT facts EQUAL 40)
  message(FATAL_ERROR "eval-facts counted ${facts} facts, expected 40")
endif()
# 40 cases are memorised quickly (1.0 and 1.0 measured with dataset-mini.json);
# the margin keeps the test stable across BLAS builds.
if(canonical LESS 0.8 OR paraphrase LESS 0.7)
  message(FATAL_ERROR "the model recalls too little of its data set: canonical ${canonical}, paraphrase ${paraphrase}")
endif()
