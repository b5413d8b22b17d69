// How an edit's probes came out, counted the same way wherever an outcome is
// shown (the workbench's Facts tab, `oedit edit`).
#pragma once

#include "oedit/editing.h"

namespace oedit {

struct ProbeCounts {
    int paraphrases = 0;
    int paraphrasesSayingNew = 0;  // the new target is now the paraphrase's most likely continuation
    int neighbours = 0;
    int neighboursKeepingOwn = 0;  // P(own object) > P(new target) after the edit
};

ProbeCounts countProbes(const EditOutcome &outcome);

} // namespace oedit
