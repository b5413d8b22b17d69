// Text <-> token ids for the models the engine loads. One abstract interface,
// three implementations behind a factory that looks at what a Hugging Face
// model folder contains:
//   tokenizer.json            HF "fast" tokenizer, model.type "BPE": byte-level
//                             (GPT-2 style) or Metaspace/▁ with byte fallback
//                             (Llama/Mistral style)          -> BpeTokenizer
//   vocab.json + merges.txt   GPT-2's original files         -> BpeTokenizer
//   tokenizer.model           SentencePiece model proto      -> SentencePieceTokenizer
// No torch here: tokenizers are plain string work and compile fast.
//
// Failure: the loaders throw std::runtime_error whose message names the file
// and the problem. encode() never throws on odd input (invalid UTF-8 bytes are
// kept as bytes); decode()/tokenText() throw std::out_of_range for an id
// outside [0, vocabSize()).
//
// Threads: a loaded Tokenizer is immutable apart from internal caches that are
// guarded, so every const method may be called from any number of threads at
// once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace oedit::model {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // The ids of the text only: no BOS/EOS is added, even when
    // addsBosByDefault() (use encodeForModel for that). Special/added tokens
    // written literally in the text (e.g. "<|endoftext|>") become their ids.
    virtual std::vector<int64_t> encode(const std::string &utf8) const = 0;
    // Concatenated bytes of the tokens; usually UTF-8, but a slice of a
    // byte-level sequence may end inside a character and is returned as is.
    virtual std::string decode(const std::vector<int64_t> &ids) const = 0;
    // One token as a person should see it in a top-k list: its text with
    // spaces as ' ' (not 'Ġ' or '▁'), see printableTokenText (bytes that are
    // not UTF-8 on their own are written "<0xE6>"). Special tokens are their
    // literal text.
    virtual std::string tokenText(int64_t id) const = 0;
    // 1 + the largest id the tokenizer can produce (the model's embedding
    // table may be larger: checkpoints pad it).
    virtual int64_t vocabSize() const = 0;
    virtual std::optional<int64_t> bosId() const = 0;
    virtual std::optional<int64_t> eosId() const = 0;
    // True when the model was trained with BOS in front of every sequence
    // (SentencePiece Llama tokenizers); encodeForModel then prepends it.
    virtual bool addsBosByDefault() const = 0;
    // What was loaded, for logs and the UI, e.g. "byte-level BPE (tokenizer.json), 50257 tokens".
    virtual std::string description() const = 0;

    // encode() with BOS in front when addsBosByDefault() and a BOS exists.
    std::vector<int64_t> encodeForModel(const std::string &utf8) const;
};

// Picks and loads the tokenizer of a model folder (see the top of this file
// for the order). The caller owns the result. Throws std::runtime_error, e.g.
// "no tokenizer in DIR: expected tokenizer.json, vocab.json + merges.txt, or
// tokenizer.model".
std::unique_ptr<Tokenizer> loadTokenizer(const std::string &modelDir);

// How a token's bytes are shown to a person (what tokenText returns): valid
// UTF-8 as is, "\n" "\t" "\r" as those two-character escapes, other control
// characters and bytes that are not UTF-8 on their own as "<0xXX>".
std::string printableTokenText(const std::string &bytes);

// Whether this build can read tokenizer.model files (libsentencepiece linked).
bool sentencePieceAvailable();

// Special-token names and the BOS policy that tokenizer_config.json (or, for
// the names, special_tokens_map.json) next to the tokenizer declare; absent
// fields stay empty. Malformed files are ignored: these are hints only.
struct SpecialTokenHints {
    std::optional<std::string> bos;
    std::optional<std::string> eos;
    std::optional<std::string> unk;
    std::optional<bool> addBos;
};
SpecialTokenHints readSpecialTokenHints(const std::string &modelDir);

} // namespace oedit::model
