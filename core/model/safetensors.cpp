#include "model/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// The format is little-endian; copying bytes straight into tensors is only
// right on a little-endian host (every platform libtorch ships for).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors reader assumes a little-endian host");

namespace oedit::model {

namespace {

// Every dtype the safetensors format defines with a whole-byte element size.
// Sub-byte and newer exotic types are unknown here and rejected by name.
struct DtypeEntry {
    const char *name;
    std::size_t size;
    bool hasTorchType;
    torch::ScalarType torchType;
};

const DtypeEntry kDtypes[] = {
    {"BOOL", 1, true, torch::kBool},
    {"U8", 1, true, torch::kByte},
    {"I8", 1, true, torch::kChar},
    {"I16", 2, true, torch::kShort},
    {"I32", 4, true, torch::kInt},
    {"I64", 8, true, torch::kLong},
    {"F16", 2, true, torch::kHalf},
    {"BF16", 2, true, torch::kBFloat16},
    {"F32", 4, true, torch::kFloat},
    {"F64", 8, true, torch::kDouble},
    // Known to the format but with no libtorch type common to 1.13 and 2.x.
    {"U16", 2, false, torch::kByte},
    {"U32", 4, false, torch::kByte},
    {"U64", 8, false, torch::kByte},
    {"F8_E4M3", 1, false, torch::kByte},
    {"F8_E5M2", 1, false, torch::kByte},
};

const DtypeEntry *findDtype(const std::string &name)
{
    for (const auto &entry : kDtypes)
        if (name == entry.name)
            return &entry;
    return nullptr;
}

std::string knownDtypeList()
{
    std::string list;
    for (const auto &entry : kDtypes) {
        if (!list.empty())
            list += ", ";
        list += entry.name;
    }
    return list;
}

// Names come from the file: keep messages readable whatever they contain.
std::string quoteName(const std::string &name)
{
    std::string out = "\"";
    for (std::size_t i = 0; i < name.size() && i < 200; ++i) {
        const unsigned char c = static_cast<unsigned char>(name[i]);
        out += (c < 0x20 || c == 0x7f) ? '?' : char(c);
    }
    if (name.size() > 200)
        out += "...";
    return out + "\"";
}

const char *const kDamaged = "; the file is damaged or was not written by a safetensors writer: "
                             "download or export it again";

// JSON integers come as signed or unsigned; floats, bools and strings are not integers.
bool readUnsigned(const nlohmann::json &value, uint64_t &out)
{
    if (value.is_number_unsigned()) {
        out = value.get<uint64_t>();
        return true;
    }
    if (value.is_number_integer() && value.get<int64_t>() >= 0) {
        out = uint64_t(value.get<int64_t>());
        return true;
    }
    return false;
}

} // namespace

std::size_t safetensorsDtypeSize(const std::string &dtype)
{
    const auto *entry = findDtype(dtype);
    return entry ? entry->size : 0;
}

std::string safetensorsDtypeName(torch::ScalarType type)
{
    for (const auto &entry : kDtypes)
        if (entry.hasTorchType && entry.torchType == type)
            return entry.name;
    throw CheckpointError(std::string("tensors of dtype ") + c10::toString(type) +
                          " cannot be stored in safetensors by this program; convert them to float32, "
                          "float16 or bfloat16 first");
}

SafetensorsFile::SafetensorsFile(const std::string &path) : m_path(path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int error = errno;
        throw CheckpointError("cannot open " + path + ": " + std::strerror(error));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw CheckpointError(path + " is not a regular file; a .safetensors file is expected");
    }
    const uint64_t fileSize = uint64_t(st.st_size);
    if (fileSize < 8) {
        ::close(fd);
        throw CheckpointError(path + " is only " + std::to_string(fileSize) +
                              " bytes, too short for the 8-byte header length of a safetensors file; the file is "
                              "truncated: download or export it again");
    }
    void *map = ::mmap(nullptr, fileSize, PROT_READ, MAP_PRIVATE, fd, 0);
    const int mapError = errno;
    ::close(fd); // the mapping keeps the file alive
    if (map == MAP_FAILED)
        throw CheckpointError("cannot map " + path + " into memory: " + std::strerror(mapError));
    m_map = static_cast<const unsigned char *>(map);
    m_mapSize = fileSize;

