// world.json and the general text files: writing them deterministically and
// atomically, reading them back with errors that name the record and field.
#include "oedit/world.h"

#include "world/world_internal.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace oedit::world {

namespace {

constexpr const char *kFormatName = "oedit-world";
constexpr const char *kWorldFile = "world.json";
constexpr const char *kTrainFile = "general_train.txt";
constexpr const char *kHeldoutFile = "general_heldout.txt";

// Thrown inside the loader and caught at the API boundary; what() is the
// finished message ("world.json: facts[3].object: ...").
class WorldError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::string inQuotes(const std::string &text)
{
    return "'" + text + "'";
}

// "facts[3]" + "object" -> "facts[3].object"; top-level fields have no prefix.
std::string join(const std::string &path, const char *key)
{
    return path.empty() ? std::string(key) : path + "." + key;
}

std::string located(const std::string &path, const std::string &message)
{
    return path.empty() ? message : path + ": " + message;
}

// Appends `items` as a JSON array with one compact element per line, so the
// file is readable and diffs line by line.
void appendArray(std::string &out, const char *key, const std::vector<ordered_json> &items, bool last)
{
    out += "  \"";
    out += key;
    out += "\": [";
    for (size_t i = 0; i < items.size(); ++i) {
        out += i == 0 ? "\n    " : ",\n    ";
        out += items[i].dump();
    }
    out += items.empty() ? "]" : "\n  ]";
    out += last ? "\n" : ",\n";
}

void appendValue(std::string &out, const char *key, const ordered_json &value)
{
    out += "  \"";
    out += key;
    out += "\": ";
    out += value.dump();
    out += ",\n";
}

Status writeFile(const fs::path &path, const std::string &bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out)
        return Status::failure("cannot create " + path.string());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out)
        return Status::failure("cannot write " + path.string() + " (disk full?)");
    return Status::success();
}

// The default world's world.json is under 1 MB and its general text 300 KB;
// even a 100,000-subject world stays far below this.
constexpr uintmax_t kMaxWorldFileBytes = 512u << 20;

Expected<std::string> readFile(const fs::path &path)
{
    std::error_code error;
    const uintmax_t size = fs::file_size(path, error);
    if (error) // missing, or not a regular file
        return Status::failure("cannot open " + path.string() + ": " + error.message());
    if (size > kMaxWorldFileBytes)
        return Status::failure(path.string() + " is " + std::to_string(size) + " bytes, over the " +
                               std::to_string(kMaxWorldFileBytes) + "-byte limit for world files");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Status::failure("cannot open " + path.string());
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (in.bad())
        return Status::failure("cannot read " + path.string());
    return bytes.str();
}

std::string joinLines(const std::vector<std::string> &lines)
{
    std::string out;
    for (const std::string &line : lines) {
        out += line;
        out += '\n';
    }
    return out;
}

std::vector<std::string> splitLines(const std::string &text)
{
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// ---------------------------------------------------------------------------
// Typed access to the parsed JSON with the record's path in every message.

const ordered_json &field(const ordered_json &object, const std::string &path, const char *key)
{
    if (!object.is_object())
        throw WorldError(located(path, "expected an object"));
    const auto it = object.find(key);
    if (it == object.end())
        throw WorldError(located(path, std::string("missing field '") + key + "'"));
    return *it;
}

std::string stringField(const ordered_json &object, const std::string &path, const char *key)
{
    const ordered_json &value = field(object, path, key);
    if (!value.is_string())
        throw WorldError(join(path, key) + ": expected a string");
    std::string text = value.get<std::string>();
    if (text.empty())
        throw WorldError(join(path, key) + ": is empty");
    return text;
}

long long integerField(const ordered_json &object, const std::string &path, const char *key, long long lo, long long hi)
{
    const ordered_json &value = field(object, path, key);
    if (!value.is_number_integer())
        throw WorldError(join(path, key) + ": expected an integer");
    if (value.is_number_unsigned() ? value.get<unsigned long long>() > static_cast<unsigned long long>(hi)
                                   : value.get<long long>() < lo || value.get<long long>() > hi)
        throw WorldError(join(path, key) + ": must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return value.get<long long>();
}

const ordered_json &arrayField(const ordered_json &object, const std::string &path, const char *key)
{
    const ordered_json &value = field(object, path, key);
    if (!value.is_array())
        throw WorldError(join(path, key) + ": expected an array");
    return value;
}

// A non-empty array of distinct non-empty strings.
std::vector<std::string> stringList(const ordered_json &object, const std::string &path, const char *key)
{
    const ordered_json &array = arrayField(object, path, key);
    if (array.empty())
        throw WorldError(join(path, key) + ": is empty");
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (size_t i = 0; i < array.size(); ++i) {
        const std::string where = join(path, key) + "[" + std::to_string(i) + "]";
        if (!array[i].is_string() || array[i].get<std::string>().empty())
            throw WorldError(where + ": expected a non-empty string");
        out.push_back(array[i].get<std::string>());
        if (!seen.insert(out.back()).second)
            throw WorldError(where + ": duplicate " + inQuotes(out.back()));
    }
    return out;
}

size_t countOf(const std::string &text, const std::string &needle)
{
    size_t count = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size()))
        ++count;
    return count;
}

