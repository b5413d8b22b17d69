// File helpers shared by the checkpoint reader and writer: an all-or-nothing
// file writer, a bounded whole-file reader and a JSON parser that refuses the
// things nlohmann accepts silently (duplicate keys, absurd nesting).
//
// Every failure throws CheckpointError whose message names the file and says
// what to do. Callable from any thread; nothing here holds global state.
#pragma once

#include "model/checkpoint_error.h"

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace oedit::model {

// Writes `finalPath` through a temporary file in the same folder (so the final
// rename is atomic on POSIX file systems). Until commit() succeeds the final
// path is untouched; if the object dies uncommitted (an exception, an early
// return) the temporary file is removed. The temporary name starts with '.'
// and does not end in ".safetensors", so a leftover after a power cut is never
// mistaken for a checkpoint.
class AtomicFile {
public:
    explicit AtomicFile(std::string finalPath);
    ~AtomicFile();
    AtomicFile(const AtomicFile &) = delete;
    AtomicFile &operator=(const AtomicFile &) = delete;

    void write(const void *data, std::size_t size);
    void write(const std::string &text) { write(text.data(), text.size()); }
    // Flushes the data to disk without making it visible yet: lets a caller
    // prepare several files and rename them in quick succession.
    void sync();
    // sync() if needed, then rename onto the final path. Afterwards the object
    // owns nothing.
    void commit();

    const std::string &finalPath() const { return m_finalPath; }
    const std::string &tempPath() const { return m_tempPath; }

private:
    void discard() noexcept;

    std::string m_finalPath;
    std::string m_tempPath;
    int m_fd = -1;
    bool m_synced = false;
};

// Reads a whole (small) file such as config.json. Refuses files larger than
// maxBytes before allocating, so a mistaken path to a 10 GB file fails fast.
std::string readSmallFile(const std::string &path, std::size_t maxBytes);

// Parses JSON text, rejecting duplicate keys in any object (nlohmann would keep
// the last one, and two readers of the same file could then disagree) and
// nesting deeper than maxDepth. `what` names the source in error messages.
nlohmann::json parseStrictJson(const char *begin, const char *end, const std::string &what, int maxDepth);

} // namespace oedit::model