    // From here on the destructor will not run if we throw: release by hand.
    try {
        uint64_t headerSize = 0;
        for (int i = 7; i >= 0; --i)
            headerSize = (headerSize << 8) | m_map[i];
        if (headerSize > kMaxHeaderBytes)
            throw CheckpointError(path + ": header length " + std::to_string(headerSize) + " bytes exceeds the " +
                                  std::to_string(kMaxHeaderBytes) + "-byte limit" + kDamaged);
        if (headerSize > fileSize - 8)
            throw CheckpointError(path + ": header length " + std::to_string(headerSize) +
                                  " bytes is larger than the file (" + std::to_string(fileSize) +
                                  " bytes); the file is truncated or not safetensors: download or export it again");
        m_dataStart = 8 + headerSize;
        const uint64_t dataSize = fileSize - m_dataStart;

        const char *text = reinterpret_cast<const char *>(m_map + 8);
        const nlohmann::json header = parseStrictJson(text, text + headerSize, path + ": the header", 8);
        if (!header.is_object())
            throw CheckpointError(path + ": the header is a JSON " + header.type_name() + ", not an object of tensors" +
                                  kDamaged);

        for (const auto &[name, entry] : header.items()) {
            if (name == "__metadata__") {
                if (!entry.is_object())
                    throw CheckpointError(path + ": __metadata__ must be an object of strings" + kDamaged);
                for (const auto &[key, value] : entry.items()) {
                    if (!value.is_string())
                        throw CheckpointError(path + ": __metadata__ entry " + quoteName(key) + " is not a string" +
                                              kDamaged);
                    m_metadata[key] = value.get<std::string>();
                }
                continue;
            }
            const std::string where = path + ": tensor " + quoteName(name);
            if (name.empty())
                throw CheckpointError(path + ": a tensor has an empty name" + kDamaged);
            if (!entry.is_object())
                throw CheckpointError(where + " is described by a JSON " + entry.type_name() + ", not an object" +
                                      kDamaged);
            for (const auto &[key, value] : entry.items()) {
                (void)value;
                if (key != "dtype" && key != "shape" && key != "data_offsets")
                    throw CheckpointError(where + " has the unexpected field " + quoteName(key) +
                                          " (only dtype, shape and data_offsets are allowed)" + kDamaged);
            }
            for (const char *field : {"dtype", "shape", "data_offsets"})
                if (!entry.contains(field))
                    throw CheckpointError(where + " lacks the field \"" + field + "\"" + kDamaged);

            TensorInfo info;
            const auto &dtype = entry.at("dtype");
            if (!dtype.is_string())
                throw CheckpointError(where + ": dtype is not a string" + kDamaged);
            info.dtype = dtype.get<std::string>();
            const std::size_t elementSize = safetensorsDtypeSize(info.dtype);
            if (elementSize == 0)
                throw CheckpointError(where + " has the unknown dtype " + quoteName(info.dtype) +
                                      " (known: " + knownDtypeList() + "); convert the checkpoint to F32, F16 or BF16");

            const auto &shape = entry.at("shape");
            if (!shape.is_array())
                throw CheckpointError(where + ": shape is not an array" + kDamaged);
            // libtorch's own dimension limit is 64; real tensors have a handful.
            if (shape.size() > 64)
                throw CheckpointError(where + ": shape has " + std::to_string(shape.size()) +
                                      " dimensions, more than 64" + kDamaged);
            uint64_t elements = 1;
            bool overflow = false;
            // libtorch sizes a tensor from the product of its non-zero
            // dimensions too (and throws c10::Error past 2^63), even when
            // another dimension is 0.
            uint64_t nonZeroElements = 1;
            bool nonZeroOverflow = false;
            for (const auto &dim : shape) {
                if (dim.is_number_integer() && !dim.is_number_unsigned() && dim.get<int64_t>() < 0)
                    throw CheckpointError(where + ": shape has the negative dimension " +
                                          std::to_string(dim.get<int64_t>()) + kDamaged);
                uint64_t size = 0;
                if (!readUnsigned(dim, size))
                    throw CheckpointError(where + ": shape entry " + dim.dump() + " is not a non-negative integer" +
                                          kDamaged);
                if (size > uint64_t(std::numeric_limits<int64_t>::max()))
                    throw CheckpointError(where + ": shape dimension " + std::to_string(size) + " is too large" +
                                          kDamaged);
                info.shape.push_back(int64_t(size));
                // Overflow is only an error if no later dimension is 0; record it.
                overflow = overflow || __builtin_mul_overflow(elements, size, &elements);
                if (size != 0)
                    nonZeroOverflow = nonZeroOverflow || __builtin_mul_overflow(nonZeroElements, size, &nonZeroElements);
            }
            const bool hasZero = std::find(info.shape.begin(), info.shape.end(), 0) != info.shape.end();
            if (hasZero && (nonZeroOverflow || nonZeroElements > uint64_t(std::numeric_limits<int64_t>::max())))
                throw CheckpointError(where + ": the product of its shape's non-zero dimensions overflows a 64-bit "
                                              "size" +
                                      kDamaged);
            uint64_t byteSize = 0;
            if (!hasZero && (overflow || __builtin_mul_overflow(elements, uint64_t(elementSize), &byteSize)))
                throw CheckpointError(where +
                                      ": the product of its shape overflows (the tensor would need more "
                                      "than 2^64 bytes)" +
                                      kDamaged);

            const auto &offsets = entry.at("data_offsets");
            if (!offsets.is_array() || offsets.size() != 2)
                throw CheckpointError(where + ": data_offsets is not an array of two integers" + kDamaged);
            if (!readUnsigned(offsets[0], info.begin) || !readUnsigned(offsets[1], info.end))
                throw CheckpointError(where + ": data_offsets " + offsets.dump() + " are not non-negative integers" +
                                      kDamaged);
            if (info.begin > info.end)
                throw CheckpointError(where + ": data_offsets begin " + std::to_string(info.begin) + " is after end " +
                                      std::to_string(info.end) + kDamaged);
            if (info.end > dataSize)
                throw CheckpointError(where + ": data_offsets end " + std::to_string(info.end) +
                                      " is past the end of the data buffer (" + std::to_string(dataSize) +
                                      " bytes); the file is truncated: download or export it again");
            if (info.end - info.begin != byteSize)
                throw CheckpointError(where + ": shape and dtype " + info.dtype + " need " + std::to_string(byteSize) +
                                      " bytes but data_offsets span " + std::to_string(info.end - info.begin) +
                                      kDamaged);
            m_infos.emplace(name, std::move(info));
            m_order.push_back(name);
        }

        std::sort(m_order.begin(), m_order.end(), [this](const std::string &a, const std::string &b) {
            const auto &ia = m_infos.at(a);
            const auto &ib = m_infos.at(b);
            return ia.begin != ib.begin ? ia.begin < ib.begin : (ia.end != ib.end ? ia.end < ib.end : a < b);
        });
        // Two tensors sharing bytes would alias after an in-place edit in any
        // reader that maps instead of copying; the format forbids it. Empty
        // tensors own no bytes and cannot overlap.
        // Bytes no tensor owns (a gap, or data after the last tensor) are
        // refused as the format's reference reader refuses them: they mean a
        // header that does not describe the file it heads.
        const std::string *previous = nullptr;
        uint64_t previousEnd = 0;
        for (const auto &name : m_order) {
            const auto &info = m_infos.at(name);
            if (info.byteSize() == 0)
                continue;
            if (previous && info.begin < previousEnd)
                throw CheckpointError(path + ": tensors " + quoteName(*previous) + " and " + quoteName(name) +
                                      " overlap in the data buffer (bytes " + std::to_string(info.begin) + " to " +
                                      std::to_string(previousEnd) + ")" + kDamaged);
            if (info.begin > previousEnd)
                throw CheckpointError(path + ": bytes " + std::to_string(previousEnd) + " to " +
                                      std::to_string(info.begin) + " of the data buffer belong to no tensor (before " +
                                      quoteName(name) + ")" + kDamaged);
            previous = &name;
            previousEnd = info.end;
        }
        if (previousEnd != dataSize)
            throw CheckpointError(path + ": the last " + std::to_string(dataSize - previousEnd) +
                                  " bytes of the data buffer belong to no tensor" + kDamaged);
    } catch (...) {
        close();
        throw;
    }
}

