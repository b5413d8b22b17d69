// Result types of the engine facade. No exception crosses the facade: every
// call that can fail returns a Status (or an Expected<T>) whose message says
// what went wrong and what to do about it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace oedit {

// What kind of failure, where a caller offers something other than the
// message (the workbench offers to open a checkpoint with non-finite weights
// anyway, and to edit towards a word the model has never read). Almost every
// failure is General.
enum class FailureKind { General, NonFiniteWeights, UnfamiliarTarget };

class Status {
public:
    static Status success() { return Status(); }
    static Status failure(std::string message, FailureKind kind = FailureKind::General)
    {
        Status status(std::move(message));
        status.m_kind = kind;
        return status;
    }

    bool ok() const { return !m_message.has_value(); }
    FailureKind kind() const { return m_kind; }
    explicit operator bool() const { return ok(); }
    const std::string &message() const
    {
        static const std::string empty;
        return m_message ? *m_message : empty;
    }

private:
    Status() = default;
    explicit Status(std::string message) : m_message(std::move(message)) {}
    std::optional<std::string> m_message;
    FailureKind m_kind = FailureKind::General;
};

// A value or the message explaining why there is none.
template <typename T>
class Expected {
public:
    Expected(T value) : m_value(std::move(value)) {}
    Expected(Status failure) : m_status(std::move(failure)) {}

    bool ok() const { return m_value.has_value(); }
    explicit operator bool() const { return ok(); }
    const T &value() const & { return *m_value; }
    T &value() & { return *m_value; }
    T &&value() && { return std::move(*m_value); }
    const T *operator->() const { return &*m_value; }
    const std::string &message() const { return m_status.message(); }
    Status status() const { return ok() ? Status::success() : m_status; }

private:
    std::optional<T> m_value;
    Status m_status = Status::success();
};

// Progress callback for long work: return false to cancel. Called on the
// thread doing the work; must be cheap and must not throw.
using ProgressFn = std::function<bool(long long done, long long total)>;

} // namespace oedit
