// Byte-level BPE training in the manner of GPT-2 / Hugging Face tokenizers,
// with deterministic tie-breaking, and GPT-2's vocab.json / merges.txt files.
#include "oedit/bpe_trainer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

namespace oedit::world {

namespace {

std::string utf8(unsigned codepoint)
{
    std::string out;
    if (codepoint < 0x80) {
        out += static_cast<char>(codepoint);
    } else if (codepoint < 0x800) {
        out += static_cast<char>(0xC0 | (codepoint >> 6));
        out += static_cast<char>(0x80 | (codepoint & 0x3F));
    } else {
        out += static_cast<char>(0xE0 | (codepoint >> 12));
        out += static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (codepoint & 0x3F));
    }
    return out;
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100 onwards, in byte order. `order` is the list of
// bytes in the order GPT-2's vocab.json gives them ids.
struct ByteTable {
    std::string symbol[256];
    std::vector<unsigned char> order;
    std::vector<std::string> symbolsInOrder;

    ByteTable()
    {
        bool printable[256] = {};
        for (int b = '!'; b <= '~'; ++b)
            printable[b] = true;
        for (int b = 0xA1; b <= 0xAC; ++b)
            printable[b] = true;
        for (int b = 0xAE; b <= 0xFF; ++b)
            printable[b] = true;
        for (int b = 0; b < 256; ++b)
            if (printable[b]) {
                order.push_back(static_cast<unsigned char>(b));
                symbol[b] = utf8(static_cast<unsigned>(b));
            }
        unsigned next = 256;
        for (int b = 0; b < 256; ++b)
            if (!printable[b]) {
                order.push_back(static_cast<unsigned char>(b));
                symbol[b] = utf8(next++);
            }
        for (unsigned char b : order)
            symbolsInOrder.push_back(symbol[b]);
    }
};

const ByteTable &byteTable()
{
    static const ByteTable table;
    return table;
}

bool isSpace(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
// Bytes >= 0x80 count as letters: UTF-8 words of Latin scripts stay whole.
bool isLetter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
bool isDigit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

// The text of a pre-token as byte symbols, e.g. " the" -> "Ġthe".
std::string toSymbols(const std::string &piece)
{
    std::string out;
    for (unsigned char c : piece)
        out += byteTable().symbol[c];
    return out;
}

// One UTF-8 character starting at `at` (symbols are at most 2 bytes here).
size_t charLength(const std::string &text, size_t at)
{
    const unsigned char c = static_cast<unsigned char>(text[at]);
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        return 2;
    if ((c & 0xF0) == 0xE0)
        return 3;
    return 4;
}

std::vector<std::string> splitSymbols(const std::string &symbols)
{
    std::vector<std::string> out;
    for (size_t i = 0; i < symbols.size();) {
        const size_t n = charLength(symbols, i);
        out.push_back(symbols.substr(i, n));
        i += n;
    }
    return out;
}

uint64_t pairKey(int left, int right)
{
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

} // namespace

const std::string &byteSymbol(unsigned char byte)
{
    return byteTable().symbol[byte];
}

const std::vector<std::string> &byteSymbolsInVocabOrder()
{
    return byteTable().symbolsInOrder;
}

std::vector<std::string> preTokenize(const std::string &text)
{
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    std::vector<std::string> out;
    const size_t n = text.size();
    auto at = [&text](size_t i) { return static_cast<unsigned char>(text[i]); };
    size_t i = 0;
    while (i < n) {
        // 's|'t|'re|'ve|'m|'ll|'d
        if (text[i] == '\'') {
            bool matched = false;
            for (const char *c : contractions) {
                const size_t len = std::char_traits<char>::length(c);
                if (text.compare(i, len, c) == 0) {
                    out.push_back(text.substr(i, len));
                    i += len;
                    matched = true;
                    break;
                }
            }
            if (matched)
                continue;
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
        const size_t start = i;
        const size_t body = (text[i] == ' ' && i + 1 < n && !isSpace(at(i + 1))) ? i + 1 : i;
        if (body < n && !isSpace(at(body))) {
            size_t end = body;
            if (isLetter(at(body))) {
                while (end < n && isLetter(at(end)))
                    ++end;
            } else if (isDigit(at(body))) {
                while (end < n && isDigit(at(end)))
                    ++end;
            } else {
                while (end < n && !isSpace(at(end)) && !isLetter(at(end)) && !isDigit(at(end)))
                    ++end;
            }
            out.push_back(text.substr(start, end - start));
            i = end;
            continue;
        }
        // `\s+(?!\S)` then `\s+`: a whitespace run, leaving its last character
        // to the next token when a non-space follows and the run is longer than one.
        size_t end = i;
        while (end < n && isSpace(at(end)))
            ++end;
        if (end < n && end - i > 1)
            --end;
        out.push_back(text.substr(i, end - i));
        i = end;
    }
    return out;
}

Expected<BpeModel> trainByteLevelBpe(const std::vector<std::string> &corpus, int vocabSize)
{
    if (vocabSize < 257)
        return Status::failure("BPE vocabulary size must be at least 257 (256 bytes and <|endoftext|>), not " +
                               std::to_string(vocabSize));
    if (vocabSize > 1000000)
        return Status::failure("BPE vocabulary size " + std::to_string(vocabSize) + " is unreasonably large");

    // Distinct pre-tokens with their counts, in a sorted map so that nothing
    // below depends on hash order.
    std::map<std::string, long long> counts;
    for (const std::string &document : corpus)
        for (std::string &piece : preTokenize(document))
            ++counts[std::move(piece)];

    const ByteTable &table = byteTable();
    BpeModel model;
    model.vocab = table.symbolsInOrder;
    std::unordered_map<std::string, int> ids;
    for (size_t id = 0; id < model.vocab.size(); ++id)
        ids[model.vocab[id]] = static_cast<int>(id);

    struct Word {
        std::vector<int> symbols;
        long long count;
    };
    std::vector<Word> words;
    words.reserve(counts.size());
    for (const auto &entry : counts) {
        Word word{{}, entry.second};
        for (unsigned char c : entry.first)
            word.symbols.push_back(ids[table.symbol[c]]);
        words.push_back(std::move(word));
    }

    std::unordered_map<uint64_t, long long> pairCounts;
    std::unordered_map<uint64_t, std::vector<int>> pairWords; // may list a word twice or stale: checked on use
    auto addPairs = [&](int w, long long sign) {
        const std::vector<int> &s = words[w].symbols;
        for (size_t i = 0; i + 1 < s.size(); ++i) {
            const uint64_t key = pairKey(s[i], s[i + 1]);
            long long &count = pairCounts[key];
            count += sign * words[w].count;
            if (count == 0)
                pairCounts.erase(key);
            if (sign > 0)
                pairWords[key].push_back(w);
        }
    };
    for (int w = 0; w < static_cast<int>(words.size()); ++w)
        addPairs(w, +1);

    std::vector<int> seen(words.size(), -1);
    const int wanted = vocabSize - 1; // the last id is <|endoftext|>
    for (int step = 0; static_cast<int>(model.vocab.size()) < wanted && !pairCounts.empty(); ++step) {
        // Most frequent pair; ties to the bytewise-smallest (left, right).
        uint64_t best = 0;
        long long bestCount = -1;
        for (const auto &entry : pairCounts) {
            if (entry.second < bestCount)
                continue;
            if (entry.second > bestCount) {
                best = entry.first;
                bestCount = entry.second;
                continue;
            }
            const std::string &left = model.vocab[entry.first >> 32];
            const std::string &right = model.vocab[entry.first & 0xffffffffu];
            const std::string &bestLeft = model.vocab[best >> 32];
            const std::string &bestRight = model.vocab[best & 0xffffffffu];
            if (left < bestLeft || (left == bestLeft && right < bestRight))
                best = entry.first;
        }
        const int left = static_cast<int>(best >> 32);
        const int right = static_cast<int>(best & 0xffffffffu);
        const std::string merged = model.vocab[left] + model.vocab[right];
        model.merges.emplace_back(model.vocab[left], model.vocab[right]);
        // A merge can rebuild a token that exists already (e.g. "a"+"bc" after
        // "ab"+"c"); it then keeps that id, as Hugging Face's trainer does.
        int id;
        const auto known = ids.find(merged);
        if (known != ids.end()) {
            id = known->second;
        } else {
            id = static_cast<int>(model.vocab.size());
            model.vocab.push_back(merged);
            ids.emplace(merged, id);
        }

        std::vector<int> affected = std::move(pairWords[best]);
        pairWords.erase(best);
        for (int w : affected) {
            if (seen[w] == step)
                continue;
            seen[w] = step;
            std::vector<int> &s = words[w].symbols;
            bool present = false;
            for (size_t i = 0; i + 1 < s.size() && !present; ++i)
                present = s[i] == left && s[i + 1] == right;
            if (!present)
                continue;
            addPairs(w, -1);
            std::vector<int> next;
            next.reserve(s.size());
            for (size_t i = 0; i < s.size();) {
                if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
                    next.push_back(id);
                    i += 2;
                } else {
                    next.push_back(s[i]);
                    i += 1;
                }
            }
            s = std::move(next);
            addPairs(w, +1);
        }
    }
    model.vocab.push_back(kEndOfText);
    return model;
}

BpeEncoder::BpeEncoder(const BpeModel &model) : m_vocab(model.vocab)
{
    for (size_t id = 0; id < m_vocab.size(); ++id)
        m_ids.emplace(m_vocab[id], static_cast<int>(id));
    for (size_t rank = 0; rank < model.merges.size(); ++rank)
        m_ranks.emplace(model.merges[rank].first + " " + model.merges[rank].second, static_cast<int>(rank));
}

std::vector<int> BpeEncoder::encodePiece(const std::string &piece)
{
    const auto cached = m_cache.find(piece);
    if (cached != m_cache.end())
        return cached->second;
    std::vector<std::string> parts = splitSymbols(toSymbols(piece));
    while (parts.size() > 1) {
        int bestRank = -1;
        size_t bestAt = 0;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            const auto rank = m_ranks.find(parts[i] + " " + parts[i + 1]);
            if (rank != m_ranks.end() && (bestRank < 0 || rank->second < bestRank)) {
                bestRank = rank->second;
                bestAt = i;
            }
        }
        if (bestRank < 0)
            break;
        const std::string first = parts[bestAt], second = parts[bestAt + 1];
        std::vector<std::string> next;
        for (size_t i = 0; i < parts.size();) {
            if (i + 1 < parts.size() && parts[i] == first && parts[i + 1] == second) {
                next.push_back(first + second);
                i += 2;
            } else {
                next.push_back(parts[i]);
                i += 1;
            }
        }
        parts = std::move(next);
    }
    std::vector<int> out;
    for (const std::string &part : parts) {
        const auto id = m_ids.find(part);
        out.push_back(id == m_ids.end() ? -1 : id->second);
    }
    m_cache.emplace(piece, out);
    return out;
}

std::vector<int> BpeEncoder::encode(const std::string &text)
{
    std::vector<int> out;
    for (const std::string &piece : preTokenize(text)) {
        const std::vector<int> ids = encodePiece(piece);
        out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
}

std::string BpeEncoder::decode(const std::vector<int> &ids) const
{
    static const std::unordered_map<std::string, unsigned char> bytes = [] {
        std::unordered_map<std::string, unsigned char> map;
        for (int b = 0; b < 256; ++b)
            map.emplace(byteSymbol(static_cast<unsigned char>(b)), static_cast<unsigned char>(b));
        return map;
    }();
    std::string out;
    for (int id : ids) {
        if (id < 0 || id >= static_cast<int>(m_vocab.size()) || m_vocab[id] == kEndOfText)
            continue;
        const std::string &token = m_vocab[id];
        for (size_t i = 0; i < token.size();) {
            const size_t n = charLength(token, i);
            const auto byte = bytes.find(token.substr(i, n));
            if (byte != bytes.end())
                out += static_cast<char>(byte->second);
            i += n;
        }
    }
    return out;
}

Status writeBpeFiles(const BpeModel &model, const std::string &dir)
{
    namespace fs = std::filesystem;
    nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
    for (size_t id = 0; id < model.vocab.size(); ++id)
        vocab[model.vocab[id]] = id;
    {
        std::ofstream out(fs::path(dir) / "vocab.json", std::ios::binary | std::ios::trunc);
        out << vocab.dump() << "\n";
        if (!out)
            return Status::failure("cannot write " + (fs::path(dir) / "vocab.json").string());
    }
    std::ofstream out(fs::path(dir) / "merges.txt", std::ios::binary | std::ios::trunc);
    out << "#version: 0.2\n";
    for (const auto &merge : model.merges)
        out << merge.first << " " << merge.second << "\n";
    if (!out)
        return Status::failure("cannot write " + (fs::path(dir) / "merges.txt").string());
    return Status::success();
}

} // namespace oedit::world
