#include "model/bpe_tokenizer.h"

#include "model/utf8.h"

#include <nlohmann/json.hpp>
#include <unicode/uchar.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace oedit::model {
namespace {

using nlohmann::json;

const std::string kMeta = "\xE2\x96\x81"; // U+2581 '▁', SentencePiece's visible space
// Words longer than this are not cached: Metaspace tokenizers without split
// treat a whole paragraph as one word, and caching those only costs memory.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 1 << 16;
// Files and ids from elsewhere are bounded before anything is sized from
// them: the largest real tokenizer.json files are tens of MB and the largest
// vocabularies a few hundred thousand tokens, while an id of 2^31 from a
// damaged file would otherwise allocate a table of 2^31 strings.
constexpr uint64_t kMaxTokenizerFileBytes = 128ull << 20;
constexpr int64_t kMaxVocabularySize = int64_t(1) << 22;

// GPT-2's split pattern exactly as tokenizer.json files spell it in a Split pre-tokenizer.
const char *const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

using Utf8Char = utf8::Char;

Utf8Char decodeUtf8(std::string_view s, size_t pos)
{
    return utf8::decodeAt(s, pos);
}

enum class CharClass : uint8_t { Letter, Number, Space, Other };

CharClass classify(const Utf8Char &c)
{
    if (!c.valid)
        return CharClass::Other;
    const char32_t cp = c.cp;
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
            return CharClass::Letter;
        if (cp >= '0' && cp <= '9')
            return CharClass::Number;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
            return CharClass::Space;
        return CharClass::Other;
    }
    // \s is White_Space (so U+0085 is a space and U+FEFF is not), as in the
    // Python `regex` module GPT-2 used; JavaScript's \s differs on those two.
    if (u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_WHITE_SPACE))
        return CharClass::Space;
    switch (u_charType(static_cast<UChar32>(cp))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
        return CharClass::Letter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
        return CharClass::Number;
    default:
        return CharClass::Other;
    }
}

// Byte ranges [begin, end) of GPT-2's pre-tokens. A hand-written matcher for
// the regex in bpe_tokenizer.h: at each position the alternatives are tried
// in the regex's order, and each alternative is greedy, as the regex is.
std::vector<std::pair<size_t, size_t>> gpt2Ranges(std::string_view s)
{
    std::vector<size_t> start; // byte offset of each character, plus s.size()
    std::vector<CharClass> cls;
    start.reserve(s.size() + 1);
    cls.reserve(s.size());
    for (size_t pos = 0; pos < s.size();) {
        const Utf8Char c = decodeUtf8(s, pos);
        start.push_back(pos);
        cls.push_back(classify(c));
        pos += c.len;
    }
    const size_t n = cls.size();
    start.push_back(s.size());
    auto isSpaceChar = [&](size_t i) { return s[start[i]] == ' '; };
    auto runOf = [&](size_t i, CharClass wanted) {
        while (i < n && cls[i] == wanted)
            ++i;
        return i;
    };

    std::vector<std::pair<size_t, size_t>> out;
    size_t i = 0;
    while (i < n) {
        size_t end = i + 1;
        const char first = s[start[i]];
        // 's|'t|'re|'ve|'m|'ll|'d (ASCII, case-sensitive: "'S" is not one)
        bool matched = false;
        if (first == '\'' && i + 1 < n) {
            const char a = s[start[i + 1]];
            const char b = i + 2 < n ? s[start[i + 2]] : '\0';
            if (a == 's' || a == 't' || a == 'm' || a == 'd') {
                end = i + 2, matched = true;
            } else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
                end = i + 3, matched = true;
            }
        }
        if (!matched) {
            // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional U+0020,
            // then a run of one class.
            const size_t body = (isSpaceChar(i) && i + 1 < n && cls[i + 1] != CharClass::Space) ? i + 1 : i;
            if (cls[body] != CharClass::Space) {
                end = runOf(body, cls[body]);
            } else {
                // '\s+(?!\S)|\s+': a whitespace run, less its last character
                // when a non-space follows and the run is longer than one.
                const size_t runEnd = runOf(i, CharClass::Space);
                end = (runEnd < n && runEnd - i > 1) ? runEnd - 1 : runEnd;
            }
        }
        out.emplace_back(start[i], start[end]);
        i = end;
    }
    return out;
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
// the other 68 bytes map to U+0100.. in byte order, so no token contains
// whitespace or control characters.
const std::array<char32_t, 256> &byteToUnicode()
{
    static const std::array<char32_t, 256> table = [] {
        std::array<char32_t, 256> t{};
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            t[b] = printable ? static_cast<char32_t>(b) : next++;
        }
        return t;
    }();
    return table;
}

