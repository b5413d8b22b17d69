// EditContext: statistics with their disk cache, context prefixes, and the
// per-run state that applyEdit/unapplyEdit keep (history, AlphaEdit's
// accumulated keys; O-Edit's subspaces live in its protection policy).
#include "edit/editor.h"
#include "model/safetensors.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

namespace oedit::edit {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ULL, kFnvPrime = 1099511628211ULL;

void fnv(uint64_t &h, const void *data, size_t bytes, size_t stride = 1)
{
    const auto *p = static_cast<const unsigned char *>(data);
    for (size_t i = 0; i < bytes; i += stride) {
        h ^= p[i];
        h *= kFnvPrime;
    }
}

std::string hex(uint64_t h)
{
    std::ostringstream out;
    out << std::hex;
    out.width(16);
    out.fill('0');
    out << h;
    return out.str();
}

double secondsSince(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Passages as token ids, cut to what the model can take.
std::vector<std::vector<int64_t>> encodePassages(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                                 const std::vector<std::string> &passages, int64_t samples)
{
    const auto limit = samples > 0 ? std::min<size_t>(passages.size(), static_cast<size_t>(samples)) : passages.size();
    const int64_t maxLength =
        model.config().maxPositions > 0 ? std::min<int64_t>(model.config().maxPositions, 256) : 256;
    std::vector<std::vector<int64_t>> out;
    for (size_t i = 0; i < limit; ++i) {
        auto ids = tokenizer.encodeForModel(passages[i]);
        if (static_cast<int64_t>(ids.size()) > maxLength)
            ids.resize(static_cast<size_t>(maxLength));
        if (ids.size() >= 2)
            out.push_back(std::move(ids));
    }
    return out;
}

} // namespace

EditContext::EditContext(ContextOptions options) : m_options(std::move(options)) {}

std::string EditContext::cacheDir() const
{
    if (!m_options.cacheDir.empty())
        return m_options.cacheDir;
    if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
        return (fs::path(xdg) / "oedit-workbench" / "statistics").string();
    if (const char *home = std::getenv("HOME"); home && *home)
        return (fs::path(home) / ".cache" / "oedit-workbench" / "statistics").string();
    return (fs::temp_directory_path() / "oedit-workbench-statistics").string();
}

const std::vector<std::string> &EditContext::corpus()
{
    if (m_corpusLoaded)
        return m_corpus;
    const std::string path = !m_options.corpusPath.empty() ? m_options.corpusPath
                             : !m_options.modelDir.empty()
                                 ? (fs::path(m_options.modelDir) / "general_train.txt").string()
                                 : std::string();
    if (path.empty())
        throw EditError("no text for statistics: give the model folder (its general_train.txt) or a text file");
    std::ifstream in(path);
    if (!in)
        throw EditError("cannot read the statistics text '" + path + "': pass a text file with one passage per line");
    std::string line;
    while (std::getline(in, line))
        if (line.find_first_not_of(" \t\r") != std::string::npos)
            m_corpus.push_back(line);
    if (m_corpus.empty())
        throw EditError("the statistics text '" + path + "' has no passages");
    m_corpusLoaded = true;
    return m_corpus;
}

std::string EditContext::modelHash(const model::Transformer &model)
{
    if (m_options.modelKey)
        if (auto key = m_options.modelKey(); !key.empty())
            return key;
    return weightsHash(model);
}

std::string weightsHash(const model::Transformer &model)
{
    // Names, shapes and values; big tensors are sampled (a 7B model would take
    // half a minute to hash in full, and any two different models differ in
    // far more values than the sample skips).
    std::vector<std::string> names;
    for (const auto &entry : model.weights())
        names.push_back(entry.first);
    std::sort(names.begin(), names.end());
    uint64_t h = kFnvOffset;
    for (const auto &name : names) {
        fnv(h, name.data(), name.size());
        const auto t = model.weights().at(name).detach().to(torch::kCPU, torch::kFloat).contiguous();
        const auto sizes = t.sizes().vec();
        fnv(h, sizes.data(), sizes.size() * sizeof(int64_t));
        const size_t bytes = static_cast<size_t>(t.numel()) * sizeof(float);
        const size_t stride = bytes > (size_t(4) << 20) ? (bytes / (size_t(4) << 20)) * sizeof(float) + 1 : 1;
        fnv(h, t.data_ptr<float>(), bytes, stride);
    }
    return hex(h);
}

std::string EditContext::corpusHash()
{
    uint64_t h = kFnvOffset;
    for (const auto &line : corpus()) {
        fnv(h, line.data(), line.size());
        fnv(h, "\n", 1);
    }
    return hex(h);
}

namespace {

// Statistics are cached as safetensors, like checkpoints: a cache folder can
// come from elsewhere (shared, copied), and the reader checks every size
// before it allocates, where a pickle-based archive would not.
constexpr const char *kCachedName = "statistic";

// Loads `path` into `out` when it exists; false otherwise. A damaged file,
// or one holding NaN or infinities (statistics of a broken model, or a flipped
// bit), is recomputed and overwritten rather than trusted.
bool loadCached(const fs::path &path, torch::Tensor &out)
{
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        return false;
    try {
        const model::SafetensorsFile file(path.string());
        out = file.tensor(kCachedName).clone();
        return out.defined() && torch::isfinite(out).all().item<bool>();
    } catch (const std::exception &) {
        return false;
    }
}

// Statistics of a model whose activations overflow (or whose weights were
// opened despite NaNs) would poison every later edit and the cache.
void requireFiniteStatistic(const torch::Tensor &statistic, const char *what, int64_t layer)
{
    if (!torch::isfinite(statistic).all().item<bool>())
        throw EditError(std::string("the ") + what + " of layer " + std::to_string(layer) +
                        " is not finite: the model's activations hold NaN or infinities on the statistics text "
                        "(check the weights with `oedit info`); nothing was cached or changed");
}

void saveCached(const fs::path &path, const torch::Tensor &tensor)
{
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    try {
        // Through a temporary and a rename, so a crash never leaves half a file.
        model::writeSafetensors(path.string(), {{kCachedName, tensor}});
    } catch (const std::exception &) {
        // an unwritable cache only costs a recomputation
    }
}

} // namespace

bool EditContext::sharedLookup(const std::string &name, torch::Tensor &out) const
{
    if (!m_options.sharedStatistics)
        return false;
    const auto found = m_options.sharedStatistics->find(name);
    if (found == m_options.sharedStatistics->end())
        return false;
    out = found->second;
    return true;
}

void EditContext::sharedStore(const std::string &name, const torch::Tensor &tensor) const
{
    if (m_options.sharedStatistics)
        m_options.sharedStatistics->emplace(name, tensor);
}

const torch::Tensor &EditContext::secondMoment(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                               int64_t layer, int64_t samples)
{
    const std::string memoryKey = "mom2-L" + std::to_string(layer) + "-n" + std::to_string(samples);
    if (auto found = m_stats.find(memoryKey); found != m_stats.end())
        return found->second;
    const auto start = std::chrono::steady_clock::now();
    const auto file = fs::path(cacheDir()) / ("mom2-" + modelHash(model) + "-L" + std::to_string(layer) + "-" +
                                              corpusHash() + "-n" + std::to_string(samples) + ".safetensors");
    torch::Tensor C;
    if (sharedLookup(file.filename().string(), C) || loadCached(file, C)) {
        ++m_loaded;
    } else {
        torch::NoGradGuard noGrad;
        const auto passages = encodePassages(model, tokenizer, corpus(), samples);
        const int64_t dk = model.mlpKeyWidth(), batchSize = 32;
        auto sum = torch::zeros({dk, dk}, torch::kDouble);
        int64_t tokens = 0;
        const int64_t padId = tokenizer.eosId().value_or(0);
        for (size_t begin = 0; begin < passages.size(); begin += batchSize) {
            const size_t end = std::min(passages.size(), begin + batchSize);
            const auto batch = model::padBatch({passages.begin() + begin, passages.begin() + end}, padId);
            // Only the layers up to `layer` run: nothing above it changes C.
            const auto keys = model.mlpKeysAt(batch.ids, batch.mask, layer).to(torch::kCPU, torch::kDouble);
            const auto real = batch.mask.to(torch::kBool).cpu();
            const auto K = keys.index({real}); // [n, d_k]
            sum += K.t().matmul(K);
            tokens += K.size(0);
            if (m_options.progress &&
                !m_options.progress(static_cast<long long>(end), static_cast<long long>(passages.size())))
                throw EditCancelled();
        }
        if (tokens == 0)
            throw EditError("the statistics text has no passage of two or more tokens");
        C = sum / static_cast<double>(tokens);
        requireFiniteStatistic(C, "second moment C", layer);
        saveCached(file, C);
        ++m_computed;
    }
    sharedStore(file.filename().string(), C);
    m_statisticsSeconds += secondsSince(start);
    return m_stats[memoryKey] = C;
}

const torch::Tensor &EditContext::implicitGram(const model::Transformer &model, const model::Tokenizer &tokenizer,
                                               int64_t layer, int64_t samples)
{
    const std::string memoryKey = "implicit-L" + std::to_string(layer) + "-n" + std::to_string(samples);
    if (auto found = m_stats.find(memoryKey); found != m_stats.end())
        return found->second;
    const auto start = std::chrono::steady_clock::now();
    const auto file = fs::path(cacheDir()) / ("implicit-" + modelHash(model) + "-L" + std::to_string(layer) + "-" +
                                              corpusHash() + "-n" + std::to_string(samples) + ".safetensors");
    torch::Tensor M;
    if (sharedLookup(file.filename().string(), M) || loadCached(file, M)) {
        ++m_loaded;
    } else {
        torch::AutoGradMode gradMode(true);
        const auto passages = encodePassages(model, tokenizer, corpus(), samples);
        const int64_t d = model.config().hidden, batchSize = 16;
        M = torch::zeros({d, d}, torch::kDouble);
        const int64_t padId = tokenizer.eosId().value_or(0);
        for (size_t begin = 0; begin < passages.size(); begin += batchSize) {
            const size_t end = std::min(passages.size(), begin + batchSize);
            const auto batch = model::padBatch({passages.begin() + begin, passages.begin() + end}, padId);
            const auto B = batch.ids.size(0), T = batch.ids.size(1);
            // A zero shift at every real token's MLP output: its gradient is g_t = dL/dv_t.
            model::Intervention shift;
            shift.layer = layer;
            shift.site = model::Site::MlpOut;
            const auto mask = batch.mask.accessor<int64_t, 2>();
            for (int64_t b = 0; b < B; ++b)
                for (int64_t t = 0; t < T; ++t)
                    if (mask[b][t]) {
                        shift.rows.push_back(b);
                        shift.positions.push_back(t);
                    }
            shift.delta = torch::zeros({static_cast<int64_t>(shift.rows.size()), d},
                                       torch::TensorOptions().dtype(model.dtype()).device(model.device()))
                              .set_requires_grad(true);
            model::ForwardHooks hooks;
            hooks.captureMlpKeys = {layer};
            hooks.interventions.push_back(shift);
            const auto logits = model.forward(batch.ids, batch.mask, &hooks).to(torch::kFloat);
            // One LM loss per passage (mean over its predicted tokens), summed:
            // rows stay independent, so each row's gradient is its own G_j.
            const auto targets = batch.ids.narrow(1, 1, T - 1).to(logits.device());
            const auto valid = batch.mask.narrow(1, 1, T - 1).to(logits.device(), torch::kFloat);
            const auto nll = torch::nn::functional::cross_entropy(
                                 logits.narrow(1, 0, T - 1).reshape({-1, logits.size(2)}), targets.reshape({-1}),
                                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                                 .view({B, T - 1});
            const auto loss = ((nll * valid).sum(1) / valid.sum(1).clamp_min(1)).sum();
            loss.backward();
            const auto g = shift.delta.grad().detach().to(torch::kCPU, torch::kDouble); // [n, d]
            const auto keys = hooks.mlpKeys.at(layer).detach().to(torch::kCPU, torch::kDouble);
            auto G = torch::zeros({B, d, keys.size(2)}, torch::kDouble);
            for (size_t i = 0; i < shift.rows.size(); ++i) {
                const auto b = shift.rows[i], t = shift.positions[i];
                G[b] += torch::outer(g[static_cast<int64_t>(i)], keys[b][t]);
            }
            M += G.matmul(G.transpose(1, 2)).sum(0);
            if (m_options.progress &&
                !m_options.progress(static_cast<long long>(end), static_cast<long long>(passages.size())))
                throw EditCancelled();
        }
        requireFiniteStatistic(M, "implicit-knowledge Gram matrix", layer);
        saveCached(file, M);
        ++m_computed;
    }
    sharedStore(file.filename().string(), M);
    m_statisticsSeconds += secondsSince(start);
    return m_stats[memoryKey] = M;
}

const std::vector<std::string> &EditContext::contextPrefixes(const model::Transformer &model,
                                                             const model::Tokenizer &tokenizer, int64_t count,
                                                             int64_t length, uint64_t seed)
{
    const std::string key = std::to_string(count) + "/" + std::to_string(length) + "/" + std::to_string(seed);
    if (auto found = m_prefixes.find(key); found != m_prefixes.end())
        return found->second;
    // ROME's recipe: a few short continuations of common sentence openings,
    // sampled from the model itself so they look like its own text.
    static const char *const kOpenings[] = {"The", "Therefore", "Because", "I", "You"};
    std::vector<std::string> prefixes = {""};
    for (int64_t i = 0; i < count; ++i) {
        const std::string opening = kOpenings[i % 5];
        const auto generated = model.generate(tokenizer.encodeForModel(opening), length, 5, tokenizer.eosId(),
                                              seed + static_cast<uint64_t>(i));
        std::string text = opening + tokenizer.decode(generated);
        for (char &c : text)
            if (c == '{' || c == '}' || c == '\n' || c == '\r' || c == '\t')
                c = ' ';
        while (!text.empty() && (text.back() == ' ' || text.back() == '.'))
            text.pop_back();
        prefixes.push_back(text + ". ");
    }
    return m_prefixes[key] = prefixes;
}

torch::Tensor &EditContext::alphaEditKeyGram(int64_t layer, int64_t dk)
{
    auto &gram = m_alphaGram[layer];
    if (!gram.defined())
        gram = torch::zeros({dk, dk}, torch::kDouble);
    return gram;
}

const std::vector<std::pair<int64_t, LayerUpdate>> &EditContext::history(int64_t layer)
{
    return m_history[layer];
}

void EditContext::recordApplied(const EditResult &result)
{
    m_lastId = std::max(m_lastId, result.id);
    for (const auto &update : result.layers)
        m_history[update.layer].emplace_back(result.id, update);
    m_protection.recordApplied(result);
    for (const auto &entry : result.keys) {
        const auto K = entry.second.to(torch::kDouble);
        alphaEditKeyGram(entry.first, K.size(0)) += K.matmul(K.t());
    }
}

void EditContext::recordUnapplied(const EditResult &result)
{
    for (const auto &update : result.layers) {
        auto &list = m_history[update.layer];
        list.erase(std::remove_if(list.begin(), list.end(), [&](const auto &e) { return e.first == result.id; }),
                   list.end());
    }
    m_protection.recordUnapplied(result);
    for (const auto &entry : result.keys) {
        const auto K = entry.second.to(torch::kDouble);
        alphaEditKeyGram(entry.first, K.size(0)) -= K.matmul(K.t());
    }
}

void EditContext::applyRollback(const std::vector<const EditResult *> &removed,
                                const std::vector<const EditResult *> &restored,
                                const std::vector<int64_t> &activeOrder)
{
    std::set<int64_t> gone;
    for (const auto *result : removed) {
        gone.insert(result->id);
        m_protection.forget(*result);
        for (const auto &entry : result->keys) {
            const auto K = entry.second.to(torch::kDouble);
            alphaEditKeyGram(entry.first, K.size(0)) -= K.matmul(K.t());
        }
    }
    // The order before, to keep what the rollback does not touch.
    std::map<int64_t, std::vector<int64_t>> before;
    for (const auto &[layer, list] : m_history)
        for (const auto &entry : list)
            before[layer].push_back(entry.first);
    for (auto &[layer, list] : m_history)
        list.erase(std::remove_if(list.begin(), list.end(), [&](const auto &e) { return gone.count(e.first) > 0; }),
                   list.end());
    for (const auto *result : restored) {
        m_lastId = std::max(m_lastId, result->id);
        for (const auto &update : result->layers)
            m_history[update.layer].emplace_back(result->id, update);
        m_protection.restore(*result);
        for (const auto &entry : result->keys) {
            const auto K = entry.second.to(torch::kDouble);
            alphaEditKeyGram(entry.first, K.size(0)) += K.matmul(K.t());
        }
    }
    // Run order; ids the caller does not list keep their place at the end.
    std::unordered_map<int64_t, size_t> position;
    for (size_t i = 0; i < activeOrder.size(); ++i)
        position[activeOrder[i]] = i;
    const auto rank = [&](int64_t id) {
        const auto found = position.find(id);
        return found == position.end() ? activeOrder.size() : found->second;
    };
    std::map<int64_t, size_t> unchanged; // per layer: history entries before the first change
    for (auto &[layer, list] : m_history) {
        std::stable_sort(list.begin(), list.end(),
                         [&](const auto &a, const auto &b) { return rank(a.first) < rank(b.first); });
        const auto &old = before[layer];
        size_t same = 0;
        while (same < list.size() && same < old.size() && list[same].first == old[same])
            ++same;
        unchanged[layer] = same;
    }
    m_protection.regrow(m_history, unchanged);
}

void EditContext::saveState(const std::string &path) const
{
    torch::serialize::OutputArchive archive;
    writeState(archive);
    archive.save_to(path);
}

void EditContext::loadState(const std::string &path)
{
    torch::serialize::InputArchive archive;
    try {
        archive.load_from(path);
    } catch (const std::exception &e) {
        throw EditError("cannot read the edit state '" + path + "': " + e.what());
    }
    readState(archive);
}

void EditContext::writeState(torch::serialize::OutputArchive &archive) const
{
    nlohmann::json index;
    index["lastId"] = m_lastId;
    m_protection.write(archive, index);
    for (const auto &[layer, gram] : m_alphaGram) {
        archive.write("alpha." + std::to_string(layer), gram);
        index["alpha"].push_back(layer);
    }
    for (const auto &[layer, list] : m_history) {
        nlohmann::json entry;
        entry["layer"] = layer;
        for (size_t i = 0; i < list.size(); ++i) {
            const std::string key = "history." + std::to_string(layer) + "." + std::to_string(i);
            const auto &update = list[i].second;
            if (update.rankOne()) {
                archive.write(key + ".right", update.right);
                archive.write(key + ".left", update.left);
            } else {
                archive.write(key, update.matrix());
            }
            entry["ids"].push_back(list[i].first);
            entry["rank_one"].push_back(update.rankOne());
        }
        index["history"].push_back(entry);
    }
    const std::string text = index.dump();
    archive.write(
        "index",
        torch::from_blob(const_cast<char *>(text.data()), {static_cast<int64_t>(text.size())}, torch::kUInt8).clone());
}

void EditContext::readState(torch::serialize::InputArchive &archive)
{
    torch::Tensor raw;
    archive.read("index", raw);
    const auto index =
        nlohmann::json::parse(std::string(static_cast<const char *>(raw.data_ptr()), static_cast<size_t>(raw.numel())));
    m_alphaGram.clear();
    m_history.clear();
    m_lastId = index.value("lastId", int64_t(0));
    for (const auto &layerJson : index.value("alpha", nlohmann::json::array())) {
        const int64_t layer = layerJson;
        archive.read("alpha." + std::to_string(layer), m_alphaGram[layer]);
    }
    for (const auto &entry : index.value("history", nlohmann::json::array())) {
        const int64_t layer = entry["layer"];
        const auto ids = entry.value("ids", std::vector<int64_t>{});
        // Files written before updates were kept as factors hold dense matrices only.
        const auto rankOne = entry.value("rank_one", std::vector<bool>(ids.size(), false));
        for (size_t i = 0; i < ids.size(); ++i) {
            const std::string key = "history." + std::to_string(layer) + "." + std::to_string(i);
            LayerUpdate update;
            update.layer = layer;
            if (i < rankOne.size() && rankOne[i]) {
                archive.read(key + ".right", update.right);
                archive.read(key + ".left", update.left);
            } else {
                archive.read(key, update.dense);
            }
            m_history[layer].emplace_back(ids[i], update);
        }
    }
    // After the history: files from before some of the O-Edit state was kept are completed from it.
    m_protection.read(archive, index, m_history);
}

} // namespace oedit::edit
