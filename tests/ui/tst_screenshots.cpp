// `oedit-workbench --screenshot DIR` on the mini model (offscreen): it exits
// 0 and leaves one PNG per view, each a real picture (not tiny, not a single
// colour).
#include <QDir>
#include <QImage>
#include <QProcess>
#include <QSet>
#include <QTemporaryDir>
#include <QtTest>

class TestScreenshots : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void everyViewIsAPicture()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QProcess workbench;
        workbench.setProcessChannelMode(QProcess::MergedChannels);
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
        workbench.setProcessEnvironment(environment);
        workbench.start(QStringLiteral(OEDIT_WORKBENCH),
                        {QStringLiteral("--screenshot"), dir.filePath(QStringLiteral("shots")),
                         QStringLiteral(OEDIT_MINI_MODEL_DIR)});
        QVERIFY(workbench.waitForStarted());
        QVERIFY2(workbench.waitForFinished(540000), "the screenshot tour did not finish");
        const QString output = QString::fromUtf8(workbench.readAll());
        qInfo().noquote() << output.trimmed();
        QCOMPARE(workbench.exitStatus(), QProcess::NormalExit);
        QCOMPARE(workbench.exitCode(), 0);

        const QStringList views = {QStringLiteral("model"),   QStringLiteral("facts"),     QStringLiteral("runs"),
                                   QStringLiteral("history"), QStringLiteral("subspace"), QStringLiteral("retention"),
                                   QStringLiteral("compare"), QStringLiteral("interference"),
                                   QStringLiteral("trace")};
        for (const auto &view : views) {
            const QString file = QDir(dir.filePath(QStringLiteral("shots"))).filePath(view + QStringLiteral(".png"));
            QVERIFY2(QFileInfo::exists(file), qPrintable(file));
            QVERIFY2(QFileInfo(file).size() > 10 * 1024, qPrintable(file));
            QImage image(file);
            QVERIFY2(!image.isNull(), qPrintable(file));
            QVERIFY(image.width() >= 800 && image.height() >= 500);
            // Count colours on a grid: a blank or one-colour picture has one or two.
            QSet<QRgb> colours;
            for (int y = 0; y < image.height(); y += 7)
                for (int x = 0; x < image.width(); x += 7)
                    colours.insert(image.pixel(x, y));
            QVERIFY2(colours.size() > 20, qPrintable(QStringLiteral("%1: %2 colours").arg(view).arg(colours.size())));
        }
    }
};

QTEST_GUILESS_MAIN(TestScreenshots)
#include "tst_screenshots.moc"
