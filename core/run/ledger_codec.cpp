#include "run/ledger_codec.h"

#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the ledger stores tensors little-endian");

namespace oedit::run {

namespace {

bool isWide(const torch::Tensor &t)
{
    return t.defined() && t.scalar_type() == torch::kDouble;
}

store::StoredTensor encode(const torch::Tensor &tensor, bool wide)
{
    const auto data = tensor.detach().to(torch::kCPU, wide ? torch::kDouble : torch::kFloat).contiguous();
    store::StoredTensor out;
    out.dtype = wide ? "f64" : "f32";
    out.shape = data.sizes().vec();
    out.bytes.resize(static_cast<size_t>(data.numel()) * data.element_size());
    if (!out.bytes.empty())
        std::memcpy(out.bytes.data(), data.data_ptr(), out.bytes.size());
    return out;
}

torch::Tensor decode(const store::StoredTensor &stored)
{
    const auto scalar = stored.dtype == "f64" ? torch::kDouble : torch::kFloat;
    auto out = torch::empty(stored.shape, torch::TensorOptions().dtype(scalar));
    if (stored.bytes.size() != static_cast<size_t>(out.numel()) * out.element_size())
        throw store::LedgerError("a stored tensor holds " + std::to_string(stored.bytes.size()) +
                                 " bytes but its shape needs " +
                                 std::to_string(static_cast<size_t>(out.numel()) * out.element_size()));
    if (!stored.bytes.empty())
        std::memcpy(out.data_ptr(), stored.bytes.data(), stored.bytes.size());
    return out;
}

} // namespace

edit::EditRequest fromStored(const store::StoredRequest &request)
{
    return {request.subject, request.prompt, request.targetNew, request.targetTrue};
}

store::StoredRequest toStored(const edit::EditRequest &request)
{
    return {request.subject, request.prompt, request.targetNew, request.targetTrue};
}

store::EditRecord toRecord(const edit::EditResult &result)
{
    store::EditRecord record;
    record.resultId = result.id;
    record.method = result.method;
    record.hparams = result.hparams.is_null() ? nlohmann::json::object() : result.hparams;
    record.request = toStored(result.request);
    const auto summary = result.summaryJson();
    record.diagnostics = summary["diagnostics"];
    record.timings = summary["timings"];
    for (const auto &update : result.layers) {
        const std::string where = "edit " + std::to_string(result.id) + ", layer " + std::to_string(update.layer);
        store::StoredUpdate stored;
        stored.layer = update.layer;
        if (update.rankOne()) {
            if (update.right.dim() != 1 || update.left.dim() != 1)
                throw store::LedgerError(where + ": rank-one factors must be vectors");
            const bool wide = isWide(update.right) || isWide(update.left);
            stored.kind = "rank1";
            stored.a = encode(update.right, wide);
            stored.b = encode(update.left, wide);
        } else if (update.dense.defined()) {
            if (update.dense.dim() != 2)
                throw store::LedgerError(where + ": a dense update must be a matrix");
            stored.kind = "dense";
            stored.a = encode(update.dense, isWide(update.dense));
        } else {
            throw store::LedgerError(where + ": the update holds no tensor (neither factors nor a matrix)");
        }
        record.updates.push_back(std::move(stored));
    }
    for (const auto &[layer, K] : result.keys) {
        if (!K.defined() || K.dim() != 2)
            throw store::LedgerError("edit " + std::to_string(result.id) + ": the keys of layer " +
                                     std::to_string(layer) + " must be a matrix");
        store::StoredUpdate stored;
        stored.layer = layer;
        stored.kind = "keys";
        stored.a = encode(K, isWide(K));
        record.updates.push_back(std::move(stored));
    }
    return record;
}

edit::LayerUpdate fromStoredUpdate(const store::StoredUpdate &stored)
{
    edit::LayerUpdate update;
    update.layer = stored.layer;
    if (stored.kind == "rank1") {
        update.right = decode(stored.a);
        update.left = decode(stored.b);
    } else {
        update.dense = decode(stored.a);
    }
    return update;
}

std::vector<edit::LayerUpdate> fromStoredUpdates(const std::vector<store::StoredUpdate> &updates)
{
    std::vector<edit::LayerUpdate> out;
    for (const auto &stored : updates)
        if (stored.kind != "keys")
            out.push_back(fromStoredUpdate(stored));
    return out;
}

edit::EditResult fromRecord(const store::EditRecord &record)
{
    edit::EditResult result;
    result.id = record.resultId;
    result.method = record.method;
    result.hparams = record.hparams;
    result.request = fromStored(record.request);
    result.layers = fromStoredUpdates(record.updates);
    for (const auto &stored : record.updates)
        if (stored.kind == "keys")
            result.keys[stored.layer] = decode(stored.a);
    const auto &d = record.diagnostics;
    try {
        result.diagnostics.lossCurve = d.value("loss_curve", std::vector<double>{});
        result.diagnostics.finalTargetNll = d.value("final_target_nll", 0.0);
        result.diagnostics.valueShiftNorm = d.value("value_shift_norm", d.value("delta_norm", 0.0)); // older ledgers: delta_norm
        result.diagnostics.updateNorms = d.value("update_norms", std::vector<double>{});
        result.diagnostics.maxAbsCosWithEarlier = d.value("max_abs_cos_with_earlier", 0.0);
        result.diagnostics.maxKeyCosWithEarlier = d.value("max_key_cos_with_earlier", 0.0);
        result.diagnostics.maxAbsCosWithProtected = d.value("max_abs_cos_with_protected", 0.0);
        result.diagnostics.protectedRank = d.value("protected_rank", int64_t(0));
        result.diagnostics.remainingCapacity = d.value("remaining_capacity", int64_t(-1));
        result.diagnostics.capacityNote = d.value("capacity_note", std::string());
        result.diagnostics.lookupPosition = d.value("lookup_position", int64_t(0));
        const auto &t = record.timings;
        result.timings = {t.value("statistics", 0.0), t.value("key", 0.0), t.value("value", 0.0),
                          t.value("update", 0.0), t.value("total", 0.0)};
    } catch (const nlohmann::json::exception &error) {
        throw store::LedgerError("edit " + std::to_string(record.resultId) +
                                 ": a JSON column is damaged (" + error.what() + ")");
    }
    return result;
}

int64_t appendEdit(store::Ledger &ledger, int64_t runId, const edit::EditResult &result)
{
    return ledger.appendEdit(runId, toRecord(result));
}

std::vector<edit::LayerUpdate> loadUpdate(store::Ledger &ledger, int64_t editId)
{
    return fromStoredUpdates(ledger.loadUpdates(editId));
}

edit::EditResult loadEdit(store::Ledger &ledger, int64_t editId)
{
    return fromRecord(ledger.loadRecord(editId));
}

} // namespace oedit::run
