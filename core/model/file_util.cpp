#include "model/file_util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace oedit::model {

namespace {

std::string errnoText(int error)
{
    return std::strerror(error);
}

std::string parentDir(const std::string &path)
{
    const auto parent = std::filesystem::path(path).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

} // namespace

AtomicFile::AtomicFile(std::string finalPath) : m_finalPath(std::move(finalPath))
{
    const std::filesystem::path target(m_finalPath);
    // Same folder as the target: rename() is only atomic within one file system.
    std::string pattern = (target.parent_path() / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    m_fd = ::mkstemp(buffer.data());
    if (m_fd < 0) {
        const int error = errno;
        throw CheckpointError("cannot create a temporary file next to " + m_finalPath + ": " + errnoText(error) +
                              "; check that the folder exists and is writable");
    }
    m_tempPath = buffer.data();
    // mkstemp creates 0600; a checkpoint is meant to be shared like any other
    // file the user writes.
    ::fchmod(m_fd, 0644);
}

AtomicFile::~AtomicFile()
{
    discard();
}

void AtomicFile::discard() noexcept
{
    if (m_fd >= 0) {
        ::close(m_fd);
        m_fd = -1;
    }
    if (!m_tempPath.empty()) {
        ::unlink(m_tempPath.c_str());
        m_tempPath.clear();
    }
}

void AtomicFile::write(const void *data, std::size_t size)
{
    if (m_fd < 0)
        throw CheckpointError("internal error: write to " + m_finalPath + " after it was committed");
    const char *cursor = static_cast<const char *>(data);
    while (size > 0) {
        // Linux writes at most ~2 GiB per call; loop for big tensors and short writes.
        const std::size_t chunk = std::min<std::size_t>(size, std::size_t(1) << 30);
        const ssize_t written = ::write(m_fd, cursor, chunk);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            const int error = errno;
            throw CheckpointError("cannot write " + m_finalPath + ": " + errnoText(error) +
                                  "; check free disk space; the previous file, if any, is unchanged");
        }
        cursor += written;
        size -= std::size_t(written);
    }
    m_synced = false;
}

void AtomicFile::sync()
{
    if (m_fd < 0)
        throw CheckpointError("internal error: sync of " + m_finalPath + " after it was committed");
    if (m_synced)
        return;
    if (::fsync(m_fd) != 0) {
        const int error = errno;
        throw CheckpointError("cannot flush " + m_finalPath + " to disk: " + errnoText(error) +
                              "; the previous file, if any, is unchanged");
    }
    m_synced = true;
}

void AtomicFile::commit()
{
    sync();
    if (::close(m_fd) != 0) {
        const int error = errno;
        m_fd = -1;
        throw CheckpointError("cannot close " + m_finalPath + ": " + errnoText(error) +
                              "; the previous file, if any, is unchanged");
    }
    m_fd = -1;
    if (::rename(m_tempPath.c_str(), m_finalPath.c_str()) != 0) {
        const int error = errno;
        throw CheckpointError("cannot replace " + m_finalPath + ": " + errnoText(error) +
                              "; the previous file, if any, is unchanged (is the path a folder?)");
    }
    m_tempPath.clear();
    // Make the rename itself durable. Failure here loses nothing already
    // visible, so it is not reported.
    const int dirFd = ::open(parentDir(m_finalPath).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirFd >= 0) {
        ::fsync(dirFd);
        ::close(dirFd);
    }
}

std::string readSmallFile(const std::string &path, std::size_t maxBytes)
{
    // O_NONBLOCK: opening a FIFO by mistake must not wait for a writer
    // forever; the check below refuses it (no effect on regular files).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        const int error = errno;
        throw CheckpointError("cannot open " + path + ": " + errnoText(error));
    }
    struct FdCloser {
        int fd;
        ~FdCloser() { ::close(fd); }
    } closer{fd};
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode))
        throw CheckpointError(path + " is not a regular file (a folder, a pipe or a device?); replace it with the "
                                     "file itself");
    if (uint64_t(info.st_size) > maxBytes)
        throw CheckpointError(path + " is " + std::to_string(info.st_size) + " bytes, more than the " +
                              std::to_string(maxBytes) + " bytes such a file can sensibly have; check the path");
    std::string text(std::size_t(info.st_size), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t got = ::read(fd, text.data() + done, text.size() - done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            const int error = errno;
            throw CheckpointError("cannot read " + path + ": " + errnoText(error));
        }
        if (got == 0)
            break; // the file shrank while we read it: parse what is there
        done += std::size_t(got);
    }
    text.resize(done);
    return text;
}

nlohmann::json parseStrictJson(const char *begin, const char *end, const std::string &what, int maxDepth)
{
    // One set of seen keys per open object; arrays push an empty marker so
    // object_end always pops its own set.
    // nlohmann stops at a NUL byte as at the end of the text: whatever
    // follows one would be ignored, so two readers could disagree.
    if (const char *nul = std::find(begin, end, '\0'); nul != end)
        throw CheckpointError(what + " holds a NUL byte at offset " + std::to_string(nul - begin) +
                              "; the file is damaged or not text: regenerate it");
    std::vector<std::set<std::string>> seenKeys;
    const auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json &parsed) {
        using Event = nlohmann::json::parse_event_t;
        switch (event) {
        case Event::object_start:
        case Event::array_start:
            if (depth >= maxDepth)
                throw CheckpointError(what + " is nested more than " + std::to_string(maxDepth) +
                                      " levels deep; the file is not in the expected format");
            if (event == Event::object_start)
                seenKeys.emplace_back();
            break;
        case Event::object_end:
            if (!seenKeys.empty())
                seenKeys.pop_back();
            break;
        case Event::key:
            if (!seenKeys.empty() && parsed.is_string() && !seenKeys.back().insert(parsed.get<std::string>()).second)
                throw CheckpointError(what + " has the key \"" + parsed.get<std::string>() +
                                      "\" twice in one object; the file is ambiguous, regenerate it");
            break;
        default:
            break;
        }
        return true;
    };
    try {
        return nlohmann::json::parse(begin, end, callback);
    } catch (const nlohmann::json::exception &error) {
        throw CheckpointError(what + " is not valid JSON (" + error.what() + "); the file is damaged or not " +
                              "in the expected format");
    }
}

} // namespace oedit::model
