// The document's undo commands: Facts edits and rollbacks of a run. Each
// command only asks the worker (through callbacks the Document gives it, which
// emit queued signals); the engine and the ledger do the work, so the stack
// and the ledger cannot disagree for long: a refused request shows its message
// and leaves the ledger as it was.
//
// Rollback commands name ledger events by tags: redo() sends its request
// under the command's tag, and the Document keeps the event the worker
// answers with under it; undo() asks to undo the event kept under the tag
// (Document::sendRollback). GUI thread only.
#pragma once

#include "oedit/runs.h"

#include <QString>
#include <QUndoCommand>

#include <functional>

using SendRollback =
    std::function<void(const QString &db, const oedit::runs::RollbackRequest &request, int tag, int undoTag)>;

// One Facts edit of the open model, pushed once the engine made it: the first
// redo() does nothing (the edit is made), undo() takes the session's most
// recent edit out (Engine::undoLastEdit) and a later redo() puts it back
// (Engine::redoEdit). Both are rollback events of the session's run in the ledger.
class EditCommand : public QUndoCommand {
public:
    EditCommand(const QString &text, std::function<void()> undo, std::function<void()> redo);
    void redo() override;
    void undo() override;

private:
    std::function<void()> m_undo, m_redo;
    bool m_made = true; // the edit is in effect when the command is pushed
};

// One rollback of a run (a revert to a step or the removal of one edit):
// redo() asks for `request` under the command's tag, undo() undoes the
// event it created.
class RollbackCommand : public QUndoCommand {
public:
    RollbackCommand(const QString &db, const oedit::runs::RollbackRequest &request, const QString &text, int tag,
                    SendRollback send);
    void redo() override;
    void undo() override;

private:
    QString m_db; // its own ledger, even after the Runs tab switches to another
    oedit::runs::RollbackRequest m_request;
    int m_tag;
    SendRollback m_send;
};

// Reverts a run to a step (the edits after it are taken out).
RollbackCommand *makeRevertCommand(const QString &db, qint64 runId, qint64 step, int tag, SendRollback send);
// Takes one edit of a run out.
RollbackCommand *makeRemoveEditCommand(const QString &db, qint64 runId, qint64 editId, qint64 step, int tag,
                                       SendRollback send);

// Undoes an earlier rollback event (one made outside this stack, e.g. by
// `oedit rollback` or before a restart). Undoing this command repeats the
// original rollback; redoing it again undoes that repeat.
class UndoRollbackCommand : public QUndoCommand {
public:
    UndoRollbackCommand(const QString &db, qint64 runId, const oedit::runs::RollbackInfo &event, int tag,
                        SendRollback send);
    void redo() override;
    void undo() override;

private:
    QString m_db;
    qint64 m_runId;
    oedit::runs::RollbackInfo m_event;
    int m_tag;
    SendRollback m_send;
    bool m_first = true;
};
