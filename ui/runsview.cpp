#include "runsview.h"

#include "hparamsdialog.h"

#include "document.h"

#include "oedit/editing.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableWidget>
#include <QVBoxLayout>

namespace {

QString duration(double seconds)
{
    const long long s = static_cast<long long>(seconds + 0.5);
    if (s >= 3600)
        return QStringLiteral("%1 h %2 min").arg(s / 3600).arg(s / 60 % 60, 2, 10, QLatin1Char('0'));
    if (s >= 60)
        return QStringLiteral("%1 min %2 s").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1 s").arg(s);
}

enum Column { ColId, ColMethod, ColDataset, ColStatus, ColSteps, ColActive, ColCreated, ColLabel, ColumnCount };

} // namespace

RunsView::RunsView(Document *document, QWidget *parent)
    : QWidget(parent), m_document(document), m_ledger(new QLineEdit), m_dataset(new QComboBox), m_method(new QComboBox), m_hparams(new HparamsButton), m_label(new QLineEdit),
      m_edits(new QSpinBox), m_every(new QSpinBox), m_seed(new QSpinBox), m_start(new QPushButton(tr("Start Run"))),
      m_cancel(new QPushButton(tr("Cancel"))), m_progress(new QProgressBar), m_remaining(new QLabel), m_readOnly(new QLabel),
      m_table(new QTableWidget(0, ColumnCount)), m_revert(new QPushButton(tr("Revert to Step…"))),
      m_undoRollback(new QPushButton(tr("Undo Last Rollback"))), m_resume(new QPushButton(tr("Resume"))),
      m_continue(new QPushButton(tr("Continue Editing")))
{
    setObjectName(QStringLiteral("runsView"));
    m_ledger->setObjectName(QStringLiteral("ledgerPath"));
    m_dataset->setObjectName(QStringLiteral("runDataset"));
    m_method->setObjectName(QStringLiteral("runMethod"));
    m_hparams->setObjectName(QStringLiteral("runHparams"));
    m_label->setObjectName(QStringLiteral("runLabel"));
    m_label->setPlaceholderText(tr("optional: a name for this run, shown in the table and the plots' legends"));
    m_hparams->setEnabled(false);
    m_edits->setObjectName(QStringLiteral("runEdits"));
    m_every->setObjectName(QStringLiteral("runEvery"));
    m_seed->setObjectName(QStringLiteral("runSeed"));
    m_start->setObjectName(QStringLiteral("startRun"));
    m_cancel->setObjectName(QStringLiteral("cancelRun"));
    m_progress->setObjectName(QStringLiteral("runProgress"));
    m_remaining->setObjectName(QStringLiteral("runRemaining"));
    m_readOnly->setObjectName(QStringLiteral("ledgerReadOnly"));
    m_readOnly->setWordWrap(true);
    m_readOnly->setStyleSheet(QStringLiteral("color: #a15c00"));
    m_readOnly->setVisible(false);
    m_table->setObjectName(QStringLiteral("runsTable"));
    m_revert->setObjectName(QStringLiteral("revertRun"));
    m_undoRollback->setObjectName(QStringLiteral("undoRollback"));
    m_resume->setObjectName(QStringLiteral("resumeRun"));
    m_resume->setToolTip(tr("Continue a cancelled or failed run where it stopped"));
    m_continue->setObjectName(QStringLiteral("continueRun"));
    m_continue->setToolTip(tr("Load this run of edits made in the Facts tab into the open model (the model it was "
                              "made on); further edits in the Facts tab are appended to it"));

    m_ledger->setText(m_document->ledgerPath());
    m_ledger->setToolTip(tr("The SQLite ledger that keeps runs, edits and checkpoints; created when missing. "
                            "By default %1")
                             .arg(QDir::toNativeSeparators(
                                 QDir(QStandardPaths::writableLocation(QStandardPaths::AppDataLocation))
                                     .filePath(QStringLiteral("runs.sqlite")))));
    auto *browse = new QPushButton(tr("Choose…"));
    browse->setObjectName(QStringLiteral("chooseLedger"));
    auto *ledgerRow = new QHBoxLayout;
    ledgerRow->addWidget(m_ledger, 1);
    ledgerRow->addWidget(browse);

    m_dataset->setEditable(true);
    m_dataset->addItem(QStringLiteral("world"));
    m_dataset->setToolTip(tr("'world': random facts of the model's world; or a CounterFact/zsRE JSON file"));
    auto *datasetBrowse = new QPushButton(tr("File…"));
    datasetBrowse->setObjectName(QStringLiteral("chooseDataset"));
    auto *datasetRow = new QHBoxLayout;
    datasetRow->addWidget(m_dataset, 1);
    datasetRow->addWidget(datasetBrowse);

    for (const auto &method : oedit::editMethods())
        m_method->addItem(QString::fromStdString(method));
    m_method->setCurrentText(QStringLiteral("oedit+"));
    m_hparams->setMethod(m_method->currentText());
    connect(m_method, &QComboBox::currentTextChanged, m_hparams, &HparamsButton::setMethod);
    m_edits->setRange(1, 100000);
    m_edits->setValue(10);
    m_every->setRange(0, 100000);
    m_every->setValue(5);
    m_every->setSpecialValueText(tr("at the end only"));
    m_seed->setRange(0, 1 << 30);
    m_seed->setValue(1);

    auto *form = new QFormLayout;
    form->addRow(tr("Ledger:"), ledgerRow);
    form->addRow(tr("Dataset:"), datasetRow);
    auto *methodRow = new QHBoxLayout;
    methodRow->addWidget(m_method, 1);
    methodRow->addWidget(m_hparams);
    form->addRow(tr("Method:"), methodRow);
    form->addRow(tr("Edits:"), m_edits);
    form->addRow(tr("Evaluate every:"), m_every);
    form->addRow(tr("Seed:"), m_seed);
    form->addRow(tr("Label:"), m_label);

    m_progress->setRange(0, 1000);
    m_progress->setValue(0);
    m_progress->setVisible(false);
    m_cancel->setVisible(false);
    auto *runRow = new QHBoxLayout;
    runRow->addWidget(m_start);
    runRow->addWidget(m_progress, 1);
    runRow->addWidget(m_remaining);
    runRow->addWidget(m_cancel);
    runRow->addStretch();

    m_table->setHorizontalHeaderLabels(
        {tr("Run"), tr("Method"), tr("Dataset"), tr("Status"), tr("Edits"), tr("Active"), tr("Created"), tr("Label")});
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->verticalHeader()->setVisible(false);
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->setToolTip(tr("Select one run to see its retention, two or more to compare them"));

    auto *actions = new QHBoxLayout;
    auto *refreshButton = new QPushButton(tr("Refresh"));
    refreshButton->setObjectName(QStringLiteral("refreshRuns"));
    actions->addWidget(refreshButton);
    actions->addStretch();
    actions->addWidget(m_continue);
    actions->addWidget(m_resume);
    actions->addWidget(m_revert);
    actions->addWidget(m_undoRollback);

    auto *layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addLayout(runRow);
    layout->addWidget(m_readOnly);
    layout->addWidget(m_table, 1);
    layout->addLayout(actions);

    connect(browse, &QPushButton::clicked, this, &RunsView::chooseLedger);
    connect(datasetBrowse, &QPushButton::clicked, this, &RunsView::chooseDataset);
    connect(m_ledger, &QLineEdit::editingFinished, this, [this] { setLedgerPath(m_ledger->text()); });
    connect(m_start, &QPushButton::clicked, this, &RunsView::startRun);
    connect(m_cancel, &QPushButton::clicked, this, &RunsView::cancelRequested);
    connect(refreshButton, &QPushButton::clicked, this, &RunsView::refresh);
    connect(m_revert, &QPushButton::clicked, this, &RunsView::askRevert);
    connect(m_undoRollback, &QPushButton::clicked, this, [this] {
        const auto runs = selectedRuns();
        if (!runs.isEmpty())
            m_document->undoLastRollback(runs.first());
    });
    connect(m_resume, &QPushButton::clicked, this, [this] {
        const auto runs = selectedRuns();
        if (runs.isEmpty())
            return;
        beginRun();
        m_remaining->setText(tr("resuming run %1…").arg(runs.first()));
        Q_EMIT resumeRequested(ledgerPath(), runs.first());
    });
    connect(m_continue, &QPushButton::clicked, this, [this] {
        const auto runs = selectedRuns();
        if (!runs.isEmpty())
            m_document->continueRun(runs.first());
    });
    connect(m_table, &QTableWidget::itemSelectionChanged, this, [this] {
        updateButtons();
        m_document->setSelectedRuns(selectedRuns());
    });
    // A read-only ledger (newer schema, no write permission) is named with
    // the reason, and the buttons that would change it are off.
    connect(m_document, &Document::accessChanged, this, [this] {
        m_readOnly->setText(m_document->ledgerReadOnly()
                                ? tr("Read-only: %1. The runs can be viewed, compared and exported; starting, "
                                     "continuing or rolling back is off.")
                                      .arg(m_document->readOnlyReason())
                                : QString());
        m_readOnly->setVisible(m_document->ledgerReadOnly());
        updateButtons();
    });
    // Another ledger: its runs replace the table.
    connect(m_document, &Document::ledgerChanged, this, [this](const QString &path) {
        m_ledger->setText(path);
        m_runs.clear();
        m_table->setRowCount(0);
        updateButtons();
        refresh();
    });
    updateButtons();
}

