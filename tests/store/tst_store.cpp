// The SQLite layer under the ledger: RAII transactions, WAL, clear errors.
#include "store/sqlite_db.h"

#include <QTemporaryDir>
#include <QtTest>

using oedit::store::Database;
using oedit::store::SqliteError;
using oedit::store::Statement;
using oedit::store::Transaction;

class TestStore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void transactionRollsBackUnlessCommitted()
    {
        Database db(":memory:");
        db.exec("CREATE TABLE facts (id INTEGER PRIMARY KEY, subject TEXT NOT NULL)");
        {
            Transaction transaction(db);
            Statement insert(db, "INSERT INTO facts (subject) VALUES (?)");
            insert.bind(1, std::string("Danielle Darrieux"));
            QVERIFY(!insert.step());
            // no commit: the destructor rolls back
        }
        Statement count(db, "SELECT COUNT(*) FROM facts");
        QVERIFY(count.step());
        QCOMPARE(count.columnInt(0), int64_t(0));

        {
            Transaction transaction(db);
            Statement insert(db, "INSERT INTO facts (subject) VALUES (?)");
            insert.bind(1, std::string("Oslo"));
            insert.step();
            transaction.commit();
        }
        count.reset();
        QVERIFY(count.step());
        QCOMPARE(count.columnInt(0), int64_t(1));
    }

    void exceptionInsideTransactionLeavesNoTrace()
    {
        Database db(":memory:");
        db.exec("CREATE TABLE facts (id INTEGER PRIMARY KEY, subject TEXT NOT NULL)");
        try {
            Transaction transaction(db);
            db.exec("INSERT INTO facts (subject) VALUES ('kept?')");
            db.exec("INSERT INTO facts (subject) VALUES (NULL)"); // violates NOT NULL
            transaction.commit();
            QFAIL("the NOT NULL violation should have thrown");
        } catch (const SqliteError &error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QStringLiteral("NOT NULL")));
        }
        Statement count(db, "SELECT COUNT(*) FROM facts");
        QVERIFY(count.step());
        QCOMPARE(count.columnInt(0), int64_t(0));
    }

    void fileDatabaseUsesWalAndForeignKeys()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        Database db(dir.filePath(QStringLiteral("ledger.sqlite")).toStdString());
        QCOMPARE(QString::fromStdString(db.journalMode()), QStringLiteral("wal"));
        db.exec("CREATE TABLE runs (id INTEGER PRIMARY KEY)");
        db.exec("CREATE TABLE edits (id INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id))");
        QVERIFY_EXCEPTION_THROWN(db.exec("INSERT INTO edits (run) VALUES (42)"), SqliteError);
    }

    void blobsRoundTrip()
    {
        Database db(":memory:");
        db.exec("CREATE TABLE deltas (data BLOB)");
        const std::vector<uint8_t> bytes = {0, 1, 2, 255, 0, 7};
        Statement insert(db, "INSERT INTO deltas VALUES (?)");
        insert.bindBlob(1, bytes.data(), bytes.size());
        insert.step();
        Statement select(db, "SELECT data FROM deltas");
        QVERIFY(select.step());
        QCOMPARE(select.columnBlob(0), bytes);
    }

    void unwritableLocationIsAClearError()
    {
        try {
            Database db("/nonexistent-folder/ledger.sqlite");
            QFAIL("opening a ledger in a missing folder should fail");
        } catch (const SqliteError &error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QStringLiteral("/nonexistent-folder/ledger.sqlite")));
        }
    }
};

QTEST_GUILESS_MAIN(TestStore)
#include "tst_store.moc"
