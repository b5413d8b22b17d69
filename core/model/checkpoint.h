// Reading and writing Hugging Face model folders: config.json plus either
// model.safetensors or model.safetensors.index.json with its shards. Pickle
// files (pytorch_model.bin, *.pt) are never read: unpickling can execute code.
//
// Every function throws CheckpointError (model/checkpoint_error.h) whose
// message names the folder or file, the tensor and what to do; the engine
// facade turns it into a Status. Nothing here keeps state between calls; any
// thread may call, but not two writers on the same folder at once.
#pragma once

#include "model/checkpoint_error.h"
#include "model/model_config.h"
#include "oedit/status.h"

#include <torch/types.h>

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace oedit::model {

// Parameter name (as in the checkpoint, e.g. "transformer.h.0.attn.c_attn.weight")
// to tensor. The map owns its tensors; they are CPU tensors after loading.
using StateDict = std::unordered_map<std::string, torch::Tensor>;

// The weight files of a model folder, found and cross-checked without reading
// any tensor data.
struct CheckpointFiles {
    std::string dir;
    std::string configPath;                       // dir/config.json, empty if absent
    std::string indexPath;                        // dir/model.safetensors.index.json, empty unless sharded
    std::vector<std::string> weightFiles;         // full paths: model.safetensors, or each shard once, sorted
    std::map<std::string, std::string> weightMap; // sharded only: tensor -> shard file name
    bool sharded() const { return !indexPath.empty(); }
};

// Finds the weights of `dir`. model.safetensors wins over an index when both
// exist (as in transformers). For an index, checks that it is valid JSON with a
// "weight_map" of tensor -> shard, that every shard is a plain file name ending
// in ".safetensors" (no '/' or '..': nothing outside `dir` is ever read) and
// that every shard exists. Throws CheckpointError otherwise, e.g.
// "no model.safetensors or model.safetensors.index.json in DIR: ...".
CheckpointFiles locateCheckpoint(const std::string &dir);

// The same checks plus config.json, as a Status for callers that only want to
// tell the user what is missing (file pickers, `oedit check`). Reads no weights.
Status checkCheckpointDir(const std::string &dir);

// Loads every tensor of the folder's safetensors file(s) to CPU. Floating-point
// tensors are converted to `dtype` (a floating type); integer and bool tensors
// keep their type. For a sharded folder, each shard must hold exactly the
// tensors the index assigns to it (a tensor missing from its shard, present in
// another shard, or not listed at all is an error). Memory: the result, plus
// one tensor copy at a time; shard files are memory-mapped, not read whole.
//
// Weights that are not numbers (NaN, +-Inf) are refused by default: the
// CheckpointError names the first such tensor and how many values are bad,
// since an edit on such a model would only write NaNs into the ledger. With
// NonFiniteWeights::Warn the folder opens anyway (to inspect a damaged
// checkpoint) and `warnings`, when given, receives one line per bad tensor.
// The check is one pass over each floating tensor after the dtype conversion
// (a float32 value too large for bfloat16 becomes infinite there).
enum class NonFiniteWeights { Refuse, Warn };
StateDict loadStateDict(const std::string &dir, torch::ScalarType dtype = torch::kFloat32,
                        NonFiniteWeights nonFinite = NonFiniteWeights::Refuse,
                        std::vector<std::string> *warnings = nullptr);

// The floating tensors of `state` that hold a NaN or an infinity, sorted by
// name, each as `"name": N NaN and M infinite of T values`.
std::vector<std::string> nonFiniteTensors(const StateDict &state);

// Writes dir/config.json (toJson(config) with torch_dtype set from `dtype`) and
// dir/model.safetensors (floating tensors converted to `dtype`, others as they
// are; names sorted; metadata {"format": "pt"} as transformers expects).
// Creates `dir` if missing; refuses a path that exists and is not a folder.
// Both files are fully written and flushed to temporaries in `dir` before
// either is renamed into place, so a failure leaves the previous files
// untouched and no temporary behind. An existing model.safetensors.index.json
// is left alone (model.safetensors takes precedence when loading).
void saveCheckpoint(const std::string &dir, const ModelConfig &config, const StateDict &state,
                    torch::ScalarType dtype = torch::kFloat32);

// "float32", "bfloat16", "float16", "float64": config.json's torch_dtype
// spelling. Throws CheckpointError for other types.
std::string torchDtypeName(torch::ScalarType dtype);

} // namespace oedit::model