World parseWorld(const std::string &text)
{
    ordered_json root;
    try {
        root = ordered_json::parse(text);
    } catch (const nlohmann::json::exception &error) {
        throw WorldError(std::string("not valid JSON: ") + error.what());
    }
    if (!root.is_object())
        throw WorldError("expected a JSON object at the top level");
    if (stringField(root, "", "format") != kFormatName)
        throw WorldError("format: expected '" + std::string(kFormatName) + "'");
    const long long version = integerField(root, "", "version", 0, 1000000);
    if (version != kWorldFormatVersion)
        throw WorldError("version: is " + std::to_string(version) + ", this build reads version " +
                         std::to_string(kWorldFormatVersion));

    World world;
    const ordered_json &generator = field(root, "", "generator");
    const ordered_json &seed = field(generator, "generator", "seed");
    if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<long long>() >= 0))
        throw WorldError("generator.seed: expected a non-negative integer");
    world.options.seed = seed.get<uint64_t>();
    world.options.subjects = static_cast<int>(integerField(generator, "generator", "subjects", 1, 100000));
    world.options.generalTextBytes =
        static_cast<int>(integerField(generator, "generator", "generalTextBytes", 0, 100000000));
    world.options.heldoutPercent = static_cast<int>(integerField(generator, "generator", "heldoutPercent", 1, 50));
    if (generator.contains("sharedNameParts"))
        world.options.sharedNameParts =
            static_cast<int>(integerField(generator, "generator", "sharedNameParts", 0, 100000));

    world.kinds = stringList(root, "", "kinds");
    const std::set<std::string> kinds(world.kinds.begin(), world.kinds.end());

    std::map<std::string, int> relationIds;
    const ordered_json &relations = arrayField(root, "", "relations");
    if (relations.empty())
        throw WorldError("relations: is empty");
    for (size_t i = 0; i < relations.size(); ++i) {
        const std::string path = "relations[" + std::to_string(i) + "]";
        Relation relation;
        relation.id = stringField(relations[i], path, "id");
        relation.wikidataId = stringField(relations[i], path, "wikidata");
        relation.name = stringField(relations[i], path, "name");
        relation.kinds = stringList(relations[i], path, "kinds");
        for (size_t k = 0; k < relation.kinds.size(); ++k)
            if (!kinds.count(relation.kinds[k]))
                throw WorldError(path + ".kinds[" + std::to_string(k) + "]: unknown kind " +
                                 inQuotes(relation.kinds[k]));
        relation.templates = stringList(relations[i], path, "templates");
        for (size_t t = 0; t < relation.templates.size(); ++t)
            if (countOf(relation.templates[t], "{}") != 1)
                throw WorldError(path + ".templates[" + std::to_string(t) +
                                 "]: must contain \"{}\" exactly once: " + inQuotes(relation.templates[t]));
        relation.objects = stringList(relations[i], path, "objects");
        if (!relationIds.emplace(relation.id, static_cast<int>(i)).second)
            throw WorldError(path + ".id: duplicate relation " + inQuotes(relation.id) + " (also relations[" +
                             std::to_string(relationIds[relation.id]) + "])");
        world.relations.push_back(std::move(relation));
    }

    std::map<std::string, int> subjectIds;
    const ordered_json &subjects = arrayField(root, "", "subjects");
    for (size_t i = 0; i < subjects.size(); ++i) {
        const std::string path = "subjects[" + std::to_string(i) + "]";
        Subject subject;
        subject.name = stringField(subjects[i], path, "name");
        subject.kind = stringField(subjects[i], path, "kind");
        if (!kinds.count(subject.kind))
            throw WorldError(path + ".kind: unknown kind " + inQuotes(subject.kind));
        if (!subjectIds.emplace(subject.name, static_cast<int>(i)).second)
            throw WorldError(path + ".name: duplicate subject " + inQuotes(subject.name) + " (also subjects[" +
                             std::to_string(subjectIds[subject.name]) + "])");
        world.subjects.push_back(std::move(subject));
    }

    std::set<std::pair<int, int>> seenFacts;
    const ordered_json &facts = arrayField(root, "", "facts");
    for (size_t i = 0; i < facts.size(); ++i) {
        const std::string path = "facts[" + std::to_string(i) + "]";
        const std::string subjectName = stringField(facts[i], path, "subject");
        const std::string relationId = stringField(facts[i], path, "relation");
        const std::string objectName = stringField(facts[i], path, "object");
        const auto subject = subjectIds.find(subjectName);
        if (subject == subjectIds.end())
            throw WorldError(path + ".subject: unknown subject " + inQuotes(subjectName));
        const auto relation = relationIds.find(relationId);
        if (relation == relationIds.end())
            throw WorldError(path + ".relation: unknown relation " + inQuotes(relationId));
        Fact fact;
        fact.subject = subject->second;
        fact.relation = relation->second;
        fact.object = world.objectIndex(fact.relation, objectName);
        if (fact.object < 0)
            throw WorldError(path + ".object: " + inQuotes(objectName) + " is not an object of relation " +
                             inQuotes(relationId));
        const Relation &rel = world.relations[fact.relation];
        const std::string &kind = world.subjects[fact.subject].kind;
        if (std::find(rel.kinds.begin(), rel.kinds.end(), kind) == rel.kinds.end())
            throw WorldError(path + ".relation: " + inQuotes(relationId) + " does not apply to " +
                             inQuotes(subjectName) + ", a " + kind);
        if (!seenFacts.insert({fact.subject, fact.relation}).second)
            throw WorldError(path + ": second fact for subject " + inQuotes(subjectName) + " and relation " +
                             inQuotes(relationId));
        world.facts.push_back(fact);
    }
    computeNeighbours(world);

    // The stored neighbourhoods must be exactly those the facts imply: a
    // mismatch means the file was edited by hand or cut short.
    std::map<std::pair<int, int>, std::vector<int>> expected;
    for (const Fact &fact : world.facts)
        expected[{fact.relation, fact.object}].push_back(fact.subject);
    const ordered_json &groups = arrayField(root, "", "neighbourhoods");
    std::set<std::pair<int, int>> listed;
    for (size_t i = 0; i < groups.size(); ++i) {
        const std::string path = "neighbourhoods[" + std::to_string(i) + "]";
        const std::string relationId = stringField(groups[i], path, "relation");
        const std::string objectName = stringField(groups[i], path, "object");
        const auto relation = relationIds.find(relationId);
        if (relation == relationIds.end())
            throw WorldError(path + ".relation: unknown relation " + inQuotes(relationId));
        const int object = world.objectIndex(relation->second, objectName);
        if (object < 0)
            throw WorldError(path + ".object: " + inQuotes(objectName) + " is not an object of relation " +
                             inQuotes(relationId));
        const std::pair<int, int> key{relation->second, object};
        if (!listed.insert(key).second)
            throw WorldError(path + ": second entry for " + relationId + " = " + objectName);
        const auto found = expected.find(key);
        std::vector<int> members;
        for (const std::string &name : stringList(groups[i], path, "subjects")) {
            const auto subject = subjectIds.find(name);
            if (subject == subjectIds.end())
                throw WorldError(path + ".subjects: unknown subject " + inQuotes(name));
            members.push_back(subject->second);
        }
        std::sort(members.begin(), members.end());
        if (found == expected.end() || found->second != members)
            throw WorldError(path + " (" + relationId + " = " + objectName +
                             "): its subjects differ from the subjects whose facts have that object");
    }
    for (const auto &group : expected)
        if (!listed.count(group.first))
            throw WorldError("neighbourhoods: no entry for " + world.relations[group.first.first].id + " = " +
                             world.relations[group.first.first].objects[group.first.second]);

    const ordered_json &general = field(root, "", "general");
    integerField(general, "general", "trainLines", 0, 100000000);
    integerField(general, "general", "heldoutLines", 0, 100000000);
    return world;
}

