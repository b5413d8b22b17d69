# The trained mini model opens everywhere and knows its world: eval-facts in
# JSON, predict on a fact's canonical prompt, info.
execute_process(COMMAND "${OEDIT}" eval-facts --model "${MODEL}" --json OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "oedit eval-facts failed (${rc})")
endif()
string(JSON canonical GET "${out}" canonical_recall)
string(JSON paraphrase GET "${out}" paraphrase_recall)
string(JSON facts GET "${out}" facts)
message(STATUS "mini model: ${facts} facts, canonical recall ${canonical}, paraphrase recall ${paraphrase}")
if(facts LESS 200)
  message(FATAL_ERROR "the mini world should have a few hundred facts, has ${facts}")
endif()
# The mini model is small and quick to train; it must still know most facts.
if(canonical LESS 0.8 OR paraphrase LESS 0.8)
  message(FATAL_ERROR "the mini model recalls too little: canonical ${canonical}, paraphrase ${paraphrase}")
endif()

execute_process(COMMAND "${OEDIT}" info --model "${MODEL}" --json OUTPUT_VARIABLE info RESULT_VARIABLE rc)
string(JSON tokenizer GET "${info}" model tokenizer)
if(NOT rc EQUAL 0 OR tokenizer STREQUAL "none")
  message(FATAL_ERROR "oedit info on the mini model failed or found no tokenizer: ${info}")
endif()

execute_process(COMMAND "${OEDIT}" predict --model "${MODEL}" --prompt "The mother tongue of" --json
                OUTPUT_VARIABLE prediction RESULT_VARIABLE rc)
string(JSON top_count LENGTH "${prediction}" top)
if(NOT rc EQUAL 0 OR top_count LESS 1)
  message(FATAL_ERROR "oedit predict failed: ${prediction}")
endif()
