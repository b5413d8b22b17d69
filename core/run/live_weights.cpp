#include "run/live_weights.h"

namespace oedit::run {

void LiveWeights::change(model::Transformer &model, const edit::EditResult &result, double sign)
{
    std::set<int64_t> changed;
    accumulate(result, sign, changed);
    for (const auto layer : changed)
        setLayer(model, layer);
}

void LiveWeights::addAll(model::Transformer &model, const std::vector<const edit::EditResult *> &results)
{
    std::set<int64_t> changed;
    for (const auto *result : results)
        accumulate(*result, 1.0, changed);
    for (const auto layer : changed)
        setLayer(model, layer);
}

void LiveWeights::accumulate(const edit::EditResult &result, double sign, std::set<int64_t> &changed)
{
    for (const auto &update : result.layers) {
        const auto &W = m_base->at(update.layer);
        const auto M = update.matrix().to(W.device(), torch::kDouble);
        auto &sum = m_sums[update.layer];
        sum = sum.defined() ? sum + sign * M : sign * M;
        // A layer whose last update left holds the base bits again, not a
        // float64 residue of additions and subtractions.
        if ((m_count[update.layer] += sign > 0 ? 1 : -1) <= 0) {
            m_sums.erase(update.layer);
            m_count.erase(update.layer);
        }
        changed.insert(update.layer);
    }
}

void LiveWeights::restore(model::Transformer &model) const
{
    for (const auto &entry : *m_base)
        setLayer(model, entry.first);
}

void LiveWeights::setLayer(model::Transformer &model, int64_t layer) const
{
    const auto &W = m_base->at(layer);
    const auto found = m_sums.find(layer);
    if (found == m_sums.end())
        model.setMlpOutWeight(layer, W.clone());
    else
        model.setMlpOutWeight(layer, (W.to(torch::kDouble) + found->second).to(model.device(), model.dtype()));
}

} // namespace oedit::run
