// A thin RAII layer over the SQLite C API, in the manner of SQLiteCpp.
//
// One Database per thread (SQLite connections are not shared across threads
// here). Every failing call throws SqliteError naming the statement and
// SQLite's message; the engine facade catches it and returns a Status.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace oedit::store {

class SqliteError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Database {
public:
    enum class Access {
        ReadWrite, // creates the file if needed; WAL journaling (files only)
        ReadOnly,  // never writes: SQLite refuses every change (query_only)
        Immutable, // read-only, for a file in a folder that cannot hold the WAL's
                   // -shm file; assumes nobody else changes the file meanwhile
    };
    // Opens the file at `path`, or an in-memory database for ":memory:".
    // Turns on foreign keys, and WAL journaling for a file opened ReadWrite.
    explicit Database(const std::string &path, Access access = Access::ReadWrite);
    ~Database();
    Database(const Database &) = delete;
    Database &operator=(const Database &) = delete;

    void exec(const std::string &sql);
    int64_t lastInsertId() const;
    std::string journalMode();
    sqlite3 *handle() const { return m_db; }

private:
    sqlite3 *m_db = nullptr;
};

class Statement {
public:
    Statement(Database &db, const std::string &sql);
    ~Statement();
    Statement(const Statement &) = delete;
    Statement &operator=(const Statement &) = delete;

    // Parameters are 1-based, as in SQLite.
    void bind(int index, int64_t value);
    void bind(int index, double value);
    void bind(int index, const std::string &value);
    void bindBlob(int index, const void *data, size_t size);
    void bindNull(int index);
    // Binds column `column` of `from`'s current row as it is (any type, BLOBs
    // without a copy into our own buffer): copies rows between two databases.
    void bindColumn(int index, const Statement &from, int column);

    // Advances to the next row; false when done.
    bool step();
    void reset();

    int64_t columnInt(int column) const;
    double columnDouble(int column) const;
    std::string columnText(int column) const;
    std::vector<uint8_t> columnBlob(int column) const;
    bool columnIsNull(int column) const;

private:
    void check(int rc, const char *what) const;
    sqlite3 *m_db;
    sqlite3_stmt *m_stmt = nullptr;
    std::string m_sql;
};

// Rolls back on destruction unless commit() was called, so an exception in
// the middle of a change leaves the database as it was.
class Transaction {
public:
    explicit Transaction(Database &db);
    ~Transaction();
    Transaction(const Transaction &) = delete;
    Transaction &operator=(const Transaction &) = delete;
    void commit();

private:
    Database &m_db;
    bool m_done = false;
};

} // namespace oedit::store
