// The retention heatmap's numbers, apart from its drawing: one column per
// checkpoint, one row per edit in id (= run) order, 1 where the checkpoint
// scored the edit kept, 0 lost, NaN where it was not made yet. A run of more
// edits than `maxRows` has its edits binned, consecutive edits per row, each
// cell the mean over the bin's edits that checkpoint scored: 100,000 edits
// become a picture a screen can show (and a GUI thread can fill in
// milliseconds), at the price of rows that stand for several edits.
// Pure function; any thread.
#pragma once

#include "oedit/runs.h"

#include <vector>

struct RetentionMatrix {
    int columns = 0;         // checkpoints
    int rows = 0;            // bins (one per edit when not binned)
    long long edits = 0;     // distinct edits any checkpoint scored
    long long editsPerRow = 1;
    std::vector<long long> steps; // each column's checkpoint step
    std::vector<double> cells;    // column-major: cells[column * rows + row]

    double cell(int column, int row) const { return cells[static_cast<size_t>(column) * rows + row]; }
};

RetentionMatrix retentionMatrix(const oedit::runs::RunReport &report, int maxRows);
