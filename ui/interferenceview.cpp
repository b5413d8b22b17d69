#include "interferenceview.h"

#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

namespace {

enum CulpritColumn { CStep, CEdit, CMethod, CFact, CFirstOrder, CMarginWithout, CPWithout, CCount };
enum HurtColumn { HKind, HFact, HTarget, HWith, HWithout, HRecalled, HCount };

QTableWidgetItem *item(const QString &text, const QString &tip = {})
{
    auto *cell = new QTableWidgetItem(text);
    if (!tip.isEmpty())
        cell->setToolTip(tip);
    return cell;
}

QTableWidgetItem *number(double value, int digits = 3)
{
    auto *cell = new QTableWidgetItem;
    cell->setData(Qt::DisplayRole, QString::number(value, 'f', digits));
    cell->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return cell;
}

QTableWidget *table(const QString &name, const QStringList &headers)
{
    auto *t = new QTableWidget(0, int(headers.size()));
    t->setObjectName(name);
    t->setHorizontalHeaderLabels(headers);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->setSelectionBehavior(QAbstractItemView::SelectRows);
    t->setSelectionMode(QAbstractItemView::SingleSelection);
    t->verticalHeader()->setVisible(false);
    // Numbers and their headers whole; the caller stretches the text column.
    t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    return t;
}

} // namespace

InterferenceView::InterferenceView(QWidget *parent)
    : QWidget(parent), m_title(new QLabel), m_subject(new QLineEdit), m_prompt(new QLineEdit), m_target(new QLineEdit),
      m_find(new QPushButton(tr("Find Culprits"))), m_factSummary(new QLabel),
      m_culprits(table(QStringLiteral("culpritTable"),
                       {tr("step"), tr("edit"), tr("method"), tr("the edit"), tr("first-order change"),
                        tr("margin without"), tr("P(target) without")})),
      m_remove(new QPushButton(tr("Remove This Edit from the Run"))),
      m_radiusOfSelected(new QPushButton(tr("Its Blast Radius"))), m_edit(new QSpinBox),
      m_radius(new QPushButton(tr("Blast Radius"))), m_radiusSummary(new QLabel),
      m_hurt(table(QStringLiteral("blastRadiusTable"),
                   {tr("kind"), tr("fact"), tr("target"), tr("P with"), tr("P without"), tr("recalled")}))
{
    setObjectName(QStringLiteral("interferenceView"));
    m_title->setObjectName(QStringLiteral("interferenceTitle"));
    m_subject->setObjectName(QStringLiteral("interferenceSubject"));
    m_prompt->setObjectName(QStringLiteral("interferencePrompt"));
    m_target->setObjectName(QStringLiteral("interferenceTarget"));
    m_find->setObjectName(QStringLiteral("findCulprits"));
    m_factSummary->setObjectName(QStringLiteral("culpritSummary"));
    m_remove->setObjectName(QStringLiteral("removeCulprit"));
    m_radiusOfSelected->setObjectName(QStringLiteral("culpritBlastRadius"));
    m_edit->setObjectName(QStringLiteral("blastRadiusEdit"));
    m_radius->setObjectName(QStringLiteral("blastRadius"));
    m_radiusSummary->setObjectName(QStringLiteral("blastRadiusSummary"));

    m_title->setText(tr("Select a run in the Runs tab; then ask which of its edits moved a fact, or what one edit "
                        "broke."));
    m_title->setWordWrap(true);
    m_subject->setPlaceholderText(tr("e.g. Trari Semni"));
    m_prompt->setPlaceholderText(tr("with {} for the subject, e.g. The working language of {} is"));
    m_target->setPlaceholderText(tr("what the fact should say: its true object, or an earlier edit's new target"));
    m_find->setToolTip(tr("Rank every edit in effect by the change it made to this fact's margin (log P(target) - "
                          "log P(what it says instead)), then score the fact again without each of the top ten"));
    m_culprits->horizontalHeaderItem(CFirstOrder)
        ->setToolTip(tr("The change this edit made to the fact's margin, to first order: negative pushed the fact "
                        "away"));
    m_culprits->horizontalHeaderItem(CMarginWithout)
        ->setToolTip(tr("The fact's margin with this edit removed, computed exactly: above 0 the fact holds again"));
    m_culprits->horizontalHeader()->setSectionResizeMode(CFact, QHeaderView::Stretch);
    m_hurt->horizontalHeader()->setSectionResizeMode(HFact, QHeaderView::Stretch);
    m_remove->setToolTip(tr("Take the selected edit out of the run (a rollback; Undo puts it back)"));
    m_edit->setRange(1, 1 << 30);
    m_edit->setToolTip(tr("An edit of the run, by its id (History lists them)"));
    m_radius->setToolTip(tr("Score every fact of the model's world and every other edit of the run with and "
                            "without this edit, and list those it lowered most"));
    m_factSummary->setWordWrap(true);
    m_radiusSummary->setWordWrap(true);

    auto *fact = new QFormLayout;
    fact->addRow(tr("Subject:"), m_subject);
    fact->addRow(tr("Prompt:"), m_prompt);
    fact->addRow(tr("Target:"), m_target);
    auto *culpritButtons = new QHBoxLayout;
    culpritButtons->addWidget(m_find);
    culpritButtons->addStretch();
    culpritButtons->addWidget(m_radiusOfSelected);
    culpritButtons->addWidget(m_remove);
    auto *culpritBox = new QGroupBox(tr("Culprits: which edits moved this fact"));
    auto *culpritLayout = new QVBoxLayout(culpritBox);
    culpritLayout->addLayout(fact);
    culpritLayout->addLayout(culpritButtons);
    culpritLayout->addWidget(m_factSummary);
    culpritLayout->addWidget(m_culprits, 1);

    auto *radiusRow = new QHBoxLayout;
    radiusRow->addWidget(new QLabel(tr("Edit:")));
    radiusRow->addWidget(m_edit);
    radiusRow->addWidget(m_radius);
    radiusRow->addStretch();
    auto *radiusBox = new QGroupBox(tr("Blast radius: what one edit hurt"));
    auto *radiusLayout = new QVBoxLayout(radiusBox);
    radiusLayout->addLayout(radiusRow);
    radiusLayout->addWidget(m_radiusSummary);
    radiusLayout->addWidget(m_hurt, 1);

    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_title);
    layout->addWidget(culpritBox, 3);
    layout->addWidget(radiusBox, 2);

    auto requestExplain = [this] {
        oedit::runs::FactQuery query;
        query.runId = m_runId;
        query.subject = m_subject->text().trimmed().toStdString();
        query.prompt = m_prompt->text().trimmed().toStdString();
        query.target = m_target->text().trimmed().toStdString();
        m_factSummary->setText(tr("Ranking the run's edits…"));
        Q_EMIT explainRequested(m_db, query);
    };
    connect(m_find, &QPushButton::clicked, this, requestExplain);
    connect(m_target, &QLineEdit::returnPressed, this, requestExplain);
    for (auto *field : {m_subject, m_prompt, m_target})
        connect(field, &QLineEdit::textChanged, this, &InterferenceView::updateButtons);
    connect(m_culprits, &QTableWidget::itemSelectionChanged, this, &InterferenceView::updateButtons);
    connect(m_remove, &QPushButton::clicked, this, [this] {
        qint64 step = 0;
        const qint64 edit = selectedCulprit(&step);
        if (edit > 0)
            Q_EMIT removeRequested(m_db, m_runId, edit, step);
    });
    connect(m_radiusOfSelected, &QPushButton::clicked, this, [this] {
        const qint64 edit = selectedCulprit();
        if (edit > 0)
            blastRadiusOf(edit);
    });
    connect(m_radius, &QPushButton::clicked, this, [this] { blastRadiusOf(m_edit->value()); });
    updateButtons();
}

