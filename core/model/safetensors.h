// A strict reader and an all-or-nothing writer for the safetensors format:
//   8 bytes  little-endian u64 N (header length)
//   N bytes  JSON object {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
//   rest     the data buffer; offsets are relative to its start
//
// The reader validates the whole header when the file is opened (sizes, types,
// dtypes, offsets inside the buffer, byte size == product of shape * element
// size without overflow, no two tensors sharing bytes), so every later access is
// in bounds. A file that fails any check throws CheckpointError naming the file,
// the tensor and the problem. Pickle files (.bin, .pt) are never read here.
//
// Ownership: SafetensorsFile owns a read-only memory map of the file for its
// lifetime; tensor() returns an independent copy that outlives it. A file that
// another process truncates while mapped can still fault (SIGBUS); checkpoints
// are not expected to change under the reader. Distinct objects may be used from
// different threads; one object is safe for concurrent const calls.
#pragma once

#include "model/file_util.h"

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace oedit::model {

struct TensorInfo {
    std::string dtype;          // safetensors spelling: "F32", "BF16", "I64", ...
    std::vector<int64_t> shape; // may be empty (a scalar)
    uint64_t begin = 0;         // byte range [begin, end) in the data buffer
    uint64_t end = 0;

    uint64_t byteSize() const { return end - begin; }
};

class SafetensorsFile {
public:
    // Headers of real checkpoints are a few hundred KB; anything near this is
    // an attack or garbage, refused before allocating.
    static constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

    // Maps and validates `path`. Throws CheckpointError if the file cannot be
    // opened or fails any check.
    explicit SafetensorsFile(const std::string &path);
    ~SafetensorsFile();
    SafetensorsFile(SafetensorsFile &&other) noexcept;
    SafetensorsFile &operator=(SafetensorsFile &&other) noexcept;
    SafetensorsFile(const SafetensorsFile &) = delete;
    SafetensorsFile &operator=(const SafetensorsFile &) = delete;

    const std::string &path() const { return m_path; }
    // Tensor names in the order of their data in the file.
    std::vector<std::string> names() const;
    bool contains(const std::string &name) const { return m_infos.count(name) != 0; }
    std::size_t size() const { return m_infos.size(); }
    // Throws CheckpointError for an unknown name.
    const TensorInfo &info(const std::string &name) const;
    const std::map<std::string, std::string> &metadata() const { return m_metadata; }

    // A contiguous CPU copy with the stored dtype (F16/BF16 stay so; converting
    // is the caller's choice). Throws CheckpointError for an unknown name or a
    // dtype libtorch cannot hold in both 1.13 and 2.x (U16/U32/U64, F8_*).
    torch::Tensor tensor(const std::string &name) const;

private:
    void close() noexcept;

    std::string m_path;
    const unsigned char *m_map = nullptr; // whole file, PROT_READ
    uint64_t m_mapSize = 0;
    uint64_t m_dataStart = 0; // 8 + N
    std::unordered_map<std::string, TensorInfo> m_infos;
    std::vector<std::string> m_order; // by data offset
    std::map<std::string, std::string> m_metadata;
};

// Element size in bytes of a safetensors dtype, 0 if the dtype is unknown.
std::size_t safetensorsDtypeSize(const std::string &dtype);
// The safetensors spelling of a torch dtype; throws CheckpointError if the
// format has none that this reader maps back.
std::string safetensorsDtypeName(torch::ScalarType type);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes `tensors` (in this order) to `path` through a temporary file and a
// rename, so `path` is either the old file or the complete new one. Tensors are
// copied to CPU and made contiguous; the header is padded with spaces to a
// multiple of 8 as the reference implementation does. Throws CheckpointError
// (and leaves `path` untouched, no temporary behind) on an empty or duplicate
// name, the reserved name "__metadata__", an undefined tensor, an unsupported
// dtype, or an I/O error.
void writeSafetensors(const std::string &path, const NamedTensors &tensors,
                      const std::map<std::string, std::string> &metadata = {});

// The same, into a file the caller commits (lets saveCheckpoint replace
// several files together).
void writeSafetensors(AtomicFile &file, const NamedTensors &tensors,
                      const std::map<std::string, std::string> &metadata = {});

} // namespace oedit::model
