#include "model/tokenizer.h"

#include "model/bpe_tokenizer.h"
#include "model/utf8.h"
#if OEDIT_HAVE_SENTENCEPIECE
#include "model/sentencepiece_tokenizer.h"
#endif

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace oedit::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// tokenizer_config.json and special_tokens_map.json are a few KB (a chat
// template makes them tens of KB); anything past this is not such a file.
constexpr uintmax_t kMaxHintFileBytes = 16u << 20;

// A JSON file that may be absent, broken or absurdly large: hints only, so
// all three give null.
json readOptionalJson(const fs::path &path)
{
    std::error_code error;
    if (!fs::is_regular_file(path, error))
        return json();
    const uintmax_t size = fs::file_size(path, error);
    if (error || size > kMaxHintFileBytes)
        return json();
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return json();
    return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// "bos_token": "<s>"  or  "bos_token": {"content": "<s>", ...}
std::optional<std::string> tokenName(const json &config, const char *key)
{
    if (!config.is_object() || !config.contains(key))
        return std::nullopt;
    const json &value = config[key];
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_object() && value.contains("content") && value["content"].is_string())
        return value["content"].get<std::string>();
    return std::nullopt;
}

std::unique_ptr<Tokenizer> loadSentencePiece(const fs::path &path, const SpecialTokenHints &hints)
{
#if OEDIT_HAVE_SENTENCEPIECE
    return SentencePieceTokenizer::fromFile(path.string(), hints);
#else
    (void)hints;
    throw std::runtime_error(path.string() + ": this build has no SentencePiece support (configure with "
                                             "-DOEDIT_WITH_SENTENCEPIECE=ON and libsentencepiece-dev installed)");
#endif
}

} // namespace

std::vector<int64_t> Tokenizer::encodeForModel(const std::string &utf8) const
{
    std::vector<int64_t> ids;
    const auto bos = bosId();
    if (addsBosByDefault() && bos)
        ids.push_back(*bos);
    const std::vector<int64_t> text = encode(utf8);
    ids.insert(ids.end(), text.begin(), text.end());
    return ids;
}

bool sentencePieceAvailable()
{
#if OEDIT_HAVE_SENTENCEPIECE
    return true;
#else
    return false;
#endif
}

SpecialTokenHints readSpecialTokenHints(const std::string &modelDir)
{
    const fs::path dir(modelDir);
    const json config = readOptionalJson(dir / "tokenizer_config.json");
    const json map = readOptionalJson(dir / "special_tokens_map.json");
    SpecialTokenHints hints;
    hints.bos = tokenName(config, "bos_token");
    if (!hints.bos)
        hints.bos = tokenName(map, "bos_token");
    hints.eos = tokenName(config, "eos_token");
    if (!hints.eos)
        hints.eos = tokenName(map, "eos_token");
    hints.unk = tokenName(config, "unk_token");
    if (!hints.unk)
        hints.unk = tokenName(map, "unk_token");
    if (config.is_object() && config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
        hints.addBos = config["add_bos_token"].get<bool>();
    return hints;
}

std::unique_ptr<Tokenizer> loadTokenizer(const std::string &modelDir)
{
    const fs::path dir(modelDir);
    std::error_code error;
    if (!fs::is_directory(dir, error))
        throw std::runtime_error("cannot load a tokenizer from " + modelDir + ": not a folder");
    const SpecialTokenHints hints = readSpecialTokenHints(modelDir);
    const fs::path tokenizerJson = dir / "tokenizer.json";
    const fs::path vocabJson = dir / "vocab.json";
    const fs::path mergesTxt = dir / "merges.txt";
    const fs::path spModel = dir / "tokenizer.model";

    if (fs::is_regular_file(tokenizerJson, error)) {
        try {
            return BpeTokenizer::fromTokenizerJson(tokenizerJson.string(), hints);
        } catch (const std::runtime_error &jsonError) {
            // Llama 1/2 folders ship both files: when tokenizer.json uses
            // something we do not implement, the SentencePiece model is exact.
            if (!fs::is_regular_file(spModel, error) || !sentencePieceAvailable())
                throw;
            try {
                return loadSentencePiece(spModel, hints);
            } catch (const std::runtime_error &) {
                throw jsonError;
            }
        }
    }
    if (fs::is_regular_file(vocabJson, error) && fs::is_regular_file(mergesTxt, error))
        return BpeTokenizer::fromVocabAndMerges(vocabJson.string(), mergesTxt.string(), hints,
                                                (dir / "added_tokens.json").string());
    if (fs::is_regular_file(spModel, error))
        return loadSentencePiece(spModel, hints);
    throw std::runtime_error("no tokenizer in " + modelDir +
                             ": expected tokenizer.json, vocab.json + merges.txt, or tokenizer.model");
}

std::string printableTokenText(const std::string &bytes)
{
    std::string out;
    out.reserve(bytes.size());
    for (size_t pos = 0; pos < bytes.size();) {
        const utf8::Char c = utf8::decodeAt(bytes, pos);
        if (!c.valid || c.cp < 0x20 || c.cp == 0x7F) {
            if (c.valid && c.cp == '\n') {
                out += "\\n";
            } else if (c.valid && c.cp == '\t') {
                out += "\\t";
            } else if (c.valid && c.cp == '\r') {
                out += "\\r";
            } else {
                char buffer[8];
                std::snprintf(buffer, sizeof buffer, "<0x%02X>", static_cast<unsigned char>(bytes[pos]));
                out += buffer;
            }
        } else {
            out.append(bytes, pos, c.len);
        }
        pos += c.len;
    }
    return out;
}

} // namespace oedit::model
