#include "rollbackcommands.h"

#include <QObject>

RevertCommand::RevertCommand(const QString &db, qint64 runId, qint64 step, int ticket, SendRollback send)
    : m_db(db), m_runId(runId), m_step(step), m_ticket(ticket), m_send(std::move(send))
{
    setText(QObject::tr("Revert Run %1 to Step %2").arg(runId).arg(step));
}

void RevertCommand::redo()
{
    oedit::runs::RollbackRequest request;
    request.runId = m_runId;
    request.toStep = m_step;
    m_send(m_db, request, m_ticket, 0);
}

void RevertCommand::undo()
{
    oedit::runs::RollbackRequest request;
    request.runId = m_runId;
    m_send(m_db, request, 0, m_ticket);
}

RemoveEditCommand::RemoveEditCommand(const QString &db, qint64 runId, qint64 editId, qint64 step, int ticket,
                                     SendRollback send)
    : m_db(db), m_runId(runId), m_editId(editId), m_ticket(ticket), m_send(std::move(send))
{
    setText(QObject::tr("Remove Edit at Step %1 of Run %2").arg(step).arg(runId));
}

void RemoveEditCommand::redo()
{
    oedit::runs::RollbackRequest request;
    request.runId = m_runId;
    request.removeEdit = m_editId;
    m_send(m_db, request, m_ticket, 0);
}

void RemoveEditCommand::undo()
{
    oedit::runs::RollbackRequest request;
    request.runId = m_runId;
    m_send(m_db, request, 0, m_ticket);
}

UndoRollbackCommand::UndoRollbackCommand(const QString &db, qint64 runId, const oedit::runs::RollbackInfo &event,
                                         int ticket, SendRollback send)
    : m_db(db), m_runId(runId), m_event(event), m_ticket(ticket), m_send(std::move(send))
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
        m_send(m_db, request, 0, m_ticket);
    }
}

void UndoRollbackCommand::undo()
{
    oedit::runs::RollbackRequest request;
    request.runId = m_runId;
    request.toStep = m_event.targetStep;
    request.removeEdit = m_event.targetEdit;
    m_send(m_db, request, m_ticket, 0);
}