QString RunsView::ledgerPath() const
{
    return m_document->ledgerPath();
}

void RunsView::setLedgerPath(const QString &path)
{
    m_document->setLedgerPath(path);
    m_ledger->setText(m_document->ledgerPath());
}

void RunsView::chooseLedger()
{
    const QString path = QFileDialog::getSaveFileName(this, tr("Choose or create a run ledger"), ledgerPath(),
                                                      tr("Ledgers (*.sqlite *.db);;All files (*)"), nullptr,
                                                      QFileDialog::DontConfirmOverwrite);
    if (!path.isEmpty())
        setLedgerPath(path);
}

void RunsView::chooseDataset()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Choose a CounterFact or zsRE file"), QString(),
                                                      tr("JSON (*.json *.jsonl);;All files (*)"));
    if (!path.isEmpty())
        m_dataset->setCurrentText(path);
}

void RunsView::refresh()
{
    // The facade refuses a ledger that does not exist yet; that is no error here.
    if (!ledgerPath().isEmpty() && QFileInfo::exists(ledgerPath()))
        Q_EMIT listRunsRequested(ledgerPath());
}

void RunsView::startRun()
{
    const QString db = ledgerPath();
    if (db.isEmpty())
        return;
    setLedgerPath(db);
    // The facade creates the ledger but not its folder; the default folder may be new.
    QDir().mkpath(QFileInfo(db).absolutePath());
    oedit::runs::RunRequest request; // modelDir empty: the worker uses its open model
    request.dataset = m_dataset->currentText().trimmed().isEmpty() ? std::string("world")
                                                                    : m_dataset->currentText().trimmed().toStdString();
    request.method = m_method->currentText().toStdString();
    request.hparamsJson = m_hparams->overrides(m_method->currentText()).toStdString();
    request.edits = m_edits->value();
    request.evalEvery = m_every->value();
    request.seed = static_cast<unsigned long long>(m_seed->value());
    request.label = m_label->text().trimmed().toStdString();
    beginRun();
    Q_EMIT startRunRequested(db, request);
}

