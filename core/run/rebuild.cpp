// Weights and method state rebuilt from the ledger's stored updates.
#include "run/ledger_codec.h"
#include "run/rebuild.h"

#include <limits>
#include <set>
#include <unordered_map>

namespace oedit::run {

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
            throw store::LedgerError("the base weights name layer " + std::to_string(layer) + ", but the model has " +
                              std::to_string(model.config().layers) + " layers");
        if (W.size(0) != model.config().hidden || W.size(1) != model.mlpKeyWidth())
            throw store::LedgerError("the base weights of layer " + std::to_string(layer) +
                              " do not fit this model's layer shapes");
    }
}

} // namespace

namespace {

// Every update of the given edits, read and checked against the base
// weights' shapes before anything changes.
std::vector<std::pair<store::EditRow, std::vector<edit::LayerUpdate>>> readUpdates(const BaseWeights &base, store::Ledger &ledger,
                                                                            const std::vector<store::EditRow> &edits)
{
    std::vector<std::pair<store::EditRow, std::vector<edit::LayerUpdate>>> out;
    out.reserve(edits.size());
    for (const auto &row : edits) {
        out.emplace_back(row, run::loadUpdate(ledger, row.id));
        for (const auto &update : out.back().second) {
            if (!base.count(update.layer))
                throw store::LedgerError("edit " + std::to_string(row.id) + " changes layer " + std::to_string(update.layer) +
                                  ", which the base weights do not hold");
            const auto &W = base.at(update.layer);
            const bool rankOne = update.rankOne();
            const int64_t rows = rankOne ? update.right.size(0) : update.dense.size(0);
            const int64_t cols = rankOne ? update.left.size(0) : update.dense.size(1);
            if (rows != W.size(0) || cols != W.size(1))
                throw store::LedgerError("edit " + std::to_string(row.id) + " (step " + std::to_string(row.step) +
                                  ") does not fit this model: its update of layer " + std::to_string(update.layer) +
                                  " is " + std::to_string(rows) + "x" + std::to_string(cols) + ", the layer is " +
                                  std::to_string(W.size(0)) + "x" + std::to_string(W.size(1)));
        }
    }
    return out;
}

// base + the active updates up to `step`, in float64 on the CPU, for the
// layers in `only` (all of base when empty).
std::map<int64_t, torch::Tensor> exactSum(const BaseWeights &base, store::Ledger &ledger, int64_t run,
                                          std::optional<int64_t> step, const std::set<int64_t> &only = {})
{
    const auto updates = readUpdates(base, ledger, ledger.activeEdits(run, step));
    std::map<int64_t, torch::Tensor> out;
    for (const auto &[layer, W] : base)
        if (only.empty() || only.count(layer))
            out[layer] = W.to(torch::kCPU, torch::kDouble).clone();
    for (const auto &entry : updates)
        for (const auto &update : entry.second)
            if (auto found = out.find(update.layer); found != out.end())
                found->second += update.matrix().to(torch::kDouble);
    return out;
}

void setLayers(model::Transformer &model, const std::map<int64_t, torch::Tensor> &weights)
{
    for (const auto &[layer, W] : weights)
        model.setMlpOutWeight(layer, W.to(model.device(), model.dtype()));
}

} // namespace

int64_t rebuildWeights(model::Transformer &model, const BaseWeights &base, store::Ledger &ledger, int64_t run,
                       std::optional<int64_t> step)
{
    checkFits(model, base);
    const auto sums = exactSum(base, ledger, run, step);
    setLayers(model, sums);
    return static_cast<int64_t>(ledger.activeEdits(run, step).size());
}

std::map<int64_t, torch::Tensor> expectedWeights(const BaseWeights &base, store::Ledger &ledger, int64_t run,
                                                 std::optional<int64_t> step)
{
    return exactSum(base, ledger, run, step);
}

void replayEditState(edit::EditContext &context, store::Ledger &ledger, int64_t run, std::optional<int64_t> step)
{
    for (const auto &row : ledger.activeEdits(run, step))
        context.recordApplied(run::loadEdit(ledger, row.id));
}

void applyRollback(model::Transformer &model, edit::EditContext *context, store::Ledger &ledger, const store::RollbackEvent &event,
                   const BaseWeights *base)
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
            found = loaded.emplace(id, run::loadEdit(ledger, id)).first;
        return found->second;
    };

    // Read and check every changed edit before any weight moves, so a
    // damaged row or a misfit fails the call with the model as it was.
    std::set<int64_t> layers;
    for (const auto &row : edits)
        if (deactivated.count(row.id) || activated.count(row.id))
            for (const auto &update : result(row.id).layers) {
                if (update.layer < 0 || update.layer >= model.config().layers)
                    throw store::LedgerError("edit " + std::to_string(row.id) + " changes layer " +
                                      std::to_string(update.layer) + ", but the model has " +
                                      std::to_string(model.config().layers) + " layers");
                const auto M = update.matrix();
                if (M.size(0) != model.config().hidden || M.size(1) != model.mlpKeyWidth())
                    throw store::LedgerError("edit " + std::to_string(row.id) + " does not fit this model's layer shapes");
                layers.insert(update.layer);
            }
    if (base) {
        // Exact: the touched layers from base + every active update, rounded once.
        checkFits(model, *base);
        setLayers(model, exactSum(*base, ledger, event.run, std::nullopt, layers));
    } else {
        // Fast: the changed updates summed in float64 and added to W once per
        // layer, so a rollback adds at most one rounding to each weight.
        std::map<int64_t, torch::Tensor> delta;
        for (const auto &row : edits) {
            const double sign = deactivated.count(row.id) ? -1.0 : activated.count(row.id) ? 1.0 : 0.0;
            if (sign == 0)
                continue;
            for (const auto &update : result(row.id).layers) {
                auto &D = delta[update.layer];
                const auto M = update.matrix().to(torch::kDouble);
                D = D.defined() ? D + sign * M : sign * M;
            }
        }
        for (const auto &[layer, D] : delta) {
            const auto W = model.mlpOutWeight(layer);
            model.setMlpOutWeight(layer, (W.to(torch::kCPU, torch::kDouble) + D).to(W.device(), W.scalar_type()));
        }
    }
    if (!context)
        return;

    // Method state: the changed edits' sums in and out, U_E regrown in memory.
    std::vector<const edit::EditResult *> removed, restored;
    std::vector<int64_t> activeOrder;
    for (const auto &row : edits) {
        if (deactivated.count(row.id))
            removed.push_back(&result(row.id));
        else if (activated.count(row.id))
            restored.push_back(&result(row.id));
        if (row.active)
            activeOrder.push_back(row.resultId); // the context knows edits by their result ids
    }
    context->applyRollback(removed, restored, activeOrder);
}

} // namespace oedit::run
