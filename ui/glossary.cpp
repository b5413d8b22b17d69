#include "glossary.h"

#include <QCoreApplication>
#include <QList>
#include <QPair>
#include <QRegularExpression>

namespace {

QString tr(const char *text)
{
    return QCoreApplication::translate("Glossary", text);
}

// The metrics a run's checkpoints record (core/eval/edit_metrics.h), in the
// order of the glossary.
QList<QPair<QString, QString>> metricTerms()
{
    return {
        {QStringLiteral("ES"), tr("Efficacy success: share of the edits so far whose prompt gives the new object a "
                                  "higher probability than the old one (CounterFact's teacher-forced P(new) > "
                                  "P(old)).")},
        {QStringLiteral("EM"), tr("Efficacy magnitude: mean P(new) - P(old) on the edits' prompts.")},
        {QStringLiteral("PS"), tr("Paraphrase success: the same as ES on other phrasings of each edited fact "
                                  "(generalisation).")},
        {QStringLiteral("PM"), tr("Paraphrase magnitude: mean P(new) - P(old) on the paraphrases.")},
        {QStringLiteral("NS"), tr("Neighbourhood specificity: share of facts about other subjects (with the same "
                                  "relation) that still prefer their own object over the edit's new one.")},
        {QStringLiteral("NM"), tr("Neighbourhood magnitude: mean P(own) - P(new) on those neighbours.")},
        {QStringLiteral("score"), tr("Harmonic mean of ES, PS and NS (the literature's score).")},
        {QStringLiteral("token_acc"), tr("Share of the new targets' tokens the model predicts on the edit prompts "
                                         "(teacher-forced).")},
        {QStringLiteral("para_token_acc"), tr("The same on the paraphrases.")},
        {QStringLiteral("gen_EM"), tr("Generation exact match: the greedy continuation of an edit's prompt begins "
                                      "with its new target.")},
        {QStringLiteral("unedited_acc"), tr("Accuracy on a fixed sample of facts no edit touched: how much of what "
                                            "the model knew it still knows (retention of other knowledge).")},
        {QStringLiteral("unedited_n"), tr("How many facts that sample holds now (edited facts leave it).")},
        {QStringLiteral("heldout_ppl"), tr("Perplexity on held-out general text; it climbs when edits damage the "
                                           "model's language as a whole.")},
        {QStringLiteral("fluency"), tr("Entropy of n-grams in the model's free generations (ROME's fluency); it "
                                       "falls when the model starts repeating itself.")},
        {QStringLiteral("active_edits"), tr("Edits in effect at the checkpoint (after rollbacks).")},
        {QStringLiteral("eval_seconds"), tr("Time the checkpoint's evaluation took.")},
    };
}

QList<QPair<QString, QString>> diagnosticTerms()
{
    return {
        {tr("‖W‖/‖W₀‖"), tr("Norm of an edited layer's MLP output projection against the unedited one: the "
                            "run's norm growth. Tens or hundreds mean the edits have overwhelmed the layer.")},
        {tr("Update ‖ΔW‖"), tr("Frobenius norm of one edit's update over all layers it changed (History). An "
                              "update over ten times the run's median is flagged ⚠: a disabling edit.")},
        {tr("Key overlap"), tr("Largest |cos| between an edit's key and earlier edits' keys: near 1, the layer "
                               "reads both facts from the same direction and the later update rewrites the "
                               "earlier fact.")},
        {tr("Value shift"), tr("Norm of the optimised change of the MLP output an edit asks for "
                               "(value_shift_norm), not the update's own norm.")},
        {tr("Protected rank"), tr("O-Edit(+): dimension of the subspace earlier edits and the model's implicit "
                                  "knowledge occupy; new updates are kept orthogonal to it.")},
        {tr("Capacity"), tr("O-Edit(+): edit directions left in the fullest layer before the protected subspace "
                            "fills it.")},
        {tr("Retention"), tr("Whether each earlier edit still holds at each later checkpoint (the Retention "
                             "matrix).")},
        {tr("Culprit / margin"), tr("Interference: a fact's margin is log P(its object) - log P(what it says "
                                    "instead); a culprit is an edit whose update lowered it, ranked by its "
                                    "first-order share and checked exactly without it.")},
        {tr("Blast radius"), tr("The facts and earlier edits one edit hurt most, scored with and without it.")},
        {tr("Causal trace"), tr("Trace tab: the subject's embeddings are corrupted with noise and one activation "
                                "of the clean run restored at a time; where restoring brings the answer back is "
                                "where the model computes it.")},
    };
}

} // namespace

QString metricDescription(const QString &name)
{
    for (const auto &[term, description] : metricTerms())
        if (term == name)
            return description;
    static const QRegularExpression perLayer(QStringLiteral("^(delta_norm|cond)_L(\\d+)$"));
    const auto match = perLayer.match(name);
    if (match.hasMatch())
        return match.captured(1) == QLatin1String("cond")
                   ? tr("Condition number of layer %1's MLP output projection (largest over smallest singular "
                        "value).")
                         .arg(match.captured(2))
                   : tr("‖W - W₀‖ of layer %1's MLP output projection: how far the edits so far moved it.")
                         .arg(match.captured(2));
    return QString();
}

QString glossaryHtml()
{
    QString html = QStringLiteral("<h3>%1</h3><dl>").arg(tr("Metrics at a run's checkpoints"));
    for (const auto &[term, description] : metricTerms())
        html += QStringLiteral("<dt><b>%1</b></dt><dd>%2</dd>").arg(term.toHtmlEscaped(), description.toHtmlEscaped());
    html += QStringLiteral("<dt><b>delta_norm_L<i>l</i>, cond_L<i>l</i></b></dt><dd>%1</dd></dl>")
                .arg(tr("‖W - W₀‖ and the condition number of layer l's MLP output projection.").toHtmlEscaped());
    html += QStringLiteral("<h3>%1</h3><dl>").arg(tr("Edits and their interference"));
    for (const auto &[term, description] : diagnosticTerms())
        html += QStringLiteral("<dt><b>%1</b></dt><dd>%2</dd>").arg(term.toHtmlEscaped(), description.toHtmlEscaped());
    html += QStringLiteral("</dl>");
    return html;
}
