// CounterFact (flat and ROME formats) and zsRE loaders into EditCase.
#include "oedit/datasets.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace oedit::world {

namespace {

using nlohmann::json;

class DatasetError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Offset of the first byte that breaks UTF-8, or npos.
size_t firstInvalidUtf8(const std::string &text)
{
    const size_t n = text.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        size_t len;
        unsigned min;
        unsigned codepoint;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, codepoint = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, codepoint = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, codepoint = c & 0x07;
        } else {
            return i;
        }
        if (i + len > n)
            return i;
        for (size_t k = 1; k < len; ++k) {
            const unsigned char follow = static_cast<unsigned char>(text[i + k]);
            if ((follow & 0xC0) != 0x80)
                return i;
            codepoint = (codepoint << 6) | (follow & 0x3F);
        }
        if (codepoint < min || codepoint > 0x10FFFF || (codepoint >= 0xD800 && codepoint <= 0xDFFF))
            return i;
        i += len;
    }
    return std::string::npos;
}

// Which element of the top-level array the byte at `offset` belongs to (-1
// when outside any), found by a small scan that tracks strings and nesting.
int recordAt(const std::string &text, size_t offset, int *line)
{
    int depth = 0, record = -1;
    bool inString = false, escaped = false;
    *line = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n')
            ++*line;
        if (inString) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                inString = false;
            continue;
        }
        if (c == '"') {
            inString = true;
            if (depth == 1)
                ++record; // a bare string element
        } else if (c == '{' || c == '[') {
            if (depth == 1)
                ++record;
            ++depth;
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    return record;
}

std::string fieldPath(const std::string &record, const std::string &field)
{
    return record + ": field '" + field + "'";
}

const json &member(const json &object, const std::string &record, const char *key)
{
    const auto it = object.find(key);
    if (it == object.end())
        throw DatasetError(record + ": missing field '" + key + "'");
    return *it;
}

std::string text(const json &object, const std::string &record, const char *key, bool allowEmpty = false)
{
    const json &value = member(object, record, key);
    if (!value.is_string())
        throw DatasetError(fieldPath(record, key) + " should be a string");
    std::string out = value.get<std::string>();
    if (out.empty() && !allowEmpty)
        throw DatasetError(fieldPath(record, key) + " is empty");
    return out;
}

std::vector<std::string> texts(const json &object, const std::string &record, const char *key)
{
    const json &value = member(object, record, key);
    if (!value.is_array())
        throw DatasetError(fieldPath(record, key) + " should be an array of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string())
            throw DatasetError(fieldPath(record, key) + "[" + std::to_string(i) + "] should be a string");
        out.push_back(value[i].get<std::string>());
    }
    return out;
}

std::string caseIdOf(const json &object, const std::string &record)
{
    const json &value = member(object, record, "case_id");
    if (value.is_number_integer())
        return std::to_string(value.get<long long>());
    if (value.is_string() && !value.get<std::string>().empty())
        return value.get<std::string>();
    throw DatasetError(fieldPath(record, "case_id") + " should be an integer or a string");
}

// The prompt with the subject's first occurrence replaced by "{}".
std::string templateFrom(const std::string &prompt, const std::string &subject, const std::string &record,
                         const char *key)
{
    const size_t at = prompt.find(subject);
    if (at == std::string::npos)
        throw DatasetError(record + ": the subject '" + subject + "' does not occur in " + key + " '" + prompt + "'");
    std::string out = prompt;
    out.replace(at, subject.size(), "{}");
    return out;
}

EditCase parseFlat(const json &r, const std::string &record)
{
    EditCase c;
    c.subject = text(r, record, "subject");
    c.promptTemplate = templateFrom(text(r, record, "prompt"), c.subject, record, "prompt");
    c.targetNew = text(r, record, "target_new");
    c.targetTrue = text(r, record, "ground_truth");
    c.paraphrases.push_back(text(r, record, "rephrase_prompt"));
    c.neighbourhood.push_back({text(r, record, "locality_prompt"), text(r, record, "locality_ground_truth")});
    return c;
}

EditCase parseRome(const json &r, const std::string &record)
{
    EditCase c;
    const json &rewrite = member(r, record, "requested_rewrite");
    if (!rewrite.is_object())
        throw DatasetError(fieldPath(record, "requested_rewrite") + " should be an object");
    const std::string inner = record + " requested_rewrite";
    c.subject = text(rewrite, inner, "subject");
    c.promptTemplate = text(rewrite, inner, "prompt");
    if (c.promptTemplate.find("{}") == std::string::npos)
        throw DatasetError(record + ": requested_rewrite.prompt '" + c.promptTemplate +
                           "' has no \"{}\" for the subject");
    if (rewrite.contains("relation_id") && rewrite["relation_id"].is_string())
        c.relationId = rewrite["relation_id"].get<std::string>();
    for (const char *key : {"target_new", "target_true"}) {
        const json &target = member(rewrite, inner, key);
        if (!target.is_object())
            throw DatasetError(record + ": requested_rewrite." + key + " should be an object with \"str\"");
        (std::string(key) == "target_new" ? c.targetNew : c.targetTrue) =
            text(target, record + " requested_rewrite." + key, "str");
    }
    c.paraphrases = texts(r, record, "paraphrase_prompts");
    for (const std::string &prompt : texts(r, record, "neighborhood_prompts"))
        c.neighbourhood.push_back({prompt, c.targetTrue});
    return c;
}

