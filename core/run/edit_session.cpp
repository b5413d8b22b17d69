#include "run/ledger_codec.h"
#include "run/edit_session.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

namespace oedit::run {

namespace fs = std::filesystem;

EditSession::EditSession(LoadedModel &model) : m_model(model), m_weights(model.base) {}
EditSession::~EditSession() = default;

std::unique_ptr<edit::EditContext> EditSession::newContext(const std::string &statisticsText)
{
    // Statistics are keyed by the base weights only while no edit is on the
    // model; computed on edited weights they get a key of their own.
    auto options = m_model.contextOptions([this] { return m_weights.empty(); });
    options.corpusPath = statisticsText;
    return std::make_unique<edit::EditContext>(options);
}

edit::EditContext &EditSession::context(const std::string &statisticsText)
{
    if (!m_context) {
        m_context = newContext(statisticsText);
        m_statisticsText = statisticsText;
    }
    return *m_context;
}

namespace {

store::RunSpec manualRunSpec(LoadedModel &model, const edit::EditResult &first, const std::string &statisticsText)
{
    store::RunSpec spec;
    spec.method = first.method;
    spec.hparams = first.hparams;
    spec.dataset = "manual";
    spec.modelPath = fs::absolute(model.dir).string();
    spec.baseModelHash = model.folderHash();
    spec.options = {{"statistics_text", statisticsText}};
    return spec;
}

} // namespace

int64_t EditSession::commit(edit::EditResult result)
{
    // Nothing non-finite reaches the weights or the ledger.
    edit::requireFiniteResult(result);
    auto &ctx = context(m_statisticsText);
    ctx.recordApplied(result);
    m_weights.add(*m_model.model, result);
    int64_t ledgerId = 0;
    try {
        if (m_model.tokenizer)
            edit::requireFiniteOutputs(*m_model.model, *m_model.tokenizer, result.request);
        if (m_ledger) {
            if (m_runId == 0) {
                const auto created = m_ledger->createRun(manualRunSpec(m_model, result, m_statisticsText));
                // Finished: a manual run is never resumed, and can be rolled back.
                m_ledger->setRunStatus(created, "finished");
                m_lease = std::make_unique<store::RunLease>(*m_ledger, created);
                m_runId = created;
            }
            ledgerId = run::appendEdit(*m_ledger, m_runId, result);
        }
    } catch (...) {
        ctx.recordUnapplied(result);
        m_weights.subtract(*m_model.model, result);
        throw;
    }
    m_applied.push_back(std::move(result));
    m_ledgerIds.push_back(ledgerId);
    m_redo.clear();
    return ledgerId;
}

void EditSession::undo()
{
    if (m_applied.empty())
        throw edit::EditError("this run has no edit to undo");
    Undone undone{m_applied.back(), m_ledgerIds.back(), 0};
    if (m_ledger && undone.ledgerId)
        undone.eventId = m_ledger->removeEdit(m_runId, undone.ledgerId).id;
    m_context->recordUnapplied(undone.result);
    m_weights.subtract(*m_model.model, undone.result);
    m_applied.pop_back();
    m_ledgerIds.pop_back();
    m_redo.push_back(std::move(undone));
}

void EditSession::redo()
{
    if (m_redo.empty())
        throw edit::EditError("there is no undone edit to redo");
    // The ledger first: if it refuses, the entry stays and nothing changed.
    if (m_ledger && m_redo.back().eventId)
        m_ledger->undoRollback(m_redo.back().eventId);
    auto undone = std::move(m_redo.back());
    m_redo.pop_back();
    context(m_statisticsText).recordApplied(undone.result);
    m_weights.add(*m_model.model, undone.result);
    m_applied.push_back(std::move(undone.result));
    m_ledgerIds.push_back(undone.ledgerId);
}

void checkFits(const model::Transformer &model, const edit::EditResult &result)
{
    for (const auto &update : result.layers) {
        if (update.layer < 0 || update.layer >= model.config().layers)
            throw edit::EditError("edit " + std::to_string(result.id) + " changes layer " +
                                  std::to_string(update.layer) + ", but the model has " +
                                  std::to_string(model.config().layers) + " layers");
        const int64_t rows = update.rankOne() ? update.right.numel() : update.dense.size(0);
        const int64_t cols = update.rankOne() ? update.left.numel() : update.dense.size(1);
        if (rows != model.config().hidden || cols != model.mlpKeyWidth())
            throw edit::EditError("edit " + std::to_string(result.id) +
                                  " was made on a model of other shapes than the open one");
    }
}

void EditSession::putOn(std::vector<edit::EditResult> results, std::vector<int64_t> ledgerIds,
                        std::unique_ptr<edit::EditContext> context, const std::string &statisticsText)
{
    auto &model = *m_model.model;
    for (const auto &result : results)
        checkFits(model, result);
    const LiveWeights before = m_weights;
    try {
        // Base weights first: the context's statistics come from the unedited
        // model, as the run's first edit had them.
        m_weights = LiveWeights(m_model.base);
        m_weights.restore(model);
        if (!results.empty() && m_model.tokenizer)
            edit::createEditMethod(results.front().method, results.front().hparams, model.config())
                ->prepare(model, *m_model.tokenizer, *context);
        std::vector<const edit::EditResult *> pointers;
        for (const auto &result : results) {
            context->recordApplied(result);
            pointers.push_back(&result);
        }
        m_weights.addAll(model, pointers);
    } catch (...) {
        m_weights = before;
        m_weights.restore(model);
        throw;
    }
    m_context = std::move(context);
    m_statisticsText = statisticsText;
    m_applied = std::move(results);
    m_ledgerIds = std::move(ledgerIds);
    m_redo.clear();
}

void EditSession::attach(const std::string &db, int64_t runId)
{
    std::error_code ec;
    const auto parent = fs::absolute(db).parent_path();
    if (!fs::is_directory(parent, ec))
        throw store::LedgerError("cannot create the ledger '" + db + "': the folder '" + parent.string() +
                                 "' does not exist");
    if (runId != 0 && !fs::is_regular_file(db, ec))
        throw store::LedgerError("the ledger '" + db + "' does not exist (leave out the run to start a new one)");
    if (isAttachedRun(db, runId))
        m_lease.reset(); // attached again to the same run: its lease is taken anew below
    auto ledger = std::make_unique<store::Ledger>(db);
    if (runId == 0) {
        // A new run: the edits already made go into it, so the run and the
        // model agree.
        int64_t created = 0;
        std::vector<int64_t> ids;
        if (!m_applied.empty()) {
            created = ledger->createRun(manualRunSpec(m_model, m_applied.front(), m_statisticsText));
            for (const auto &result : m_applied)
                ids.push_back(run::appendEdit(*ledger, created, result));
            ledger->setRunStatus(created, "finished");
        }
        m_ledgerIds = ids.empty() ? std::vector<int64_t>(m_applied.size(), 0) : ids;
        m_lease.reset();
        if (created != 0)
            m_lease = std::make_unique<store::RunLease>(*ledger, created);
        m_ledger = std::move(ledger);
        m_db = db;
        m_runId = created;
        m_redo.clear();
        return;
    }
    const auto info = ledger->run(runId); // names the run when it does not exist
    if (m_model.folderHash() != info.baseModelHash)
        throw store::LedgerError("run " + std::to_string(runId) + " was made on the model at '" + info.modelPath +
                                 "', whose content differs from the open model '" + m_model.dir +
                                 "': open that model, or start a new run");
    if (info.status == "running")
        throw store::LedgerError("run " + std::to_string(runId) +
                                 " is marked running (in progress, or killed: resume it first)");
    // Before anything is read: another window or process may be continuing it.
    auto lease = std::make_unique<store::RunLease>(*ledger, runId);
    std::vector<edit::EditResult> results;
    std::vector<int64_t> ids;
    for (const auto &row : ledger->activeEdits(runId)) {
        results.push_back(run::loadEdit(*ledger, row.id));
        ids.push_back(row.id);
    }
    const std::string text = info.options.value("statistics_text", std::string());
    auto context = newContext(text);
    for (const auto &row : ledger->listEdits(runId))
        context->reserveIdsUpTo(row.resultId);
    putOn(std::move(results), std::move(ids), std::move(context), text);
    m_lease.reset(); // the previous run's, on the previous ledger
    m_ledger = std::move(ledger);
    m_lease = std::move(lease);
    m_db = db;
    m_runId = runId;
}

void EditSession::detach()
{
    m_lease.reset();
    m_ledger.reset();
    m_db.clear();
    m_runId = 0;
    std::fill(m_ledgerIds.begin(), m_ledgerIds.end(), 0);
    for (auto &undone : m_redo)
        undone.ledgerId = undone.eventId = 0;
}

bool EditSession::isAttachedRun(const std::string &db, int64_t runId) const
{
    if (!m_ledger || runId != m_runId || m_runId == 0)
        return false;
    std::error_code ec;
    return db == m_db || fs::equivalent(fs::path(db), fs::path(m_db), ec);
}

void EditSession::follow(int64_t eventId)
{
    if (!m_ledger)
        return;
    const auto event = m_ledger->rollbackEvent(eventId);
    const std::set<int64_t> deactivated(event.deactivated.begin(), event.deactivated.end());
    const std::set<int64_t> activated(event.activated.begin(), event.activated.end());
    if (deactivated.empty() && activated.empty())
        return;
    // Read and check everything before the model changes. Edits in memory are
    // found by position, not copied.
    std::map<int64_t, size_t> position; // ledger id -> index in m_applied
    for (size_t i = 0; i < m_applied.size(); ++i)
        position.emplace(m_ledgerIds[i], i);
    std::vector<edit::EditResult> restoredResults;
    std::vector<int64_t> restoredIds;
    for (const auto id : activated)
        if (!position.count(id)) {
            restoredResults.push_back(run::loadEdit(*m_ledger, id));
            restoredIds.push_back(id);
            checkFits(*m_model.model, restoredResults.back());
        }
    const auto rows = m_ledger->listEdits(m_runId, true);

    std::vector<const edit::EditResult *> removed, restored;
    for (const auto id : deactivated)
        if (auto found = position.find(id); found != position.end())
            removed.push_back(&m_applied[found->second]);
    for (const auto &result : restoredResults)
        restored.push_back(&result);
    std::vector<int64_t> activeOrder;
    for (const auto &row : rows)
        activeOrder.push_back(row.resultId);
    context(m_statisticsText).applyRollback(removed, restored, activeOrder);
    for (const auto *result : removed)
        m_weights.subtract(*m_model.model, *result);
    m_weights.addAll(*m_model.model, restored);

    // The session's edits in the run's new order.
    std::map<int64_t, edit::EditResult *> byLedgerId;
    for (const auto &[id, index] : position)
        if (!deactivated.count(id))
            byLedgerId.emplace(id, &m_applied[index]);
    for (size_t i = 0; i < restoredResults.size(); ++i)
        byLedgerId.emplace(restoredIds[i], &restoredResults[i]);
    std::vector<edit::EditResult> applied;
    std::vector<int64_t> ids;
    for (const auto &row : rows)
        if (auto found = byLedgerId.find(row.id); found != byLedgerId.end()) {
            applied.push_back(std::move(*found->second));
            ids.push_back(row.id);
        }
    m_applied = std::move(applied);
    m_ledgerIds = std::move(ids);
    m_redo.clear();
}

void EditSession::replace(std::vector<edit::EditResult> results, std::unique_ptr<edit::EditContext> context,
                          const std::string &statisticsText)
{
    // The saved file carries the method state; no statistics are prepared.
    auto &model = *m_model.model;
    for (const auto &result : results)
        checkFits(model, result);
    detach();
    LiveWeights weights(m_model.base);
    std::vector<const edit::EditResult *> pointers;
    for (const auto &result : results)
        pointers.push_back(&result);
    weights.restore(model);
    weights.addAll(model, pointers);
    m_weights = weights;
    m_context = std::move(context);
    m_statisticsText = statisticsText;
    m_ledgerIds.assign(results.size(), 0);
    m_applied = std::move(results);
    m_redo.clear();
}

void EditSession::restoreWeights()
{
    m_weights.restore(*m_model.model);
}

} // namespace oedit::run
