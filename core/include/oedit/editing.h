// Value types of the engine's editing calls (Engine::applyEdit and friends in
// oedit/engine.h): what an edit asks for and what it did.
//
// Plain data, torch-free and Qt-free, copied freely; the caller owns them.
// The engine fills an EditOutcome completely or returns an error instead, so
// a caller never sees half an outcome. Probabilities are teacher-forced
// P(" " + target | prompt) = exp(mean token log-probability), the convention
// of the editing literature for multi-token targets.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace oedit {

// One edit: make the model complete `prompt` about `subject` with `targetNew`.
struct EditSpec {
    // "ft", "rome", "memit", "alphaedit", "oedit" or "oedit+" (see editMethods()).
    std::string method;
    std::string subject;
    // The prompt with "{}" where the subject goes, or containing the subject
    // verbatim; it ends right before the object ("The mother tongue of {} is").
    std::string prompt;
    std::string targetNew;
    // The object the fact has now. When absent the engine takes it from the
    // model folder's world (when subject and prompt match a world fact), else
    // from the model's own greedy answer; EditOutcome::oldTargetSource says which.
    std::optional<std::string> targetTrue;
    // Overrides of the method's default hyperparameters as a JSON object text,
    // e.g. {"layer": 2, "base": "memit"}; empty for the defaults. Unknown names
    // and values of the wrong type are errors.
    std::string hparamsJson;
    // A text file (one passage per line) for the statistics the methods need
    // (second moments, O-Edit's implicit-knowledge basis); empty: the model
    // folder's general_train.txt. Fixed for a run by its first edit.
    std::string statisticsText;
    // A world model (one whose folder holds its world) is refused an edit
    // towards a word it has never read ("Klingonese"): the tokenizer spells
    // such a word from fragments the model has no meaning for, and one edit
    // cannot teach it. The failure's kind is FailureKind::UnfamiliarTarget and
    // its message names the word and its pieces; true edits anyway.
    bool allowUnfamiliarTarget = false;
};

struct EditOutcome {
    // The update of one edited layer's MLP output projection.
    struct Layer {
        int layer = 0;
        double norm = 0;  // ||Delta W||_F
        std::string kind; // "rank-one" (kept as two factors) or "dense"
        int rank = -1;    // numerical rank; -1 when the matrix is too large to check cheaply
    };

    struct Diagnostics {
        std::vector<double> lossCurve; // total loss per optimisation step
        double finalTargetNll = 0;     // mean target NLL at the last step
        double valueShiftNorm = 0;     // norm of the optimised value shift (0 for ft); the update's own norm is in layers
        double maxAbsCosWithEarlier = 0;   // largest |cos|_F with earlier updates of the same layers in this run
        double maxKeyCosWithEarlier = 0;   // largest |cos| between this edit's key direction and earlier edits'
                                           // (near 1: the new key is close to an earlier edit's key)
        double maxAbsCosWithProtected = 0; // O-Edit(+): largest |cos| with the protected basis
        long long protectedRank = 0;       // O-Edit(+): rank of the protected basis U_S
        long long remainingCapacity = -1;  // O-Edit(+): edit directions left in the fullest layer; -1 n/a
        std::string capacityNote;          // what the capacity policy did; empty when nothing happened
    };

    // Seconds.
    struct Timings {
        double statistics = 0; // C / implicit basis / context prefixes; ~0 once cached
        double key = 0;
        double value = 0;
        double update = 0;
        double apply = 0;  // adding the update to the weights and recording it in the run
        double probes = 0; // before/after probabilities and continuations below
        double total = 0;  // the whole call
    };

    // One prompt scored before and after the edit.
    struct Probe {
        std::string kind;      // "prompt", "paraphrase" or "neighbour"
        std::string text;      // the prompt with its subject filled in
        std::string oldTarget; // what this prompt should say without the edit (a neighbour's own object)
        double newBefore = 0, newAfter = 0;   // P(target new)
        double oldBefore = -1, oldAfter = -1; // P(old target); -1 when there is none
        std::string continuationBefore, continuationAfter; // greedy, a few tokens
        // P of each piece of the new target (EditOutcome::targetPieces), given
        // the prompt and the pieces before it.
        std::vector<double> pieceProbsBefore, pieceProbsAfter;
        // Every piece of the new target is the model's most likely next token
        // in turn: the prompt's greedy continuation begins with the target.
        bool newIsTopBefore = false, newIsTopAfter = false;
    };

    int id = 0; // unique within the run (the engine's currently opened model)
    // Where the edit was recorded when the session is attached to a ledger
    // (Engine::attachLedger): the ledger's run and edit ids; 0 when not recorded.
    long long runId = 0;
    long long ledgerEditId = 0;
    std::string method;
    std::string hparamsJson; // every hyperparameter used, defaults included
    std::string subject, prompt, targetNew;
    std::vector<std::string> targetPieces; // the tokens " " + targetNew is spelled with, as text
    std::string oldTarget;       // empty when none could be found
    std::string oldTargetSource; // "given", "world", "model" or "none"
    std::vector<Layer> layers;
    Diagnostics diagnostics;
    Timings timings;
    std::vector<Probe> probes; // the prompt first; paraphrase and neighbour only for world facts

    // The new target became the edit prompt's most likely continuation, piece
    // by piece (Probe::newIsTopAfter of the prompt). Stricter than the
    // literature's efficacy P(new) > P(old), which two near-zero
    // probabilities can satisfy while the model says something else.
    bool succeeded() const;
    // Everything above as one JSON object (what `oedit edit --json` prints).
    std::string toJson() const;
};

// The editing method names the engine knows, in a stable order.
std::vector<std::string> editMethods();

// What an editing method does, so callers need not compare method names.
struct MethodCapabilities {
    std::string name;        // as in editMethods()
    std::string displayName; // for people, e.g. "O-Edit+"
    // Records a protected subspace for its edits (the O-Edit family): the
    // diagnostics maxAbsCosWithProtected, protectedRank and remainingCapacity mean something.
    bool protectsSubspace = false;
    // Its edits may keep their keys with the result (AlphaEdit always; O-Edit+
    // on the input side with input_edit_basis "keys").
    bool storesKeys = false;
    // Edits several layers per edit with its default hyperparameters.
    bool multiLayer = false;
    // Can protect the input (key) side: side "input"/"both", capacity_policy "input".
    bool supportsInputSide = false;
};

// The capabilities of `method`; empty for an unknown name.
std::optional<MethodCapabilities> methodCapabilities(const std::string &method);

} // namespace oedit
