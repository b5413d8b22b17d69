// The one exception type of the checkpoint code (reader, writer, config).
#pragma once

#include <stdexcept>

namespace oedit::model {

// A bad or missing file, an invalid config, or a write that could not be
// completed. The message names the file and the problem and says what to do;
// it is meant for the user as is (the engine facade turns it into a Status).
class CheckpointError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A checkpoint refused because weights are NaN or infinite (it could be
// opened with NonFiniteWeights::Warn).
class NonFiniteWeightsError : public CheckpointError {
public:
    using CheckpointError::CheckpointError;
};

} // namespace oedit::model
