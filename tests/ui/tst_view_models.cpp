// The models behind the workbench's big tables and the retention heatmap, on
// toy data whose answers are known by hand: the table model asks its
// function only for the cells a view wants, and the heatmap bins edits
// (mean success per bin) once a run has more edits than rows.
#include "celltablemodel.h"
#include "glossary.h"
#include "retentionmatrix.h"

#include <QtTest>

#include <cmath>

namespace {

oedit::runs::RunReport reportOf(const std::vector<std::vector<std::pair<long long, double>>> &checkpoints)
{
    oedit::runs::RunReport report;
    long long step = 0;
    for (const auto &scored : checkpoints) {
        oedit::runs::Checkpoint checkpoint;
        checkpoint.step = step += 10;
        checkpoint.editSuccess = scored;
        report.checkpoints.push_back(checkpoint);
    }
    return report;
}

} // namespace

class TestViewModels : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // Every metric a run records has a line for its tooltip and the glossary.
    void everyMetricIsExplained()
    {
        for (const char *name : {"ES", "EM", "PS", "PM", "NS", "NM", "score", "token_acc", "para_token_acc", "gen_EM",
                                 "unedited_acc", "unedited_n", "heldout_ppl", "fluency", "active_edits",
                                 "eval_seconds"}) {
            const QString description = metricDescription(QString::fromLatin1(name));
            QVERIFY2(description.size() > 20, name);
            QVERIFY2(glossaryHtml().contains(QStringLiteral("<b>%1</b>").arg(QString::fromLatin1(name))), name);
        }
        QVERIFY(metricDescription(QStringLiteral("delta_norm_L3")).contains(QStringLiteral("layer 3")));
        QVERIFY(metricDescription(QStringLiteral("cond_L0")).contains(QStringLiteral("Condition number")));
        QVERIFY(metricDescription(QStringLiteral("no_such_metric")).isEmpty());
        QVERIFY(metricDescription(QStringLiteral("delta_norm_Lx")).isEmpty());
    }

    void cellModelAsksOnlyForTheCellsWanted()
    {
        CellTableModel model;
        int asked = 0;
        model.reset({QStringLiteral("a"), QStringLiteral("b")}, 100000, [&asked](int row, int column, int role) {
            ++asked;
            return role == Qt::DisplayRole ? QVariant(row * 10 + column) : QVariant();
        });
        QCOMPARE(model.rowCount(), 100000);
        QCOMPARE(model.columnCount(), 2);
        QCOMPARE(asked, 0); // nothing made up front
        QCOMPARE(model.index(99999, 1).data().toInt(), 999991);
        QCOMPARE(model.headerData(1, Qt::Horizontal, Qt::DisplayRole).toString(), QStringLiteral("b"));
        QVERIFY(!model.index(100000, 0).isValid());
        QCOMPARE(asked, 1);
        QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
        model.contentsChanged();
        QCOMPARE(changed.count(), 1);
        QCOMPARE(changed.first().at(1).toModelIndex().row(), 99999);
    }

    void oneRowPerEditWhenTheyFit()
    {
        // Edits 5, 7, 9; the first checkpoint scored 5 and 7 only.
        const auto matrix = retentionMatrix(reportOf({{{5, 1.0}, {7, 0.0}}, {{5, 0.0}, {7, 1.0}, {9, 1.0}}}), 10);
        QCOMPARE(matrix.columns, 2);
        QCOMPARE(matrix.rows, 3);
        QCOMPARE(matrix.edits, 3LL);
        QCOMPARE(matrix.editsPerRow, 1LL);
        QCOMPARE(matrix.steps, (std::vector<long long>{10, 20}));
        QCOMPARE(matrix.cell(0, 0), 1.0);
        QCOMPARE(matrix.cell(0, 1), 0.0);
        QVERIFY(std::isnan(matrix.cell(0, 2))); // not made yet
        QCOMPARE(matrix.cell(1, 0), 0.0);
        QCOMPARE(matrix.cell(1, 2), 1.0);
    }

    void manyEditsAreBinnedIntoMeans()
    {
        // 7 edits into at most 3 rows: 3 edits per row (the last row holds one).
        // Scored out of id order, as a ledger may list them.
        std::vector<std::pair<long long, double>> scored;
        for (long long id = 7; id >= 1; --id)
            scored.emplace_back(id * 2, id == 2 || id == 3 || id == 7 ? 1.0 : 0.0);
        const auto matrix = retentionMatrix(reportOf({{{2, 1.0}}, scored}), 3);
        QCOMPARE(matrix.editsPerRow, 3LL);
        QCOMPARE(matrix.rows, 3);
        QCOMPARE(matrix.cell(0, 0), 1.0); // only edit 2 (id 2) scored yet
        QVERIFY(std::isnan(matrix.cell(0, 1)));
        QCOMPARE(matrix.cell(1, 0), 2.0 / 3.0); // ids 2, 4, 6: lost, kept, kept
        QCOMPARE(matrix.cell(1, 1), 0.0);       // ids 8, 10, 12
        QCOMPARE(matrix.cell(1, 2), 1.0);       // id 14
        QCOMPARE(retentionMatrix(reportOf({}), 3).rows, 0);
    }
};

QTEST_GUILESS_MAIN(TestViewModels)
#include "tst_view_models.moc"
