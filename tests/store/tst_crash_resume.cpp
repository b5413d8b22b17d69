// Crash safety of `oedit run` (slow): a sequential O-Edit+ run on the mini
// model is killed with SIGKILL at several random points and resumed each
// time with `oedit run --resume`. After every kill the ledger must pass
// PRAGMA integrity_check, hold the committed edits as steps 1..n with no gap
// or repeat, never fewer than before the kill, each the request the plan
// puts at that step. At the end the run's exported weights must equal those
// of an uninterrupted run of the same plan in another ledger (within 1e-6),
// and both ledgers must hold the same edits and evaluation checkpoints.
//
// Kill points are chosen by progress, not by wall time: the test watches the
// ledger (a WAL reader) until the run reaches a random step, then waits a
// random fraction of the time one step of the uninterrupted run took (eight
// such points, steps drawn from 1..12, sorted), so each kill falls inside an
// edit, an evaluation or a commit whatever the machine's speed.
// OEDIT_CRASH_SEED=N repeats a sequence.
//
// A full disk, simulated with a file size limit (RLIMIT_FSIZE, SIGXFSZ
// ignored: writes fail with EFBIG as they would with ENOSPC): the run stops
// with a message, the ledger passes the same checks, and a resume once space
// is back ends with the uninterrupted run's weights; an export into the full
// disk leaves neither the folder nor a partial one behind.
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRandomGenerator>
#include <QTemporaryDir>
#include <QtTest>

#include <sqlite3.h>

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

namespace {

constexpr int kEdits = 12;
constexpr int kEvalEvery = 4;
constexpr int kKills = 8;
constexpr int kPlanSeed = 17;

// A read-only view of a ledger file through the SQLite C API (not the
// product's Ledger class: the test must not share the code it checks).
class LedgerView {
public:
    // readOnly while oedit may be writing; read-write after a kill, so that a
    // WAL left behind is recovered as the next oedit would recover it.
    LedgerView(const QString &path, bool readOnly)
    {
        const int flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
        if (sqlite3_open_v2(path.toUtf8().constData(), &m_db, flags, nullptr) != SQLITE_OK) {
            m_error = QStringLiteral("cannot open %1: %2").arg(path, QString::fromUtf8(sqlite3_errmsg(m_db)));
            sqlite3_close(m_db);
            m_db = nullptr;
            return;
        }
        sqlite3_busy_timeout(m_db, 10000);
    }
    ~LedgerView() { sqlite3_close(m_db); }
    LedgerView(const LedgerView &) = delete;
    LedgerView &operator=(const LedgerView &) = delete;

    bool ok() const { return m_db != nullptr; }
    QString error() const { return m_error; }

    // Every row of `sql` as strings (NULL as an empty string).
    QList<QStringList> rows(const char *sql)
    {
        QList<QStringList> out;
        sqlite3_stmt *statement = nullptr;
        if (sqlite3_prepare_v2(m_db, sql, -1, &statement, nullptr) != SQLITE_OK) {
            m_error = QStringLiteral("%1: %2").arg(QString::fromUtf8(sql), QString::fromUtf8(sqlite3_errmsg(m_db)));
            return out;
        }
        int rc;
        while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
            QStringList row;
            for (int i = 0; i < sqlite3_column_count(statement); ++i) {
                const auto *text = reinterpret_cast<const char *>(sqlite3_column_text(statement, i));
                row << (text ? QString::fromUtf8(text) : QString());
            }
            out << row;
        }
        if (rc != SQLITE_DONE)
            m_error = QStringLiteral("%1: %2").arg(QString::fromUtf8(sql), QString::fromUtf8(sqlite3_errmsg(m_db)));
        sqlite3_finalize(statement);
        return out;
    }

private:
    sqlite3 *m_db = nullptr;
    QString m_error;
};

QString joined(const QList<int> &values)
{
    QStringList parts;
    for (const int value : values)
        parts << QString::number(value);
    return parts.join(QLatin1Char(','));
}

// What the checks look at in run 1 of a ledger, edits in step order.
struct LedgerState {
    QString error;
    QString integrity;
    QString status;
    QList<int> steps;
    QStringList requests;
    QList<int> checkpointSteps;
    QList<int> checkpointMetricCounts;
};

