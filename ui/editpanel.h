// Edit panel (in the Facts tab): enter a fact to change (subject, prompt,
// new target), choose the method, apply; see the probabilities of the new and
// the old target before and after on the prompt, a paraphrase and a
// neighbour, the diagnostics, and undo the last edit.
#pragma once

#include "engineworker.h"

#include <QSet>
#include <QWidget>

class HparamsButton;
class QComboBox;
class QCompleter;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableWidget;

class EditPanel : public QWidget {
    Q_OBJECT
public:
    explicit EditPanel(QWidget *parent = nullptr);

public Q_SLOTS:
    void setWorld(const WorldSummary &world);
    void setModelReady(bool ready);
    // The open model's folder, whose hyperparameters the Hyperparameters button shows.
    void setModelDir(const QString &dir);
    void setBusy(bool busy);
    void showOutcome(const oedit::EditOutcome &outcome, int editCount);
    // An edit the engine refused (nothing changed), with its reason.
    void showRefused(const QString &message);
    void showUndone(int editCount);
    // A rollback in the ledger brought the open model to `editCount` edits.
    void showSynced(int editCount);
    // Whether the document's next undo is a Facts edit (Undo Last Edit undoes it).
    void setUndoAvailable(bool available);

Q_SIGNALS:
    void applyRequested(const oedit::EditSpec &spec);
    void undoRequested();
    // "Where Does It Live?": trace the entered fact before editing it.
    void traceRequested(const QString &subject, const QString &prompt);

private:
    void requestApply();
    void updateButtons();

    QLineEdit *m_subject;
    QComboBox *m_prompt;
    QLineEdit *m_target;
    QComboBox *m_method;
    HparamsButton *m_hparams;
    QPushButton *m_apply;
    QPushButton *m_undo;
    QPushButton *m_traceFact;
    QLabel *m_warning;
    QTableWidget *m_probes;
    QLabel *m_diagnostics;
    QCompleter *m_subjectCompleter;
    QSet<QString> m_editedFacts; // "subject|prompt" edited in this run
    bool m_ready = false;
    bool m_busy = false;
    int m_editCount = 0;
    bool m_undoAvailable = false;
};