void checkLineCount(const ordered_json &root, const char *key, const std::vector<std::string> &lines, const char *file)
{
    const long long expected = root["general"][key].get<long long>();
    if (static_cast<long long>(lines.size()) != expected)
        throw WorldError(std::string(file) + ": has " + std::to_string(lines.size()) + " lines, world.json general." +
                         key + " says " + std::to_string(expected) + " (file cut short or replaced?)");
}

} // namespace

std::string worldJson(const World &world)
{
    std::string out = "{\n";
    appendValue(out, "format", kFormatName);
    appendValue(out, "version", kWorldFormatVersion);
    ordered_json generator;
    generator["seed"] = world.options.seed;
    generator["subjects"] = world.options.subjects;
    generator["generalTextBytes"] = world.options.generalTextBytes;
    generator["heldoutPercent"] = world.options.heldoutPercent;
    // Written only when used, so worlds without shared parts keep their bytes.
    if (world.options.sharedNameParts > 0)
        generator["sharedNameParts"] = world.options.sharedNameParts;
    appendValue(out, "generator", generator);
    appendValue(out, "kinds", world.kinds);

    std::vector<ordered_json> items;
    for (const Relation &relation : world.relations) {
        ordered_json item;
        item["id"] = relation.id;
        item["wikidata"] = relation.wikidataId;
        item["name"] = relation.name;
        item["kinds"] = relation.kinds;
        item["templates"] = relation.templates;
        item["objects"] = relation.objects;
        items.push_back(std::move(item));
    }
    appendArray(out, "relations", items, false);

    items.clear();
    for (const Subject &subject : world.subjects)
        items.push_back(ordered_json{{"name", subject.name}, {"kind", subject.kind}});
    appendArray(out, "subjects", items, false);

    items.clear();
    std::map<std::pair<int, int>, std::vector<int>> groups;
    for (const Fact &fact : world.facts) {
        items.push_back(ordered_json{{"subject", world.subjects[fact.subject].name},
                                     {"relation", world.relations[fact.relation].id},
                                     {"object", world.objectName(fact)}});
        groups[{fact.relation, fact.object}].push_back(fact.subject);
    }
    appendArray(out, "facts", items, false);

    items.clear();
    for (auto &group : groups) {
        std::sort(group.second.begin(), group.second.end());
        ordered_json names = ordered_json::array();
        for (int subject : group.second)
            names.push_back(world.subjects[subject].name);
        const Relation &relation = world.relations[group.first.first];
        items.push_back(ordered_json{
            {"relation", relation.id}, {"object", relation.objects[group.first.second]}, {"subjects", names}});
    }
    appendArray(out, "neighbourhoods", items, false);

    ordered_json general;
    general["train"] = kTrainFile;
    general["heldout"] = kHeldoutFile;
    general["trainLines"] = world.generalTrain.size();
    general["heldoutLines"] = world.generalHeldout.size();
    out += "  \"general\": " + general.dump() + "\n}\n";
    return out;
}

