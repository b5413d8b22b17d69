// Whether a ledger file can be written, asked before anything is written, so
// the workbench can say so when it shows the ledger rather than when a
// rollback or a run is refused. A small header of its own: the views that
// ask include nothing else of the ledger.
#pragma once

#include "oedit/status.h"

#include <string>

namespace oedit::runs {

struct LedgerAccess {
    bool readOnly = false;
    std::string reason; // why, when read-only (a newer schema, the file's or folder's permissions)
};

// Opens the existing ledger `db` as any reader does (an older schema is
// migrated then, after its backup) and reports whether changes are possible.
Expected<LedgerAccess> ledgerAccess(const std::string &db);

} // namespace oedit::runs
