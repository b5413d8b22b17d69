#include "retentionmatrix.h"

#include <algorithm>
#include <limits>

RetentionMatrix retentionMatrix(const oedit::runs::RunReport &report, int maxRows)
{
    RetentionMatrix out;
    std::vector<long long> ids;
    for (const auto &checkpoint : report.checkpoints)
        for (const auto &entry : checkpoint.editSuccess)
            ids.push_back(entry.first);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    out.edits = static_cast<long long>(ids.size());
    out.columns = static_cast<int>(report.checkpoints.size());
    if (ids.empty() || out.columns == 0)
        return out;
    const long long bins = std::max(1, maxRows);
    out.editsPerRow = (out.edits + bins - 1) / bins;
    out.rows = static_cast<int>((out.edits + out.editsPerRow - 1) / out.editsPerRow);
    out.cells.assign(static_cast<size_t>(out.columns) * out.rows, std::numeric_limits<double>::quiet_NaN());
    std::vector<double> sums(static_cast<size_t>(out.rows));
    std::vector<int> counts(static_cast<size_t>(out.rows));
    std::vector<std::pair<long long, double>> scored;
    for (int c = 0; c < out.columns; ++c) {
        const auto &checkpoint = report.checkpoints[static_cast<size_t>(c)];
        out.steps.push_back(checkpoint.step);
        // In id order, so each edit's index is found by walking `ids` once.
        scored = checkpoint.editSuccess;
        if (!std::is_sorted(scored.begin(), scored.end()))
            std::sort(scored.begin(), scored.end());
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(counts.begin(), counts.end(), 0);
        size_t index = 0;
        for (const auto &[id, success] : scored) {
            while (ids[index] < id)
                ++index;
            const auto row = static_cast<size_t>(static_cast<long long>(index) / out.editsPerRow);
            sums[row] += success;
            ++counts[row];
        }
        for (int r = 0; r < out.rows; ++r)
            if (counts[static_cast<size_t>(r)] > 0)
                out.cells[static_cast<size_t>(c) * out.rows + r] =
                    sums[static_cast<size_t>(r)] / counts[static_cast<size_t>(r)];
    }
    return out;
}
