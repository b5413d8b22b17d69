// A SentencePiece tokenizer.model (Llama 1/2, Mistral, ...). Compiled only
// when the build has SentencePiece (OEDIT_HAVE_SENTENCEPIECE); loadTokenizer
// reports a clear error otherwise. libsentencepiece itself lives in the
// oedit_sentencepiece module, loaded on first use (sentencepiece_backend.h
// says why); the module is looked for at $OEDIT_SENTENCEPIECE_MODULE, then in
// the build tree, then in <libdir>/oedit/.
//
// Ownership and threads: owns its backend, which is immutable after loading;
// SentencePiece's Encode/Decode are const and keep no state between calls, so
// every const method here is safe from several threads at once. The module
// stays loaded until the process exits.
// Failure: fromFile throws std::runtime_error naming the file and carrying
// SentencePiece's own status text (or why the module could not be loaded);
// decode()/tokenText() throw std::out_of_range for an id outside the vocabulary.
#pragma once

#include "model/tokenizer.h"

#include <memory>
#include <string>

namespace oedit::model {

class SentencePieceBackend;

class SentencePieceTokenizer final : public Tokenizer {
public:
    // `hints.addBos` overrides the default (BOS added when the model has one,
    // as Llama's tokenizer does).
    static std::unique_ptr<SentencePieceTokenizer> fromFile(const std::string &path,
                                                            const SpecialTokenHints &hints = {});
    ~SentencePieceTokenizer() override;

    std::vector<int64_t> encode(const std::string &utf8) const override;
    // SentencePiece's own decoding: control tokens (<s>, </s>) decode to
    // nothing, byte pieces are joined into characters, the dummy-prefix space
    // is dropped.
    std::string decode(const std::vector<int64_t> &ids) const override;
    std::string tokenText(int64_t id) const override;
    int64_t vocabSize() const override { return m_vocabSize; }
    std::optional<int64_t> bosId() const override { return m_bosId; }
    std::optional<int64_t> eosId() const override { return m_eosId; }
    bool addsBosByDefault() const override { return m_addsBos; }
    std::string description() const override;

private:
    SentencePieceTokenizer() = default;
    void checkId(int64_t id) const;

    std::unique_ptr<SentencePieceBackend> m_backend;
    std::string m_path;
    int64_t m_vocabSize = 0;
    std::optional<int64_t> m_bosId;
    std::optional<int64_t> m_eosId;
    bool m_addsBos = false;
};

} // namespace oedit::model