// Inverse of byteToUnicode(): code point (< 324) -> byte, -1 where none.
int unicodeToByte(char32_t cp)
{
    static const std::vector<int> table = [] {
        std::vector<int> t(324, -1);
        const auto &forward = byteToUnicode();
        for (int b = 0; b < 256; ++b)
            t[forward[b]] = b;
        return t;
    }();
    return cp < table.size() ? table[cp] : -1;
}

std::string byteToken(int b)
{
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "<0x%02X>", b);
    return buffer;
}

// "<0x0A>" -> 10; -1 when the token is not a byte-fallback token.
int parseByteToken(const std::string &token)
{
    if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>')
        return -1;
    int value = 0;
    for (int i = 3; i < 5; ++i) {
        const char c = token[i];
        value <<= 4;
        if (c >= '0' && c <= '9')
            value |= c - '0';
        else if (c >= 'A' && c <= 'F')
            value |= c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            value |= c - 'a' + 10;
        else
            return -1;
    }
    return value;
}

std::string readFile(const std::string &path)
{
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error))
        throw std::runtime_error("cannot read " + path + ": not a regular file");
    const uintmax_t size = std::filesystem::file_size(path, error);
    if (error)
        throw std::runtime_error("cannot read " + path + ": " + error.message());
    if (size > kMaxTokenizerFileBytes)
        throw std::runtime_error(path + " is " + std::to_string(size) + " bytes, over the " +
                                 std::to_string(kMaxTokenizerFileBytes) +
                                 "-byte limit for tokenizer files; check that it is the model's tokenizer");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path);
    std::string bytes(size_t(size), '\0');
    in.read(bytes.data(), std::streamsize(bytes.size()));
    if (in.bad())
        throw std::runtime_error("error while reading " + path);
    bytes.resize(size_t(in.gcount())); // the file may have shrunk meanwhile
    return bytes;
}

// An id read from a file: an integer in [0, kMaxVocabularySize), else a
// message saying why not.
std::optional<std::string> badTokenId(const json &id)
{
    if (!id.is_number_integer())
        return "is " + id.dump() + ", not an integer";
    if (id.is_number_unsigned() ? id.get<uint64_t>() >= uint64_t(kMaxVocabularySize)
                                : (id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxVocabularySize))
        return "is " + id.dump() + ", outside [0, " + std::to_string(kMaxVocabularySize) +
               "), the ids this program accepts";
    return std::nullopt;
}

json parseJsonFile(const std::string &path)
{
    try {
        return json::parse(readFile(path));
    } catch (const json::exception &error) {
        throw std::runtime_error(path + ": not valid JSON: " + error.what());
    }
}

