// The engine facade: the one entry point the CLI and the workbench use.
//
// Value types in, value types out; no torch type appears here (libtorch's
// `slots` identifier clashes with Qt's keyword macro), so ui/ never includes
// torch. An Engine is owned and called by one thread at a time (the workbench's
// worker thread); it loads a model once and keeps per-run state separately.
// No exception escapes: failures come back as Status with a clear message.
#pragma once

#include "oedit/editing.h"
#include "oedit/status.h"

#include <memory>
#include <string>
#include <vector>

namespace oedit {

struct BuildInfo {
    std::string version;        // O-Edit Workbench version
    std::string torchVersion;   // libtorch the engine was built against
    bool cudaAvailable = false; // libtorch has CUDA and a device is visible
    int cudaDeviceCount = 0;
    std::string blas;           // BLAS libtorch reports, e.g. "OpenBLAS"
};

struct DeviceCheck {
    std::string device;     // "cpu" or "cuda"
    double maxAbsError = 0; // of a small matmul against a float64 reference
    double gflops = 0;      // of one 512^3 float32 matmul, for orientation
};

struct ModelInfo {
    std::string path;
    std::string family;    // "gpt2" or "llama"
    std::string modelType; // as config.json names it: gpt2, llama, mistral, qwen2
    std::string device;    // "cpu", "cuda:0", ...
    std::string dtype;     // "float32", "bfloat16", "float16"
    int layers = 0;
    int hidden = 0;
    int heads = 0;
    int kvHeads = 0;
    int intermediate = 0;
    int vocabSize = 0;
    int maxPositions = 0;
    long long parameters = 0;
    std::string tokenizer; // what tokenizer was loaded, or "none"
};

struct OpenOptions {
    std::string device = "cpu";   // "cpu" or "cuda" / "cuda:N"
    std::string dtype = "float32"; // float16/bfloat16 are for CUDA
};

struct TokenProbability {
    std::string text; // the token as text (leading space shown as a space)
    long long id = 0;
    double probability = 0;
};

struct Prediction {
    std::vector<TokenProbability> top; // next-token candidates, most likely first
    std::string continuation;          // greedy continuation of the prompt
};

class Engine {
public:
    Engine();
    ~Engine();
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;

    static BuildInfo buildInfo();

    // Runs a small computation on `device` ("cpu" or "cuda") and checks it
    // against a float64 reference: proves the tensor backend works here.
    static Expected<DeviceCheck> checkDevice(const std::string &device);

    // Where the embedded default model lives, or an empty string when it is
    // not installed next to the binary nor in the source tree.
    static std::string defaultModelDirectory();

    // Loads a Hugging Face style model directory (config.json, safetensors,
    // tokenizer) and makes it the engine's model. On failure the previous
    // model, if any, stays loaded.
    Status openModel(const std::string &directory, const OpenOptions &options = {});
    bool hasModel() const;
    ModelInfo modelInfo() const;

    // Top-k next tokens after `prompt` and its greedy continuation.
    Expected<Prediction> predict(const std::string &prompt, int topK = 10, int continuationTokens = 12);

    // Writes the current weights (with any edits) as a model directory that
    // other tools open: config.json, model.safetensors and the tokenizer files.
    Status saveModel(const std::string &directory);

    // --- Editing (types in oedit/editing.h) ---
    // The open model carries one editing run: the edits applied since it was
    // opened, in order, with their per-run state (statistics, O-Edit's
    // subspaces and capacity). Opening a model starts a new run.

    // Validates `spec` completely (method, hyperparameters, layers, subject in
    // the prompt, target non-empty and not what the model already answers),
    // computes the update, applies it and scores the prompts before and after.
    // Statistics are computed on first use and cached on disk (keyed by model,
    // layer, text and sample count); `progress` reports their computation and
    // may cancel it by returning false. On any failure, cancel included, the
    // weights and the run are as they were.
    Expected<EditOutcome> applyEdit(const EditSpec &spec, const ProgressFn &progress = {});
    // Takes the most recent edit out again (the exact inverse, up to float32
    // rounding of the weights). Fails when the run has no edit.
    Status undoLastEdit();
    // Edits applied in this run.
    int editCount() const;
    // Writes the run to one file (`path`, replaced atomically): every applied
    // edit with its update tensors and the O-Edit state. Returns a JSON summary
    // of what was written (edit ids, per layer the O-Edit edit rank, and the
    // residual width that bounds it).
    Expected<std::string> saveEditState(const std::string &path) const;
    // Makes the run the one in `path` (written by saveEditState for a model of
    // the same shapes): takes this run's edits out, applies the saved ones and
    // restores their O-Edit state. The file is checked first; on failure the
    // weights and the run are unchanged.
    Status loadEditState(const std::string &path);
    // Makes the run the active edits of run `runId` in the edit ledger `db`
    // (a run made on this model folder: its content hash must match), with
    // their method state, so further edits continue that run; record them
    // with runs::recordSession. Statistics come from the unedited weights, as
    // for the run's first edit. On failure the weights and the run are unchanged.
    Status loadLedgerRun(const std::string &db, long long runId);

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

} // namespace oedit
