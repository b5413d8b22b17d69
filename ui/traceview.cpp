#include "traceview.h"

#include <qcustomplot.h>

#include <QCompleter>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace {

struct Site {
    const char *objectName;
    const char *title;
    QColor strong; // ROME's colours: purple hidden states, green MLPs, red attention
};
const Site kSites[3] = {{"traceHidden", QT_TRANSLATE_NOOP("TraceView", "Hidden state restored"), QColor(84, 39, 143)},
                        {"traceMlp", QT_TRANSLATE_NOOP("TraceView", "MLP output restored"), QColor(0, 109, 44)},
                        {"traceAttention", QT_TRANSLATE_NOOP("TraceView", "Attention output restored"),
                         QColor(165, 15, 21)}};

const std::vector<std::vector<double>> &valuesOf(const oedit::PromptTrace &trace, int site)
{
    return site == 0 ? trace.hidden : site == 1 ? trace.mlp : trace.attention;
}

QString tokenLabel(const oedit::PromptTrace &trace, int t)
{
    QString text = QString::fromStdString(trace.tokens[static_cast<size_t>(t)]);
    text.replace(QLatin1Char('\n'), QStringLiteral("\\n"));
    const bool subject = t >= trace.subjectFirst && t <= trace.subjectLast;
    return QStringLiteral("'%1'%2").arg(text, subject ? QStringLiteral(" *") : QString());
}

} // namespace

TraceView::TraceView(QWidget *parent)
    : QWidget(parent), m_subject(new QLineEdit), m_prompt(new QLineEdit), m_answer(new QLineEdit),
      m_samples(new QSpinBox), m_traceButton(new QPushButton(tr("Trace"))), m_summary(new QLabel)
{
    setObjectName(QStringLiteral("traceView"));
    m_subject->setObjectName(QStringLiteral("traceSubject"));
    m_prompt->setObjectName(QStringLiteral("tracePrompt"));
    m_answer->setObjectName(QStringLiteral("traceAnswer"));
    m_samples->setObjectName(QStringLiteral("traceSamples"));
    m_traceButton->setObjectName(QStringLiteral("traceButton"));
    m_summary->setObjectName(QStringLiteral("traceSummary"));

    m_subject->setPlaceholderText(tr("e.g. a subject of the model's world"));
    m_prompt->setPlaceholderText(tr("with {} where the subject goes, e.g. The mother tongue of {} is"));
    m_answer->setPlaceholderText(tr("empty: the model's own answer"));
    m_answer->setToolTip(tr("The answer whose probability is traced; by default what the model says now."));
    m_samples->setRange(1, 100);
    m_samples->setValue(10);
    m_samples->setToolTip(tr("Noise draws averaged: more draws, a smoother trace, longer to compute."));
    m_traceButton->setToolTip(tr("Corrupt the subject's embeddings with noise and restore one activation at a time "
                           "(the window's Cancel stops it)"));
    m_summary->setWordWrap(true);
    m_summary->setTextFormat(Qt::RichText);
    m_summary->setText(tr("Trace a prompt to see where the model computes its answer: the probability of the answer "
                          "when one activation of the clean run is restored into a run whose subject is "
                          "corrupted with noise. An MLP peak at the subject's last token (*) is where ROME-style "
                          "methods should write."));

    auto *form = new QFormLayout;
    form->addRow(tr("Subject:"), m_subject);
    form->addRow(tr("Prompt:"), m_prompt);
    auto *answerRow = new QHBoxLayout;
    answerRow->addWidget(m_answer, 1);
    answerRow->addWidget(new QLabel(tr("Noise draws:")));
    answerRow->addWidget(m_samples);
    answerRow->addWidget(m_traceButton);
    form->addRow(tr("Answer:"), answerRow);

    auto *plots = new QHBoxLayout;
    for (int site = 0; site < 3; ++site) {
        auto *plot = new QCustomPlot;
        plot->setObjectName(QLatin1String(kSites[site].objectName));
        plot->setMinimumSize(220, 220);
        plot->plotLayout()->insertRow(0);
        plot->plotLayout()->addElement(0, 0, new QCPTextElement(plot, tr(kSites[site].title)));
        plot->xAxis->setLabel(tr("layer"));
        plot->yAxis->setRangeReversed(true); // the prompt reads top to bottom
        plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
        auto *map = new QCPColorMap(plot->xAxis, plot->yAxis);
        QCPColorGradient gradient;
        gradient.setColorStopAt(0, Qt::white);
        gradient.setColorStopAt(1, kSites[site].strong);
        map->setGradient(gradient);
        map->setInterpolate(false);
        auto *scale = new QCPColorScale(plot);
        plot->plotLayout()->addElement(1, 1, scale);
        map->setColorScale(scale);
        scale->setGradient(gradient);
        scale->setLabel(tr("P(answer)"));
        plot->setMouseTracking(true);
        const auto *values = &m_shown;
        connect(plot, &QCustomPlot::mouseMove, this, [this, plot, map, site, values](QMouseEvent *event) {
            showHover(plot, map, &valuesOf(*values, site), event->pos());
        });
        m_plots[site] = plot;
        m_maps[site] = map;
        plots->addWidget(plot, 1);
    }

    auto *layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(m_summary);
    layout->addLayout(plots, 1);

    connect(m_traceButton, &QPushButton::clicked, this, &TraceView::request);
    connect(m_prompt, &QLineEdit::returnPressed, this, &TraceView::request);
    for (QLineEdit *edit : {m_subject, m_prompt})
        connect(edit, &QLineEdit::textChanged, this, &TraceView::updateButtons);
    updateButtons();
}