uint64_t pairKey(int32_t left, int32_t right)
{
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

std::string replaceAll(std::string text, const std::string &from, const std::string &to)
{
    for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
        text.replace(pos, from.size(), to);
    return text;
}

// A string field that may be null or absent.
std::optional<std::string> optionalString(const json &object, const char *key)
{
    const auto it = object.find(key);
    if (it == object.end() || !it->is_string())
        return std::nullopt;
    return it->get<std::string>();
}

bool optionalBool(const json &object, const char *key, bool fallback)
{
    const auto it = object.find(key);
    return (it != object.end() && it->is_boolean()) ? it->get<bool>() : fallback;
}

// The special token a post-processor puts in front of a single sequence, if any.
std::optional<std::string> templateBosToken(const json &processor)
{
    if (!processor.is_object())
        return std::nullopt;
    const std::string type = processor.value("type", "");
    if (type == "Sequence") {
        for (const json &inner : processor.value("processors", json::array()))
            if (auto token = templateBosToken(inner))
                return token;
    } else if (type == "TemplateProcessing") {
        const json single = processor.value("single", json::array());
        if (single.is_array() && !single.empty() && single.front().contains("SpecialToken"))
            return optionalString(single.front()["SpecialToken"], "id");
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
        const json cls = processor.value("cls", json::array());
        if (cls.is_array() && !cls.empty() && cls.front().is_string())
            return cls.front().get<std::string>();
    }
    return std::nullopt;
}

} // namespace

std::vector<std::string> gpt2PreTokenize(const std::string &utf8)
{
    std::vector<std::string> pieces;
    for (const auto &[begin, end] : gpt2Ranges(utf8))
        pieces.push_back(utf8.substr(begin, end - begin));
    return pieces;
}

// ---------------------------------------------------------------- loading

void BpeTokenizer::addVocabEntry(const std::string &token, int64_t id, const std::string &source)
{
    if (id < 0 || id >= kMaxVocabularySize)
        throw std::runtime_error(source + ": token \"" + token + "\" has id " + std::to_string(id) + " outside [0, " +
                                 std::to_string(kMaxVocabularySize) + "), the ids this program accepts");
    m_vocab[token] = static_cast<int32_t>(id);
}

void BpeTokenizer::addMerge(const std::string &left, const std::string &right, const std::string &source)
{
    const auto l = m_vocab.find(left);
    const auto r = m_vocab.find(right);
    const auto merged = m_vocab.find(left + right);
    if (l == m_vocab.end() || r == m_vocab.end() || merged == m_vocab.end())
        throw std::runtime_error(source + ": merge \"" + left + " " + right + "\" uses or makes a token (\"" +
                                 (l == m_vocab.end()   ? left
                                  : r == m_vocab.end() ? right
                                                       : left + right) +
                                 "\") that is not in the vocabulary");
    // Like GPT-2's dict(zip(merges, range)): a repeated pair keeps its last rank.
    const auto rank = static_cast<int32_t>(m_mergeCount++);
    m_merges[pairKey(l->second, r->second)] = Merge{rank, merged->second};
}

void BpeTokenizer::addAddedToken(const std::string &content, int64_t id, bool special)
{
    if (content.empty() || id < 0 || id >= kMaxVocabularySize)
        return; // callers check ids read from files (badTokenId)
    for (AddedToken &existing : m_added)
        if (existing.content == content) {
            existing.id = static_cast<int32_t>(id);
            existing.special = existing.special || special;
            return;
        }
    m_added.push_back(AddedToken{content, static_cast<int32_t>(id), special});
}

