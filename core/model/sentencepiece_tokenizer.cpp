#include "model/sentencepiece_tokenizer.h"

#include "model/sentencepiece_backend.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace oedit::model {
namespace {

struct Module {
    CreateSentencePieceBackend create = nullptr;
    std::string problem; // why `create` is null
};

// Loads oedit_sentencepiece once per process and never unloads it: backends
// it created may live until exit.
const Module &sentencePieceModule()
{
    static const Module module = [] {
        Module result;
        // A libsentencepiece already in the global scope (some other library
        // linked it) would defeat RTLD_DEEPBIND and abort the process on the
        // first model; refuse with an explanation instead.
        if (dlopen("libsentencepiece.so.0", RTLD_NOW | RTLD_NOLOAD)) {
            result.problem = "libsentencepiece is already linked into this process, where it clashes with "
                             "libprotobuf; only the oedit_sentencepiece module may link it";
            return result;
        }
        std::vector<std::string> candidates;
        if (const char *override = std::getenv("OEDIT_SENTENCEPIECE_MODULE"))
            candidates.emplace_back(override);
        // Installed: <prefix>/bin/oedit -> <prefix>/<libdir>/oedit/oedit_sentencepiece.so.
        std::error_code ignored;
        const std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe", ignored);
        if (!executable.empty())
            candidates.push_back(
                (executable.parent_path().parent_path() / OEDIT_SENTENCEPIECE_MODULE_RELATIVE).string());
        candidates.emplace_back(OEDIT_SENTENCEPIECE_MODULE_BUILD);
        candidates.emplace_back(OEDIT_SENTENCEPIECE_MODULE_INSTALLED);
        std::string tried;
        for (const std::string &path : candidates) {
            std::error_code error;
            if (!std::filesystem::is_regular_file(path, error)) {
                tried += "\n  " + path + ": no such file";
                continue;
            }
            // DEEPBIND: the module and libsentencepiece find their own symbols
            // (its protobuf copy) before the process's libprotobuf.
            void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
            if (!handle) {
                const char *why = dlerror();
                tried += "\n  " + path + ": " + (why ? why : "dlopen failed");
                continue;
            }
            result.create = reinterpret_cast<CreateSentencePieceBackend>(dlsym(handle, kCreateSentencePieceBackend));
            if (result.create)
                return result;
            tried += "\n  " + path + ": has no " + kCreateSentencePieceBackend;
        }
        result.problem = "cannot load the oedit_sentencepiece module (set OEDIT_SENTENCEPIECE_MODULE to its path); "
                         "tried:" +
                         tried;
        return result;
    }();
    return module;
}

} // namespace

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::fromFile(const std::string &path,
                                                                         const SpecialTokenHints &hints)
{
    // Read the file ourselves so that "missing" and "not a model" are told
    // apart, after bounding it: real tokenizer.model files are a few MB.
    constexpr uintmax_t kMaxModelBytes = 128u << 20;
    std::error_code error;
    const uintmax_t size = std::filesystem::file_size(path, error);
    if (error) // also for anything but a regular file
        throw std::runtime_error("cannot read " + path + ": " + error.message());
    if (size > kMaxModelBytes)
        throw std::runtime_error(path + " is " + std::to_string(size) + " bytes, over the " +
                                 std::to_string(kMaxModelBytes) +
                                 "-byte limit for tokenizer files; check that it is the model's tokenizer.model");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    const std::string serialized = buffer.str();

    const Module &module = sentencePieceModule();
    if (!module.create)
        throw std::runtime_error(path + ": SentencePiece is unavailable: " + module.problem);
    std::string problem;
    std::unique_ptr<SentencePieceBackend> backend(module.create(serialized.data(), serialized.size(), &problem));
    if (!backend)
        throw std::runtime_error(path + ": not a usable SentencePiece model: " + problem);

    std::unique_ptr<SentencePieceTokenizer> tokenizer(new SentencePieceTokenizer());
    tokenizer->m_path = path;
    tokenizer->m_vocabSize = backend->pieceCount();
    if (backend->bosId() >= 0)
        tokenizer->m_bosId = backend->bosId();
    if (backend->eosId() >= 0)
        tokenizer->m_eosId = backend->eosId();
    tokenizer->m_addsBos = tokenizer->m_bosId.has_value() && hints.addBos.value_or(true);
    tokenizer->m_backend = std::move(backend);
    return tokenizer;
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string &utf8) const
{
    std::vector<int> ids;
    std::string problem;
    if (!m_backend->encode(utf8, ids, problem)) // not seen with a loaded model
        throw std::runtime_error(m_path + ": SentencePiece could not encode: " + problem);
    return std::vector<int64_t>(ids.begin(), ids.end());
}

void SentencePieceTokenizer::checkId(int64_t id) const
{
    if (id < 0 || id >= m_vocabSize)
        throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary of " +
                                std::to_string(m_vocabSize) + " tokens");
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t> &ids) const
{
    std::vector<int> narrow;
    narrow.reserve(ids.size());
    for (int64_t id : ids) {
        checkId(id);
        narrow.push_back(static_cast<int>(id));
    }
    std::string text;
    std::string problem;
    if (!m_backend->decode(narrow, text, problem))
        throw std::runtime_error(m_path + ": SentencePiece could not decode: " + problem);
    return text;
}

std::string SentencePieceTokenizer::tokenText(int64_t id) const
{
    checkId(id);
    const int narrow = static_cast<int>(id);
    const std::string piece = m_backend->piece(narrow);
    switch (m_backend->pieceKind(narrow)) {
    case SentencePieceBackend::PieceKind::Control:
    case SentencePieceBackend::PieceKind::Unknown:
        return piece; // "<s>", "</s>", "<unk>": shown literally
    case SentencePieceBackend::PieceKind::Byte:
        if (piece.size() == 6) // "<0x0A>"
            return printableTokenText(std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16))));
        return piece;
    case SentencePieceBackend::PieceKind::Normal:
        break;
    }
    static const std::string kMeta = "\xE2\x96\x81"; // '▁' stands for a space
    std::string text;
    for (size_t pos = 0; pos < piece.size();) {
        if (piece.compare(pos, kMeta.size(), kMeta) == 0) {
            text += ' ';
            pos += kMeta.size();
        } else {
            text += piece[pos++];
        }
    }
    return printableTokenText(text);
}

std::string SentencePieceTokenizer::description() const
{
    return "SentencePiece from tokenizer.model, " + std::to_string(m_vocabSize) + " tokens";
}

} // namespace oedit::model
