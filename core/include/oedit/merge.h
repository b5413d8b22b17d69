// Merging ledgers through the facade: `oedit merge --into ALL.sqlite a.sqlite
// b.sqlite ...`, which gathers the runs of a cluster sweep (one ledger per
// task) into one file for reports, Compare and History.
//
// Every run of every source is copied whole, ids renumbered, the models
// de-duplicated by content hash; a run already in the target (same
// definition, start time and content) is skipped, so merging twice adds
// nothing. All in one transaction: a refusal leaves the target as it was.
#pragma once

#include "oedit/status.h"

#include <string>
#include <utility>
#include <vector>

namespace oedit::runs {

struct MergedLedger {
    std::string path;
    std::vector<std::pair<long long, long long>> added;          // (run id in the source, run id in the target)
    std::vector<std::pair<long long, long long>> alreadyPresent; // runs the target held already
    long long edits = 0, checkpoints = 0, rollbacks = 0;         // copied with the added runs
    std::vector<std::string> warnings;
};

struct MergeResult {
    std::string into;
    bool created = false; // the target was made by this merge
    std::vector<MergedLedger> sources;
    // {"into", "created", "sources": [{"path", "added": [[from, to]], "already_present": [...],
    //   "edits", "checkpoints", "rollbacks", "warnings"}]}
    std::string toJson() const;
};

// Fails, with the target unchanged, for: no source, a source that is missing,
// damaged, not a ledger or of a newer schema, the target itself as a source,
// a source whose model has another content hash than the target's model of
// the same path, and a run whose copy in the target has different content.
Expected<MergeResult> mergeLedgers(const std::string &into, const std::vector<std::string> &sources);

} // namespace oedit::runs