void BpeTokenizer::finishLoading(const SpecialTokenHints &hints, const std::optional<std::string> &templateBos,
                                 const std::string &source)
{
    m_source = source;
    int64_t size = 0;
    for (const auto &[token, id] : m_vocab)
        size = std::max<int64_t>(size, int64_t(id) + 1);
    for (const AddedToken &added : m_added)
        size = std::max<int64_t>(size, int64_t(added.id) + 1);
    m_idBytes.assign(static_cast<size_t>(size), std::string());
    m_isAdded.assign(static_cast<size_t>(size), false);

    // What each vocabulary token decodes to.
    for (const auto &[token, id] : m_vocab) {
        std::string bytes;
        if (m_byteLevel) {
            for (size_t pos = 0; pos < token.size();) {
                const Utf8Char c = decodeUtf8(token, pos);
                const int b = c.valid ? unicodeToByte(c.cp) : -1;
                if (b < 0) { // not a byte-level symbol (e.g. a special token): keep the text
                    bytes = token;
                    break;
                }
                bytes += static_cast<char>(b);
                pos += c.len;
            }
        } else {
            const int b = m_byteFallback ? parseByteToken(token) : -1;
            bytes = b >= 0 ? std::string(1, static_cast<char>(b)) : replaceAll(token, kMeta, " ");
        }
        m_idBytes[id] = std::move(bytes);
    }
    for (const AddedToken &added : m_added) {
        m_idBytes[added.id] = added.content;
        m_isAdded[added.id] = true;
    }

    // The initial symbol of every byte: its byte-level character, or its
    // <0xXX> fallback token.
    m_byteIds.fill(-1);
    for (int b = 0; b < 256; ++b) {
        std::string symbol;
        if (m_byteLevel)
            utf8::append(symbol, byteToUnicode()[b]);
        else
            symbol = byteToken(b);
        const auto it = m_vocab.find(symbol);
        if (it != m_vocab.end()) {
            m_byteIds[b] = it->second;
        } else if (m_byteLevel) {
            throw std::runtime_error(source + ": the vocabulary has no byte-level symbol for byte " + byteToken(b) +
                                     " (\"" + symbol + "\"), so some text could not be encoded");
        }
    }

    // Longest first, so that matching at a position takes the longest token.
    std::stable_sort(m_added.begin(), m_added.end(),
                     [](const AddedToken &a, const AddedToken &b) { return a.content.size() > b.content.size(); });
    for (auto &bucket : m_addedByFirstByte)
        bucket.clear();
    for (size_t i = 0; i < m_added.size(); ++i)
        m_addedByFirstByte[static_cast<unsigned char>(m_added[i].content[0])].push_back(static_cast<int32_t>(i));

    auto idOf = [&](const std::optional<std::string> &name) -> std::optional<int64_t> {
        return name ? tokenId(*name) : std::nullopt;
    };
    auto firstKnown = [&](std::initializer_list<const char *> names) -> std::optional<int64_t> {
        for (const char *name : names)
            if (auto id = tokenId(name))
                return id;
        return std::nullopt;
    };
    m_bosId = idOf(hints.bos);
    if (!m_bosId)
        m_bosId = idOf(templateBos);
    if (!m_bosId)
        m_bosId = firstKnown({"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>"});
    m_eosId = idOf(hints.eos);
    if (!m_eosId)
        m_eosId = firstKnown({"</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"});
    if (!m_unkId && hints.unk)
        if (auto unk = idOf(hints.unk))
            m_unkId = static_cast<int32_t>(*unk);
    m_addsBos = m_bosId.has_value() && hints.addBos.value_or(templateBos.has_value());
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::fromTokenizerJson(const std::string &path, const SpecialTokenHints &hints)
{
    const json root = parseJsonFile(path);
    std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
    BpeTokenizer &t = *tokenizer;
    auto fail = [&](const std::string &problem) { throw std::runtime_error(path + ": " + problem); };
    try {
        if (!root.is_object() || !root.contains("model") || !root["model"].is_object())
            fail("no \"model\" object: not a Hugging Face tokenizer.json");
        const json &model = root["model"];
        const std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
        if (type != "BPE")
            fail("model.type \"" + type + "\" is not supported (only BPE; WordPiece, WordLevel and Unigram are not)");
        for (const char *key : {"continuing_subword_prefix", "end_of_word_suffix"})
            if (auto affix = optionalString(model, key); affix && !affix->empty())
                fail(std::string("model.") + key + " \"" + *affix + "\" is not supported");
        if (!model.contains("vocab") || !model["vocab"].is_object())
            fail("model.vocab is missing or not an object");
        for (const auto &[token, id] : model["vocab"].items()) {
            if (const auto problem = badTokenId(id))
                fail("the id of \"" + token + "\" in model.vocab " + *problem);
            t.addVocabEntry(token, id.get<int64_t>(), path);
        }

        size_t index = 0;
        for (const json &merge : model.value("merges", json::array())) {
            ++index;
            if (merge.is_string()) {
                const std::string line = merge.get<std::string>();
                const size_t space = line.find(' ');
                if (space == std::string::npos || space == 0 || space + 1 >= line.size() ||
                    line.find(' ', space + 1) != std::string::npos)
                    fail("merge " + std::to_string(index) + " \"" + line + "\" is not two tokens separated by a space");
                t.addMerge(line.substr(0, space), line.substr(space + 1), path);
            } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
                t.addMerge(merge[0].get<std::string>(), merge[1].get<std::string>(), path);
            } else {
                fail("merge " + std::to_string(index) + " is neither \"a b\" nor [\"a\", \"b\"]");
            }
        }
        if (auto unk = optionalString(model, "unk_token")) {
            const auto it = t.m_vocab.find(*unk);
            if (it != t.m_vocab.end())
                t.m_unkId = it->second;
        }
        t.m_fuseUnk = optionalBool(model, "fuse_unk", false);
        t.m_byteFallback = optionalBool(model, "byte_fallback", false);
        t.m_ignoreMerges = optionalBool(model, "ignore_merges", false);

        for (const json &added : root.value("added_tokens", json::array()))
            if (added.is_object() && added.contains("id") && added.contains("content")) {
                if (const auto problem = badTokenId(added["id"]))
                    fail("the id of added token " + added["content"].dump() + " " + *problem);
                t.addAddedToken(added["content"].get<std::string>(), added["id"].get<int64_t>(),
                                optionalBool(added, "special", false));
            }

        // Normalizers: only what the Llama family writes (Prepend "▁", Replace " " -> "▁").
        std::function<void(const json &)> normalizer = [&](const json &n) {
            if (n.is_null())
                return;
            const std::string kind = n.value("type", "");
            if (kind == "Sequence") {
                for (const json &inner : n.value("normalizers", json::array()))
                    normalizer(inner);
            } else if (kind == "Prepend" && n.value("prepend", "") == kMeta) {
                t.m_prepend = Prepend::Always;
            } else if (kind == "Replace" && n.value("content", "") == kMeta && n.contains("pattern") &&
                       optionalString(n["pattern"], "String") == std::string(" ")) {
                t.m_spaceToMeta = true;
            } else {
                fail("normalizer " + n.dump() +
                     " is not supported (supported: none, or Prepend \"▁\" and "
                     "Replace \" \" -> \"▁\" as in Llama tokenizers)");
            }
        };
        normalizer(root.value("normalizer", json()));

        bool metaspace = false;
        std::function<void(const json &)> preTokenizer = [&](const json &p) {
            if (p.is_null())
                return;
            const std::string kind = p.value("type", "");
            if (kind == "Sequence") {
                for (const json &inner : p.value("pretokenizers", json::array()))
                    preTokenizer(inner);
            } else if (kind == "ByteLevel") {
                t.m_byteLevel = true;
                t.m_addPrefixSpace = optionalBool(p, "add_prefix_space", true);
                if (optionalBool(p, "use_regex", true))
                    t.m_gpt2Split = true;
            } else if (kind == "Metaspace") {
                if (p.value("replacement", kMeta) != kMeta)
                    fail("Metaspace replacement \"" + p.value("replacement", "") + "\" is not supported (only \"▁\")");
                metaspace = true;
                t.m_spaceToMeta = true;
                const std::string scheme =
                    optionalString(p, "prepend_scheme")
                        .value_or(optionalBool(p, "add_prefix_space", true) ? "always" : "never");
                if (scheme == "always")
                    t.m_prepend = Prepend::AlwaysUnlessMeta;
                else if (scheme == "first")
                    t.m_prepend = Prepend::FirstUnlessMeta;
                else if (scheme == "never")
                    t.m_prepend = Prepend::Never;
                else
                    fail("Metaspace prepend_scheme \"" + scheme + "\" is not known");
                t.m_splitOnMeta = optionalBool(p, "split", true);
            } else if (kind == "Split" && p.contains("pattern") &&
                       optionalString(p["pattern"], "Regex") == std::string(kGpt2Pattern) &&
                       p.value("behavior", "") == "Isolated" && !optionalBool(p, "invert", false)) {
                t.m_gpt2Split = true;
            } else {
                fail("pre_tokenizer " + p.dump().substr(0, 300) +
                     " is not supported (supported: ByteLevel with GPT-2's regex, Metaspace, none)");
            }
        };
        preTokenizer(root.value("pre_tokenizer", json()));
        if (t.m_byteLevel && (metaspace || t.m_spaceToMeta || t.m_prepend != Prepend::Never))
            fail("mixes a ByteLevel pre-tokenizer with Metaspace/▁ rules, which no known model does");
        if (!t.m_byteLevel && t.m_gpt2Split)
            fail("splits with GPT-2's regex but has no ByteLevel step");

        t.finishLoading(hints, templateBosToken(root.value("post_processor", json())),
                        t.m_byteLevel ? "byte-level BPE from tokenizer.json" : "BPE from tokenizer.json");
    } catch (const json::exception &error) {
        fail(std::string("unexpected structure: ") + error.what());
    }
    return tokenizer;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::fromVocabAndMerges(const std::string &vocabPath,
                                                               const std::string &mergesPath,
                                                               const SpecialTokenHints &hints,
                                                               const std::string &addedTokensPath)
{
    std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
    BpeTokenizer &t = *tokenizer;
    t.m_byteLevel = true;
    t.m_gpt2Split = true;

    const json vocab = parseJsonFile(vocabPath);
    if (!vocab.is_object())
        throw std::runtime_error(vocabPath + ": expected a JSON object mapping token -> id");
    for (const auto &[token, id] : vocab.items()) {
        if (const auto problem = badTokenId(id))
            throw std::runtime_error(vocabPath + ": the id of \"" + token + "\" " + *problem);
        t.addVocabEntry(token, id.get<int64_t>(), vocabPath);
    }

    std::istringstream merges(readFile(mergesPath));
    std::string line;
    for (size_t lineNo = 1; std::getline(merges, line); ++lineNo) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty() || (lineNo == 1 && line.rfind("#version", 0) == 0))
            continue;
        const size_t space = line.find(' ');
        if (space == std::string::npos || space == 0 || space + 1 >= line.size() ||
            line.find(' ', space + 1) != std::string::npos)
            throw std::runtime_error(mergesPath + ":" + std::to_string(lineNo) + ": \"" + line +
                                     "\" is not two tokens separated by a space");
        t.addMerge(line.substr(0, space), line.substr(space + 1), mergesPath);
    }

    // GPT-2's end-of-text token sits in vocab.json; it is special text.
    if (auto it = t.m_vocab.find("<|endoftext|>"); it != t.m_vocab.end())
        t.addAddedToken(it->first, it->second, true);
    if (!addedTokensPath.empty()) {
        // Existence only: opening a FIFO here would block (the reader refuses non-files).
        if (std::error_code error; std::filesystem::exists(addedTokensPath, error)) {
            const json added = parseJsonFile(addedTokensPath);
            if (!added.is_object())
                throw std::runtime_error(addedTokensPath + ": expected a JSON object mapping token -> id");
            for (const auto &[content, id] : added.items()) {
                if (const auto problem = badTokenId(id))
                    throw std::runtime_error(addedTokensPath + ": the id of \"" + content + "\" " + *problem);
                t.addAddedToken(content, id.get<int64_t>(), true);
            }
        }
    }
    t.finishLoading(hints, std::nullopt, "byte-level BPE from vocab.json + merges.txt");
    return tokenizer;
}