SafetensorsFile::~SafetensorsFile()
{
    close();
}

SafetensorsFile::SafetensorsFile(SafetensorsFile &&other) noexcept
    : m_path(std::move(other.m_path)), m_map(other.m_map), m_mapSize(other.m_mapSize), m_dataStart(other.m_dataStart),
      m_infos(std::move(other.m_infos)), m_order(std::move(other.m_order)), m_metadata(std::move(other.m_metadata))
{
    other.m_map = nullptr;
    other.m_mapSize = 0;
}

SafetensorsFile &SafetensorsFile::operator=(SafetensorsFile &&other) noexcept
{
    if (this != &other) {
        close();
        m_path = std::move(other.m_path);
        m_map = other.m_map;
        m_mapSize = other.m_mapSize;
        m_dataStart = other.m_dataStart;
        m_infos = std::move(other.m_infos);
        m_order = std::move(other.m_order);
        m_metadata = std::move(other.m_metadata);
        other.m_map = nullptr;
        other.m_mapSize = 0;
    }
    return *this;
}

void SafetensorsFile::close() noexcept
{
    if (m_map)
        ::munmap(const_cast<unsigned char *>(m_map), m_mapSize);
    m_map = nullptr;
    m_mapSize = 0;
}

std::vector<std::string> SafetensorsFile::names() const
{
    return m_order;
}

