// What the tokenizer fuzz targets do with a tokenizer that loaded: encode a
// few texts (and a piece of the input), decode them back and show every
// token. Only the documented exceptions may escape (see model/tokenizer.h).
#pragma once

#include "fuzz_util.h"

#include "model/tokenizer.h"

#include <stdexcept>

namespace oedit::fuzz {

inline void exerciseTokenizer(const oedit::model::Tokenizer &tokenizer, const std::string &extraText)
{
    const int64_t vocab = tokenizer.vocabSize();
    if (vocab < 0)
        fail();
    for (const std::string &text : {std::string("Hello world, the mother tongue of Thogel Harn is"),
                                    std::string(" \xC3\xBC\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 <|endoftext|> <s>"),
                                    std::string("\xFF\xFE bad \xC3 utf8\n\t 12 345"), extraText.substr(0, 256)}) {
        const std::vector<int64_t> ids = tokenizer.encodeForModel(text);
        for (const int64_t id : ids)
            if (id < 0 || id >= vocab)
                fail(); // encode() may only produce ids of the vocabulary
        (void)tokenizer.decode(ids);
    }
    for (int64_t id = 0; id < vocab && id < 512; ++id)
        (void)tokenizer.tokenText(id);
    try {
        (void)tokenizer.tokenText(vocab);
        fail(); // an id past the vocabulary must be refused
    } catch (const std::out_of_range &) {
    }
    (void)tokenizer.description();
}

} // namespace oedit::fuzz
