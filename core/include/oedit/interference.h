// The interference explorer through the facade: which edits of a run moved
// a fact (the culprits of a lost fact), what the fact would say without any
// one of them (exactly), and which facts one edit hurts most (its blast
// radius). Engine::explainFact and Engine::blastRadius compute these on the
// run's weights as the ledger holds them now (base + active edits).
//
// A fact's margin is mean log P(target) - mean log P(rival), teacher-forced:
// > 0 when it holds. Edits are ranked by the first-order change they made to
// it (eval/interference.h: exact gradient, one pass, every edit of the run);
// the top ones, and any asked for, are then removed one at a time and the
// fact scored again, exactly.
#pragma once

#include "oedit/status.h"

#include <string>
#include <vector>

namespace oedit::runs {

struct FactQuery {
    long long runId = 0;
    std::string subject;
    std::string prompt;    // with "{}" for the subject, or containing it
    std::string target;    // what the fact should say: the true object, or an earlier edit's new target
    int exactTop = 10;     // culprits scored again exactly without them
    std::vector<long long> whatIf; // more edits (ledger edit ids) to score the fact without, exactly
};

struct Culprit {
    long long editId = 0, step = 0;
    std::string method, subject, prompt, targetNew;
    double firstOrder = 0; // the change this edit made to the margin, to first order (< 0: it pushed the fact away)
    bool exact = false;    // the fields below were computed (top culprits and whatIf)
    double marginWithout = 0, pTargetWithout = 0, pRivalWithout = 0;
};

struct FactExplanation {
    long long runId = 0;
    std::string text;   // the prompt with its subject
    std::string target, rival;
    bool holds = false; // margin > 0 now
    double margin = 0, pTarget = 0, pRival = 0;             // now
    double baseMargin = 0, basePTarget = 0, basePRival = 0; // on the unedited model
    long long activeEdits = 0;
    std::vector<Culprit> culprits; // most harmful first (the top exactTop), then the whatIf ones
    std::string toJson() const;
};

// A fact one edit changed, scored with and without the edit.
struct AffectedFact {
    std::string kind;      // "world" (a fact of the model's world) or "edit" (another edit of the run)
    long long editId = 0;  // for kind "edit"
    std::string text, target;
    double pWith = 0, pWithout = 0;
    bool recalledWith = false, recalledWithout = false; // the target's tokens are the greedy ones
};

struct BlastRadius {
    long long runId = 0, editId = 0, step = 0;
    std::string text, targetNew;
    long long factsScored = 0; // world facts and other active edits
    long long lost = 0;        // recalled without the edit, not with it
    std::vector<AffectedFact> hurt; // largest drop of P(target) first, at most `top`
    std::string toJson() const;
};

} // namespace oedit::runs