// ---------------------------------------------------------------- encoding

std::optional<int64_t> BpeTokenizer::tokenId(const std::string &token) const
{
    for (const AddedToken &added : m_added)
        if (added.content == token)
            return added.id;
    const auto it = m_vocab.find(token);
    if (it == m_vocab.end())
        return std::nullopt;
    return it->second;
}

std::vector<int64_t> BpeTokenizer::encode(const std::string &utf8) const
{
    std::vector<int64_t> out;
    out.reserve(utf8.size() / 3 + 4);
    size_t stretchStart = 0;
    for (size_t pos = 0; pos < utf8.size();) {
        const AddedToken *match = nullptr;
        for (int32_t index : m_addedByFirstByte[static_cast<unsigned char>(utf8[pos])]) {
            const AddedToken &candidate = m_added[index];
            if (utf8.compare(pos, candidate.content.size(), candidate.content) == 0) {
                match = &candidate; // longest first: the first hit is the longest
                break;
            }
        }
        if (!match) {
            ++pos;
            continue;
        }
        if (pos > stretchStart)
            encodeStretch(utf8.substr(stretchStart, pos - stretchStart), stretchStart == 0, out);
        out.push_back(match->id);
        pos += match->content.size();
        stretchStart = pos;
    }
    if (stretchStart < utf8.size())
        encodeStretch(utf8.substr(stretchStart), stretchStart == 0, out);
    return out;
}

