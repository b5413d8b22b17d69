// Helpers shared by the libFuzzer targets: a scratch folder for loaders that
// read files (the code under test opens paths, as it does for the user), and
// the split of one fuzz input into several files at NUL bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace oedit::fuzz {

// A private folder under $TMPDIR (or /tmp), removed when the process exits
// normally. One per process; the fuzz targets are single-threaded.
class ScratchDir {
public:
    ScratchDir()
    {
        const char *base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/oedit-fuzz-XXXXXX";
        if (!::mkdtemp(pattern.data()))
            std::abort(); // nothing can be fuzzed without a place for the files
        m_path = pattern;
    }
    ~ScratchDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(m_path, ignored);
    }
    ScratchDir(const ScratchDir &) = delete;
    ScratchDir &operator=(const ScratchDir &) = delete;

    const std::string &path() const { return m_path; }

    // Writes `bytes` to <folder>/<name> and returns the path.
    std::string write(const std::string &name, const std::string &bytes) const
    {
        const std::string file = m_path + "/" + name;
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        out.close();
        if (!out)
            std::abort();
        return file;
    }
    void remove(const std::string &name) const
    {
        std::error_code ignored;
        std::filesystem::remove(m_path + "/" + name, ignored);
    }

private:
    std::string m_path;
};

// The input cut at its first maxParts - 1 NUL bytes: a seed holding
// "vocab.json\0merges.txt" gives two files. Missing parts are absent.
inline std::vector<std::string> splitAtNul(const uint8_t *data, size_t size, size_t maxParts)
{
    std::vector<std::string> parts;
    const char *begin = reinterpret_cast<const char *>(data);
    const char *end = begin + size;
    const char *start = begin;
    for (const char *cursor = begin; cursor < end && parts.size() + 1 < maxParts; ++cursor) {
        if (*cursor == '\0') {
            parts.emplace_back(start, cursor);
            start = cursor + 1;
        }
    }
    parts.emplace_back(start, end);
    return parts;
}

// A broken invariant: crash so that libFuzzer keeps the input.
[[noreturn]] inline void fail() { __builtin_trap(); }

} // namespace oedit::fuzz
