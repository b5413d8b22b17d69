// Interference tab: which edits of the current run moved a fact, and which
// facts one edit hurt (oedit/interference.h). A fact (subject, prompt,
// target) gets its culprits ranked by the change each edit made to its
// margin, the top ones scored again exactly without them, and any of them can
// be removed from the run as an undoable rollback. An edit gets its blast
// radius: the world's facts and the run's other edits it lowered most.
//
// GUI thread only: it emits requests the main window passes to the worker,
// and shows the answers; results of an older state of the run are marked
// stale when the run changes.
#pragma once

#include "engineworker.h"

#include <QWidget>

class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;

class InterferenceView : public QWidget {
    Q_OBJECT
public:
    explicit InterferenceView(QWidget *parent = nullptr);

public Q_SLOTS:
    // The run the analyses read; clears what was shown for another run.
    void setRun(const QString &db, qint64 runId);
    // Fills the fact and asks for its culprits.
    void explain(const QString &subject, const QString &prompt, const QString &target);
    // Asks for the blast radius of an edit of the current run.
    void blastRadiusOf(qint64 editId);
    void showExplanation(const QString &db, const oedit::runs::FactExplanation &explanation);
    void showBlastRadius(const QString &db, const oedit::runs::BlastRadius &radius);
    // The run changed (a rollback, an edit): the results shown are of an older state.
    void markStale();
    void setBusy(bool busy);
    void setReadOnly(bool readOnly);

Q_SIGNALS:
    void explainRequested(const QString &db, const oedit::runs::FactQuery &query);
    void blastRadiusRequested(const QString &db, qint64 runId, qint64 editId, int top);
    void removeRequested(const QString &db, qint64 runId, qint64 editId, qint64 step);

private:
    void updateButtons();
    qint64 selectedCulprit(qint64 *step = nullptr) const;

    QLabel *m_title;
    QLineEdit *m_subject;
    QLineEdit *m_prompt;
    QLineEdit *m_target;
    QPushButton *m_find;
    QLabel *m_factSummary;
    QTableWidget *m_culprits;
    QPushButton *m_remove;
    QPushButton *m_radiusOfSelected;
    QSpinBox *m_edit;
    QPushButton *m_radius;
    QLabel *m_radiusSummary;
    QTableWidget *m_hurt;
    QString m_db;
    qint64 m_runId = -1;
    bool m_busy = false;
    bool m_readOnly = false;
};