void RunsView::beginRun()
{
    m_running = true;
    m_firstDone = -1;
    m_runClock.start();
    m_progress->setValue(0);
    m_progress->setVisible(true);
    m_cancel->setVisible(true);
    m_cancel->setEnabled(true);
    m_remaining->setText(tr("starting…"));
    updateButtons();
}

void RunsView::showProgress(long long done, long long total)
{
    if (!m_running)
        return;
    m_progress->setValue(total > 0 ? static_cast<int>(1000 * done / total) : 0);
    // The rate since the first report excludes loading the model and the stats.
    if (m_firstDone < 0) {
        m_firstDone = done;
        m_runClock.restart();
    }
    if (done > m_firstDone) {
        const double perEdit = m_runClock.elapsed() / 1000.0 / double(done - m_firstDone);
        m_remaining->setText(tr("%1/%2 edits, about %3 left").arg(done).arg(total).arg(duration(perEdit * double(total - done))));
    } else {
        m_remaining->setText(tr("%1/%2 edits").arg(done).arg(total));
    }
}

void RunsView::endRun()
{
    m_running = false;
    m_progress->setVisible(false);
    m_cancel->setVisible(false);
    updateButtons();
}

void RunsView::showRunNotStarted(const QString &db, const QString &message)
{
    Q_UNUSED(db);
    endRun();
    m_remaining->setText(message);
}

