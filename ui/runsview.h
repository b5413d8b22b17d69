// Runs tab: choose the document's ledger file, start a sequential run on the
// open model (progress, time left, cancel) and list the ledger's runs; its
// selection is the document's. Lives on the GUI thread and never calls the
// engine: rollbacks go to the document's undo stack, runs are requests the
// main window forwards to the worker, and it shows the answers it is given.
#pragma once

#include "engineworker.h"

#include <QElapsedTimer>
#include <QList>
#include <QWidget>

class Document;
class HparamsButton;
class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

class RunsView : public QWidget {
    Q_OBJECT
public:
    explicit RunsView(Document *document, QWidget *parent = nullptr);

    // The document's ledger file (shorthands for Document::ledgerPath/setLedgerPath).
    QString ledgerPath() const;
    void setLedgerPath(const QString &path);
    // Run ids of the selected rows, in table order.
    QList<qint64> selectedRuns() const;
    // Reverts the (first) selected run to `step` without asking (the
    // "Revert to step…" button asks first).
    void revertSelectedRun(qint64 step);

public Q_SLOTS:
    void setModelReady(bool ready);
    // The open model's folder, whose hyperparameters the Hyperparameters button shows.
    void setModelDir(const QString &dir);
    void setBusy(bool busy);
    void showProgress(long long done, long long total);
    void showRuns(const QString &db, const RunList &runs);
    void showRunFinished(const QString &db, const oedit::runs::RunSummary &summary);
    void showRunNotStarted(const QString &db, const QString &message);
    // Asks for the ledger's runs again (after a run or a rollback).
    void refresh();

Q_SIGNALS:
    void startRunRequested(const QString &db, const oedit::runs::RunRequest &request);
    void listRunsRequested(const QString &db);
    void cancelRequested();
    // Continues a cancelled or failed run.
    void resumeRequested(const QString &db, qint64 runId);

private:
    void chooseLedger();
    void chooseDataset();
    void startRun();
    void askRevert();
    void updateButtons();
    void beginRun(); // shows progress and Cancel for a run asked for
    void endRun(); // hides the progress of a run that ended
    const oedit::runs::RunSummary *summaryOf(qint64 runId) const;

    Document *m_document;
    QLineEdit *m_ledger;
    QComboBox *m_dataset;
    QComboBox *m_method;
    HparamsButton *m_hparams;
    QLineEdit *m_label;
    QSpinBox *m_edits;
    QSpinBox *m_every;
    QSpinBox *m_seed;
    QPushButton *m_start;
    QPushButton *m_cancel;
    QProgressBar *m_progress;
    QLabel *m_remaining;
    QLabel *m_readOnly; // the document's ledger is read-only, and why
    QTableWidget *m_table;
    QPushButton *m_revert;
    QPushButton *m_undoRollback;
    QPushButton *m_resume;
    QPushButton *m_continue;
    RunList m_runs;
    bool m_modelReady = false;
    bool m_busy = false;
    bool m_running = false; // a run started from this view is in flight
    QElapsedTimer m_runClock;
    long long m_firstDone = -1;
};
