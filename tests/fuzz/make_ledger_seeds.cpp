// Writes the seeds of corpus/ledger/ into the folder given as the argument:
// ledger files (mode byte 'F' and the file) and mutation programs (mode byte
// 'M' and the operations of fuzz_ledger.cpp's Mutator, a byte each, followed
// by the bytes each operation reads).
//   make_ledger_seeds tests/fuzz/corpus/ledger
#include "ledger_sample.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace {

std::string readFile(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void writeSeed(const std::string &folder, const std::string &name, const std::string &bytes)
{
    std::ofstream out(folder + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.good()) {
        std::fprintf(stderr, "cannot write %s/%s\n", folder.c_str(), name.c_str());
        std::exit(1);
    }
    std::printf("%s/%s: %zu bytes\n", folder.c_str(), name.c_str(), bytes.size());
}

// An SQLite file made by `sql` on a fresh database with 512-byte pages.
std::string sqliteFile(const std::string &scratch, const std::string &sql, int schemaVersion = 0)
{
    const std::string path = scratch + "/made.db";
    std::filesystem::remove(path);
    {
        oedit::store::Database db(path);
        db.exec("PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM");
        if (schemaVersion > 0)
            oedit::store::createSchemaForTest(db, schemaVersion);
        db.exec(sql);
    }
    std::string bytes = readFile(path);
    std::filesystem::remove(path);
    return bytes;
}

std::string program(std::initializer_list<uint8_t> ops)
{
    return std::string("M") + std::string(ops.begin(), ops.end());
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FOLDER\n", argv[0]);
        return 2;
    }
    const std::string folder = argv[1];
    std::filesystem::create_directories(folder);
    char pattern[] = "/tmp/oedit-ledger-seeds-XXXXXX";
    if (!::mkdtemp(pattern))
        return 1;
    const std::string scratch = pattern;

    // Ledger files.
    const std::string sample = scratch + "/sample.ledger";
    oedit::fuzz::writeSampleLedger(sample);
    writeSeed(folder, "file_sample", "F" + readFile(sample));
    {
        // The same rows under a newer schema: opened read-only, for viewing.
        oedit::store::Database db(sample);
        db.exec("UPDATE schema_version SET version = " + std::to_string(oedit::store::Ledger::currentSchemaVersion() + 1));
    }
    writeSeed(folder, "file_sample_newer_schema", "F" + readFile(sample));
    writeSeed(folder, "file_empty", "F");
    writeSeed(folder, "file_schema_v2",
              "F" + sqliteFile(scratch,
                               "INSERT INTO runs (method, hparams, seed, dataset, base_hash) "
                               "VALUES ('ROME', '{}', 1, 'world', '');"
                               "INSERT INTO edits (run, step, result_id, method, request, hparams, diagnostics, "
                               "timings, active) VALUES (1, 1, 1, 'ROME', '{\"subject\": \"s\"}', '{}', '{}', '{}', 0);"
                               "INSERT INTO updates (edit, position, layer, kind, dtype, rows, cols, a, b) "
                               "VALUES (1, 0, 0, 'dense', 'f64', 1, 2, zeroblob(16), NULL);"
                               "INSERT INTO rollback_events (run, kind, target_edit) VALUES (1, 'remove', 1);"
                               "INSERT INTO rollback_changes (event, edit, active) VALUES (1, 1, 0);",
                               2));
    writeSeed(folder, "file_schema_v1",
              "F" + sqliteFile(scratch,
                               "INSERT INTO runs (method, hparams, seed, dataset, base_hash) "
                               "VALUES ('ROME', '{}', 1, 'world', '');"
                               "INSERT INTO edits (run, step, result_id, method, request, hparams, diagnostics, "
                               "timings) VALUES (1, 1, 1, 'ROME', '{\"subject\": \"s\"}', '{}', '{}', '{}');"
                               "INSERT INTO updates (edit, position, layer, kind, dtype, rows, cols, a, b) "
                               "VALUES (1, 0, 0, 'rank1', 'f32', 1, 1, zeroblob(4), zeroblob(4));",
                               1));
    writeSeed(folder, "file_other_application",
              "F" + sqliteFile(scratch, "PRAGMA application_id = 1234; CREATE TABLE t (a);"));
    writeSeed(folder, "file_no_schema_version", "F" + sqliteFile(scratch, "CREATE TABLE runs (id INTEGER PRIMARY KEY);"));

    // Mutation programs (see Mutator::step for the bytes each operation reads).
    writeSeed(folder, "mutate_nothing", "M");
    // edits.request of the first edit: "{\"a\": 1" (kTexts[27]); runs.options: "[]" (kTexts[15])
    writeSeed(folder, "mutate_invalid_json", program({6, 0, 0, 27, 6, 5, 0, 15}));
    // NULL in edits.request (kColumns[15]) and in updates.a (kColumns[28])
    writeSeed(folder, "mutate_nulls", program({7, 15, 0, 7, 28, 1}));
    // the first update names edit 1000 (kIntegers[7]); a rollback change of event 1 names edit 1000
    writeSeed(folder, "mutate_dangling", program({4, 1, 0, 7, 5, 1, 7, 0, 1}));
    // kind "sparse" of the second update, dtype "f16" of the third
    writeSeed(folder, "mutate_dtype_kind", program({2, 0, 1, 9, 2, 1, 2, 1}));
    // step -1 of the first edit, the step of a random edit for the second
    writeSeed(folder, "mutate_steps", program({3, 0, 0, 5, 3, 1, 1}));
    // rows 2^40 (kIntegers[12]) of the second update, and its a BLOB 8 bytes long
    writeSeed(folder, "mutate_rows_blob", program({1, 1, 1, 12, 0, 1, 1, 16, 1, 2, 3, 4, 5, 6, 7, 8}));
    // schema_version 3, then 2^32 + 2 (kIntegers[11])
    writeSeed(folder, "mutate_schema_version", program({8, 3, 3, 8, 3, 11}));
    std::filesystem::remove_all(scratch);
    return 0;
}
