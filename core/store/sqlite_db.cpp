#include "store/sqlite_db.h"

#include <sqlite3.h>

namespace oedit::store {

namespace {
[[noreturn]] void fail(sqlite3 *db, const std::string &what)
{
    throw SqliteError("SQLite: " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}
} // namespace

namespace {
// A file: URI for `path` with `query` (characters special in URIs escaped).
std::string fileUri(const std::string &path, const std::string &query)
{
    std::string uri = "file:";
    static const char *hex = "0123456789ABCDEF";
    for (const unsigned char c : path) {
        if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7F) {
            uri += '%';
            uri += hex[c >> 4];
            uri += hex[c & 15];
        } else {
            uri += static_cast<char>(c);
        }
    }
    return uri + "?" + query;
}
} // namespace

Database::Database(const std::string &path, Access access)
{
    int flags = SQLITE_OPEN_FULLMUTEX;
    std::string name = path;
    if (access == Access::ReadWrite) {
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    } else {
        flags |= SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
        if (access == Access::Immutable)
            name = fileUri(path, "immutable=1");
    }
    if (sqlite3_open_v2(name.c_str(), &m_db, flags, nullptr) != SQLITE_OK) {
        const std::string message = m_db ? sqlite3_errmsg(m_db) : "out of memory";
        sqlite3_close(m_db);
        m_db = nullptr;
        throw SqliteError("cannot open ledger '" + path + "': " + message +
                          " (check that the folder exists and is writable)");
    }
    // Another writer's transaction (an edit, a checkpoint: milliseconds; a
    // migration: seconds) is waited for this long before a call gives up.
    sqlite3_busy_timeout(m_db, 30000);
    // The destructor does not run when the constructor throws: close the
    // connection here (a garbage or locked file fails these pragmas), or its
    // memory and file descriptor stay behind.
    try {
        exec("PRAGMA foreign_keys = ON");
        if (access != Access::ReadWrite)
            exec("PRAGMA query_only = ON");
        else if (path != ":memory:")
            exec("PRAGMA journal_mode = WAL");
    } catch (...) {
        sqlite3_close_v2(m_db);
        m_db = nullptr;
        throw;
    }
}

Database::~Database()
{
    sqlite3_close_v2(m_db);
}

void Database::exec(const std::string &sql)
{
    char *error = nullptr;
    if (sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        const std::string message = error ? error : sqlite3_errmsg(m_db);
        sqlite3_free(error);
        throw SqliteError("SQLite: '" + sql.substr(0, 80) + "': " + message);
    }
}

int64_t Database::lastInsertId() const
{
    return sqlite3_last_insert_rowid(m_db);
}

std::string Database::journalMode()
{
    Statement statement(*this, "PRAGMA journal_mode");
    return statement.step() ? statement.columnText(0) : std::string();
}

Statement::Statement(Database &db, const std::string &sql) : m_db(db.handle()), m_sql(sql)
{
    if (sqlite3_prepare_v2(m_db, sql.c_str(), -1, &m_stmt, nullptr) != SQLITE_OK)
        fail(m_db, "preparing '" + sql.substr(0, 80) + "'");
}

Statement::~Statement()
{
    sqlite3_finalize(m_stmt);
}

void Statement::check(int rc, const char *what) const
{
    if (rc != SQLITE_OK)
        fail(m_db, std::string(what) + " in '" + m_sql.substr(0, 80) + "'");
}

void Statement::bind(int index, int64_t value) { check(sqlite3_bind_int64(m_stmt, index, value), "bind"); }
void Statement::bind(int index, double value) { check(sqlite3_bind_double(m_stmt, index, value), "bind"); }
void Statement::bind(int index, const std::string &value)
{
    check(sqlite3_bind_text(m_stmt, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT), "bind");
}
void Statement::bindBlob(int index, const void *data, size_t size)
{
    check(sqlite3_bind_blob64(m_stmt, index, data, size, SQLITE_TRANSIENT), "bind");
}
void Statement::bindNull(int index) { check(sqlite3_bind_null(m_stmt, index), "bind"); }
void Statement::bindColumn(int index, const Statement &from, int column)
{
    check(sqlite3_bind_value(m_stmt, index, sqlite3_column_value(from.m_stmt, column)), "bind");
}

bool Statement::step()
{
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    fail(m_db, "step of '" + m_sql.substr(0, 80) + "'");
}

void Statement::reset()
{
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
}

int64_t Statement::columnInt(int column) const { return sqlite3_column_int64(m_stmt, column); }
double Statement::columnDouble(int column) const { return sqlite3_column_double(m_stmt, column); }
std::string Statement::columnText(int column) const
{
    const auto *text = sqlite3_column_text(m_stmt, column);
    return text ? std::string(reinterpret_cast<const char *>(text), sqlite3_column_bytes(m_stmt, column)) : std::string();
}
std::vector<uint8_t> Statement::columnBlob(int column) const
{
    const auto *data = static_cast<const uint8_t *>(sqlite3_column_blob(m_stmt, column));
    return data ? std::vector<uint8_t>(data, data + sqlite3_column_bytes(m_stmt, column)) : std::vector<uint8_t>();
}
bool Statement::columnIsNull(int column) const { return sqlite3_column_type(m_stmt, column) == SQLITE_NULL; }

Transaction::Transaction(Database &db) : m_db(db)
{
    m_db.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction()
{
    if (!m_done) {
        try {
            m_db.exec("ROLLBACK");
        } catch (...) {
            // Nothing sensible to do in a destructor; SQLite rolls back on close.
        }
    }
}

void Transaction::commit()
{
    m_db.exec("COMMIT");
    m_done = true;
}

} // namespace oedit::store
