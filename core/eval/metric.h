// The values eval/ takes and returns, so that evaluation needs nothing from
// the ledger: callers that store metrics (the runner) convert at their edge.
// Plain values; copy freely, any thread.
#pragma once

#include "edit/editor.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace oedit::eval {

// An edit in effect at the checkpoint: its request and the id the caller
// files its retention row under.
struct EvaluatedEdit {
    int64_t id = 0;
    edit::EditRequest request;
};

// One number of a checkpoint: run-level, or about one edit (retention rows).
struct Metric {
    std::string name;
    double value = 0;
    std::optional<int64_t> edit; // the EvaluatedEdit::id it is about, or none for run-level metrics
};

// Per layer, the MLP output projection [d, d_k] (as Transformer::mlpOutWeight)
// or a float64 sum of updates to it.
using LayerWeights = std::map<int64_t, torch::Tensor>;

} // namespace oedit::eval
