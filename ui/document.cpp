#include "document.h"

#include "rollbackcommands.h"

#include <QDir>
#include <QFileInfo>
#include <QSettings>
#include <QStandardPaths>
#include <QUndoStack>

namespace {

const QString kLedgerKey = QStringLiteral("runs/ledger");

QString defaultLedger()
{
    return QDir(QStandardPaths::writableLocation(QStandardPaths::AppDataLocation))
        .filePath(QStringLiteral("runs.sqlite"));
}

} // namespace

Document::Document(QObject *parent)
    : QObject(parent), m_ledger(QSettings().value(kLedgerKey, defaultLedger()).toString()),
      m_stack(new QUndoStack(this))
{
    qRegisterMetaType<oedit::Engine::SessionInfo>();
}

QString Document::ledgerName() const
{
    return QFileInfo(m_ledger).fileName();
}

void Document::setLedgerPath(const QString &path)
{
    const QString trimmed = path.trimmed();
    if (trimmed == m_ledger)
        return;
    m_ledger = trimmed;
    m_readOnly = false; // until the worker has looked at it
    m_readOnlyReason.clear();
    QSettings().setValue(kLedgerKey, trimmed);
    // The stack is cleared, not kept per ledger: the Facts edits on it are
    // undone through the engine's one session (Engine::undoLastEdit), which the
    // next edit attaches to this ledger, so an edit command kept for the old
    // ledger would act on the new one. Rollback commands name their ledger and
    // could be kept, but a stack that mixes ledgers would let Undo change a
    // ledger that is not shown.
    resetHistory();
    m_selected.clear();
    m_currentRun = -1;
    m_undoLastRun = -1;
    Q_EMIT ledgerChanged(m_ledger);
    Q_EMIT accessChanged();
    Q_EMIT selectionChanged(m_selected);
    Q_EMIT currentRunChanged(m_ledger, m_currentRun);
    Q_EMIT sessionChanged();
}

void Document::onLedgerAccess(const QString &db, bool readOnly, const QString &reason)
{
    if (db != m_ledger || (readOnly == m_readOnly && reason == m_readOnlyReason))
        return;
    m_readOnly = readOnly;
    m_readOnlyReason = reason;
    Q_EMIT accessChanged();
}

void Document::resetHistory()
{
    m_stack->clear();
    m_events.clear();
    m_deferred.clear();
    // In-flight tags stay: their answers still arrive and are dropped.
}

void Document::setSelectedRuns(const QList<qint64> &runIds)
{
    const bool changed = runIds != m_selected;
    m_selected = runIds;
    Q_EMIT selectionChanged(m_selected);
    // Only a new selection makes its first run current: the list refreshes
    // after every run and rollback, and a Facts edit's run may be current.
    if (changed && !runIds.isEmpty())
        setCurrentRun(runIds.first());
}

void Document::setCurrentRun(qint64 runId)
{
    if (runId == m_currentRun)
        return;
    m_currentRun = runId;
    Q_EMIT currentRunChanged(m_ledger, m_currentRun);
}

qint64 Document::sessionRun() const
{
    if (QString::fromStdString(m_session.db) != m_ledger || m_session.runId == 0)
        return -1;
    return m_session.runId;
}

void Document::push(QUndoCommand *command)
{
    command->setText(tr("%1 (%2)").arg(command->text(), ledgerName()));
    m_stack->push(command);
}

void Document::applyEdit(const oedit::EditSpec &spec)
{
    // Attach first when the session records elsewhere (or nowhere): requests
    // run in order, so the edit finds the session attached, or refuses.
    if (!m_ledger.isEmpty() && QString::fromStdString(m_session.db) != m_ledger && m_attaching != m_ledger) {
        m_attaching = m_ledger;
        Q_EMIT attachLedgerRequested(m_ledger, 0);
    }
    Q_EMIT applyEditRequested(m_ledger, spec);
}

bool Document::canUndoEdit() const
{
    const int index = m_stack->index();
    return index > 0 && dynamic_cast<const EditCommand *>(m_stack->command(index - 1)) != nullptr;
}

void Document::undoLastEdit()
{
    if (canUndoEdit())
        m_stack->undo();
}

void Document::continueRun(qint64 runId)
{
    m_attaching = m_ledger;
    Q_EMIT attachLedgerRequested(m_ledger, runId);
}

void Document::revertRun(qint64 runId, qint64 step)
{
    push(makeRevertCommand(m_ledger, runId, step, m_nextTag++,
                           [this](const QString &db, const oedit::runs::RollbackRequest &request, int tag,
                                  int undoTag) { sendRollback(db, request, tag, undoTag); }));
}

void Document::removeEdit(qint64 runId, qint64 editId, qint64 step)
{
    push(makeRemoveEditCommand(m_ledger, runId, editId, step, m_nextTag++,
                               [this](const QString &db, const oedit::runs::RollbackRequest &request, int tag,
                                      int undoTag) { sendRollback(db, request, tag, undoTag); }));
}

void Document::undoLastRollback(qint64 runId)
{
    m_undoLastRun = runId;
    Q_EMIT runReportRequested(m_ledger, runId);
}

