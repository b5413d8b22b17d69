// oedit_sentencepiece: the only code that links libsentencepiece (see
// sentencepiece_backend.h for why it is a separately loaded module).
#include "model/sentencepiece_backend.h"

#include <sentencepiece_processor.h>

#include <exception>
#include <memory>
#include <string_view>

namespace {

using oedit::model::SentencePieceBackend;

class Backend final : public SentencePieceBackend {
public:
    sentencepiece::SentencePieceProcessor processor;

    bool encode(const std::string &text, std::vector<int> &ids, std::string &error) const override
    {
        try {
            const auto status = processor.Encode(text, &ids);
            if (!status.ok())
                error = status.ToString();
            return status.ok();
        } catch (const std::exception &e) {
            error = e.what();
            return false;
        }
    }

    bool decode(const std::vector<int> &ids, std::string &text, std::string &error) const override
    {
        try {
            const auto status = processor.Decode(ids, &text);
            if (!status.ok())
                error = status.ToString();
            return status.ok();
        } catch (const std::exception &e) {
            error = e.what();
            return false;
        }
    }

    int pieceCount() const override { return processor.GetPieceSize(); }
    std::string piece(int id) const override { return processor.IdToPiece(id); }

    PieceKind pieceKind(int id) const override
    {
        if (processor.IsControl(id))
            return PieceKind::Control;
        if (processor.IsUnknown(id))
            return PieceKind::Unknown;
        if (processor.IsByte(id))
            return PieceKind::Byte;
        return PieceKind::Normal;
    }

    int bosId() const override { return processor.bos_id(); }
    int eosId() const override { return processor.eos_id(); }
};

} // namespace

extern "C" __attribute__((visibility("default"))) SentencePieceBackend *
oedit_sentencepiece_create_v1(const char *data, size_t size, std::string *error)
{
    try {
        auto backend = std::make_unique<Backend>();
        const auto status = backend->processor.LoadFromSerializedProto(std::string_view(data, size));
        if (!status.ok()) {
            *error = status.ToString();
            return nullptr;
        }
        return backend.release();
    } catch (const std::exception &e) {
        *error = e.what();
        return nullptr;
    }
}

// The factory's type must match what the loader casts it to.
static_assert(std::is_same_v<decltype(&oedit_sentencepiece_create_v1), oedit::model::CreateSentencePieceBackend>);
