// Fuzzes GPT-2's vocab.json + merges.txt loader (core/model/bpe_tokenizer.*)
// through loadTokenizer. An input is "vocab.json\0merges.txt" or
// "vocab.json\0merges.txt\0added_tokens.json". Loading must succeed or throw
// std::runtime_error; a loaded tokenizer must encode and decode.
#include "tokenizer_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const oedit::fuzz::ScratchDir scratch;
    const std::vector<std::string> parts = oedit::fuzz::splitAtNul(data, size, 3);
    if (parts.size() < 2)
        return 0; // both files are needed for this loader to be chosen
    scratch.write("vocab.json", parts[0]);
    scratch.write("merges.txt", parts[1]);
    if (parts.size() > 2)
        scratch.write("added_tokens.json", parts[2]);
    else
        scratch.remove("added_tokens.json");
    std::unique_ptr<oedit::model::Tokenizer> tokenizer;
    try {
        tokenizer = oedit::model::loadTokenizer(scratch.path());
    } catch (const std::runtime_error &) {
        return 0;
    }
    oedit::fuzz::exerciseTokenizer(*tokenizer, parts[1]);
    return 0;
}