void BpeTokenizer::encodeStretch(const std::string &text, bool atStart, std::vector<int64_t> &out) const
{
    if (m_byteLevel) {
        const bool prefix = m_addPrefixSpace && text[0] != ' ';
        const std::string spaced = prefix ? " " + text : std::string();
        const std::string &input = prefix ? spaced : text;
        if (!m_gpt2Split) {
            encodeWord(input, out);
            return;
        }
        for (const auto &[begin, end] : gpt2Ranges(input))
            encodeWord(input.substr(begin, end - begin), out);
        return;
    }

    std::string s = m_spaceToMeta ? replaceAll(text, " ", kMeta) : text;
    const bool startsWithMeta = s.compare(0, kMeta.size(), kMeta) == 0;
    switch (m_prepend) {
    case Prepend::Never:
        break;
    case Prepend::Always:
        s.insert(0, kMeta);
        break;
    case Prepend::AlwaysUnlessMeta:
        if (!startsWithMeta)
            s.insert(0, kMeta);
        break;
    case Prepend::FirstUnlessMeta:
        if (atStart && !startsWithMeta)
            s.insert(0, kMeta);
        break;
    }
    if (!m_splitOnMeta) {
        encodeWord(s, out);
        return;
    }
    // Metaspace split: each '▁' starts a new word ("MergedWithNext").
    size_t wordStart = 0;
    for (size_t pos = s.find(kMeta, kMeta.size()); pos != std::string::npos; pos = s.find(kMeta, pos + kMeta.size())) {
        encodeWord(s.substr(wordStart, pos - wordStart), out);
        wordStart = pos;
    }
    encodeWord(s.substr(wordStart), out);
}

