// One prompt's causal trace on the open model (Engine::tracePrompt): where
// the model computes its answer to the prompt, token by token and layer by
// layer. ROME's procedure (Meng et al., 2022): the subject's token embeddings
// are corrupted with Gaussian noise, then one activation of the clean run is
// restored at a time (the hidden state after a block, the MLP output or the
// attention output at one token of one layer) and the probability of the
// answer is read at the prompt's end. A high value means the answer runs
// through that activation; an MLP peak at the subject's last token is where
// a locate-then-edit method should write. `oedit trace --prompt` prints it;
// `oedit trace` alone averages the same procedure over a world's facts.
//
// Plain data, torch-free and Qt-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace oedit {

struct PromptTraceQuery {
    std::string subject;
    std::string prompt; // with "{}" where the subject goes, or containing it verbatim
    std::string object; // the answer to trace; empty: the model's own top next token
    int samples = 10;   // noise draws averaged (ROME uses 10)
    double noiseFactor = 3.0; // noise std = this x the std of the subject's input embeddings
    uint64_t seed = 1;
};

struct PromptTrace {
    std::vector<std::string> tokens; // the prompt's tokens as text
    int subjectFirst = 0, subjectLast = 0; // token positions of the subject
    int layers = 0;
    std::string object; // the answer traced
    double noiseStd = 0;
    double cleanProbability = 0;     // P(object) on the clean prompt
    double corruptedProbability = 0; // with the subject corrupted
    int samples = 0;                 // draws averaged (fewer than asked when cancelled)
    // [token][layer]: mean P(object) with that one activation restored.
    std::vector<std::vector<double>> hidden, mlp, attention;
    // The layer whose MLP output at the subject's last token restores most.
    int peakMlpLayer() const;
    std::string toJson() const;
};

} // namespace oedit
