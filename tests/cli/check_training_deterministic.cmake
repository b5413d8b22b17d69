# Training is deterministic given the seed: two short runs of the mini world
# with the same recipe write byte-identical weights; another seed differs.
set(OUT ${WORK}/determinism)
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
set(ENV{OMP_NUM_THREADS} 1)
execute_process(COMMAND ${OEDIT} world --preset mini --out ${OUT}/world OUTPUT_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "oedit world failed")
endif()
foreach(run a b c)
  set(seed 1)
  if(run STREQUAL "c")
    set(seed 2)
  endif()
  execute_process(COMMAND ${OEDIT} train --world ${OUT}/world --out ${OUT}/${run} --hidden 32 --layers 2 --heads 2
                          --intermediate 64 --epochs 1 --seed ${seed} --quiet
                  OUTPUT_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "oedit train (${run}) failed")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/a/model.safetensors ${OUT}/b/model.safetensors
                RESULT_VARIABLE same)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/a/model.safetensors ${OUT}/c/model.safetensors
                RESULT_VARIABLE different)
if(NOT same EQUAL 0)
  message(FATAL_ERROR "the same seed gave different weights")
endif()
if(different EQUAL 0)
  message(FATAL_ERROR "different seeds gave identical weights")
endif()
file(REMOVE_RECURSE ${OUT})
message(STATUS "training is deterministic for a seed")
