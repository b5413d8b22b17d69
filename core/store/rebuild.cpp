// Weights and method state rebuilt from the ledger's stored updates.
#include "store/rebuild.h"

#include <limits>
#include <set>
#include <unordered_map>

namespace oedit::store {

BaseWeights captureBaseWeights(const model::Transformer &model)
{
    BaseWeights base;
    for (int64_t layer = 0; layer < model.config().layers; ++layer)
        base[layer] = model.mlpOutWeight(layer).clone();
    return base;
}

namespace {

void checkFits(const model::Transformer &model, const BaseWeights &base)
{
    for (const auto &[layer, W] : base) {
        if (layer < 0 || layer >= model.config().layers)
            throw LedgerError("the base weights name layer " + std::to_string(layer) + ", but the model has " +
                              std::to_string(model.config().layers) + " layers");
        if (W.size(0) != model.config().hidden || W.size(1) != model.mlpKeyWidth())
            throw LedgerError("the base weights of layer " + std::to_string(layer) +
                              " do not fit this model's layer shapes");
    }
}

} // namespace

int64_t rebuildWeights(model::Transformer &model, const BaseWeights &base, Ledger &ledger, int64_t run,
                       std::optional<int64_t> step)
{
    checkFits(model, base);
    const auto edits = ledger.activeEdits(run, step);
    // Read and check every update before touching a weight.
    std::vector<std::vector<edit::LayerUpdate>> updates;
    updates.reserve(edits.size());
    for (const auto &row : edits) {
        updates.push_back(ledger.loadUpdate(row.id));
        for (const auto &update : updates.back()) {
            if (!base.count(update.layer))
                throw LedgerError("edit " + std::to_string(row.id) + " changes layer " + std::to_string(update.layer) +
                                  ", which the base weights do not hold");
            const auto &W = base.at(update.layer);
            const bool rankOne = update.rankOne();
            const int64_t rows = rankOne ? update.right.size(0) : update.dense.size(0);
            const int64_t cols = rankOne ? update.left.size(0) : update.dense.size(1);
            if (rows != W.size(0) || cols != W.size(1))
                throw LedgerError("edit " + std::to_string(row.id) + " (step " + std::to_string(row.step) +
                                  ") does not fit this model: its update of layer " + std::to_string(update.layer) +
                                  " is " + std::to_string(rows) + "x" + std::to_string(cols) + ", the layer is " +
                                  std::to_string(W.size(0)) + "x" + std::to_string(W.size(1)));
        }
    }
    std::map<int64_t, torch::Tensor> weights;
    for (const auto &[layer, W] : base)
        weights[layer] = W.to(model.device(), model.dtype()).clone();
    // One add per update, in step order, in the model's dtype: the same
    // operations applyEdit performed, so an untouched run comes out bit-identical.
    for (const auto &list : updates)
        for (const auto &update : list) {
            auto &W = weights[update.layer];
            W = W + update.matrix().to(W.device(), W.scalar_type());
        }
    for (const auto &[layer, W] : weights)
        model.setMlpOutWeight(layer, W);
    return static_cast<int64_t>(edits.size());
}

std::map<int64_t, torch::Tensor> expectedWeights(const BaseWeights &base, Ledger &ledger, int64_t run,
                                                 std::optional<int64_t> step)
{
    std::map<int64_t, torch::Tensor> out;
    for (const auto &[layer, W] : base)
        out[layer] = W.to(torch::kCPU, torch::kDouble).clone();
    for (const auto &row : ledger.activeEdits(run, step))
        for (const auto &update : ledger.loadUpdate(row.id)) {
            auto found = out.find(update.layer);
            if (found == out.end())
                throw LedgerError("edit " + std::to_string(row.id) + " changes layer " + std::to_string(update.layer) +
                                  ", which the base weights do not hold");
            found->second += update.matrix().to(torch::kDouble);
        }
    return out;
}

void replayEditState(edit::EditContext &context, Ledger &ledger, int64_t run, std::optional<int64_t> step)
{
    for (const auto &row : ledger.activeEdits(run, step))
        context.recordApplied(ledger.loadEdit(row.id));
}

void applyRollback(model::Transformer &model, edit::EditContext *context, Ledger &ledger, const RollbackEvent &event)
{
    const std::set<int64_t> deactivated(event.deactivated.begin(), event.deactivated.end());
    const std::set<int64_t> activated(event.activated.begin(), event.activated.end());
    if (deactivated.empty() && activated.empty())
        return;
    const auto edits = ledger.listEdits(event.run);
    std::unordered_map<int64_t, edit::EditResult> loaded;
    auto result = [&](int64_t id) -> const edit::EditResult & {
        auto found = loaded.find(id);
        if (found == loaded.end())
            found = loaded.emplace(id, ledger.loadEdit(id)).first;
        return found->second;
    };

    // Read every changed edit before any weight moves, so a damaged row
    // fails the call with the model as it was.
    for (const auto &row : edits)
        if (deactivated.count(row.id) || activated.count(row.id))
            result(row.id);
    // Weights: only the changed edits. applyEdit/unapplyEdit check every
    // layer of an edit before changing any.
    for (const auto &row : edits) {
        if (deactivated.count(row.id))
            edit::unapplyEdit(model, result(row.id));
        else if (activated.count(row.id))
            edit::applyEdit(model, result(row.id));
    }
    if (!context)
        return;

    // Method state: unwind from the first changed step, replay what remains.
    int64_t firstStep = std::numeric_limits<int64_t>::max();
    for (const auto &row : edits)
        if (deactivated.count(row.id) || activated.count(row.id))
            firstStep = std::min(firstStep, row.step);
    std::vector<const EditRow *> before, after;
    for (const auto &row : edits) {
        if (row.step < firstStep)
            continue;
        // `row.active` is the state after the event; the event says what it was before.
        const bool wasActive = deactivated.count(row.id) ? true : activated.count(row.id) ? false : row.active;
        if (wasActive)
            before.push_back(&row);
        if (row.active)
            after.push_back(&row);
    }
    for (auto it = before.rbegin(); it != before.rend(); ++it)
        context->recordUnapplied(result((*it)->id));
    for (const auto *row : after)
        context->recordApplied(result(row->id));
}

} // namespace oedit::store
