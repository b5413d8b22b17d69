// A knowledge world built from a real editing data set (CounterFact, zsRE),
// so a model can be trained on the data set's true facts and the requested
// rewrites then studied on a model that knows the originals.
//
// Mapping (one EditCase -> one relation, one fact):
//   - Relations cannot be shared between cases: a case's prompt and
//     paraphrases are written for its subject (CounterFact paraphrases carry a
//     random lead-in sentence, zsRE questions name the subject's own
//     context), and even cases with the same Wikidata relation use different
//     prompts. So every case gets its own relation:
//       id         "case-<case id>" (unique: the loaders reject duplicate ids)
//       wikidataId the case's relationId (CounterFact ROME format), else "unknown"
//       name       the prompt template, e.g. "The mother tongue of {} is"
//       kinds      ["entity"] (the only kind; every subject is an "entity")
//       templates  [prompt template, paraphrases...]: a paraphrase becomes a
//                  template by replacing the subject's first occurrence with
//                  "{}"; paraphrases that do not contain the subject, repeat
//                  an earlier template, or would contradict another case's
//                  fact are dropped (and reported)
//       objects    [targetTrue, targetNew], or [targetTrue] when both are the
//                  same once trimmed, so the requested rewrite is a valid
//                  object of the fact's relation
//   - Subjects are the distinct subject strings in order of first appearance,
//     so a subject edited by several cases has several facts.
//   - Facts: (subject, the case's relation, targetTrue), ordered by subject,
//     then relation (as World requires). Fact::neighbours stays empty: no two
//     facts share a relation.
//   - General text: every neighbourhood prompt with its answer,
//     "prompt answer." on one line (newlines in the prompt become spaces),
//     without repeats and without lines whose prompt is also a fact's prompt
//     (the fact wins), so the model learns the neighbours too and specificity
//     can be measured. There is no held-out text: everything the data set
//     offers is something the model should know.
//   - WorldOptions: seed 0, subjects = the number of subjects,
//     generalTextBytes = the size of the general text, heldoutPercent 1
//     (unused; the smallest value a world may hold).
// Objects are trimmed of surrounding white space and templates of trailing
// white space, since a training sentence is "template(subject) object.".
//
// Cases whose canonical prompt is already a fact of an earlier case with a
// different true answer (CounterFact lists some multi-valued facts twice, e.g.
// two twin cities) are skipped and reported: a model cannot learn both as the
// top-1 answer of one prompt.
//
// Value types and free functions, torch-free, Qt-free, re-entrant.
// Failures come back as Expected with a message naming the source and the
// record ("data.json: record 4 (case_id 17): ..."); nothing throws.
#pragma once

#include "oedit/datasets.h"
#include "oedit/status.h"
#include "oedit/world.h"

#include <string>
#include <vector>

namespace oedit::world {

// What worldFromEditCases did besides the plain mapping.
struct DatasetWorldReport {
    int cases = 0;              // cases given
    int facts = 0;              // facts in the world (cases minus skipped ones)
    int skippedCases = 0;       // contradicting an earlier case's fact
    int droppedParaphrases = 0; // no subject in them, a repeat, or contradicting another fact
    int singleObjectCases = 0;  // targetNew equals targetTrue: nothing to rewrite
    int droppedNeighbours = 0;  // repeats, or the prompt of a fact
    // One line per skipped case or dropped paraphrase, naming the record.
    std::vector<std::string> notes;
};

// Builds the world described above. `source` names the data (usually the
// file) in messages. Errors, each naming the record (index and case id): no
// cases; an empty subject, prompt template or target; a template without
// exactly one "{}"; a subject that does not occur in its prompt; a case id
// used twice; two cases with the same subject, prompt and targets
// (duplicates); more than 100,000 subjects. `report`, when given, receives the
// counts and notes.
Expected<World> worldFromEditCases(const std::vector<EditCase> &cases, const std::string &source,
                                   DatasetWorldReport *report = nullptr);

// A BPE vocabulary size for a world built from a data set. Real text has far
// more distinct words than the synthetic world's; a word that is not one
// token costs the small model positions and makes its object harder to
// recall, while a token seen only once is barely trained. The rule: two tokens
// per distinct word that occurs at least twice in trainingSentences(world)
// (BPE reaches a whole word through pieces that stay in the vocabulary), plus
// the 257 byte and end-of-text tokens, clamped to 1,000..8,000. Measured on
// CounterFact (flat): 40 cases -> 1,000, 200 -> 1,569 (every object one
// token; 1,000 leaves a quarter of them in pieces), 1,000 -> 5,103, 2,000 and
// more -> 8,000; zsRE: 200 -> 2,191, all 1,037 -> 7,441 (its answers are
// often several words: about 2.1 tokens each).
int suggestedDatasetVocabSize(const World &world);

} // namespace oedit::world