LedgerState readLedger(const QString &path)
{
    LedgerState state;
    if (!QFile::exists(path)) {
        state.error = path + QStringLiteral(" does not exist");
        return state;
    }
    LedgerView view(path, false);
    if (!view.ok()) {
        state.error = view.error();
        return state;
    }
    const auto integrity = view.rows("PRAGMA integrity_check");
    for (const auto &row : integrity)
        state.integrity += row.join(QLatin1Char(' ')) + QLatin1Char('\n');
    state.integrity = state.integrity.trimmed();
    const auto runs = view.rows("SELECT status FROM runs WHERE id = 1");
    state.status = runs.isEmpty() ? QString() : runs.first().value(0);
    for (const auto &row : view.rows("SELECT step, request FROM edits WHERE run = 1 ORDER BY step, id")) {
        state.steps << row.value(0).toInt();
        state.requests << row.value(1);
    }
    for (const auto &row : view.rows("SELECT c.step, (SELECT COUNT(*) FROM metrics m WHERE m.checkpoint = c.id) "
                                     "FROM checkpoints c WHERE c.run = 1 ORDER BY c.step, c.id")) {
        state.checkpointSteps << row.value(0).toInt();
        state.checkpointMetricCounts << row.value(1).toInt();
    }
    if (!view.error().isEmpty())
        state.error = view.error();
    return state;
}

// The committed edits of run 1 so far (0 while the run or the file does not exist yet).
int committedEdits(const QString &path)
{
    if (!QFile::exists(path))
        return 0;
    LedgerView view(path, true);
    if (!view.ok())
        return 0;
    const auto rows = view.rows("SELECT COUNT(*) FROM edits WHERE run = 1");
    return rows.isEmpty() ? 0 : rows.first().value(0).toInt();
}

// The float32 tensors of a safetensors file, by name (the test reads the
// format itself rather than through the code under test).
bool readF32Tensors(const QString &path, std::map<QString, QVector<float>> &out, QString &error)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        error = QStringLiteral("cannot open ") + path;
        return false;
    }
    const QByteArray bytes = file.readAll();
    if (bytes.size() < 8) {
        error = path + QStringLiteral(" is too short");
        return false;
    }
    quint64 headerSize = 0;
    for (int i = 7; i >= 0; --i)
        headerSize = (headerSize << 8) | quint8(bytes[i]);
    if (headerSize > quint64(bytes.size() - 8)) {
        error = path + QStringLiteral(": bad header length");
        return false;
    }
    const QJsonObject header = QJsonDocument::fromJson(bytes.mid(8, int(headerSize))).object();
    const qint64 dataStart = 8 + qint64(headerSize);
    for (auto it = header.begin(); it != header.end(); ++it) {
        if (it.key() == QLatin1String("__metadata__"))
            continue;
        const QJsonObject entry = it.value().toObject();
        if (entry.value(QLatin1String("dtype")).toString() != QLatin1String("F32")) {
            error = path + QStringLiteral(": tensor ") + it.key() + QStringLiteral(" is not F32");
            return false;
        }
        const QJsonArray offsets = entry.value(QLatin1String("data_offsets")).toArray();
        const qint64 begin = offsets.at(0).toInteger(), end = offsets.at(1).toInteger();
        if (begin < 0 || end < begin || dataStart + end > bytes.size() || (end - begin) % 4 != 0) {
            error = path + QStringLiteral(": bad offsets for ") + it.key();
            return false;
        }
        QVector<float> values(int((end - begin) / 4));
        std::memcpy(values.data(), bytes.constData() + dataStart + begin, size_t(end - begin));
        out[it.key()] = values;
    }
    return true;
}

// The largest absolute difference between two exported checkpoints'
// weights (infinite when they do not match in names or sizes).
double largestDifference(const QString &expectedDir, const QString &actualDir, QString &worstName, QString &error)
{
    std::map<QString, QVector<float>> expected, actual;
    if (!readF32Tensors(expectedDir + QStringLiteral("/model.safetensors"), expected, error) ||
        !readF32Tensors(actualDir + QStringLiteral("/model.safetensors"), actual, error))
        return INFINITY;
    if (actual.size() != expected.size()) {
        error = QStringLiteral("the exports hold different tensors");
        return INFINITY;
    }
    double worst = 0.0;
    for (const auto &[name, values] : expected) {
        const auto found = actual.find(name);
        if (found == actual.end() || found->second.size() != values.size()) {
            error = QStringLiteral("the exports differ in ") + name;
            return INFINITY;
        }
        for (int i = 0; i < values.size(); ++i) {
            const double difference = std::fabs(double(found->second[i]) - double(values[i]));
            if (!(difference <= worst)) { // also catches NaN
                worst = std::isnan(difference) ? INFINITY : difference;
                worstName = name;
            }
        }
    }
    return worst;
}

} // namespace

