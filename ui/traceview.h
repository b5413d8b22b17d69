// Trace tab: where the open model computes its answer to one prompt (ROME's
// causal tracing, oedit/trace.h). The subject's embeddings are corrupted with
// noise and one activation of the clean run is restored at a time; three
// heatmaps (hidden state, MLP output, attention output; tokens x layers) show
// the probability of the answer each restores, so a user sees which layer and
// token to edit before editing. A summary names the layer whose MLP output at
// the subject's last token restores most.
//
// GUI thread only: it emits the request the main window passes to the worker
// (cancellable with the window's Cancel) and shows the answer; a trace of an
// earlier state of the model is marked stale when the model changes.
#pragma once

#include "engineworker.h"

#include <QWidget>

class QCustomPlot;
class QCPColorMap;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

class TraceView : public QWidget {
    Q_OBJECT
public:
    explicit TraceView(QWidget *parent = nullptr);

    // The trace shown (for tests and the screenshot tour); empty before one.
    const oedit::PromptTrace &shownTrace() const { return m_shown; }

public Q_SLOTS:
    // Fills the fields and asks for the trace.
    void trace(const QString &subject, const QString &prompt, const QString &answer = QString());
    void showTrace(const oedit::PromptTrace &trace);
    // The world's subjects and prompts, offered as completions.
    void setWorld(const WorldSummary &world);
    void setModelReady(bool ready);
    void setBusy(bool busy);
    // The model changed (an edit, an undo, a rollback): the trace shown is of an older state.
    void markStale();

Q_SIGNALS:
    void traceRequested(const oedit::PromptTraceQuery &query);

private:
    void request();
    void updateButtons();
    void showHover(QCustomPlot *plot, QCPColorMap *map, const std::vector<std::vector<double>> *values,
                   const QPoint &at);

    QLineEdit *m_subject;
    QLineEdit *m_prompt;
    QLineEdit *m_answer;
    QSpinBox *m_samples;
    QPushButton *m_traceButton;
    QLabel *m_summary;
    QCustomPlot *m_plots[3];
    QCPColorMap *m_maps[3];
    oedit::PromptTrace m_shown;
    bool m_ready = false;
    bool m_busy = false;
};