void TraceView::trace(const QString &subject, const QString &prompt, const QString &answer)
{
    m_subject->setText(subject);
    m_prompt->setText(prompt);
    m_answer->setText(answer);
    request();
}

void TraceView::request()
{
    if (!m_traceButton->isEnabled())
        return;
    oedit::PromptTraceQuery query;
    query.subject = m_subject->text().trimmed().toStdString();
    query.prompt = m_prompt->text().trimmed().toStdString();
    query.object = m_answer->text().trimmed().toStdString();
    query.samples = m_samples->value();
    Q_EMIT traceRequested(query);
}

void TraceView::showTrace(const oedit::PromptTrace &trace)
{
    m_shown = trace;
    const int tokens = static_cast<int>(trace.tokens.size());
    const int layers = trace.layers;
    double top = trace.cleanProbability;
    for (int site = 0; site < 3; ++site)
        for (const auto &row : valuesOf(trace, site))
            for (double v : row)
                top = std::max(top, v);
    QSharedPointer<QCPAxisTickerText> tokenTicks(new QCPAxisTickerText);
    for (int t = 0; t < tokens; ++t)
        tokenTicks->addTick(t, tokenLabel(trace, t));
    for (int site = 0; site < 3; ++site) {
        const auto &values = valuesOf(trace, site);
        QCPColorMap *map = m_maps[site];
        map->data()->setSize(layers, tokens);
        map->data()->setRange(QCPRange(0, std::max(0, layers - 1)), QCPRange(0, std::max(0, tokens - 1)));
        for (int t = 0; t < tokens; ++t)
            for (int l = 0; l < layers; ++l)
                map->data()->setCell(l, t, values[static_cast<size_t>(t)][static_cast<size_t>(l)]);
        map->setDataRange(QCPRange(0, top > 0 ? top : 1));
        m_plots[site]->yAxis->setTicker(tokenTicks);
        m_plots[site]->yAxis->setRange(-0.5, tokens - 0.5);
        m_plots[site]->xAxis->setRange(-0.5, layers - 0.5);
        QSharedPointer<QCPAxisTickerFixed> integers(new QCPAxisTickerFixed);
        integers->setTickStep(1);
        integers->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
        m_plots[site]->xAxis->setTicker(integers);
        m_plots[site]->setEnabled(true);
        m_plots[site]->replot();
    }
    QString text = tr("Answer <b>'%1'</b>: P %2 on the clean prompt, %3 with the subject corrupted (%4 noise draws). "
                      "Hover a cell for its value; * marks the subject's tokens.")
                       .arg(QString::fromStdString(trace.object).trimmed().toHtmlEscaped())
                       .arg(trace.cleanProbability, 0, 'f', 3)
                       .arg(trace.corruptedProbability, 0, 'f', 3)
                       .arg(trace.samples);
    if (const int peak = trace.peakMlpLayer(); peak >= 0) {
        const double restored = trace.mlp[static_cast<size_t>(trace.subjectLast)][static_cast<size_t>(peak)];
        text += QStringLiteral("<br>") +
                tr("The MLP output at the subject's last token restores most at <b>layer %1</b> (P %2): the layer "
                   "a ROME-style edit at the subject (<tt>fact_token: subject_last</tt>) would write to.")
                    .arg(peak)
                    .arg(restored, 0, 'f', 3);
    }
    // The strongest MLP effect anywhere in the subject: on some models the
    // lookup happens at an earlier token of the name.
    int bestToken = -1, bestLayer = -1;
    double best = -1;
    for (int t = trace.subjectFirst; t <= trace.subjectLast && t < static_cast<int>(trace.mlp.size()); ++t)
        for (int l = 0; l < layers; ++l)
            if (trace.mlp[static_cast<size_t>(t)][static_cast<size_t>(l)] > best) {
                best = trace.mlp[static_cast<size_t>(t)][static_cast<size_t>(l)];
                bestToken = t;
                bestLayer = l;
            }
    if (bestToken >= 0 && bestToken != trace.subjectLast)
        text += QStringLiteral(" ") + tr("Over the whole subject the MLP output restores most at token %1, layer %2 "
                                         "(P %3).")
                                          .arg(tokenLabel(trace, bestToken).toHtmlEscaped())
                                          .arg(bestLayer)
                                          .arg(best, 0, 'f', 3);
    m_summary->setText(text);
}

