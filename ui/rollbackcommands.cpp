#include "rollbackcommands.h"

#include <QObject>

EditCommand::EditCommand(const QString &text, std::function<void()> undo, std::function<void()> redo)
    : m_undo(std::move(undo)), m_redo(std::move(redo))
{
    setText(text);
}

void EditCommand::redo()
{
    if (m_made)
        return; // pushed after the edit was made
    m_made = true;
    m_redo();
}

void EditCommand::undo()
{
    m_made = false;
    m_undo();
}

RollbackCommand::RollbackCommand(const QString &db, const oedit::runs::RollbackRequest &request, const QString &text,
                                 int tag, SendRollback send)
    : m_db(db), m_request(request), m_tag(tag), m_send(std::move(send))
{
    setText(text);
}

void RollbackCommand::redo()
{
    m_send(m_db, m_request, m_tag, 0);
}

void RollbackCommand::undo()
{
    oedit::runs::RollbackRequest request;
    request.runId = m_request.runId;
    m_send(m_db, request, 0, m_tag);
}

RollbackCommand *makeRevertCommand(const QString &db, qint64 runId, qint64 step, int tag, SendRollback send)
{
    oedit::runs::RollbackRequest request;
    request.runId = runId;
    request.toStep = step;
    return new RollbackCommand(db, request, QObject::tr("Revert Run %1 to Step %2").arg(runId).arg(step), tag,
                               std::move(send));
}

RollbackCommand *makeRemoveEditCommand(const QString &db, qint64 runId, qint64 editId, qint64 step, int tag,
                                       SendRollback send)
{
    oedit::runs::RollbackRequest request;
    request.runId = runId;
    request.removeEdit = editId;
    return new RollbackCommand(db, request, QObject::tr("Remove Edit at Step %1 of Run %2").arg(step).arg(runId),
                               tag, std::move(send));
}

UndoRollbackCommand::UndoRollbackCommand(const QString &db, qint64 runId, const oedit::runs::RollbackInfo &event,
                                         int tag, SendRollback send)
    : m_db(db), m_runId(runId), m_event(event), m_tag(tag), m_send(std::move(send))
{
    setText(QObject::tr("Undo Rollback %1 of Run %2").arg(event.eventId).arg(runId));
}

void UndoRollbackCommand::redo()
{
    oedit::runs::RollbackRequest request;
    request.runId = m_runId;
    if (m_first) {
        m_first = false;
        request.undoEvent = m_event.eventId;
        m_send(m_db, request, 0, 0);
    } else {
        m_send(m_db, request, 0, m_tag);
    }
}

void UndoRollbackCommand::undo()
{
    oedit::runs::RollbackRequest request;
    request.runId = m_runId;
    request.toStep = m_event.targetStep;
    request.removeEdit = m_event.targetEdit;
    m_send(m_db, request, m_tag, 0);
}
