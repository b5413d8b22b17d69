// The seam between oedit_core and the oedit_sentencepiece module.
//
// Why a module: Debian's libsentencepiece embeds and exports its own copy of
// protobuf-lite 3.14, while libtorch brings the system libprotobuf 3.21 into
// every process. Linked normally, one of them binds to the other's functions:
// libprotobuf's start-up code crashes when libsentencepiece comes first, and
// loading a model aborts ("compiled against version 3.14.0 of the Protocol
// Buffer runtime") when libprotobuf comes first. So only the module links
// libsentencepiece, and SentencePieceTokenizer dlopen()s it with RTLD_DEEPBIND:
// inside the module, symbols resolve to libsentencepiece's own copies first.
//
// Both sides are built from this tree with the same compiler, so the interface
// may use C++ types; only the factory is looked up by name. The module
// catches everything: no exception crosses this seam.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace oedit::model {

class SentencePieceBackend {
public:
    enum class PieceKind { Normal, Control, Unknown, Byte };

    virtual ~SentencePieceBackend() = default;
    // false with `error` set when SentencePiece reports a failure.
    virtual bool encode(const std::string &text, std::vector<int> &ids, std::string &error) const = 0;
    virtual bool decode(const std::vector<int> &ids, std::string &text, std::string &error) const = 0;
    virtual int pieceCount() const = 0;
    virtual std::string piece(int id) const = 0; // as stored, e.g. "▁the", "<0x0A>", "<s>"
    virtual PieceKind pieceKind(int id) const = 0;
    virtual int bosId() const = 0; // -1: none
    virtual int eosId() const = 0;
};

// The module's one exported function: a backend for a serialized ModelProto,
// or nullptr with *error set. The caller owns the result.
using CreateSentencePieceBackend = SentencePieceBackend *(*)(const char *data, size_t size, std::string *error);
inline constexpr const char *kCreateSentencePieceBackend = "oedit_sentencepiece_create_v1";

} // namespace oedit::model