class TestCrashResume : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;

    QStringList commonArguments() const
    {
        return {QStringLiteral("--cache"), m_dir.filePath(QStringLiteral("cache"))};
    }
    QStringList startArguments(const QString &db) const
    {
        return QStringList{QStringLiteral("run"),     QStringLiteral("--db"),
                           db,                        QStringLiteral("--dataset"),
                           QStringLiteral("world"),   QStringLiteral("--method"),
                           QStringLiteral("oedit+"),  QStringLiteral("--edits"),
                           QString::number(kEdits),   QStringLiteral("--every"),
                           QString::number(kEvalEvery), QStringLiteral("--seed"),
                           QString::number(kPlanSeed), QStringLiteral("--model"),
                           QStringLiteral(OEDIT_MINI_MODEL_DIR)} +
               commonArguments();
    }
    static QStringList resumeArguments(const QString &db)
    {
        return {QStringLiteral("run"), QStringLiteral("--db"), db, QStringLiteral("--resume"), QStringLiteral("1")};
    }

    // Runs oedit to the end; returns its exit code, output in `log`. With
    // `fileSizeLimit` > 0 no file it writes may grow past that many bytes.
    static int runToEnd(const QStringList &arguments, QString &log, qint64 fileSizeLimit = 0)
    {
        QProcess process;
        process.setProcessChannelMode(QProcess::MergedChannels);
        if (fileSizeLimit > 0)
            process.setChildProcessModifier([fileSizeLimit] {
                const rlimit limit{rlim_t(fileSizeLimit), rlim_t(fileSizeLimit)};
                setrlimit(RLIMIT_FSIZE, &limit);
                signal(SIGXFSZ, SIG_IGN); // oedit ignores it too; not every writer would
            });
        process.start(QStringLiteral(OEDIT_CLI), arguments);
        if (!process.waitForStarted(-1)) {
            log = process.errorString();
            return -1;
        }
        process.waitForFinished(-1);
        log = QString::fromLocal8Bit(process.readAll());
        return process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    }

    static bool exportWeights(const QString &db, const QString &out, QString &log, qint64 fileSizeLimit = 0)
    {
        return runToEnd({QStringLiteral("export"), QStringLiteral("--db"), db, QStringLiteral("--run"),
                         QStringLiteral("1"), QStringLiteral("--out"), out},
                        log, fileSizeLimit) == 0;
    }

    // The uninterrupted run of the plan, made once; the time one step took.
    LedgerState m_reference;
    int m_stepMs = 0;
    QString referenceDb() const { return m_dir.filePath(QStringLiteral("reference.sqlite")); }
    void makeReference()
    {
        if (!m_reference.steps.isEmpty())
            return;
        QString log;
        QElapsedTimer referenceTime;
        referenceTime.start();
        QCOMPARE(runToEnd(startArguments(referenceDb()), log), 0);
        // Scales the random delays after a target step (not an assertion):
        // about one edit-and-evaluation's share of the run on this machine.
        m_stepMs = std::max(1, int(referenceTime.elapsed() / kEdits));
        m_reference = readLedger(referenceDb());
        QVERIFY2(m_reference.error.isEmpty(), qPrintable(m_reference.error));
        QCOMPARE(m_reference.status, QStringLiteral("finished"));
        QCOMPARE(m_reference.steps.size(), kEdits);
        QCOMPARE(m_reference.checkpointSteps, (QList<int>{4, 8, 12}));
        QVERIFY2(exportWeights(referenceDb(), m_dir.filePath(QStringLiteral("reference-model")), log),
                 qPrintable(log));
    }

    // The run in `db` exported and compared with the uninterrupted run's weights.
    void checkSameWeightsAsReference(const QString &db, const QString &out, const char *what)
    {
        QString log, worstName, error;
        QVERIFY2(exportWeights(db, out, log), qPrintable(log));
        const double worst = largestDifference(m_dir.filePath(QStringLiteral("reference-model")), out, worstName, error);
        QVERIFY2(error.isEmpty(), qPrintable(error));
        qInfo("%s: largest weight difference %.3g%s", what, worst,
              qPrintable(worstName.isEmpty() ? QString() : QStringLiteral(" in ") + worstName));
        QVERIFY2(worst <= 1e-6, qPrintable(QStringLiteral("weights differ by %1 in %2").arg(worst).arg(worstName)));
    }

    // The checks after every kill: integrity, steps 1..n, nothing lost, the plan's order.
    static void checkLedger(const LedgerState &state, int previousEdits, const QStringList &referenceRequests)
    {
        QVERIFY2(state.error.isEmpty(), qPrintable(state.error));
        QCOMPARE(state.integrity, QStringLiteral("ok"));
        QVERIFY2(state.steps.size() >= previousEdits,
                 qPrintable(QStringLiteral("%1 edits after the kill, %2 were committed before it: edits were lost")
                                .arg(state.steps.size())
                                .arg(previousEdits)));
        for (int i = 0; i < state.steps.size(); ++i) {
            QVERIFY2(state.steps[i] == i + 1, qPrintable(QStringLiteral("edit steps are not 1..n without gaps or "
                                                                        "repeats: %1")
                                                             .arg(joined(state.steps))));
            QVERIFY2(i < referenceRequests.size() && state.requests[i] == referenceRequests[i],
                     qPrintable(QStringLiteral("edit %1 is not the request the plan puts at that step").arg(i + 1)));
        }
        QSet<int> seen;
        for (int i = 0; i < state.checkpointSteps.size(); ++i) {
            const int step = state.checkpointSteps[i];
            QVERIFY2(!seen.contains(step), qPrintable(QStringLiteral("checkpoint at step %1 twice").arg(step)));
            seen.insert(step);
            QVERIFY2(state.checkpointMetricCounts[i] > 0,
                     qPrintable(QStringLiteral("checkpoint at step %1 has no metrics (half written)").arg(step)));
        }
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        QVERIFY2(QFile::exists(QStringLiteral(OEDIT_MINI_MODEL_DIR "/config.json")),
                 "the mini model is missing: run the mini_model_setup test first");
    }

    void killedRunResumesToTheSameWeights()
    {
        const QString crashDb = m_dir.filePath(QStringLiteral("crash.sqlite"));
        makeReference();
        if (QTest::currentTestFailed())
            return;
        const LedgerState &reference = m_reference;
        const int stepMs = m_stepMs;
        QString log;

        quint32 seed = QRandomGenerator::global()->generate();
        if (qEnvironmentVariableIsSet("OEDIT_CRASH_SEED"))
            seed = quint32(qEnvironmentVariableIntValue("OEDIT_CRASH_SEED"));
        qInfo("kill points from seed %u (OEDIT_CRASH_SEED=%u repeats them)", seed, seed);
        QRandomGenerator random(seed);

        // Eight kill points: steps drawn from 1..kEdits, in order (a step may
        // repeat: the second kill then lands later in the same edit or in
        // the evaluation after it).
        QList<int> targets;
        for (int i = 0; i < kKills; ++i)
            targets << 1 + int(random.bounded(kEdits));
        std::sort(targets.begin(), targets.end());

        int committed = 0;
        int kills = 0;
        QString status;
        for (int attempt = 0; attempt < targets.size() && status != QLatin1String("finished"); ++attempt) {
            const int target = targets[attempt];
            const int extraMs = int(random.bounded(stepMs));
            QProcess process;
            process.setProcessChannelMode(QProcess::MergedChannels);
            process.start(QStringLiteral(OEDIT_CLI), attempt == 0 ? startArguments(crashDb) : resumeArguments(crashDb));
            QVERIFY2(process.waitForStarted(-1), qPrintable(process.errorString()));
            // Wait for the target step (or the end of the run), then a little more.
            while (process.state() == QProcess::Running && committedEdits(crashDb) < target)
                process.waitForFinished(5);
            if (process.state() == QProcess::Running)
                process.waitForFinished(extraMs);
            const bool killed = process.state() == QProcess::Running;
            if (killed) {
                process.kill(); // SIGKILL
                QVERIFY(process.waitForFinished(-1));
                ++kills;
            }
            const QString output = QString::fromLocal8Bit(process.readAll());
            if (!killed)
                QVERIFY2(process.exitStatus() == QProcess::NormalExit && process.exitCode() == 0,
                         qPrintable(QStringLiteral("oedit run ended with %1 before the kill:\n%2")
                                        .arg(process.exitCode())
                                        .arg(output)));
            const LedgerState state = readLedger(crashDb);
            qInfo("attempt %d: target step %d + %d ms, %s with %lld edits committed (status %s)", attempt + 1, target,
                  extraMs, killed ? "killed" : "finished", qlonglong(state.steps.size()), qPrintable(state.status));
            checkLedger(state, committed, reference.requests);
            if (QTest::currentTestFailed())
                return;
            committed = int(state.steps.size());
            status = state.status;
        }
        QVERIFY2(kills >= 1, "no kill landed inside the run");

        // Finish the run.
        const LedgerState beforeResume = readLedger(crashDb);
        if (beforeResume.status != QLatin1String("finished"))
            QVERIFY2(runToEnd(resumeArguments(crashDb), log) == 0, qPrintable(log));
        const LedgerState finished = readLedger(crashDb);
        checkLedger(finished, committed, reference.requests);
        QCOMPARE(finished.status, QStringLiteral("finished"));
        QCOMPARE(finished.steps.size(), kEdits);
        QCOMPARE(finished.requests, reference.requests);
        QCOMPARE(finished.checkpointSteps, reference.checkpointSteps);

        // Same weights as the uninterrupted run.
        qInfo("%d kills", kills);
        checkSameWeightsAsReference(crashDb, m_dir.filePath(QStringLiteral("crash-model")), "after the kills");
    }

    void fullDiskStopsCleanlyAndResumes()
    {
        makeReference();
        if (QTest::currentTestFailed())
            return;
        // The limit must fall in the middle of the run. The WAL holds every
        // page written since the last checkpoint, so the run writes a few
        // times the finished file's size: limits from that size upwards are
        // tried until one stops the run after some of its edits. Each try
        // that stops must leave a sound ledger (or, stopped while creating
        // it, none at all).
        const qint64 referenceSize = QFileInfo(referenceDb()).size();
        QString db, log;
        LedgerState stopped;
        for (const double factor : {0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0}) {
            const qint64 limit = qint64(factor * double(referenceSize));
            db = m_dir.filePath(QStringLiteral("full-%1.sqlite").arg(limit));
            const int code = runToEnd(startArguments(db), log, limit);
            if (code == 0)
                break; // the run fits: larger limits will not stop it either
            qInfo("files limited to %lld bytes: exit %d, %s", qlonglong(limit), code,
                  qPrintable(log.trimmed().split(QLatin1Char('\n')).last()));
            QVERIFY2(code == 1, qPrintable(QStringLiteral("exit %1, expected 1:\n%2").arg(code).arg(log)));
            QVERIFY2(log.contains(QStringLiteral("disk is full")), qPrintable(log));
            stopped = readLedger(db);
            if (stopped.error.contains(QStringLiteral("no such table")))
                continue; // stopped while creating the ledger: its schema was rolled back whole
            checkLedger(stopped, 0, m_reference.requests);
            if (QTest::currentTestFailed())
                return;
            qInfo("stopped with %lld of %d edits committed", qlonglong(stopped.steps.size()), kEdits);
            if (!stopped.steps.isEmpty() && stopped.steps.size() < kEdits)
                break;
        }
        QVERIFY2(!stopped.steps.isEmpty() && stopped.steps.size() < kEdits,
                 "no file size limit stopped the run in its middle");

        // Space is back: the resume ends where the uninterrupted run did.
        QVERIFY2(runToEnd(resumeArguments(db), log) == 0, qPrintable(log));
        const LedgerState finished = readLedger(db);
        checkLedger(finished, int(stopped.steps.size()), m_reference.requests);
        QCOMPARE(finished.status, QStringLiteral("finished"));
        QCOMPARE(finished.requests, m_reference.requests);
        QCOMPARE(finished.checkpointSteps, m_reference.checkpointSteps);
        checkSameWeightsAsReference(db, m_dir.filePath(QStringLiteral("full-model")), "after the full disk");

        // An export into a full disk leaves nothing behind.
        const QString out = m_dir.filePath(QStringLiteral("export-full"));
        QVERIFY(!exportWeights(db, out, log, 64 * 1024));
        QVERIFY2(log.contains(QStringLiteral("export")) || log.contains(QStringLiteral("write")), qPrintable(log));
        qInfo("export into a full disk: %s", qPrintable(log.trimmed()));
        QVERIFY2(!QFileInfo::exists(out), "a half-written export folder was left");
        QVERIFY2(!QFileInfo::exists(m_dir.filePath(QStringLiteral(".export-full.partial"))),
                 "the export's temporary folder was left");
    }
};

QTEST_GUILESS_MAIN(TestCrashResume)
#include "tst_crash_resume.moc"