Status writeWorldFiles(const World &world, const std::string &dir)
{
    const fs::path base(dir);
    if (Status status = writeFile(base / kWorldFile, worldJson(world)); !status)
        return status;
    if (Status status = writeFile(base / kTrainFile, joinLines(world.generalTrain)); !status)
        return status;
    return writeFile(base / kHeldoutFile, joinLines(world.generalHeldout));
}

Status saveWorld(const World &world, const std::string &dir)
{
    return writeDirectoryAtomically(dir, [&world](const std::string &tmp) { return writeWorldFiles(world, tmp); });
}

Expected<World> parseWorldJson(const std::string &text)
{
    try {
        return parseWorld(text);
    } catch (const WorldError &error) {
        return Status::failure(std::string("world.json: ") + error.what());
    } catch (const std::exception &error) {
        return Status::failure(std::string("world.json: ") + error.what());
    }
}

Expected<World> loadWorld(const std::string &dir)
{
    const fs::path base(dir);
    std::error_code ec;
    if (!fs::is_directory(base, ec))
        return Status::failure("world directory " + dir + " does not exist");
    const Expected<std::string> text = readFile(base / kWorldFile);
    if (!text)
        return Status::failure(text.message() + " (not a world directory?)");
    try {
        World world = parseWorld(text.value());
        const ordered_json root = ordered_json::parse(text.value());
        const Expected<std::string> train = readFile(base / kTrainFile);
        if (!train)
            return train.status();
        const Expected<std::string> heldout = readFile(base / kHeldoutFile);
        if (!heldout)
            return heldout.status();
        world.generalTrain = splitLines(train.value());
        world.generalHeldout = splitLines(heldout.value());
        checkLineCount(root, "trainLines", world.generalTrain, kTrainFile);
        checkLineCount(root, "heldoutLines", world.generalHeldout, kHeldoutFile);
        return world;
    } catch (const std::exception &error) {
        // WorldError messages from checkLineCount already name their file.
        const std::string message = error.what();
        if (message.rfind(kTrainFile, 0) == 0 || message.rfind(kHeldoutFile, 0) == 0)
            return Status::failure((base / message).string());
        return Status::failure((base / kWorldFile).string() + ": " + message);
    }
}

