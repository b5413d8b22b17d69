// Merging ledgers: the runs of several ledger files copied into one, so that
// runs made apart (one ledger per task of a cluster sweep, one per machine)
// can be reported, compared and browsed together.
//
// A run is copied whole: its edits with their updates, its checkpoints with
// their metrics, and its rollback events with their changes, every id
// renumbered in the target; the model it started from is found in the target
// by content hash, or added. Leases are not copied (they belong to the
// process that wrote the source).
//
// A run is recognised by what defines it and when it was created (method,
// hyperparameters, seed, data set, base model hash, options, creation time to
// the millisecond). A run already in the target with the same content (edits,
// active flags, checkpoints, metrics, rollbacks, status) is skipped, so
// merging the same ledger twice adds nothing. The same run with different
// content (one copy went on after the copies were made) is refused.
//
// All sources go in one transaction: any refusal or failure (a source of a
// newer schema, a damaged source, a model under the same path with another
// hash, a conflicting copy of a run, a full disk) leaves the target as it
// was, and a target the merge created is removed again.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace oedit::store {

struct MergedSource {
    std::string path;
    // (run id in the source, run id in the target) of each run copied, and
    // of each run the target already held.
    std::vector<std::pair<int64_t, int64_t>> added;
    std::vector<std::pair<int64_t, int64_t>> alreadyPresent;
    int64_t edits = 0;       // edits copied (with their updates)
    int64_t checkpoints = 0; // checkpoints copied (with their metrics)
    int64_t rollbacks = 0;   // rollback events copied
    std::vector<std::string> warnings;
};

struct MergeSummary {
    std::string target;
    bool created = false; // the target did not exist before the merge
    std::vector<MergedSource> sources;
};

// Merges `sources` into the ledger at `target` (created when missing). Throws
// LedgerError naming the file and the run at fault and what to do; the target
// is then unchanged.
MergeSummary mergeLedgers(const std::string &target, const std::vector<std::string> &sources);

} // namespace oedit::store