void Document::onReportReady(const QString &db, const oedit::runs::RunReport &report)
{
    if (db != m_ledger || report.run.runId != m_undoLastRun)
        return;
    m_undoLastRun = -1;
    // The latest rollback that is itself no undo and has not been undone.
    for (auto it = report.rollbacks.rbegin(); it != report.rollbacks.rend(); ++it) {
        if (it->kind == "redo" || it->undoneBy)
            continue;
        push(new UndoRollbackCommand(db, report.run.runId, *it, m_nextTag++,
                                     [this](const QString &ledger, const oedit::runs::RollbackRequest &request,
                                            int tag, int undoTag) { sendRollback(ledger, request, tag, undoTag); }));
        return;
    }
    Q_EMIT message(tr("Run %1 has no rollback left to undo. Use Revert to Step… to take edits out.")
                       .arg(report.run.runId),
                   true);
}

void Document::sendRollback(const QString &db, const oedit::runs::RollbackRequest &request, int tag, int undoTag)
{
    oedit::runs::RollbackRequest effective = request;
    if (undoTag != 0) {
        if (m_inFlight.contains(undoTag)) {
            // Its rollback is still queued at the worker: send once it answered.
            m_deferred.insert(undoTag, Deferred{db, request, tag});
            return;
        }
        const auto it = m_events.find(undoTag);
        if (it == m_events.end()) {
            Q_EMIT message(tr("Nothing to undo: the rollback it would undo did not happen (see the earlier message)."),
                           true);
            return;
        }
        effective.toStep.reset();
        effective.removeEdit.reset();
        effective.undoEvent = it.value();
        m_events.erase(it);
    }
    if (tag != 0)
        m_inFlight.insert(tag);
    Q_EMIT rollbackRequested(db, effective, tag);
}

void Document::onRolledBack(const QString &db, const oedit::runs::RollbackInfo &event, qint64 runId, int tag)
{
    if (tag != 0 && m_inFlight.remove(tag)) {
        m_events.insert(tag, event.eventId);
        if (const auto it = m_deferred.find(tag); it != m_deferred.end()) {
            const Deferred waiting = it.value();
            m_deferred.erase(it);
            sendRollback(waiting.db, waiting.request, waiting.tag, tag);
        }
    }
    // A rollback of the session's run moved the open model along; the worker
    // reported the session just before this answer.
    if (QString::fromStdString(m_session.db) == db && m_session.runId == runId) {
        Q_EMIT sessionSynced(m_session.edits);
        Q_EMIT message(tr("The open model follows run %1: %n edit(s) in effect.", nullptr, m_session.edits).arg(runId),
                       false);
    }
}

void Document::onRollbackRefused(int tag)
{
    m_inFlight.remove(tag);
    if (m_deferred.remove(tag) > 0)
        Q_EMIT message(tr("Nothing to undo: the rollback it would undo did not happen (see the earlier message)."),
                       true);
}

void Document::onSessionChanged(const oedit::Engine::SessionInfo &session)
{
    m_session = session;
    m_attaching = QString::fromStdString(session.db);
    Q_EMIT sessionChanged();
}

void Document::onModelOpened()
{
    // The stack's Facts edits were the previous model's; its rollbacks go too,
    // so that what is left never interleaves two sessions.
    resetHistory();
}

void Document::onLedgerAttached(const QString &db, qint64 runId)
{
    // Attached to an existing run: the open model now holds its active edits
    // in place of the session's, whose edit commands could not be undone.
    if (runId != 0)
        resetHistory();
    if (runId != 0 && db == m_ledger) {
        Q_EMIT sessionSynced(m_session.edits);
        setCurrentRun(runId);
    }
}

void Document::onEdited(const oedit::EditOutcome &outcome, int editCount)
{
    Q_UNUSED(editCount);
    const QString fact = QStringLiteral("%1 → %2")
                             .arg(QString::fromStdString(outcome.prompt)
                                      .replace(QStringLiteral("{}"), QString::fromStdString(outcome.subject)),
                                  QString::fromStdString(outcome.targetNew));
    // Pushed once made: a refused edit leaves no command whose undo would take
    // an earlier edit out. Its first redo() is the edit already made.
    push(new EditCommand(tr("Edit '%1'").arg(fact), [this] { Q_EMIT undoEditRequested(); },
                         [this] { Q_EMIT redoEditRequested(); }));
    if (outcome.runId != 0 && QString::fromStdString(m_session.db) == m_ledger) {
        setCurrentRun(outcome.runId);
        m_recordPending = true;
        Q_EMIT listRunsRequested(m_ledger);
    }
}

void Document::onEditUndone(int editCount)
{
    Q_UNUSED(editCount);
    if (sessionRun() >= 0) {
        m_recordPending = true;
        Q_EMIT listRunsRequested(m_ledger);
    }
}

void Document::onEditRedone(int editCount)
{
    onEditUndone(editCount);
}

void Document::onRunsListed(const QString &db, const RunList &runs)
{
    if (!m_recordPending || db != m_ledger)
        return;
    m_recordPending = false;
    for (const auto &run : runs)
        if (run.runId == sessionRun())
            Q_EMIT sessionRecorded(db, run);
}