Status writeDirectoryAtomically(const std::string &dir, const std::function<Status(const std::string &)> &fill)
{
    std::error_code ec;
    fs::path target = fs::absolute(fs::path(dir), ec);
    if (ec || dir.empty())
        return Status::failure("invalid output directory '" + dir + "'");
    if (!target.has_filename()) // "out/" -> "out"
        target = target.parent_path();
    const fs::path parent = target.parent_path();
    const std::string name = target.filename().string();

    const bool exists = fs::exists(target, ec);
    if (exists) {
        if (!fs::is_directory(target, ec))
            return Status::failure(target.string() + " exists and is not a directory");
        if (!fs::is_empty(target, ec) && !fs::exists(target / kWorldFile, ec))
            return Status::failure("refusing to replace " + target.string() +
                                   ": it is not empty and holds no world.json");
    }
    // Missing parents are created (like mkdir -p); they are not removed on
    // failure, since they hold nothing half-written.
    if (!fs::exists(parent, ec))
        fs::create_directories(parent, ec);
    if (!fs::is_directory(parent, ec))
        return Status::failure("cannot write " + target.string() + ": " + parent.string() + " is not a directory" +
                               (ec ? " (" + ec.message() + ")" : ""));

    // A fresh temporary sibling: same file system, so the rename is atomic.
    fs::path tmp;
    for (int attempt = 0;; ++attempt) {
        tmp = parent / ("." + name + ".tmp-" + std::to_string(attempt));
        if (fs::create_directory(tmp, ec))
            break;
        if (ec || attempt > 1000)
            return Status::failure("cannot create a temporary directory in " + parent.string() +
                                   (ec ? ": " + ec.message() : ""));
    }
    Status status = Status::failure("unknown error");
    try {
        status = fill(tmp.string());
    } catch (const std::exception &error) {
        status = Status::failure(error.what());
    }
    if (!status) {
        fs::remove_all(tmp, ec);
        return status;
    }

    fs::path old;
    if (exists) {
        for (int attempt = 0;; ++attempt) {
            old = parent / ("." + name + ".old-" + std::to_string(attempt));
            if (!fs::exists(old, ec))
                break;
        }
        fs::rename(target, old, ec);
        if (ec) {
            fs::remove_all(tmp, ec);
            return Status::failure("cannot move the old " + target.string() + " aside: " + ec.message());
        }
    }
    fs::rename(tmp, target, ec);
    if (ec) {
        const std::string why = ec.message();
        if (exists)
            fs::rename(old, target, ec); // put the old one back
        fs::remove_all(tmp, ec);
        return Status::failure("cannot move the new files into " + target.string() + ": " + why);
    }
    if (exists)
        fs::remove_all(old, ec); // leftovers here are harmless: hidden and complete
    return Status::success();
}

} // namespace oedit::world
