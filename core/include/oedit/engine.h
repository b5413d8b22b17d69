// The engine facade: the one entry point the CLI and the workbench use.
//
// Value types in, value types out; no torch type appears here (libtorch's
// `slots` identifier clashes with Qt's keyword macro), so ui/ never includes
// torch. An Engine is owned and called by one thread at a time (the workbench's
// worker thread); it loads a model once and keeps per-run state separately.
// No exception escapes: failures come back as Status with a clear message.
#pragma once

#include "oedit/editing.h"
#include "oedit/interference.h"
#include "oedit/runs.h"
#include "oedit/status.h"
#include "oedit/trace.h"

#include <memory>
#include <optional>
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
    // What is wrong with the weights but was let through on request
    // (OpenOptions::allowNonFiniteWeights): one line per tensor.
    std::vector<std::string> warnings;
};

struct OpenOptions {
    std::string device = "cpu";   // "cpu" or "cuda" / "cuda:N"
    std::string dtype = "float32"; // float16/bfloat16 are for CUDA
    // Open a checkpoint whose weights hold NaN or infinities (refused by
    // default) to inspect it; ModelInfo::warnings then names the tensors, and
    // edits on it are still refused when their result is not finite.
    bool allowNonFiniteWeights = false;
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
    // Takes the most recent edit out again: the layers it changed return to
    // base + the remaining edits, rounded once (taking every edit out gives
    // the base weights back bit for bit). Attached to a ledger, the undo is a
    // `remove` rollback event of the session's run. Fails when the run has no edit.
    Status undoLastEdit();
    // Puts back the edit the latest undoLastEdit took out (attached: undoes
    // that event). A new edit or a rollback clears what can be redone.
    Status redoEdit();
    // Edits applied in this run.
    int editCount() const;

    // --- The session in an edit ledger ---
    // Attaches the session to run `runId` of the ledger `db` (created when
    // missing): each later edit is appended to it as it is made, and undo and
    // redo are rollback events of it. runId 0 starts a new run of data set
    // "manual" (made now from the edits already applied, if any, else by the
    // next edit). Otherwise the run must have been made on this model folder
    // (its content hash must match): the session's edits come out and the
    // run's active edits go on with their method state, statistics from the
    // unedited weights as the run's first edit had them. On failure the
    // weights and the session are unchanged.
    Status attachLedger(const std::string &db, long long runId = 0);
    // Stops recording; the edits stay on the model.
    void detachLedger();
    struct SessionInfo {
        std::string db;      // empty when not attached
        long long runId = 0; // 0: attached, but the run is made by the next edit
        int edits = 0;
        bool canUndo = false;
        bool canRedo = false;
    };
    SessionInfo session() const;
    // A rollback in ledger `db` (runs::RollbackRequest). When it is a rollback
    // of the attached session's run, the open model follows it in memory
    // (cost: the changed edits only).
    Expected<runs::RollbackInfo> rollback(const std::string &db, const runs::RollbackRequest &request);

    // --- Sequential runs on this engine (oedit/runs.h) ---
    // A request without modelDir (or naming the open model's folder) runs on
    // the open model, on its device and dtype; its session's edits are put
    // back afterwards. Another folder (or another device/dtype) is loaded once
    // through the same code and kept for later calls. progress(done, planned)
    // returning false stops the run after the current edit (status
    // "cancelled", resumable). The ledger `db` is created when missing.
    Expected<runs::RunSummary> startRun(const std::string &db, const runs::RunRequest &request,
                                        const ProgressFn &progress = {});
    Expected<runs::RunSummary> resumeRun(const std::string &db, long long runId, const ProgressFn &progress = {},
                                         const std::string &device = {}, const std::string &dtype = {});
    // ||W_k|| / ||W_0|| per edited layer and step (runs::NormSeries), from
    // the base weights the engine holds for the run's model. It reads every
    // update of the run (seconds for 100,000 edits): progress(updates read,
    // edits in effect) returning false stops it with a "stopped" failure.
    Expected<std::vector<runs::NormSeries>> normGrowth(const std::string &db, long long runId,
                                                       const ProgressFn &progress = {});
    // Writes the weights of run `runId` at `step` (its active edits up to that
    // step; all active edits when none) as an ordinary checkpoint folder
    // `outDir` (config.json, model.safetensors, the tokenizer and world files
    // of the base model). Refuses an `outDir` that exists and is not empty,
    // and a base model whose content changed since the run started. Returns
    // the edits included.
    Expected<long long> exportRun(const std::string &db, long long runId, std::optional<long long> step,
                                  const std::string &outDir);
    // Writes the run to one file (`path`, replaced atomically): every applied
    // edit with its update tensors and the O-Edit state (a copy to move or
    // archive; the ledger needs no such file). Returns a JSON summary
    // of what was written (edit ids, per layer the O-Edit edit rank, and the
    // residual width that bounds it).
    Expected<std::string> saveEditState(const std::string &path) const;
    // Makes the run the one in `path` (written by saveEditState for a model of
    // the same shapes): takes this run's edits out, applies the saved ones and
    // restores their O-Edit state, detached from any ledger. The file is
    // checked first; on failure the weights and the run are unchanged.
    Status loadEditState(const std::string &path);

    // --- The interference explorer (oedit/interference.h) ---
    // Which active edits of run `query.runId` moved the fact, ranked by the
    // first-order change each made to its margin, the top ones (and
    // query.whatIf) scored again exactly without them. On the run's model,
    // with its active edits as the ledger holds them now; the open model's
    // session is put back afterwards. progress(edits ranked, active edits).
    Expected<runs::FactExplanation> explainFact(const std::string &db, const runs::FactQuery &query,
                                                const ProgressFn &progress = {});
    // The facts edit `editId` of run `runId` hurts most: every fact of the
    // model's world and every other active edit of the run, scored with the
    // run's active edits and again without this one (exact).
    Expected<runs::BlastRadius> blastRadius(const std::string &db, long long runId, long long editId, int top = 20,
                                            const ProgressFn &progress = {});

    // --- Where a fact lives (oedit/trace.h) ---
    // The causal trace of one prompt on the open model, its session's edits
    // included. progress(draws done, draws) may cancel: the draws made so far
    // are averaged; none is a failure saying it was cancelled.
    Expected<PromptTrace> tracePrompt(const PromptTraceQuery &query, const ProgressFn &progress = {});

    // Opaque to users of the facade (core/engine/engine_impl.h).
    struct Impl;

private:
    std::unique_ptr<Impl> d;
};

} // namespace oedit