void BpeTokenizer::encodeWord(const std::string &word, std::vector<int64_t> &out) const
{
    if (word.empty())
        return;
    if (m_ignoreMerges) {
        // Llama 3 style: a word that is itself a token is not split.
        std::string stored;
        if (m_byteLevel) {
            for (unsigned char b : word)
                utf8::append(stored, byteToUnicode()[b]);
        }
        const auto it = m_vocab.find(m_byteLevel ? stored : word);
        if (it != m_vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }
    const bool cacheable = word.size() <= kMaxCachedWordBytes;
    if (cacheable) {
        std::lock_guard<std::mutex> lock(m_cacheMutex);
        const auto it = m_cache.find(word);
        if (it != m_cache.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int32_t> ids = mergeWord(word);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
        std::lock_guard<std::mutex> lock(m_cacheMutex);
        if (m_cache.size() >= kMaxCacheEntries)
            m_cache.clear();
        m_cache.emplace(word, std::move(ids));
    }
}

std::vector<int32_t> BpeTokenizer::mergeWord(const std::string &word) const
{
    struct Symbol {
        int32_t id;
        int32_t prev;
        int32_t next;
        bool alive;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    auto push = [&](int32_t id) {
        const auto index = static_cast<int32_t>(symbols.size());
        symbols.push_back(Symbol{id, index - 1, index + 1, true});
    };
    if (m_byteLevel) {
        for (unsigned char b : word)
            push(m_byteIds[b]);
    } else {
        bool lastWasUnk = false;
        for (size_t pos = 0; pos < word.size();) {
            const Utf8Char c = decodeUtf8(word, pos);
            const auto it = m_vocab.find(word.substr(pos, c.len));
            if (it != m_vocab.end()) {
                push(it->second);
                lastWasUnk = false;
            } else {
                bool allBytes = m_byteFallback;
                for (uint32_t k = 0; k < c.len && allBytes; ++k)
                    allBytes = m_byteIds[static_cast<unsigned char>(word[pos + k])] >= 0;
                if (allBytes) {
                    for (uint32_t k = 0; k < c.len; ++k)
                        push(m_byteIds[static_cast<unsigned char>(word[pos + k])]);
                    lastWasUnk = false;
                } else if (m_unkId && !(m_fuseUnk && lastWasUnk)) {
                    push(*m_unkId);
                    lastWasUnk = true;
                }
                // else: no way to represent the character; it is dropped.
            }
            pos += c.len;
        }
    }
    if (symbols.empty())
        return {};
    symbols.back().next = -1;

    // Hugging Face's Word::merge_all: always apply the lowest-ranked pair,
    // the leftmost one among equals. Stale queue entries are skipped.
    struct Candidate {
        int32_t rank;
        int32_t pos;
        int32_t result;
        bool operator>(const Candidate &other) const
        {
            return rank != other.rank ? rank > other.rank : pos > other.pos;
        }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
    auto consider = [&](int32_t pos) {
        const int32_t next = symbols[pos].next;
        if (next < 0)
            return;
        const auto it = m_merges.find(pairKey(symbols[pos].id, symbols[next].id));
        if (it != m_merges.end())
            queue.push(Candidate{it->second.rank, pos, it->second.result});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i)
        consider(i);
    while (!queue.empty()) {
        const Candidate top = queue.top();
        queue.pop();
        Symbol &left = symbols[top.pos];
        if (!left.alive || left.next < 0)
            continue;
        const auto it = m_merges.find(pairKey(left.id, symbols[left.next].id));
        if (it == m_merges.end() || it->second.rank != top.rank)
            continue;
        Symbol &right = symbols[left.next];
        right.alive = false;
        left.id = top.result;
        left.next = right.next;
        if (left.next >= 0)
            symbols[left.next].prev = top.pos;
        if (left.prev >= 0)
            consider(left.prev);
        consider(top.pos);
    }

    std::vector<int32_t> ids;
    for (int32_t i = 0; i >= 0; i = symbols[i].next)
        ids.push_back(symbols[i].id);
    return ids;
}

// ---------------------------------------------------------------- decoding

std::string BpeTokenizer::decode(const std::vector<int64_t> &ids) const
{
    std::string text;
    for (int64_t id : ids) {
        if (id < 0 || id >= vocabSize())
            throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary of " +
                                    std::to_string(vocabSize()) + " tokens");
        text += m_idBytes[static_cast<size_t>(id)];
    }
    // The '▁' that encoding put in front is not part of the text (the Strip
    // step of Llama's decoder).
    if (!m_byteLevel && m_prepend != Prepend::Never && !text.empty() && text[0] == ' ')
        text.erase(0, 1);
    return text;
}

std::string BpeTokenizer::tokenText(int64_t id) const
{
    if (id < 0 || id >= vocabSize())
        throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary of " +
                                std::to_string(vocabSize()) + " tokens");
    const std::string &bytes = m_idBytes[static_cast<size_t>(id)];
    return m_isAdded[static_cast<size_t>(id)] ? bytes : printableTokenText(bytes);
}

std::string BpeTokenizer::description() const
{
    return m_source + ", " + std::to_string(vocabSize()) + " tokens";
}

} // namespace oedit::model
