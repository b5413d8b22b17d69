// A small but complete edit ledger, written with the public API, for
// fuzz_ledger (the valid file its row mutations start from) and for
// make_ledger_seeds (the seeds of corpus/ledger/): two runs, one of them with
// three edits (rank-one and dense updates, f32 and f64, a keys row), a
// checkpoint with metrics, remove, revert and redo rollback events, and a run
// lease held by the process that wrote it.
#pragma once

#include "store/ledger.h"
#include "store/sqlite_db.h"

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace oedit::fuzz {

inline store::StoredTensor sampleTensor(const std::string &dtype, std::vector<int64_t> shape, double first)
{
    store::StoredTensor t;
    t.dtype = dtype;
    t.shape = std::move(shape);
    const int64_t count = t.count();
    for (int64_t i = 0; i < count; ++i) {
        const double value = first + 0.25 * double(i);
        uint8_t bytes[8];
        if (dtype == "f64") {
            std::memcpy(bytes, &value, 8);
            t.bytes.insert(t.bytes.end(), bytes, bytes + 8);
        } else {
            const float narrow = float(value);
            std::memcpy(bytes, &narrow, 4);
            t.bytes.insert(t.bytes.end(), bytes, bytes + 4);
        }
    }
    return t;
}

inline store::StoredUpdate sampleRankOne(int64_t layer, const std::string &dtype, int64_t rows, int64_t cols)
{
    store::StoredUpdate u;
    u.layer = layer;
    u.kind = "rank1";
    u.a = sampleTensor(dtype, {rows}, 0.5);
    u.b = sampleTensor(dtype, {cols}, -1.0);
    return u;
}

inline store::StoredUpdate sampleMatrix(const std::string &kind, int64_t layer, const std::string &dtype, int64_t rows,
                                        int64_t cols)
{
    store::StoredUpdate u;
    u.layer = layer;
    u.kind = kind;
    u.a = sampleTensor(dtype, {rows, cols}, 2.0);
    return u;
}

// Writes the sample ledger to `path` (which must not exist). SQLite pages of
// 512 bytes keep the file near 12 KiB, small enough for a seed.
inline void writeSampleLedger(const std::string &path)
{
    {
        // The page size is fixed when the first table is written: write one
        // and drop it, so the Ledger below finds an empty database.
        sqlite3 *db = nullptr;
        if (sqlite3_open(path.c_str(), &db) != SQLITE_OK ||
            sqlite3_exec(db, "PRAGMA page_size = 512; CREATE TABLE x (a); DROP TABLE x;", nullptr, nullptr,
                         nullptr) != SQLITE_OK)
            __builtin_trap();
        sqlite3_close(db);
    }
    store::Ledger ledger(path);
    ledger.database().exec("PRAGMA synchronous = OFF");

    store::RunSpec spec;
    spec.method = "ROME";
    spec.hparams = {{"layers", {1, 2}}, {"v_lr", 0.5}};
    spec.seed = 7;
    spec.dataset = "world";
    spec.modelPath = "models/tiny";
    spec.baseModelHash = "0123456789abcdef";
    spec.options = {{"edits", 3}, {"eval_every", 2}};
    const int64_t run = ledger.createRun(spec);

    store::EditRecord first;
    first.resultId = 1;
    first.method = "ROME";
    first.hparams = spec.hparams;
    first.request = {"Paris", "{} is the capital of", " France", std::string(" Italy")};
    first.diagnostics = {{"loss_curve", {2.5, 0.5}}, {"delta_norm", 1.25}};
    first.timings = {{"total_s", 0.1}};
    first.updates = {sampleRankOne(1, "f32", 4, 3), sampleMatrix("keys", 1, "f32", 3, 2)};
    const int64_t edit1 = ledger.appendEdit(run, first);

    store::EditRecord second = first;
    second.resultId = 2;
    second.request = {"Rome", "{} lies in", " Spain", std::nullopt};
    second.updates = {sampleMatrix("dense", 2, "f32", 2, 3)};
    const int64_t edit2 = ledger.appendEdit(run, second);

    store::EditRecord third = first;
    third.resultId = 3;
    third.method = "MEMIT";
    third.updates = {sampleRankOne(1, "f64", 2, 2), sampleMatrix("dense", 2, "f64", 1, 2)};
    ledger.appendEdit(run, third);

    ledger.recordCheckpoint(run, 2, {{"efficacy", 1.0, std::nullopt}, {"retention", 0.5, edit1}});
    ledger.removeEdit(run, edit2);
    const auto revert = ledger.revertToStep(run, 1);
    ledger.undoRollback(revert.id);
    ledger.setRunStatus(run, "finished");
    ledger.takeRunLease(run); // not released: the row stays

    store::RunSpec manual;
    manual.method = "FT";
    manual.dataset = "manual";
    ledger.createRun(manual); // no model, no edits
}

} // namespace oedit::fuzz