void RunsView::showRunFinished(const QString &db, const oedit::runs::RunSummary &summary)
{
    endRun();
    if (summary.status == "cancelled")
        m_remaining->setText(tr("Run %1 cancelled after %2 of %3 edits (select it and press Resume to continue)")
                                 .arg(summary.runId).arg(summary.steps).arg(summary.planned));
    else
        m_remaining->setText(tr("Run %1 %2").arg(summary.runId).arg(QString::fromStdString(summary.status)));
    updateButtons();
    if (db == ledgerPath())
        Q_EMIT listRunsRequested(db);
}

void RunsView::showRuns(const QString &db, const RunList &runs)
{
    if (db != ledgerPath())
        return; // an answer about a ledger the user has since left
    const QList<qint64> selected = selectedRuns();
    m_runs = runs;
    const QSignalBlocker blocker(m_table);
    m_table->clearSelection();
    m_table->setRowCount(static_cast<int>(runs.size()));
    for (int row = 0; row < static_cast<int>(runs.size()); ++row) {
        const auto &run = runs[static_cast<size_t>(row)];
        const QStringList cells = {QString::number(run.runId),
                                   QString::fromStdString(run.method),
                                   QString::fromStdString(run.dataset),
                                   QString::fromStdString(run.status),
                                   QStringLiteral("%1/%2").arg(run.steps).arg(run.planned),
                                   QString::number(run.activeEdits),
                                   QString::fromStdString(run.created),
                                   QString::fromStdString(run.label)};
        for (int column = 0; column < ColumnCount; ++column) {
            auto *item = new QTableWidgetItem(cells[column]);
            if (column == ColStatus && !run.message.empty())
                item->setToolTip(QString::fromStdString(run.message));
            m_table->setItem(row, column, item);
        }
        if (selected.contains(run.runId))
            m_table->selectRow(row);
    }
    m_table->resizeColumnsToContents();
    // Keep the user's selection; views that follow it refresh with it.
    updateButtons();
    m_document->setSelectedRuns(selectedRuns());
}

QList<qint64> RunsView::selectedRuns() const
{
    QList<qint64> ids;
    for (int row = 0; row < m_table->rowCount(); ++row) {
        if (m_table->item(row, ColId) && m_table->item(row, ColId)->isSelected())
            ids << m_table->item(row, ColId)->text().toLongLong();
    }
    return ids;
}

const oedit::runs::RunSummary *RunsView::summaryOf(qint64 runId) const
{
    for (const auto &run : m_runs)
        if (run.runId == runId)
            return &run;
    return nullptr;
}

void RunsView::askRevert()
{
    const auto runs = selectedRuns();
    const auto *run = runs.isEmpty() ? nullptr : summaryOf(runs.first());
    if (!run || run->steps < 1)
        return;
    bool ok = false;
    const int step = QInputDialog::getInt(this, tr("Revert run %1").arg(run->runId),
                                          tr("Keep the edits up to step (0 reverts them all):"),
                                          static_cast<int>(run->steps - 1), 0, static_cast<int>(run->steps - 1), 1,
                                          &ok);
    if (ok)
        revertSelectedRun(step);
}

void RunsView::revertSelectedRun(qint64 step)
{
    const auto runs = selectedRuns();
    if (!runs.isEmpty())
        m_document->revertRun(runs.first(), step);
}

void RunsView::setModelDir(const QString &dir)
{
    m_hparams->setModelDir(dir);
}

void RunsView::setModelReady(bool ready)
{
    m_modelReady = ready;
    updateButtons();
}

void RunsView::setBusy(bool busy)
{
    m_busy = busy;
    updateButtons();
}

void RunsView::updateButtons()
{
    // A new ledger file is made by the first run; an existing read-only one takes nothing.
    const bool writable = !m_document->ledgerReadOnly();
    m_start->setEnabled(m_modelReady && !m_busy && !m_running && writable);
    const auto runs = selectedRuns();
    const auto *run = runs.isEmpty() ? nullptr : summaryOf(runs.first());
    // A running run cannot be rolled back (the facade refuses it too).
    const bool canRollback = writable && run && run->status != "running" && !m_running;
    m_revert->setEnabled(canRollback && run->steps >= 1);
    m_undoRollback->setEnabled(canRollback);
    m_resume->setEnabled(writable && run && (run->status == "cancelled" || run->status == "failed") && !m_running && !m_busy &&
                         run->dataset != "manual");
    m_continue->setEnabled(writable && run && runs.size() == 1 && run->dataset == "manual" && run->status != "running" &&
                           m_modelReady && !m_running && !m_busy);
}
