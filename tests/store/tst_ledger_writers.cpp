// One ledger, several writers, and ledgers that may not be written: two
// processes appending to one ledger at once lose and duplicate nothing; a
// run's lease keeps a second writer off a run and is taken over once its
// holder is killed; a newer schema, a read-only file and a read-only folder
// open for viewing and refuse every change with a message, leaving the file
// as it was; an older ledger is migrated after a backup copy is made.
//
// Other processes are forked children; the read-only cases run as the user
// "nobody" when the test runs as root (root may write any file).
#include "store/ledger.h"
#include "store/sqlite_db.h"

#include <QCryptographicHash>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <set>

using namespace oedit::store;

namespace {

EditRecord toyRecord(int64_t n)
{
    EditRecord record;
    record.resultId = n;
    record.method = "rome";
    record.request.subject = "S" + std::to_string(n);
    record.request.prompt = "{} is";
    record.request.targetNew = "T";
    StoredUpdate update;
    update.layer = 1;
    update.kind = "rank1";
    const float right[3] = {1.0F, float(n), 2.0F}, left[2] = {0.5F, 0.25F};
    update.a.shape = {3};
    update.a.bytes.assign(reinterpret_cast<const uint8_t *>(right), reinterpret_cast<const uint8_t *>(right) + 12);
    update.b.shape = {2};
    update.b.bytes.assign(reinterpret_cast<const uint8_t *>(left), reinterpret_cast<const uint8_t *>(left) + 8);
    record.updates.push_back(update);
    return record;
}

RunSpec toySpec(const std::string &label)
{
    RunSpec spec;
    spec.method = "rome";
    spec.dataset = "manual";
    spec.options = {{"label", label}};
    return spec;
}

// Runs `body` in a forked child; returns its exit code (or 128 + signal).
// The child never returns into the test framework.
int inChild(const std::function<int()> &body, pid_t *started = nullptr, bool wait = true)
{
    const pid_t pid = fork();
    if (pid == 0) {
        int code = 99;
        try {
            code = body();
        } catch (const std::exception &error) {
            fprintf(stderr, "child: %s\n", error.what());
            code = 98;
        }
        _exit(code);
    }
    if (started)
        *started = pid;
    if (!wait)
        return 0;
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

QByteArray fileHash(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return {};
    return QCryptographicHash::hash(file.readAll(), QCryptographicHash::Sha256);
}

std::string messageOf(const std::function<void()> &body)
{
    try {
        body();
    } catch (const LedgerError &error) {
        return error.what();
    }
    return {};
}

// A closed ledger with one run of `edits` edits at `path` (no -wal left).
void makeLedger(const std::string &path, int edits)
{
    Ledger ledger(path);
    const auto run = ledger.createRun(toySpec("made"));
    for (int i = 1; i <= edits; ++i)
        ledger.appendEdit(run, toyRecord(i));
    ledger.setRunStatus(run, "finished");
}

} // namespace

class TestLedgerWriters : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // Two processes append to their own runs and to one shared run at once:
    // every edit is there once, steps are 1..n without gaps, the file is sound.
    void twoWritersLoseAndDuplicateNothing()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("shared.sqlite")).toStdString();
        int64_t shared = 0;
        {
            Ledger ledger(path);
            shared = ledger.createRun(toySpec("shared"));
        }
        constexpr int kEdits = 150;
        auto writer = [&](int who) {
            return [&, who]() -> int {
                Ledger ledger(path);
                const auto own = ledger.createRun(toySpec("writer " + std::to_string(who)));
                for (int i = 1; i <= kEdits; ++i) {
                    ledger.appendEdit(own, toyRecord(i));
                    ledger.appendEdit(shared, toyRecord(who * 1000 + i));
                    if (i % 25 == 0)
                        ledger.recordCheckpoint(own, i, {{"ES", 1.0, std::nullopt}});
                }
                ledger.setRunStatus(own, "finished");
                return 0;
            };
        };
        pid_t first = 0, second = 0;
        inChild(writer(1), &first, false);
        inChild(writer(2), &second, false);
        for (const pid_t pid : {first, second}) {
            int status = 0;
            QCOMPARE(waitpid(pid, &status, 0), pid);
            QVERIFY2(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a writer failed (its message is above)");
        }
        Ledger ledger(path);
        QVERIFY(ledger.integrityCheck().ok);
        const auto runs = ledger.runs();
        QCOMPARE(runs.size(), size_t(3));
        for (const auto &run : runs) {
            const auto edits = ledger.listEdits(run.id);
            const size_t expected = run.id == shared ? 2 * kEdits : kEdits;
            QCOMPARE(edits.size(), expected);
            std::set<std::string> subjects;
            for (size_t i = 0; i < edits.size(); ++i) {
                QCOMPARE(edits[i].step, int64_t(i + 1));
                subjects.insert(edits[i].request.subject);
            }
            QCOMPARE(subjects.size(), expected); // none lost, none twice
            if (run.id != shared)
                QCOMPARE(ledger.checkpoints(run.id).size(), size_t(kEdits / 25));
        }
    }

    // A run continued by another live process is refused to a second writer,
    // naming the holder; once the holder is killed (SIGKILL: no release), the
    // lease is taken over.
    void aRunsLeaseKeepsASecondWriterOffUntilItsHolderDies()
    {
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("lease.sqlite")).toStdString();
        int64_t run = 0;
        {
            Ledger ledger(path);
            run = ledger.createRun(toySpec("leased"));
            ledger.appendEdit(run, toyRecord(1));
        }
        int ready[2];
        QCOMPARE(pipe(ready), 0);
        pid_t holder = 0;
        inChild(
            [&]() -> int {
                close(ready[0]);
                Ledger ledger(path);
                RunLease lease(ledger, run);
                ledger.appendEdit(run, toyRecord(2));
                const char byte = 'x';
                if (write(ready[1], &byte, 1) != 1)
                    return 3;
                pause(); // holds the lease until killed
                return 0;
            },
            &holder, false);
        close(ready[1]);
        char byte = 0;
        QCOMPARE(read(ready[0], &byte, 1), ssize_t(1));
        close(ready[0]);

        Ledger ledger(path);
        const auto leased = ledger.runLease(run);
        QVERIFY(leased.has_value());
        QCOMPARE(leased->pid, int64_t(holder));
        const auto refused = messageOf([&] { ledger.takeRunLease(run); });
        QVERIFY2(refused.find("process " + std::to_string(holder)) != std::string::npos, refused.c_str());
        const auto appended = messageOf([&] { ledger.appendEdit(run, toyRecord(3)); });
        QVERIFY2(appended.find("being continued by") != std::string::npos, appended.c_str());
        QVERIFY(!messageOf([&] { ledger.revertToStep(run, 0); }).empty());
        QCOMPARE(ledger.lastStep(run), int64_t(2));

        kill(holder, SIGKILL);
        int status = 0;
        QCOMPARE(waitpid(holder, &status, 0), holder);
        {
            RunLease lease(ledger, run); // taken over
            ledger.appendEdit(run, toyRecord(3));
            // The same process cannot take it twice (two windows, one process).
            const auto twice = messageOf([&] { ledger.takeRunLease(run); });
            QVERIFY2(twice.find("already being continued in this process") != std::string::npos, twice.c_str());
            // Another connection of this process writes as the holder.
            Ledger other(path);
            other.appendEdit(run, toyRecord(4));
        }
        QVERIFY(!ledger.runLease(run).has_value()); // released by the scope
        QCOMPARE(ledger.lastStep(run), int64_t(4));
        QVERIFY(ledger.integrityCheck().ok);
    }

    void newerSchemaOpensReadOnlyAndIsLeftAlone()
    {
        QTemporaryDir dir;
        const QString file = dir.filePath(QStringLiteral("future.sqlite"));
        const std::string path = file.toStdString();
        makeLedger(path, 2);
        {
            Database db(path);
            db.exec("UPDATE schema_version SET version = 99");
        }
        const auto before = fileHash(file);
        {
            Ledger ledger(path);
            QVERIFY(ledger.readOnly());
            QVERIFY2(ledger.readOnlyReason().find("99") != std::string::npos, ledger.readOnlyReason().c_str());
            QCOMPARE(ledger.runs().size(), size_t(1));
            QCOMPARE(ledger.listEdits(1).size(), size_t(2));
            QCOMPARE(ledger.loadUpdates(ledger.listEdits(1)[0].id).size(), size_t(1));
            for (const auto &message :
                 {messageOf([&] { ledger.appendEdit(1, toyRecord(3)); }),
                  messageOf([&] { ledger.createRun(toySpec("x")); }),
                  messageOf([&] { ledger.revertToStep(1, 0); }), messageOf([&] { ledger.takeRunLease(1); })}) {
                QVERIFY2(message.find("read-only") != std::string::npos, message.c_str());
                QVERIFY2(message.find("newer") != std::string::npos, message.c_str());
                QVERIFY2(message.find(path) != std::string::npos, message.c_str());
            }
        }
        QCOMPARE(fileHash(file), before);
        Database db(path);
        Statement version(db, "SELECT version FROM schema_version");
        QVERIFY(version.step());
        QCOMPARE(version.columnInt(0), int64_t(99));
    }

    void readOnlyOnRequestNeverWrites()
    {
        QTemporaryDir dir;
        const QString file = dir.filePath(QStringLiteral("view.sqlite"));
        makeLedger(file.toStdString(), 3);
        const auto before = fileHash(file);
        {
            Ledger ledger(file.toStdString(), true);
            QVERIFY(ledger.readOnly());
            QCOMPARE(ledger.activeEditCount(1), int64_t(3));
            const auto message = messageOf([&] { ledger.appendEdit(1, toyRecord(4)); });
            QVERIFY2(message.find("read-only") != std::string::npos, message.c_str());
            // Even SQL past the ledger's checks is refused by the connection.
            QVERIFY_THROWS_EXCEPTION(SqliteError, ledger.database().exec("DELETE FROM edits"));
        }
        QCOMPARE(fileHash(file), before);
        QVERIFY(!QFile::exists(file + "-wal") || QFile(file + "-wal").size() == 0);
    }

    // A file the user may not write, and a folder the user may not write
    // (no -shm can be made: read as an immutable file).
    void readOnlyFilesAndFoldersOpenForViewing_data()
    {
        QTest::addColumn<bool>("folderWritable");
        QTest::newRow("read-only file") << true;
        QTest::newRow("read-only folder") << false;
    }
    void readOnlyFilesAndFoldersOpenForViewing()
    {
        QFETCH(bool, folderWritable);
        QTemporaryDir dir;
        const QString folder = dir.filePath(QStringLiteral("ledgers"));
        QVERIFY(QDir().mkpath(folder));
        const QString file = folder + "/ro.sqlite";
        const std::string path = file.toStdString();
        makeLedger(path, 2);
        const auto before = fileHash(file);
        const bool root = geteuid() == 0;
        // As root, the child drops to nobody, who must reach the folder.
        QCOMPARE(chmod(dir.path().toUtf8().constData(), 0755), 0);
        QCOMPARE(chmod(folder.toUtf8().constData(), folderWritable ? 0777 : 0555), 0);
        QCOMPARE(chmod(file.toUtf8().constData(), 0444), 0);
        const int code = inChild([&]() -> int {
            if (root && (setgid(65534) != 0 || setuid(65534) != 0))
                return 10;
            Ledger ledger(path);
            if (!ledger.readOnly())
                return 11;
            if (ledger.runs().size() != 1 || ledger.listEdits(1).size() != 2)
                return 12;
            if (ledger.loadUpdates(ledger.listEdits(1)[1].id).size() != 1)
                return 13;
            const auto message = messageOf([&] { ledger.appendEdit(1, toyRecord(3)); });
            if (message.find("read-only") == std::string::npos || message.find("writable") == std::string::npos)
                return 14;
            fprintf(stderr, "as the user: %s\n", message.c_str());
            if (messageOf([&] { ledger.revertToStep(1, 0); }).empty())
                return 15;
            return 0;
        });
        QCOMPARE(chmod(folder.toUtf8().constData(), 0755), 0);
        QCOMPARE(code, 0);
        QCOMPARE(fileHash(file), before);
        QCOMPARE(chmod(file.toUtf8().constData(), 0644), 0);
        Ledger ledger(path);
        QVERIFY(!ledger.readOnly());
        QVERIFY(ledger.integrityCheck().ok);
        QCOMPARE(ledger.lastStep(1), int64_t(2));
    }

    // A version-2 ledger migrates to the current schema in one transaction,
    // after a copy of it is kept beside it; the copy is the old file.
    void olderLedgerIsBackedUpThenMigrated()
    {
        QTemporaryDir dir;
        const QString file = dir.filePath(QStringLiteral("v2.sqlite"));
        const std::string path = file.toStdString();
        {
            Database db(path);
            createSchemaForTest(db, 2);
            db.exec("INSERT INTO runs (method, hparams, seed, dataset, base_hash) VALUES ('rome', '{}', 1, 'w', 'h')");
        }
        {
            Ledger ledger(path);
            QCOMPARE(ledger.schemaVersion(), Ledger::currentSchemaVersion());
            QCOMPARE(QString::fromStdString(ledger.migrationBackup()), file + ".v2.bak");
            QCOMPARE(ledger.runs().size(), size_t(1));
            QVERIFY(ledger.integrityCheck().ok);
        }
        Database backup((file + ".v2.bak").toStdString());
        Statement version(backup, "SELECT version FROM schema_version");
        QVERIFY(version.step());
        QCOMPARE(version.columnInt(0), int64_t(2));
        Statement runs(backup, "SELECT count(*) FROM runs");
        QVERIFY(runs.step());
        QCOMPARE(runs.columnInt(0), int64_t(1));
        // Up to date now: opening again makes no second copy.
        Ledger again(path);
        QVERIFY(again.migrationBackup().empty());
        QVERIFY(!QFile::exists(file + ".v2.1.bak"));
    }
};

QTEST_GUILESS_MAIN(TestLedgerWriters)
#include "tst_ledger_writers.moc"