void InterferenceView::setRun(const QString &db, qint64 runId)
{
    if (db == m_db && runId == m_runId)
        return;
    m_db = db;
    m_runId = runId;
    m_title->setText(runId > 0 ? tr("Run %1 of %2: its edits in effect now.").arg(runId).arg(db)
                               : tr("Select a run in the Runs tab."));
    m_culprits->setRowCount(0);
    m_hurt->setRowCount(0);
    m_factSummary->clear();
    m_radiusSummary->clear();
    updateButtons();
}

void InterferenceView::explain(const QString &subject, const QString &prompt, const QString &target)
{
    m_subject->setText(subject);
    m_prompt->setText(prompt);
    m_target->setText(target);
    if (m_find->isEnabled())
        m_find->click();
}

void InterferenceView::blastRadiusOf(qint64 editId)
{
    if (m_runId <= 0 || editId <= 0)
        return;
    m_edit->setValue(int(editId));
    m_radiusSummary->setText(tr("Scoring every fact with and without edit %1…").arg(editId));
    Q_EMIT blastRadiusRequested(m_db, m_runId, editId, 50);
}

void InterferenceView::showExplanation(const QString &db, const oedit::runs::FactExplanation &e)
{
    if (db != m_db || e.runId != m_runId)
        return;
    m_factSummary->setText(
        tr("'%1' → '%2' %3 after %4 edits: P(target) %5, P('%6') %7, margin %8 (unedited model: P(target) %9, "
           "margin %10). Ranked most harmful first; 'margin without' above 0 means removing that edit alone brings "
           "the fact back.")
            .arg(QString::fromStdString(e.text), QString::fromStdString(e.target),
                 e.holds ? tr("holds") : tr("<b>is lost</b>"))
            .arg(e.activeEdits)
            .arg(e.pTarget, 0, 'f', 3)
            .arg(QString::fromStdString(e.rival))
            .arg(e.pRival, 0, 'f', 3)
            .arg(e.margin, 0, 'f', 2)
            .arg(e.basePTarget, 0, 'f', 3)
            .arg(e.baseMargin, 0, 'f', 2));
    m_culprits->setSortingEnabled(false);
    m_culprits->setRowCount(int(e.culprits.size()));
    for (int row = 0; row < int(e.culprits.size()); ++row) {
        const auto &c = e.culprits[size_t(row)];
        m_culprits->setItem(row, CStep, number(double(c.step), 0));
        auto *edit = number(double(c.editId), 0);
        edit->setData(Qt::UserRole, c.editId);
        edit->setData(Qt::UserRole + 1, c.step);
        m_culprits->setItem(row, CEdit, edit);
        m_culprits->setItem(row, CMethod, item(QString::fromStdString(c.method)));
        const QString fact = QStringLiteral("%1 → %2").arg(
            QString::fromStdString(c.prompt).replace(QStringLiteral("{}"), QString::fromStdString(c.subject)),
            QString::fromStdString(c.targetNew));
        m_culprits->setItem(row, CFact, item(fact, fact));
        m_culprits->setItem(row, CFirstOrder, number(c.firstOrder));
        auto *without = number(c.marginWithout);
        if (c.marginWithout > 0 && !e.holds)
            without->setToolTip(tr("Removing this edit alone brings the fact back"));
        m_culprits->setItem(row, CMarginWithout, without);
        m_culprits->setItem(row, CPWithout, number(c.pTargetWithout));
    }
    if (!e.culprits.empty())
        m_culprits->selectRow(0);
    updateButtons();
}

