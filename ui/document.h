// The workbench's document: what the views show and act on, on the GUI thread.
// It owns the ledger file the window works on, the runs selected in it and
// the current run (History, Subspace, exports), the session run (the run the
// Facts view's edits go to, as the engine last reported it) and the undo
// stack of those edits and of rollbacks (Tiled's Document owning its
// QUndoStack). Views observe it through its signals; they do not read each
// other's widgets.
//
// It never calls the engine: it emits requests that the main window connects
// to the worker, and is handed the worker's answers (the on* slots). What an
// undo needs that exists only after the worker answered (the ledger event a
// rollback created) is kept here, keyed by the tag the request carried.
#pragma once

#include "engineworker.h"

#include <QHash>
#include <QList>
#include <QObject>
#include <QSet>
#include <QString>

class QUndoCommand;
class QUndoStack;

class Document : public QObject {
    Q_OBJECT
public:
    explicit Document(QObject *parent = nullptr);

    // The ledger file (remembered in QSettings; a default in the application's
    // data folder until one is chosen).
    QString ledgerPath() const { return m_ledger; }
    // Its file name, as undo texts and titles show it.
    QString ledgerName() const;
    // Makes `path` the ledger: clears the selection, the current run and the
    // undo stack (see the definition for why the stack is not kept per ledger).
    void setLedgerPath(const QString &path);

    // Whether the ledger can be changed, as the worker last reported it
    // (onLedgerAccess); a new ledger counts as writable until it has answered.
    bool ledgerReadOnly() const { return m_readOnly; }
    QString readOnlyReason() const { return m_readOnlyReason; }

    // Runs selected in the ledger, in table order.
    QList<qint64> selectedRuns() const { return m_selected; }
    void setSelectedRuns(const QList<qint64> &runIds);
    // The run History and Subspace show, in the document's ledger; -1 when none.
    qint64 currentRun() const { return m_currentRun; }
    void setCurrentRun(qint64 runId);

    // The engine's session as last reported by the worker.
    const oedit::Engine::SessionInfo &session() const { return m_session; }
    // The run the Facts edits go to when it is in the document's ledger; -1 when
    // none (not attached, attached elsewhere, or its run is made by the next edit).
    qint64 sessionRun() const;

    QUndoStack *undoStack() const { return m_stack; }
    // Pushes `command` with the ledger's file name added to its text, so that
    // Undo and Redo say which ledger they act on.
    void push(QUndoCommand *command);

    // --- What the views ask for (each goes to the worker) ---
    // A Facts edit, recorded in the ledger's session run (the session is
    // attached to the ledger first when it is not). Once made it is pushed on
    // the stack as an undoable command.
    void applyEdit(const oedit::EditSpec &spec);
    // Undoes the most recent Facts edit through the stack; nothing when the
    // stack's next undo is not an edit.
    void undoLastEdit();
    bool canUndoEdit() const;
    // Makes run `runId` of the ledger the session's run (the open model holds its active edits).
    void continueRun(qint64 runId);
    void revertRun(qint64 runId, qint64 step);
    void removeEdit(qint64 runId, qint64 editId, qint64 step);
    // Finds the latest rollback of `runId` not undone yet (in its report) and
    // pushes its undo.
    void undoLastRollback(qint64 runId);

public Q_SLOTS:
    // The worker's answers.
    void onSessionChanged(const oedit::Engine::SessionInfo &session);
    // A model was opened: a new session, so the stack's edits are no longer undoable.
    void onModelOpened();
    void onLedgerAttached(const QString &db, qint64 runId);
    void onEdited(const oedit::EditOutcome &outcome, int editCount);
    void onEditUndone(int editCount);
    void onEditRedone(int editCount);
    void onRolledBack(const QString &db, const oedit::runs::RollbackInfo &event, qint64 runId, int tag);
    void onRollbackRefused(int tag);
    void onRunsListed(const QString &db, const RunList &runs);
    void onReportReady(const QString &db, const oedit::runs::RunReport &report);
    void onLedgerAccess(const QString &db, bool readOnly, const QString &reason);

Q_SIGNALS:
    void ledgerChanged(const QString &path);
    // ledgerReadOnly() changed (also emitted with ledgerChanged's reset).
    void accessChanged();
    // The selected runs; also emitted when the same runs are listed again (after
    // a run or a rollback), so observers refresh what they show of them.
    void selectionChanged(const QList<qint64> &runIds);
    void currentRunChanged(const QString &db, qint64 runId);
    void sessionChanged();
    // The session run as the ledger lists it, after a Facts edit or its undo/redo.
    void sessionRecorded(const QString &db, const oedit::runs::RunSummary &run);
    // The open model was brought to the session run's state by a rollback of
    // that run or by continueRun (its edit count).
    void sessionSynced(int editCount);
    // A line for the status bar; `error` ones are also shown as a message box.
    void message(const QString &text, bool error);

    // Requests for the worker.
    void attachLedgerRequested(const QString &db, qint64 runId);
    void applyEditRequested(const QString &db, const oedit::EditSpec &spec);
    void undoEditRequested();
    void redoEditRequested();
    void rollbackRequested(const QString &db, const oedit::runs::RollbackRequest &request, int tag);
    void listRunsRequested(const QString &db);
    void runReportRequested(const QString &db, qint64 runId);

private:
    // What rollback commands call: `undoTag` non-zero undoes the event the
    // request tagged `undoTag` created (sent once the worker has answered it).
    void sendRollback(const QString &db, const oedit::runs::RollbackRequest &request, int tag, int undoTag);
    void resetHistory();

    QString m_ledger;
    bool m_readOnly = false;
    QString m_readOnlyReason;
    QList<qint64> m_selected;
    qint64 m_currentRun = -1;
    oedit::Engine::SessionInfo m_session;
    QString m_attaching; // the ledger the session was last asked to attach to (answers may be in flight)
    QUndoStack *m_stack;
    bool m_recordPending = false; // the next listing of the ledger reports the session run
    qint64 m_undoLastRun = -1;    // undoLastRollback waits for this run's report
    int m_nextTag = 1;
    QSet<int> m_inFlight;           // tags of rollbacks not answered yet
    QHash<int, qint64> m_events;    // tag -> the ledger event its rollback created
    struct Deferred {
        QString db;
        oedit::runs::RollbackRequest request;
        int tag = 0;
    };
    QHash<int, Deferred> m_deferred; // undo requests waiting for the answer to their tag
};
