// Training a GPT-2 style byte-level BPE tokenizer, and writing it in GPT-2's
// file formats (vocab.json, merges.txt) so any GPT-2 tokenizer loader reads it.
//
// Pre-tokenization follows GPT-2's regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with ASCII classes: letters are [A-Za-z] plus every byte >= 0x80 (so UTF-8
// words of Latin scripts stay whole, as \p{L} would keep them), digits are
// [0-9], whitespace is [ \t\n\v\f\r]. The world's text is ASCII, for which
// this is exactly GPT-2's splitting; for other scripts it is an approximation
// (e.g. non-ASCII punctuation is treated as a letter).
//
// Value types and free functions, torch-free, re-entrant. Failures come back
// as Status/Expected, nothing throws.
#pragma once

#include "oedit/status.h"

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace oedit::world {

constexpr const char *kEndOfText = "<|endoftext|>";

struct BpeModel {
    // Merges in the order learnt, as pairs of byte-level symbols (GPT-2's
    // byte-to-unicode alphabet, UTF-8 encoded, e.g. "\xc4\xa0" for a space).
    std::vector<std::pair<std::string, std::string>> merges;
    // id -> token: the 256 byte symbols in GPT-2's order, then one token per
    // merge in merge order, then "<|endoftext|>".
    std::vector<std::string> vocab;
};

// GPT-2's byte -> unicode symbol (UTF-8), e.g. ' ' -> "\xc4\xa0" (U+0120).
const std::string &byteSymbol(unsigned char byte);
// The 256 byte symbols in GPT-2's vocabulary order ('!'..'~', then the rest).
const std::vector<std::string> &byteSymbolsInVocabOrder();

// Splits text as GPT-2's pre-tokenizer does (ASCII classes, see above).
std::vector<std::string> preTokenize(const std::string &text);

// Learns vocabSize - 257 merges from `corpus` (each string is a document;
// documents are pre-tokenized separately). The most frequent adjacent pair
// wins; ties go to the pair whose (left, right) symbols sort first bytewise,
// so the result is the same on every platform. Stops early when no pair is
// left (the vocabulary is then smaller). vocabSize < 257 is an error.
Expected<BpeModel> trainByteLevelBpe(const std::vector<std::string> &corpus, int vocabSize);

// Reference encoder for learnt merges (GPT-2's algorithm: within each
// pre-token, repeatedly merge the adjacent pair of lowest rank). Meant for
// statistics and tests; the engine's tokenizer lives in core/model. Keeps a
// cache of encoded pre-tokens, so one encoder is used by one thread at a time.
class BpeEncoder {
public:
    explicit BpeEncoder(const BpeModel &model);
    std::vector<int> encode(const std::string &text);
    // ids -> bytes; ids outside the vocabulary and the special token are skipped.
    std::string decode(const std::vector<int> &ids) const;
    const std::string &token(int id) const { return m_vocab[id]; }

private:
    std::vector<int> encodePiece(const std::string &piece);

    std::vector<std::string> m_vocab;
    std::unordered_map<std::string, int> m_ids;
    std::unordered_map<std::string, int> m_ranks; // "left right" -> merge rank
    std::unordered_map<std::string, std::vector<int>> m_cache;
};

// Writes vocab.json ({"token": id, ...} in id order) and merges.txt
// ("#version: 0.2", then one "left right" line per merge) into existing `dir`.
Status writeBpeFiles(const BpeModel &model, const std::string &dir);

} // namespace oedit::world
