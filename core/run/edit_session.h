// The open model's editing session: the edits applied to it in order, their
// method state (one EditContext), the exact weights (LiveWeights), and, when
// attached, the ledger run each edit is appended to as it is made. Undo and
// redo of an attached session are ledger rollback events, so they survive a
// restart; a rollback of the attached run made elsewhere in the program is
// brought onto the model in memory from the changed edits alone.
//
// Cost: an edit appends one row and its update (constant work, nothing
// earlier is re-serialised); attaching reads the run's active edits once.
//
// Ownership and threads: borrows the LoadedModel (the engine's open model)
// for its lifetime; owns its context and its ledger connection. One thread.
// Failure: throws edit::EditError / store::LedgerError naming what went
// wrong; every call checks and reads what it needs before a weight or a row
// changes, and a failed ledger write takes the edit out of the model again.
#pragma once

#include "edit/editor.h"
#include "run/live_weights.h"
#include "run/loaded_model.h"
#include "store/ledger.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace oedit::run {

// Throws edit::EditError when `result` changes a layer the model lacks or
// has updates of other shapes than the model's (a result of another model).
void checkFits(const model::Transformer &model, const edit::EditResult &result);

class EditSession {
public:
    explicit EditSession(LoadedModel &model);
    ~EditSession();

    // The context for the next edit; `statisticsText` (empty: the model
    // folder's general_train.txt) is fixed by the first edit of a session.
    edit::EditContext &context(const std::string &statisticsText = {});
    bool hasContext() const { return m_context != nullptr; }
    const std::string &statisticsText() const { return m_statisticsText; }

    // Puts `result` (computed by a method on the model as it is) on the model
    // and records it; when attached, appends it to the ledger run (creating
    // the run on the session's first edit). Returns the ledger edit id, 0
    // when not attached. On a ledger failure the edit is taken out again.
    int64_t commit(edit::EditResult result);
    // Takes the latest edit out (attached: a ledger `remove` event).
    void undo();
    // Puts back what the latest undo took out (attached: undoes its event).
    void redo();
    bool canUndo() const { return !m_applied.empty(); }
    bool canRedo() const { return !m_redo.empty(); }
    int64_t editCount() const { return static_cast<int64_t>(m_applied.size()); }
    const std::vector<edit::EditResult> &applied() const { return m_applied; }

    // Makes run `runId` of `db` the session (0: a new "manual" run made by the
    // next edit): the current edits come out, the run's active edits go on
    // with their method state, and later edits are appended to it.
    void attach(const std::string &db, int64_t runId);
    void detach();
    bool attached() const { return m_ledger != nullptr; }
    const std::string &ledgerPath() const { return m_db; }
    int64_t runId() const { return m_runId; }
    // Whether `db`/`runId` names the attached run.
    bool isAttachedRun(const std::string &db, int64_t runId) const;

    // Rollback event `eventId` of the attached run, already in the ledger:
    // brings the model and the method state to the run's new active set.
    void follow(int64_t eventId);

    // A whole saved session (Engine::loadEditState) replaces this one.
    void replace(std::vector<edit::EditResult> results, std::unique_ptr<edit::EditContext> context,
                 const std::string &statisticsText);

    // After something else (a sequential run) used the model: base + this
    // session's edits again.
    void restoreWeights();

    // A context for this model (shared statistics, cache keys of the base
    // weights while the session holds no edit).
    std::unique_ptr<edit::EditContext> newContext(const std::string &statisticsText);

private:
    void putOn(std::vector<edit::EditResult> results, std::vector<int64_t> ledgerIds,
               std::unique_ptr<edit::EditContext> context, const std::string &statisticsText);

    LoadedModel &m_model;
    LiveWeights m_weights;
    std::unique_ptr<edit::EditContext> m_context;
    std::string m_statisticsText;
    std::vector<edit::EditResult> m_applied;
    std::vector<int64_t> m_ledgerIds; // parallel to m_applied; 0 when not recorded
    struct Undone {
        edit::EditResult result;
        int64_t ledgerId = 0;
        int64_t eventId = 0; // the ledger event that took it out (attached)
    };
    std::vector<Undone> m_redo;

    std::string m_db;
    int64_t m_runId = 0;
    std::unique_ptr<store::Ledger> m_ledger;
    // While attached to a run: no other process continues it (released first).
    std::unique_ptr<store::RunLease> m_lease;
};

} // namespace oedit::run