const TensorInfo &SafetensorsFile::info(const std::string &name) const
{
    const auto found = m_infos.find(name);
    if (found == m_infos.end())
        throw CheckpointError(m_path + " has no tensor " + quoteName(name) +
                              "; the checkpoint does not match the expected architecture");
    return found->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string &name) const
{
    const TensorInfo &meta = info(name);
    const DtypeEntry *dtype = findDtype(meta.dtype);
    if (!dtype || !dtype->hasTorchType)
        throw CheckpointError(m_path + ": tensor " + quoteName(name) + " has dtype " + meta.dtype +
                              ", which this build cannot represent; convert the checkpoint to F32, F16 or BF16");
    if (!m_map)
        throw CheckpointError("internal error: tensor read from a closed safetensors file " + m_path);
    // Copy through memcpy rather than from_blob: offsets in the file need not
    // be aligned to the element size, and the copy must outlive the map.
    torch::Tensor result = torch::empty(meta.shape, torch::TensorOptions().dtype(dtype->torchType));
    const uint64_t bytes = meta.byteSize();
    if (uint64_t(result.nbytes()) != bytes)
        throw CheckpointError("internal error: byte size mismatch for " + quoteName(name) + " in " + m_path);
    const unsigned char *source = m_map + m_dataStart + meta.begin;
    if (bytes > 0)
        std::memcpy(result.data_ptr(), source, bytes);
    if (dtype->torchType == torch::kBool) {
        // Any byte other than 0 or 1 is an invalid bool and undefined behaviour in kernels.
        for (uint64_t i = 0; i < bytes; ++i)
            if (source[i] > 1)
                throw CheckpointError(m_path + ": tensor " + quoteName(name) + " is BOOL but holds the byte " +
                                      std::to_string(source[i]) + kDamaged);
    }
    return result;
}

void writeSafetensors(AtomicFile &file, const NamedTensors &tensors, const std::map<std::string, std::string> &metadata)
{
    // Validate and prepare everything before the first byte is written.
    std::set<std::string> seen;
    std::vector<torch::Tensor> prepared;
    prepared.reserve(tensors.size());
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        auto &meta = header["__metadata__"];
        meta = nlohmann::ordered_json::object();
        for (const auto &[key, value] : metadata)
            meta[key] = value;
    }
    uint64_t offset = 0;
    for (const auto &[name, tensor] : tensors) {
        const std::string where = file.finalPath() + ": tensor " + quoteName(name);
        if (name.empty())
            throw CheckpointError(file.finalPath() + ": cannot write a tensor with an empty name");
        if (name == "__metadata__")
            throw CheckpointError(where + ": the name is reserved by the safetensors format");
        if (!seen.insert(name).second)
            throw CheckpointError(where + " is given twice");
        if (!tensor.defined())
            throw CheckpointError(where + " is undefined (an empty torch::Tensor)");
        std::string dtype;
        try {
            dtype = safetensorsDtypeName(tensor.scalar_type());
        } catch (const CheckpointError &error) {
            throw CheckpointError(where + ": " + error.what());
        }
        torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
        const uint64_t bytes = uint64_t(cpu.nbytes());
        nlohmann::ordered_json entry = nlohmann::ordered_json::object();
        entry["dtype"] = dtype;
        entry["shape"] = cpu.sizes().vec();
        entry["data_offsets"] = {offset, offset + bytes};
        header[name] = std::move(entry);
        offset += bytes;
        prepared.push_back(std::move(cpu));
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception &error) {
        throw CheckpointError(file.finalPath() + ": a tensor name or metadata value is not valid UTF-8 (" +
                              error.what() + ")");
    }
    // Pad so the data buffer starts 8-byte aligned, as the reference writer does.
    text.append((8 - text.size() % 8) % 8, ' ');
    unsigned char length[8];
    uint64_t size = text.size();
    for (int i = 0; i < 8; ++i, size >>= 8)
        length[i] = static_cast<unsigned char>(size & 0xff);
    file.write(length, sizeof length);
    file.write(text);
    for (const auto &tensor : prepared)
        if (tensor.nbytes() > 0)
            file.write(tensor.data_ptr(), tensor.nbytes());
}

void writeSafetensors(const std::string &path, const NamedTensors &tensors,
                      const std::map<std::string, std::string> &metadata)
{
    // Any throw below destroys `file` uncommitted, which removes the
    // temporary and leaves `path` as it was.
    AtomicFile file(path);
    writeSafetensors(file, tensors, metadata);
    file.commit();
}

} // namespace oedit::model
