// Loaders for public knowledge-editing data sets, all into one EditCase:
//   - CounterFact, flat EasyEdit/MEND format: an array of {case_id, prompt,
//     subject, target_new, ground_truth, rephrase_prompt, locality_prompt,
//     locality_ground_truth}; the prompt contains the subject, which is found
//     and replaced by "{}".
//   - CounterFact, ROME's original format: {case_id, requested_rewrite{prompt
//     with "{}", subject, target_new{str}, target_true{str}, relation_id},
//     paraphrase_prompts[], neighborhood_prompts[], ...}; neighbourhood
//     prompts expect target_true.
//   - zsRE as prepared by MEND/EasyEdit: {subject, src, rephrase, alt,
//     answers[], loc, loc_ans}; alt is the new answer, answers[0] the true one;
//     records have no id, so the case id is the record's index.
//
// Torch-free, re-entrant. Failures (unreadable, empty or malformed files,
// missing or mistyped fields, duplicate case ids, text that is not UTF-8, a
// subject that does not occur in its prompt) come back as an Expected whose
// message names the file and the record (index and case id when known).
#pragma once

#include "oedit/status.h"

#include <string>
#include <vector>

namespace oedit::world {

enum class DatasetFormat { Auto, CounterFactFlat, CounterFactRome, Zsre };

// "auto", "counterfact-flat", "counterfact-rome", "zsre"; an error naming the known ones otherwise.
Expected<DatasetFormat> parseDatasetFormat(const std::string &name);
std::string datasetFormatName(DatasetFormat format);

struct NeighbourPrompt {
    std::string prompt; // a full prompt about another subject
    std::string answer; // what it should still produce after the edit
};

struct EditCase {
    std::string caseId;     // the record's case_id, or its index for zsRE
    std::string relationId; // e.g. "P103" when the data set says, else empty
    std::string subject;
    std::string promptTemplate; // "{}" once, where the subject goes
    std::string targetNew;
    std::string targetTrue;
    std::vector<std::string> paraphrases; // full prompts with the subject in them
    std::vector<NeighbourPrompt> neighbourhood;

    std::string prompt() const; // promptTemplate with the subject filled in
};

// Parses `text` (the JSON of a whole file); `source` names it in messages.
// Auto looks at the first record: "requested_rewrite" -> ROME, "src" and "alt"
// -> zsRE, "prompt" and "target_new" -> flat.
Expected<std::vector<EditCase>> parseEditCases(const std::string &text, DatasetFormat format = DatasetFormat::Auto,
                                               const std::string &source = "<text>");
Expected<std::vector<EditCase>> loadEditCases(const std::string &path, DatasetFormat format = DatasetFormat::Auto);

} // namespace oedit::world