void InterferenceView::showBlastRadius(const QString &db, const oedit::runs::BlastRadius &b)
{
    if (db != m_db || b.runId != m_runId)
        return;
    m_radiusSummary->setText(tr("Edit %1 (step %2, '%3' → '%4'): of %5 facts scored, %6 recalled without it are lost "
                                "with it. The %7 it lowered most:")
                                 .arg(b.editId)
                                 .arg(b.step)
                                 .arg(QString::fromStdString(b.text), QString::fromStdString(b.targetNew))
                                 .arg(b.factsScored)
                                 .arg(b.lost)
                                 .arg(b.hurt.size()));
    m_hurt->setRowCount(int(b.hurt.size()));
    for (int row = 0; row < int(b.hurt.size()); ++row) {
        const auto &f = b.hurt[size_t(row)];
        m_hurt->setItem(row, HKind,
                        item(f.kind == "edit" ? tr("edit %1").arg(f.editId) : tr("world fact")));
        m_hurt->setItem(row, HFact, item(QString::fromStdString(f.text), QString::fromStdString(f.text)));
        m_hurt->setItem(row, HTarget, item(QString::fromStdString(f.target)));
        m_hurt->setItem(row, HWith, number(f.pWith));
        m_hurt->setItem(row, HWithout, number(f.pWithout));
        m_hurt->setItem(row, HRecalled,
                        item(f.recalledWith ? tr("yes") : f.recalledWithout ? tr("lost") : tr("no")));
    }
}

void InterferenceView::markStale()
{
    const QString stale = tr("(The run changed since: find again for its current state.)");
    if (m_culprits->rowCount() > 0 && !m_factSummary->text().startsWith(stale))
        m_factSummary->setText(stale + QLatin1Char(' ') + m_factSummary->text());
    if (m_hurt->rowCount() > 0 && !m_radiusSummary->text().startsWith(stale))
        m_radiusSummary->setText(stale + QLatin1Char(' ') + m_radiusSummary->text());
}

void InterferenceView::setBusy(bool busy)
{
    m_busy = busy;
    updateButtons();
}

void InterferenceView::setReadOnly(bool readOnly)
{
    m_readOnly = readOnly;
    updateButtons();
}

qint64 InterferenceView::selectedCulprit(qint64 *step) const
{
    const auto rows = m_culprits->selectionModel()->selectedRows();
    if (rows.isEmpty())
        return -1;
    const auto *cell = m_culprits->item(rows.first().row(), CEdit);
    if (!cell)
        return -1;
    if (step)
        *step = cell->data(Qt::UserRole + 1).toLongLong();
    return cell->data(Qt::UserRole).toLongLong();
}

void InterferenceView::updateButtons()
{
    const bool run = m_runId > 0 && !m_busy;
    m_find->setEnabled(run && !m_subject->text().trimmed().isEmpty() && !m_prompt->text().trimmed().isEmpty() &&
                       !m_target->text().trimmed().isEmpty());
    const bool selected = selectedCulprit() > 0;
    m_remove->setEnabled(run && selected && !m_readOnly);
    m_radiusOfSelected->setEnabled(run && selected);
    m_radius->setEnabled(run);
}