void TraceView::showHover(QCustomPlot *plot, QCPColorMap *map, const std::vector<std::vector<double>> *values,
                          const QPoint &at)
{
    if (values->empty())
        return;
    int layer = 0, token = 0;
    map->data()->coordToCell(plot->xAxis->pixelToCoord(at.x()), plot->yAxis->pixelToCoord(at.y()), &layer, &token);
    if (token < 0 || token >= static_cast<int>(values->size()) || layer < 0 ||
        layer >= static_cast<int>((*values)[0].size())) {
        QToolTip::hideText();
        return;
    }
    QToolTip::showText(plot->mapToGlobal(at),
                       tr("token %1, layer %2: P(answer) %3")
                           .arg(tokenLabel(m_shown, token))
                           .arg(layer)
                           .arg((*values)[static_cast<size_t>(token)][static_cast<size_t>(layer)], 0, 'f', 3),
                       plot);
}

void TraceView::setWorld(const WorldSummary &world)
{
    auto *subjects = new QCompleter(world.subjects, m_subject);
    subjects->setCaseSensitivity(Qt::CaseInsensitive);
    m_subject->setCompleter(subjects);
    auto *prompts = new QCompleter(world.canonicalPrompts, m_prompt);
    prompts->setCaseSensitivity(Qt::CaseInsensitive);
    m_prompt->setCompleter(prompts);
}

void TraceView::setModelReady(bool ready)
{
    m_ready = ready;
    updateButtons();
}

void TraceView::setBusy(bool busy)
{
    m_busy = busy;
    updateButtons();
}

void TraceView::markStale()
{
    if (m_shown.tokens.empty())
        return;
    for (QCustomPlot *plot : m_plots)
        plot->setEnabled(false);
    m_summary->setText(tr("<i>The model changed since this trace (an edit, an undo or a rollback): press Trace to "
                          "trace it again.</i>"));
}

void TraceView::updateButtons()
{
    m_traceButton->setEnabled(m_ready && !m_busy && !m_subject->text().trimmed().isEmpty() &&
                        !m_prompt->text().trimmed().isEmpty());
}
