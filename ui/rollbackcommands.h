// Rollbacks of a run as QUndoCommands. Each command only asks the worker
// (through a SendRollback callback that emits a queued signal); the ledger
// does the work, so the stack and the ledger cannot disagree for long: a
// refused request shows its message and leaves the ledger as it was.
//
// Commands name ledger events by tickets (see EngineWorker::rollback): redo()
// records the event it creates under the command's ticket, undo() undoes the
// event recorded under it. GUI thread only.
#pragma once

#include "oedit/runs.h"

#include <QString>
#include <QUndoCommand>

#include <functional>

using SendRollback =
    std::function<void(const QString &db, const oedit::runs::RollbackRequest &request, int ticket, int undoTicket)>;

// One rollback of a run (a revert to a step or the removal of one edit):
// redo() asks for `request` under the command's ticket, undo() undoes the
// event recorded under it.
class RollbackCommand : public QUndoCommand {
public:
    RollbackCommand(const QString &db, const oedit::runs::RollbackRequest &request, const QString &text, int ticket,
                    SendRollback send);
    void redo() override;
    void undo() override;

private:
    QString m_db; // its own ledger, even after the Runs tab switches to another
    oedit::runs::RollbackRequest m_request;
    int m_ticket;
    SendRollback m_send;
};

// Reverts a run to a step (the edits after it are taken out).
RollbackCommand *makeRevertCommand(const QString &db, qint64 runId, qint64 step, int ticket, SendRollback send);
// Takes one edit of a run out.
RollbackCommand *makeRemoveEditCommand(const QString &db, qint64 runId, qint64 editId, qint64 step, int ticket,
                                       SendRollback send);

// Undoes an earlier rollback event (one made outside this stack, e.g. by
// `oedit rollback` or before a restart). Undoing this command repeats the
// original rollback; redoing it again undoes that repeat.
class UndoRollbackCommand : public QUndoCommand {
public:
    UndoRollbackCommand(const QString &db, qint64 runId, const oedit::runs::RollbackInfo &event, int ticket,
                        SendRollback send);
    void redo() override;
    void undo() override;

private:
    QString m_db;
    qint64 m_runId;
    oedit::runs::RollbackInfo m_event;
    int m_ticket;
    SendRollback m_send;
    bool m_first = true;
};