EditCase parseZsre(const json &r, const std::string &record)
{
    EditCase c;
    c.subject = text(r, record, "subject");
    c.promptTemplate = templateFrom(text(r, record, "src"), c.subject, record, "src");
    c.targetNew = text(r, record, "alt");
    const std::vector<std::string> answers = texts(r, record, "answers");
    if (answers.empty() || answers[0].empty())
        throw DatasetError(fieldPath(record, "answers") + " is empty");
    c.targetTrue = answers[0];
    c.paraphrases.push_back(text(r, record, "rephrase"));
    c.neighbourhood.push_back({text(r, record, "loc"), text(r, record, "loc_ans")});
    return c;
}

DatasetFormat detect(const json &first, const std::string &source)
{
    if (first.is_object()) {
        if (first.contains("requested_rewrite"))
            return DatasetFormat::CounterFactRome;
        if (first.contains("src") && first.contains("alt"))
            return DatasetFormat::Zsre;
        if (first.contains("prompt") && first.contains("target_new"))
            return DatasetFormat::CounterFactFlat;
    }
    throw DatasetError(source + ": cannot tell the format from record 0: expected CounterFact (\"requested_rewrite\" "
                                "or \"prompt\" and \"target_new\") or zsRE (\"src\" and \"alt\")");
}

} // namespace

Expected<DatasetFormat> parseDatasetFormat(const std::string &name)
{
    for (DatasetFormat format :
         {DatasetFormat::Auto, DatasetFormat::CounterFactFlat, DatasetFormat::CounterFactRome, DatasetFormat::Zsre})
        if (datasetFormatName(format) == name)
            return format;
    return Status::failure("unknown data set format '" + name +
                           "' (known: auto, counterfact-flat, counterfact-rome, zsre)");
}

std::string datasetFormatName(DatasetFormat format)
{
    switch (format) {
    case DatasetFormat::Auto:
        return "auto";
    case DatasetFormat::CounterFactFlat:
        return "counterfact-flat";
    case DatasetFormat::CounterFactRome:
        return "counterfact-rome";
    case DatasetFormat::Zsre:
        return "zsre";
    }
    return "auto";
}

std::string EditCase::prompt() const
{
    std::string out = promptTemplate;
    const size_t at = out.find("{}");
    if (at != std::string::npos)
        out.replace(at, 2, subject);
    return out;
}

Expected<std::vector<EditCase>> parseEditCases(const std::string &bytes, DatasetFormat format,
                                               const std::string &source)
{
    try {
        const size_t bad = firstInvalidUtf8(bytes);
        if (bad != std::string::npos) {
            int line = 1;
            const int record = recordAt(bytes, bad, &line);
            throw DatasetError(source + ": " +
                               (record >= 0 ? "record " + std::to_string(record) + " (line " : "(line ") +
                               std::to_string(line) + ", byte " + std::to_string(bad) +
                               ") holds text that is not UTF-8; convert the file to UTF-8");
        }
        json root;
        try {
            root = json::parse(bytes);
        } catch (const json::parse_error &error) {
            int line = 1;
            const int record = recordAt(bytes, error.byte > 0 ? error.byte - 1 : 0, &line);
            throw DatasetError(source + ": not valid JSON" +
                               (record >= 0 ? " in record " + std::to_string(record) : std::string()) + " (line " +
                               std::to_string(line) + "): " + error.what());
        }
        if (!root.is_array())
            throw DatasetError(source + ": expected a JSON array of records at the top level");
        if (root.empty())
            throw DatasetError(source + ": holds no records");
        if (format == DatasetFormat::Auto)
            format = detect(root[0], source);

        std::vector<EditCase> cases;
        cases.reserve(root.size());
        std::map<std::string, size_t> ids;
        for (size_t i = 0; i < root.size(); ++i) {
            const json &r = root[i];
            std::string record = source + ": record " + std::to_string(i);
            if (!r.is_object())
                throw DatasetError(record + " is not a JSON object");
            std::string caseId = std::to_string(i);
            if (format != DatasetFormat::Zsre) {
                caseId = caseIdOf(r, record);
                record += " (case_id " + caseId + ")";
            }
            EditCase c = format == DatasetFormat::CounterFactFlat   ? parseFlat(r, record)
                         : format == DatasetFormat::CounterFactRome ? parseRome(r, record)
                                                                    : parseZsre(r, record);
            c.caseId = caseId;
            const auto inserted = ids.emplace(caseId, i);
            if (!inserted.second)
                throw DatasetError(record + ": duplicate case_id " + caseId + " (first in record " +
                                   std::to_string(inserted.first->second) + ")");
            cases.push_back(std::move(c));
        }
        return cases;
    } catch (const DatasetError &error) {
        return Status::failure(error.what());
    } catch (const std::exception &error) {
        return Status::failure(source + ": " + error.what());
    }
}

Expected<std::vector<EditCase>> loadEditCases(const std::string &path, DatasetFormat format)
{
    // CounterFact's full file is about 40 MB and zsRE's training split about
    // 100 MB; parsing JSON takes several times its size in memory, so a file
    // past this limit is refused before it is read.
    constexpr uintmax_t kMaxDatasetBytes = 512u << 20;
    std::error_code error;
    const uintmax_t size = std::filesystem::file_size(path, error);
    if (error) // missing, or not a regular file
        return Status::failure("cannot open data set " + path + ": " + error.message());
    if (size > kMaxDatasetBytes)
        return Status::failure("data set " + path + " is " + std::to_string(size) + " bytes, over the " +
                               std::to_string(kMaxDatasetBytes) +
                               "-byte limit for data set files; split it or pass a smaller part");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Status::failure("cannot open data set " + path);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (in.bad())
        return Status::failure("cannot read data set " + path);
    return parseEditCases(bytes.str(), format, path);
}

} // namespace oedit::world
