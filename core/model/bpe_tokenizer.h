// Byte-pair encoding as Hugging Face's `tokenizers` runs it for the two BPE
// families the engine loads:
//   - byte-level (GPT-2, and any tokenizer.json with a ByteLevel pre-tokenizer
//     using GPT-2's split regex): text is split by GPT-2's regex, each piece's
//     UTF-8 bytes are mapped to printable characters (GPT-2's bytes_to_unicode
//     table) and merged by rank;
//   - Metaspace (Llama/Mistral tokenizer.json): spaces become '▁', a '▁' is
//     prepended, characters outside the vocabulary fall back to <0xXX> byte
//     tokens, merged by rank.
// Added/special tokens (tokenizer.json "added_tokens", "<|endoftext|>" of
// vocab.json) are matched literally in the input before anything else, the
// longest one first where several start at the same place (their lstrip /
// rstrip / single_word flags are not applied).
//
// Unicode classes for the GPT-2 regex (\p{L}, \p{N}) come from ICU; \s is
// the Unicode White_Space property, as in the Python `regex` module that
// GPT-2's encoder.py uses.
//
// Ownership and threads: a BpeTokenizer owns its tables and never changes them
// after loading; the per-word cache is guarded by a mutex, so encode() and
// every other const method are safe to call from several threads at once.
// Failure: the loaders throw std::runtime_error naming the file and the
// problem (unreadable file, bad JSON, an unsupported normalizer/pre-tokenizer,
// a merge whose parts or result are not in the vocabulary).
#pragma once

#include "model/tokenizer.h"

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace oedit::model {

// GPT-2's pre-tokenizer: the pieces that the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// splits the text into, in order; they concatenate back to the input. Bytes
// that are not valid UTF-8 count as one "other" character each. Exposed for tests.
std::vector<std::string> gpt2PreTokenize(const std::string &utf8);

class BpeTokenizer final : public Tokenizer {
public:
    // A Hugging Face tokenizer.json with model.type "BPE". `hints` (from
    // tokenizer_config.json) name BOS/EOS and say whether BOS is added.
    static std::unique_ptr<BpeTokenizer> fromTokenizerJson(const std::string &path,
                                                           const SpecialTokenHints &hints = {});
    // GPT-2's original pair: vocab.json (token -> id) and merges.txt ("a b"
    // per line after a "#version" line). `addedTokensPath`, when not empty and
    // the file exists, is an added_tokens.json (content -> id).
    static std::unique_ptr<BpeTokenizer> fromVocabAndMerges(const std::string &vocabPath, const std::string &mergesPath,
                                                            const SpecialTokenHints &hints = {},
                                                            const std::string &addedTokensPath = {});

    std::vector<int64_t> encode(const std::string &utf8) const override;
    std::string decode(const std::vector<int64_t> &ids) const override;
    std::string tokenText(int64_t id) const override;
    int64_t vocabSize() const override { return static_cast<int64_t>(m_idBytes.size()); }
    std::optional<int64_t> bosId() const override { return m_bosId; }
    std::optional<int64_t> eosId() const override { return m_eosId; }
    bool addsBosByDefault() const override { return m_addsBos; }
    std::string description() const override;

    // Id of a vocabulary or added token written as stored (byte-level tokens in
    // their mapped form, e.g. "Ġthe"); empty when there is none.
    std::optional<int64_t> tokenId(const std::string &token) const;

private:
    // How a stretch of text between added tokens becomes words for BPE.
    enum class Prepend {
        Never,
        Always,           // normalizer Prepend("▁"): every non-empty stretch
        AlwaysUnlessMeta, // Metaspace "always": unless it already starts with '▁'
        FirstUnlessMeta,  // Metaspace "first": only the stretch at the start of the text
    };
    struct AddedToken {
        std::string content;
        int32_t id = 0;
        bool special = false;
    };
    struct Merge {
        int32_t rank = 0;
        int32_t result = 0;
    };

    BpeTokenizer() = default;
    void addVocabEntry(const std::string &token, int64_t id, const std::string &source);
    void addMerge(const std::string &left, const std::string &right, const std::string &source);
    void addAddedToken(const std::string &content, int64_t id, bool special);
    void finishLoading(const SpecialTokenHints &hints, const std::optional<std::string> &templateBos,
                       const std::string &source);

    void encodeStretch(const std::string &text, bool atStart, std::vector<int64_t> &out) const;
    void encodeWord(const std::string &word, std::vector<int64_t> &out) const;
    std::vector<int32_t> mergeWord(const std::string &word) const;

    // Model.
    std::unordered_map<std::string, int32_t> m_vocab;         // token as stored -> id (added tokens too)
    std::unordered_map<uint64_t, Merge> m_merges;             // (left id << 32 | right id) -> rank, result
    std::vector<std::string> m_idBytes;                       // id -> the bytes it decodes to
    std::vector<bool> m_isAdded;                              // id -> an added token (decoded/displayed literally)
    std::vector<AddedToken> m_added;                          // sorted longest first
    std::array<std::vector<int32_t>, 256> m_addedByFirstByte; // first byte -> indices into m_added
    size_t m_mergeCount = 0;                                  // merges read so far (the next rank)
    std::array<int32_t, 256> m_byteIds{};                     // byte -> id of its symbol (-1: none)
    std::optional<int32_t> m_unkId;
    bool m_fuseUnk = false;
    bool m_byteFallback = false;
    bool m_ignoreMerges = false;

    // Pipeline.
    bool m_byteLevel = false;      // bytes -> GPT-2's printable characters
    bool m_gpt2Split = false;      // split by GPT-2's regex first
    bool m_addPrefixSpace = false; // ByteLevel add_prefix_space
    bool m_spaceToMeta = false;    // ' ' -> '▁'
    bool m_splitOnMeta = false;    // Metaspace split: every word starts at a '▁'
    bool m_nfc = false;            // NFC normalizer
    Prepend m_prepend = Prepend::Never;

    std::optional<int64_t> m_bosId;
    std::optional<int64_t> m_eosId;
    bool m_addsBos = false;
    std::string m_source; // "tokenizer.json" or "vocab.json + merges.txt", for description()

    mutable std::mutex m_cacheMutex;
    mutable std::unordered_map<std::string, std::vector<int32_t>> m_cache; // word -> ids, bounded
};

} // namespace oedit::model
