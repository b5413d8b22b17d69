// Fuzzes the tokenizer.json loader (core/model/bpe_tokenizer.*, tokenizer.cpp)
// through loadTokenizer, as a model folder is opened. An input is
// "tokenizer.json" or "tokenizer.json\0tokenizer_config.json". Loading must
// succeed or throw std::runtime_error; a loaded tokenizer must encode and
// decode without crashing.
#include "tokenizer_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const oedit::fuzz::ScratchDir scratch;
    const std::vector<std::string> parts = oedit::fuzz::splitAtNul(data, size, 2);
    scratch.write("tokenizer.json", parts[0]);
    if (parts.size() > 1)
        scratch.write("tokenizer_config.json", parts[1]);
    else
        scratch.remove("tokenizer_config.json");
    std::unique_ptr<oedit::model::Tokenizer> tokenizer;
    try {
        tokenizer = oedit::model::loadTokenizer(scratch.path());
    } catch (const std::runtime_error &) {
        return 0;
    }
    oedit::fuzz::exerciseTokenizer(*tokenizer, parts[0]);
    return 0;
}
