// Between the editing methods' results and the ledger's own rows: an
// EditResult becomes an EditRecord (tensors as raw little-endian bytes of
// float32, or float64 where the method produced float64) and back, bit for bit.
// Every method's per-edit data round-trips: rank-one factors or dense
// updates, the keys a method stores, diagnostics and timings.
//
// Failure: throws store::LedgerError naming the edit and layer for tensors
// that cannot be stored (wrong rank, no tensor) or that the ledger holds
// damaged.
#pragma once

#include "edit/editor.h"
#include "store/ledger.h"

#include <vector>

namespace oedit::run {

store::EditRecord toRecord(const edit::EditResult &result);
edit::EditResult fromRecord(const store::EditRecord &record);
std::vector<edit::LayerUpdate> fromStoredUpdates(const std::vector<store::StoredUpdate> &updates);
// One stored update that is not a keys row (rank one or dense).
edit::LayerUpdate fromStoredUpdate(const store::StoredUpdate &stored);
edit::EditRequest fromStored(const store::StoredRequest &request);
store::StoredRequest toStored(const edit::EditRequest &request);

// The ledger calls with the methods' types.
int64_t appendEdit(store::Ledger &ledger, int64_t runId, const edit::EditResult &result);
std::vector<edit::LayerUpdate> loadUpdate(store::Ledger &ledger, int64_t editId);
edit::EditResult loadEdit(store::Ledger &ledger, int64_t editId);

} // namespace oedit::run
