// The synthetic knowledge world, its BPE trainer and the data-set loaders:
// determinism, the shape the rest of the product relies on (counts, unique
// multi-token names, valid facts, exact neighbourhoods), save/load with clear
// errors, and a tokenizer that reproduces the text and keeps objects whole.
#include "oedit/bpe_trainer.h"
#include "oedit/datasets.h"
#include "oedit/world.h"

#if __has_include("model/tokenizer.h")
#include "model/tokenizer.h"
#define OEDIT_TEST_HAS_TOKENIZER 1
#endif

#include <nlohmann/json.hpp>

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace oedit::world;
using nlohmann::ordered_json;

namespace {

World generated(const WorldOptions &options)
{
    auto world = generateWorld(options);
    if (!world)
        qFatal("generateWorld failed: %s", world.message().c_str());
    return std::move(world).value();
}

WorldOptions preset(const char *name)
{
    auto options = worldPreset(name);
    if (!options)
        qFatal("preset %s: %s", name, options.message().c_str());
    return options.value();
}

std::string readAll(const QString &path)
{
    std::ifstream in(path.toStdString(), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

void writeAll(const QString &path, const std::string &bytes)
{
    std::ofstream out(path.toStdString(), std::ios::binary | std::ios::trunc);
    out << bytes;
}

int wordCount(const std::string &text)
{
    return static_cast<int>(std::count(text.begin(), text.end(), ' ')) + 1;
}

QString sharedData(const char *relative)
{
    return QStringLiteral(OEDIT_SHARED_DIR "/data/") + QString::fromLatin1(relative);
}

// Corruptions of a valid world.json for the load-error table.
enum class Corruption {
    NotJson,
    MissingTopLevelField,
    MissingFactField,
    UnknownRelationInFact,
    UnknownSubjectInFact,
    ObjectNotOfRelation,
    DuplicateSubject,
    TemplateWithoutPlaceholder,
    WrongType,
    WrongVersion,
    NeighbourhoodMismatch,
    RelationNotForKind,
};

std::string corrupt(const std::string &valid, Corruption corruption)
{
    ordered_json j = ordered_json::parse(valid);
    switch (corruption) {
    case Corruption::NotJson:
        return valid.substr(0, valid.size() / 2);
    case Corruption::MissingTopLevelField:
        j.erase("relations");
        break;
    case Corruption::MissingFactField:
        j["facts"][0].erase("object");
        break;
    case Corruption::UnknownRelationInFact:
        j["facts"][3]["relation"] = "favourite_colour";
        break;
    case Corruption::UnknownSubjectInFact:
        j["facts"][4]["subject"] = "Nobody Atall";
        break;
    case Corruption::ObjectNotOfRelation:
        j["facts"][0]["object"] = "Atlantis";
        break;
    case Corruption::DuplicateSubject:
        j["subjects"][5]["name"] = j["subjects"][2]["name"];
        break;
    case Corruption::TemplateWithoutPlaceholder:
        j["relations"][1]["templates"][2] = "no placeholder here";
        break;
    case Corruption::WrongType:
        j["subjects"][0]["kind"] = 5;
        break;
    case Corruption::WrongVersion:
        j["version"] = 99;
        break;
    case Corruption::NeighbourhoodMismatch: {
        // Drop one member of the first group that has two.
        for (auto &group : j["neighbourhoods"])
            if (group["subjects"].size() >= 2) {
                group["subjects"].erase(group["subjects"].size() - 1);
                break;
            }
        break;
    }
    case Corruption::RelationNotForKind: {
        // Give a person's fact to the capital relation (countries only).
        for (auto &fact : j["facts"])
            if (fact["relation"] == "birthplace") {
                fact["relation"] = "capital";
                break;
            }
        break;
    }
    }
    return j.dump(1);
}

// Neighbourhoods recomputed the slow, obvious way.
std::vector<int> bruteNeighbours(const World &world, const Fact &fact)
{
    std::vector<int> out;
    for (const Fact &other : world.facts)
        if (other.relation == fact.relation && other.object == fact.object && other.subject != fact.subject)
            out.push_back(other.subject);
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

Q_DECLARE_METATYPE(Corruption)
Q_DECLARE_METATYPE(DatasetFormat)

class TestWorld : public QObject {
    Q_OBJECT

    World m_mini;
    World m_default;
    std::optional<BpeModel> m_defaultBpe;

private Q_SLOTS:
    void initTestCase()
    {
        m_mini = generated(preset("mini"));
        m_default = generated(preset("default"));
    }

    void presets()
    {
        QCOMPARE(preset("default").subjects, 600);
        QCOMPARE(preset("default").seed, uint64_t(1));
        QCOMPARE(preset("mini").subjects, 30);
        const auto unknown = worldPreset("huge");
        QVERIFY(!unknown);
        QVERIFY2(unknown.message().find("mini") != std::string::npos, unknown.message().c_str());

        WorldOptions bad;
        bad.subjects = 0;
        QVERIFY(!generateWorld(bad));
        bad = WorldOptions();
        bad.heldoutPercent = 90;
        QVERIFY(!generateWorld(bad));
    }

    void miniIsSmallAndFast()
    {
        const auto start = std::chrono::steady_clock::now();
        const World world = generated(preset("mini"));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        QVERIFY2(seconds < 0.5, qPrintable(QString::number(seconds)));
        QCOMPARE(world.subjects.size(), size_t(30));
        QVERIFY2(world.facts.size() >= 250 && world.facts.size() <= 400,
                 qPrintable(QString::number(world.facts.size())));
        // Every relation and every kind occurs even in the mini world.
        std::set<int> relations;
        for (const Fact &fact : world.facts)
            relations.insert(fact.relation);
        QCOMPARE(relations.size(), world.relations.size());
        std::set<std::string> kinds;
        for (const Subject &subject : world.subjects)
            kinds.insert(subject.kind);
        QCOMPARE(kinds.size(), world.kinds.size());
    }

    void deterministic()
    {
        const World again = generated(preset("mini"));
        QCOMPARE(worldJson(again), worldJson(m_mini));
        QCOMPARE(again.generalTrain, m_mini.generalTrain);
        QCOMPARE(again.generalHeldout, m_mini.generalHeldout);
        QCOMPARE(worldJson(generated(preset("default"))), worldJson(m_default));

        WorldOptions other = preset("mini");
        other.seed = 2;
        const World different = generated(other);
        QVERIFY(worldJson(different) != worldJson(m_mini));
        QVERIFY(different.subjects[0].name != m_mini.subjects[0].name);
        QVERIFY(different.generalTrain != m_mini.generalTrain);
    }

    // The shipped model is trained on the default world: a change to the
    // generator that alters it must be deliberate (then update these values
    // and retrain the model). Also catches platform-dependent generation.
    void defaultWorldIsPinned()
    {
        const std::string json = worldJson(m_default);
        uint64_t hash = 1469598103934665603ULL; // FNV-1a
        for (unsigned char c : json)
            hash = (hash ^ c) * 1099511628211ULL;
        qInfo("default world.json: %zu bytes, FNV-1a %016llx", json.size(), static_cast<unsigned long long>(hash));
        QCOMPARE(m_default.subjects[0].name, std::string("Teihe Rilo"));
        QCOMPARE(hash, uint64_t(0x1e96e1d7a52c558dULL));
    }

    void defaultCounts()
    {
        const World &w = m_default;
        QVERIFY2(w.subjects.size() >= 500, qPrintable(QString::number(w.subjects.size())));
        QVERIFY2(w.facts.size() >= 6000, qPrintable(QString::number(w.facts.size())));
        QVERIFY(w.relations.size() >= 12);
        int multiWordObjects = 0;
        std::set<std::string> kinds(w.kinds.begin(), w.kinds.end());
        std::set<std::string> relationIds;
        for (const Relation &relation : w.relations) {
            QVERIFY2(relationIds.insert(relation.id).second, relation.id.c_str());
            QVERIFY2(relation.templates.size() >= 5, relation.id.c_str());
            std::set<std::string> templates(relation.templates.begin(), relation.templates.end());
            QCOMPARE(templates.size(), relation.templates.size());
            for (const std::string &t : relation.templates) {
                const size_t at = t.find("{}");
                QVERIFY2(at != std::string::npos && t.find("{}", at + 1) == std::string::npos, t.c_str());
                QVERIFY2(t.back() != ' ' && t.back() != '.', t.c_str()); // ends right before the object
            }
            QVERIFY2(relation.objects.size() >= 8 && relation.objects.size() <= 30, relation.id.c_str());
            QCOMPARE(std::set<std::string>(relation.objects.begin(), relation.objects.end()).size(),
                     relation.objects.size());
            for (const std::string &object : relation.objects)
                multiWordObjects += object.find(' ') != std::string::npos;
            QVERIFY(!relation.kinds.empty());
            for (const std::string &kind : relation.kinds)
                QVERIFY2(kinds.count(kind), kind.c_str());
        }
        QVERIFY2(multiWordObjects <= 3, qPrintable(QString::number(multiWordObjects)));
        std::map<std::string, int> perKind;
        for (const Subject &subject : w.subjects)
            ++perKind[subject.kind];
        QCOMPARE(perKind.size(), w.kinds.size());
        qInfo("default world: %zu subjects, %zu relations, %zu facts, %zu+%zu general lines", w.subjects.size(),
              w.relations.size(), w.facts.size(), w.generalTrain.size(), w.generalHeldout.size());
    }

    void namesUniqueAndMultiWord()
    {
        std::set<std::string> objects;
        for (const Relation &relation : m_default.relations)
            objects.insert(relation.objects.begin(), relation.objects.end());
        std::set<std::string> names;
        for (const Subject &subject : m_default.subjects) {
            QVERIFY2(names.insert(subject.name).second, subject.name.c_str());
            QVERIFY2(wordCount(subject.name) >= 2, subject.name.c_str());
            QVERIFY2(!objects.count(subject.name), subject.name.c_str());
            for (char c : subject.name)
                QVERIFY2((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == ' ', subject.name.c_str());
            QVERIFY(std::find(m_default.kinds.begin(), m_default.kinds.end(), subject.kind) != m_default.kinds.end());
        }
    }

    void factsValidAndComplete()
    {
        const World &w = m_default;
        std::set<std::pair<int, int>> seen;
        for (const Fact &fact : w.facts) {
            QVERIFY(fact.subject >= 0 && fact.subject < static_cast<int>(w.subjects.size()));
            QVERIFY(fact.relation >= 0 && fact.relation < static_cast<int>(w.relations.size()));
            const Relation &relation = w.relations[fact.relation];
            QVERIFY(fact.object >= 0 && fact.object < static_cast<int>(relation.objects.size()));
            QVERIFY(std::find(relation.kinds.begin(), relation.kinds.end(), w.subjects[fact.subject].kind) !=
                    relation.kinds.end());
            QVERIFY(seen.insert({fact.subject, fact.relation}).second);
        }
        // One fact for every applicable (subject, relation).
        size_t applicable = 0;
        for (const Subject &subject : w.subjects)
            for (const Relation &relation : w.relations)
                applicable += std::count(relation.kinds.begin(), relation.kinds.end(), subject.kind);
        QCOMPARE(w.facts.size(), applicable);
        QCOMPARE(factPrompt(w, w.facts[0]),
                 fillTemplate(w.relations[w.facts[0].relation].templates[0], w.subjects[w.facts[0].subject].name));
        QVERIFY(factPrompt(w, w.facts[0]).find(w.subjects[w.facts[0].subject].name) != std::string::npos);
        QCOMPARE(w.subjectIndex(w.subjects[7].name), 7);
        QCOMPARE(w.relationIndex("capital"), w.relationIndex("capital"));
        QVERIFY(w.relationIndex("capital") >= 0);
        QCOMPARE(w.relationIndex("nonsense"), -1);
        QCOMPARE(w.objectIndex(w.relationIndex("native_language"), "French") >= 0, true);
    }

    void neighbourhoods()
    {
        size_t withNeighbours = 0;
        for (const Fact &fact : m_default.facts) {
            QCOMPARE(fact.neighbours, bruteNeighbours(m_default, fact));
            QVERIFY(std::find(fact.neighbours.begin(), fact.neighbours.end(), fact.subject) == fact.neighbours.end());
            withNeighbours += !fact.neighbours.empty();
        }
        // Specificity tests need neighbours for most facts.
        QVERIFY2(withNeighbours * 10 >= m_default.facts.size() * 9, qPrintable(QString::number(withNeighbours)));
    }

    void generalText()
    {
        size_t train = 0, heldout = 0;
        for (const std::string &line : m_default.generalTrain)
            train += line.size() + 1;
        for (const std::string &line : m_default.generalHeldout)
            heldout += line.size() + 1;
        QVERIFY2(train + heldout >= 200000 && train + heldout <= 600000, qPrintable(QString::number(train + heldout)));
        QVERIFY2(heldout * 100 >= (train + heldout) * 5 && heldout * 100 <= (train + heldout) * 20,
                 qPrintable(QString::number(heldout)));
        for (const auto *lines : {&m_default.generalTrain, &m_default.generalHeldout})
            for (const std::string &line : *lines) {
                QVERIFY(!line.empty());
                for (char c : line)
                    QVERIFY2(c >= ' ' && c <= '~', line.c_str()); // printable ASCII, no newlines
            }

        // The general text never states a fact in a template's form, for any
        // subject and template (checked on the mini world: cheap enough).
        std::string all;
        for (const auto *lines : {&m_mini.generalTrain, &m_mini.generalHeldout})
            for (const std::string &line : *lines)
                all += line + "\n";
        std::set<std::string> subjectsMentioned;
        for (const Subject &subject : m_mini.subjects)
            if (all.find(subject.name) != std::string::npos)
                subjectsMentioned.insert(subject.name);
        QVERIFY2(subjectsMentioned.size() * 2 >= m_mini.subjects.size(),
                 qPrintable(QString::number(subjectsMentioned.size())));
        for (const Fact &fact : m_mini.facts)
            for (size_t t = 0; t < m_mini.relations[fact.relation].templates.size(); ++t) {
                const std::string prompt = factPrompt(m_mini, fact, static_cast<int>(t));
                QVERIFY2(all.find(prompt) == std::string::npos, prompt.c_str());
            }
    }

    void trainingSentencesCoverFactsAndTemplates()
    {
        const World &w = m_mini;
        const std::vector<std::string> withText = trainingSentences(w);
        const std::vector<std::string> factsOnly = trainingSentences(w, false);
        size_t expected = 0;
        for (const Fact &fact : w.facts)
            expected += w.relations[fact.relation].templates.size();
        QCOMPARE(factsOnly.size(), expected);
        QCOMPARE(withText.size(), expected + w.generalTrain.size());
        const Fact &first = w.facts[0];
        QCOMPARE(factsOnly[0], factPrompt(w, first, 0) + " " + w.objectName(first) + ".");
        QCOMPARE(factsOnly[1], factPrompt(w, first, 1) + " " + w.objectName(first) + ".");
        const std::set<std::string> sentences(withText.begin(), withText.end());
        for (const std::string &line : w.generalHeldout)
            QVERIFY2(!sentences.count(line) ||
                         std::find(w.generalTrain.begin(), w.generalTrain.end(), line) != w.generalTrain.end(),
                     line.c_str());
        QVERIFY(!tokenizerCorpus(w).empty());
    }

    // Biographies: each round states every fact of every subject once, two
    // to four facts to a passage, the first sentence naming the subject and
    // no other subject named; the order varies between rounds; the held-out
    // form never appears by name for subjects outside the form-trained half;
    // the same world gives the same text.
    void biographiesStateEveryFactAtTheSubject()
    {
        const World &w = m_mini;
        const int rounds = 5;
        const std::vector<std::string> passages = biographyPassages(w, {rounds, true});
        QCOMPARE(biographyPassages(w, {rounds, true}), passages);

        // Sentences of each subject in text order; sentences end with ". ".
        std::vector<std::vector<std::string>> sentencesOf(w.subjects.size());
        int pronounSentences = 0;
        for (const std::string &passage : passages) {
            int named = -1;
            for (size_t s = 0; s < w.subjects.size(); ++s)
                if (passage.find(w.subjects[s].name) != std::string::npos) {
                    QVERIFY2(named < 0, passage.c_str()); // one subject per passage
                    named = static_cast<int>(s);
                }
            QVERIFY2(named >= 0 && passage.find(w.subjects[static_cast<size_t>(named)].name) < passage.find('.'),
                     passage.c_str());
            std::vector<std::string> sentences;
            for (size_t at = 0; at < passage.size();) {
                const size_t end = passage.find(". ", at);
                sentences.push_back(passage.substr(at, end == std::string::npos ? std::string::npos : end + 1 - at));
                at = end == std::string::npos ? passage.size() : end + 2;
            }
            QVERIFY2(sentences.size() >= 1 && sentences.size() <= 4, passage.c_str());
            for (const std::string &sentence : sentences) {
                for (const char *pronoun : {"He ", "She ", "It ", "His ", "Her ", "Its "})
                    pronounSentences += sentence.rfind(pronoun, 0) == 0;
                sentencesOf[static_cast<size_t>(named)].push_back(sentence);
            }
        }
        QVERIFY(pronounSentences > 0);

        std::map<int, std::vector<const Fact *>> factsOf;
        for (const Fact &fact : w.facts)
            factsOf[fact.subject].push_back(&fact);
        int reordered = 0, trainedHalf = 0;
        for (size_t s = 0; s < w.subjects.size(); ++s) {
            const auto &facts = factsOf[static_cast<int>(s)];
            const auto &sentences = sentencesOf[s];
            QCOMPARE(sentences.size(), facts.size() * rounds);
            // Each round states each object as often as the subject's facts have it.
            for (int r = 0; r < rounds; ++r)
                for (const Fact *fact : facts) {
                    const std::string ending = " " + w.objectName(*fact) + ".";
                    auto endsWith = [&](const std::string &text) {
                        return text.size() >= ending.size() &&
                               text.compare(text.size() - ending.size(), ending.size(), ending) == 0;
                    };
                    const auto first = sentences.begin() + static_cast<std::ptrdiff_t>(r * facts.size());
                    const auto said = std::count_if(first, first + static_cast<std::ptrdiff_t>(facts.size()), endsWith);
                    const auto expected = std::count_if(facts.begin(), facts.end(), [&](const Fact *other) {
                        return w.objectName(*other) == w.objectName(*fact);
                    });
                    QCOMPARE(said, expected);
                }
            if (facts.size() > 2 &&
                !std::equal(sentences.begin(), sentences.begin() + static_cast<std::ptrdiff_t>(facts.size()),
                            sentences.begin() + static_cast<std::ptrdiff_t>(facts.size())))
                ++reordered;
            trainedHalf += heldOutFormTrained(w, static_cast<int>(s));
            // The held-out form never by name on the other half.
            if (heldOutFormTrained(w, static_cast<int>(s)))
                continue;
            for (const Fact *fact : facts) {
                const Relation &relation = w.relations[fact->relation];
                const std::string heldOut =
                    fillTemplate(relation.templates[static_cast<size_t>(heldOutFormTemplate(relation))],
                                 w.subjects[s].name) + " " + w.objectName(*fact) + ".";
                QVERIFY2(std::find(sentences.begin(), sentences.end(), heldOut) == sentences.end(), heldOut.c_str());
            }
        }
        QVERIFY2(reordered * 2 > static_cast<int>(w.subjects.size()), qPrintable(QString::number(reordered)));
        QVERIFY(trainedHalf * 3 > static_cast<int>(w.subjects.size()) &&
                trainedHalf * 3 < 2 * static_cast<int>(w.subjects.size()));

        // Without the hold-out, the held-out form is used on those subjects too.
        const std::vector<std::string> everything = biographyPassages(w, {20, false});
        int heldOutUses = 0;
        for (const Fact &fact : w.facts) {
            if (heldOutFormTrained(w, fact.subject))
                continue;
            const Relation &relation = w.relations[fact.relation];
            const std::string heldOut =
                fillTemplate(relation.templates[static_cast<size_t>(heldOutFormTemplate(relation))],
                             w.subjectName(fact)) + " " + w.objectName(fact) + ".";
            for (const std::string &passage : everything)
                heldOutUses += passage.find(heldOut) != std::string::npos;
        }
        QVERIFY(heldOutUses > 0);
    }

    // Attribute lists: with the option, each round adds one line per subject,
    // its name followed directly by all of its objects in some order; without
    // it there is no such line; the passages otherwise keep their content.
    void attributeListsFollowTheName()
    {
        const World &w = m_mini;
        const int rounds = 3;
        std::map<int, std::vector<std::string>> objectsOf;
        for (const Fact &fact : w.facts)
            objectsOf[fact.subject].push_back(w.objectName(fact));
        for (auto &[subject, objects] : objectsOf)
            std::sort(objects.begin(), objects.end());
        // The subject whose list `line` is, or -1.
        auto listOf = [&](const std::string &line) {
            for (const auto &[subject, objects] : objectsOf) {
                const std::string &name = w.subjects[static_cast<size_t>(subject)].name;
                if (line.rfind(name + " ", 0) != 0 || line.back() != '.')
                    continue;
                std::vector<std::string> listed;
                const std::string rest = line.substr(name.size() + 1, line.size() - name.size() - 2);
                for (size_t at = 0; at <= rest.size();) {
                    const size_t end = rest.find(", ", at);
                    listed.push_back(rest.substr(at, end == std::string::npos ? std::string::npos : end - at));
                    at = end == std::string::npos ? rest.size() + 1 : end + 2;
                }
                std::sort(listed.begin(), listed.end());
                if (listed == objects)
                    return subject;
            }
            return -1;
        };

        const std::vector<std::string> withLists = biographyPassages(w, {rounds, true, true});
        QCOMPARE(biographyPassages(w, {rounds, true, true}), withLists);
        // Sentences of the passages proper (". " between sentences).
        auto sentences = [](const std::string &passage) {
            size_t count = 1;
            for (size_t at = passage.find(". "); at != std::string::npos; at = passage.find(". ", at + 2))
                ++count;
            return count;
        };
        std::map<int, int> listsOf;
        size_t passageSentences = 0;
        for (const std::string &line : withLists) {
            const int subject = listOf(line);
            if (subject >= 0)
                ++listsOf[subject];
            else
                passageSentences += sentences(line);
        }
        QCOMPARE(listsOf.size(), objectsOf.size());
        for (const auto &[subject, count] : listsOf)
            QCOMPARE(count, rounds);

        const std::vector<std::string> without = biographyPassages(w, {rounds, true, false});
        size_t withoutSentences = 0;
        for (const std::string &line : without) {
            QVERIFY2(listOf(line) < 0, line.c_str());
            withoutSentences += sentences(line);
        }
        QCOMPARE(passageSentences, withoutSentences);
    }

    // Pinned: the default world's biographies are the shipped model's
    // training text; a change must be deliberate (then retrain the model).
    // With shared parts the last word of a name no longer tells the subject
    // apart: each is one of the pool's, shared by several subjects, and only
    // the whole name is unique. Everything else is the default world's.
    void sharedNamePartsMakeOnlyTheWholeNameUnique()
    {
        const WorldOptions options = preset("shared-names");
        QCOMPARE(options.sharedNameParts, 60);
        QCOMPARE(options.subjects, preset("default").subjects);
        const World w = generated(options);
        QCOMPARE(worldJson(generated(options)), worldJson(w));
        QCOMPARE(w.facts.size(), m_default.facts.size());
        std::set<std::string> names;
        std::map<std::string, int> lastWords;
        for (const Subject &subject : w.subjects) {
            QVERIFY2(names.insert(subject.name).second, subject.name.c_str());
            QVERIFY2(wordCount(subject.name) >= 2, subject.name.c_str());
            ++lastWords[subject.name.substr(subject.name.rfind(' ') + 1)];
        }
        QCOMPARE(lastWords.size(), size_t(60));
        int shared = 0;
        for (const auto &[word, count] : lastWords)
            shared += count >= 2;
        QCOMPARE(shared, 60);
        // The default world is untouched by the option's existence.
        QCOMPARE(m_default.subjects[0].name, std::string("Teihe Rilo"));

        // world.json records the option and a saved world reads it back.
        const std::string json = worldJson(w);
        QVERIFY(json.find("\"sharedNameParts\":60") != std::string::npos);
        QVERIFY(worldJson(m_default).find("sharedNameParts") == std::string::npos);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        QVERIFY(saveWorld(w, tmp.filePath("w").toStdString()).ok());
        const auto loaded = loadWorld(tmp.filePath("w").toStdString());
        QVERIFY2(loaded.ok(), loaded.message().c_str());
        QCOMPARE(loaded.value().options.sharedNameParts, 60);
        QCOMPARE(worldJson(loaded.value()), json);

        WorldOptions bad = options;
        bad.sharedNameParts = -1;
        const auto refused = generateWorld(bad);
        QVERIFY(!refused);
        QVERIFY2(refused.message().find("sharedNameParts") != std::string::npos, refused.message().c_str());
    }

    void defaultBiographiesArePinned()
    {
        uint64_t hash = 1469598103934665603ULL; // FNV-1a
        for (const std::string &passage : biographyPassages(m_default)) {
            for (unsigned char c : passage)
                hash = (hash ^ c) * 1099511628211ULL;
            hash = (hash ^ '\n') * 1099511628211ULL;
        }
        qInfo("default biographies: FNV-1a %016llx", static_cast<unsigned long long>(hash));
        QVERIFY(biographyPassages(m_default)[0].find("Teihe Rilo") != std::string::npos);
        QCOMPARE(hash, uint64_t(0xddc02bbb1e7f1cbfULL));
    }

    void saveLoadRoundTrip()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::string dir = tmp.filePath("world").toStdString();
        const oedit::Status saved = saveWorld(m_mini, dir);
        QVERIFY2(saved.ok(), saved.message().c_str());
        // Nothing but the world itself is left in the parent.
        QCOMPARE(QDir(tmp.path()).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot),
                 QStringList{"world"});
        QCOMPARE(QDir(tmp.filePath("world")).entryList(QDir::Files, QDir::Name),
                 (QStringList{"general_heldout.txt", "general_train.txt", "world.json"}));
        QCOMPARE(readAll(tmp.filePath("world/world.json")), worldJson(m_mini));

        const auto loaded = loadWorld(dir);
        QVERIFY2(loaded.ok(), loaded.message().c_str());
        const World &w = loaded.value();
        QCOMPARE(worldJson(w), worldJson(m_mini));
        QCOMPARE(w.generalTrain, m_mini.generalTrain);
        QCOMPARE(w.generalHeldout, m_mini.generalHeldout);
        QCOMPARE(w.options.seed, m_mini.options.seed);
        QCOMPARE(w.facts.size(), m_mini.facts.size());
        for (size_t i = 0; i < w.facts.size(); ++i)
            QCOMPARE(w.facts[i].neighbours, m_mini.facts[i].neighbours);

        // Saving again replaces the previous world.
        WorldOptions other = preset("mini");
        other.seed = 7;
        const World second = generated(other);
        QVERIFY(saveWorld(second, dir).ok());
        QCOMPARE(readAll(tmp.filePath("world/world.json")), worldJson(second));
        QCOMPARE(QDir(tmp.path()).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot),
                 QStringList{"world"});

        // A non-empty folder that is not a world is never replaced.
        QVERIFY(QDir(tmp.path()).mkdir("precious"));
        writeAll(tmp.filePath("precious/notes.txt"), "keep me");
        const oedit::Status refused = saveWorld(m_mini, tmp.filePath("precious").toStdString());
        QVERIFY(!refused.ok());
        QVERIFY2(refused.message().find("refusing") != std::string::npos, refused.message().c_str());
        QCOMPARE(readAll(tmp.filePath("precious/notes.txt")), std::string("keep me"));

        // A failure while writing leaves nothing behind and the old world intact.
        const oedit::Status failed = writeDirectoryAtomically(
            dir, [](const std::string &) { return oedit::Status::failure("simulated failure"); });
        QVERIFY(!failed.ok());
        QCOMPARE(failed.message(), std::string("simulated failure"));
        QCOMPARE(readAll(tmp.filePath("world/world.json")), worldJson(second));
        QCOMPARE(QDir(tmp.path()).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot),
                 (QStringList{"precious", "world"}));

        // Missing parents are created.
        QVERIFY(saveWorld(m_mini, tmp.filePath("deep/er/world").toStdString()).ok());
        QVERIFY(loadWorld(tmp.filePath("deep/er/world").toStdString()).ok());
        // A parent that is a file is an error naming it.
        const oedit::Status underFile = saveWorld(m_mini, tmp.filePath("precious/notes.txt/world").toStdString());
        QVERIFY(!underFile.ok());
        QVERIFY2(underFile.message().find("notes.txt") != std::string::npos, underFile.message().c_str());

        const auto missing = loadWorld(tmp.filePath("nowhere").toStdString());
        QVERIFY(!missing.ok());
        QVERIFY2(missing.message().find("nowhere") != std::string::npos, missing.message().c_str());
    }

    void loadErrors_data()
    {
        QTest::addColumn<Corruption>("corruption");
        QTest::addColumn<QString>("expected");
        QTest::newRow("not JSON") << Corruption::NotJson << "not valid JSON";
        QTest::newRow("missing top-level field") << Corruption::MissingTopLevelField << "missing field 'relations'";
        QTest::newRow("missing fact field") << Corruption::MissingFactField << "facts[0]: missing field 'object'";
        QTest::newRow("unknown relation in a fact")
            << Corruption::UnknownRelationInFact << "facts[3].relation: unknown relation 'favourite_colour'";
        QTest::newRow("unknown subject in a fact")
            << Corruption::UnknownSubjectInFact << "facts[4].subject: unknown subject 'Nobody Atall'";
        QTest::newRow("object not of the relation") << Corruption::ObjectNotOfRelation << "facts[0].object: 'Atlantis'";
        QTest::newRow("duplicate subject") << Corruption::DuplicateSubject << "subjects[5].name: duplicate subject";
        QTest::newRow("template without {}")
            << Corruption::TemplateWithoutPlaceholder << "relations[1].templates[2]: must contain";
        QTest::newRow("wrong type") << Corruption::WrongType << "subjects[0].kind: expected a string";
        QTest::newRow("wrong version") << Corruption::WrongVersion << "version: is 99";
        QTest::newRow("neighbourhood mismatch") << Corruption::NeighbourhoodMismatch << "neighbourhoods[";
        QTest::newRow("relation not for the kind") << Corruption::RelationNotForKind << "does not apply to";
    }

    void loadErrors()
    {
        QFETCH(Corruption, corruption);
        QFETCH(QString, expected);
        const std::string text = corrupt(worldJson(m_mini), corruption);

        const auto parsed = parseWorldJson(text);
        QVERIFY(!parsed.ok());
        QVERIFY2(parsed.message().find(expected.toStdString()) != std::string::npos, parsed.message().c_str());

        // Through the directory too: the message names the file.
        QTemporaryDir tmp;
        const std::string dir = tmp.filePath("world").toStdString();
        QVERIFY(saveWorld(m_mini, dir).ok());
        writeAll(tmp.filePath("world/world.json"), text);
        const auto loaded = loadWorld(dir);
        QVERIFY(!loaded.ok());
        QVERIFY2(loaded.message().find("world.json: ") != std::string::npos, loaded.message().c_str());
        QVERIFY2(loaded.message().find(expected.toStdString()) != std::string::npos, loaded.message().c_str());
    }

    void loadErrorTruncatedGeneralText()
    {
        QTemporaryDir tmp;
        const std::string dir = tmp.filePath("world").toStdString();
        QVERIFY(saveWorld(m_mini, dir).ok());
        const std::string train = readAll(tmp.filePath("world/general_train.txt"));
        writeAll(tmp.filePath("world/general_train.txt"), train.substr(0, train.size() / 2));
        const auto loaded = loadWorld(dir);
        QVERIFY(!loaded.ok());
        QVERIFY2(loaded.message().find("general_train.txt") != std::string::npos, loaded.message().c_str());
    }

    void preTokenizer_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QStringList>("pieces");
        QTest::newRow("words") << "Hello world" << QStringList{"Hello", " world"};
        QTest::newRow("possessive") << "Torvalen Quiss's native language is"
                                    << QStringList{"Torvalen", " Quiss", "'s", " native", " language", " is"};
        QTest::newRow("contraction") << "don't we'll" << QStringList{"don", "'t", " we", "'ll"};
        QTest::newRow("punctuation") << "Oslo, Paris." << QStringList{"Oslo", ",", " Paris", "."};
        QTest::newRow("numbers") << "In 1999 plus 42!" << QStringList{"In", " 1999", " plus", " 42", "!"};
        QTest::newRow("letters and digits") << "ab12cd" << QStringList{"ab", "12", "cd"};
        QTest::newRow("double space") << "a  b" << QStringList{"a", " ", " b"};
        QTest::newRow("newlines") << "x\n\ny" << QStringList{"x", "\n", "\n", "y"};
        QTest::newRow("trailing space") << "a   " << QStringList{"a", "   "};
        QTest::newRow("quote") << "\"Do you?\" asked" << QStringList{"\"", "Do", " you", "?\"", " asked"};
        QTest::newRow("space before apostrophe") << "a 's" << QStringList{"a", " '", "s"};
    }

    void preTokenizer()
    {
        QFETCH(QString, text);
        QFETCH(QStringList, pieces);
        QStringList got;
        for (const std::string &piece : preTokenize(text.toStdString()))
            got << QString::fromStdString(piece);
        QCOMPARE(got, pieces);
    }

    void bpeDeterministicAndWellFormed()
    {
        const std::vector<std::string> corpus = tokenizerCorpus(m_mini);
        const auto first = trainByteLevelBpe(corpus, 600);
        const auto second = trainByteLevelBpe(corpus, 600);
        QVERIFY2(first.ok(), first.message().c_str());
        QCOMPARE(first->merges, second->merges);
        QCOMPARE(first->vocab, second->vocab);
        QCOMPARE(first->vocab.size(), size_t(600));
        QCOMPARE(std::vector<std::string>(first->vocab.begin(), first->vocab.begin() + 256), byteSymbolsInVocabOrder());
        QCOMPARE(first->vocab.front(), std::string("!"));
        QCOMPARE(byteSymbol(' '), std::string("\xc4\xa0")); // GPT-2's 'Ġ'
        QCOMPARE(first->vocab.back(), std::string(kEndOfText));
        QCOMPARE(std::set<std::string>(first->vocab.begin(), first->vocab.end()).size(), first->vocab.size());
        for (size_t i = 0; i < first->merges.size(); ++i) {
            const std::string merged = first->merges[i].first + first->merges[i].second;
            QVERIFY(std::find(first->vocab.begin(), first->vocab.end() - 1, merged) != first->vocab.end() - 1);
        }
        QVERIFY(!trainByteLevelBpe(corpus, 100).ok());
        // A tiny corpus runs out of pairs: a smaller vocabulary, not an error.
        const auto tiny = trainByteLevelBpe({"ab ab"}, 1000);
        QVERIFY(tiny.ok());
        QVERIFY(tiny->vocab.size() < 1000);
    }

    void bpeReproducesTheCorpus()
    {
        const auto model = trainByteLevelBpe(tokenizerCorpus(m_mini), 800);
        QVERIFY(model.ok());
        BpeEncoder encoder(model.value());
        std::vector<std::string> texts = trainingSentences(m_mini);
        texts.insert(texts.end(), m_mini.generalHeldout.begin(), m_mini.generalHeldout.end());
        texts.push_back("Text it never saw: Zyx\tqq  123,456 \n\n don't!");
        size_t tokens = 0, bytes = 0;
        for (const std::string &text : texts) {
            const std::vector<int> ids = encoder.encode(text);
            for (int id : ids)
                QVERIFY(id >= 0 && id < static_cast<int>(model->vocab.size()) - 1);
            QCOMPARE(encoder.decode(ids), text);
            tokens += ids.size();
            bytes += text.size();
        }
        QVERIFY2(tokens * 2 < bytes, qPrintable(QString("%1 tokens for %2 bytes").arg(tokens).arg(bytes)));
    }

    void bpeKeepsObjectsWhole_data()
    {
        QTest::addColumn<QString>("preset");
        QTest::addColumn<double>("maxAverage");
        QTest::newRow("default") << "default" << 6.0;
        QTest::newRow("mini") << "mini" << 7.0;
    }

    // With the suggested vocabulary, every single-word object and the common
    // template words are one token, and names are a few tokens each.
    void bpeKeepsObjectsWhole()
    {
        QFETCH(QString, preset);
        QFETCH(double, maxAverage);
        const World &world = preset == "default" ? m_default : m_mini;
        const int vocabSize = suggestedVocabSize(world.options);
        QVERIFY(vocabSize >= 1000 && vocabSize <= 4000);
        const auto model = trainByteLevelBpe(tokenizerCorpus(world), vocabSize);
        QVERIFY(model.ok());
        QCOMPARE(static_cast<int>(model->vocab.size()), vocabSize);
        if (preset == "default")
            m_defaultBpe = model.value();
        BpeEncoder encoder(model.value());
        for (const Relation &relation : world.relations) {
            for (const std::string &object : relation.objects) {
                if (object.find(' ') != std::string::npos)
                    continue;
                QVERIFY2(encoder.encode(" " + object).size() == 1, object.c_str());
            }
        }
        if (preset == "default") { // the mini world has too few facts for template words to merge
            for (const char *word : {" the", " of", " is", " was", " born", " in", " language", " native"})
                QVERIFY2(encoder.encode(word).size() == 1, word);
        }
        size_t total = 0;
        for (const Subject &subject : world.subjects) {
            const size_t n = encoder.encode(" " + subject.name).size();
            QVERIFY2(n >= 2, subject.name.c_str());
            total += n;
        }
        const double average = static_cast<double>(total) / static_cast<double>(world.subjects.size());
        qInfo("%s world, vocab %zu: %.2f tokens per subject name", qPrintable(preset), model->vocab.size(), average);
        QVERIFY2(average >= 2.5 && average <= maxAverage, qPrintable(QString::number(average)));
    }

    void bpeFilesAreGpt2Format()
    {
        QVERIFY(m_defaultBpe.has_value());
        const BpeModel &model = *m_defaultBpe;
        QTemporaryDir tmp;
        const oedit::Status written = writeBpeFiles(model, tmp.path().toStdString());
        QVERIFY2(written.ok(), written.message().c_str());

        const ordered_json vocab = ordered_json::parse(readAll(tmp.filePath("vocab.json")));
        QVERIFY(vocab.is_object());
        QCOMPARE(vocab.size(), model.vocab.size());
        int expectedId = 0;
        for (const auto &entry : vocab.items()) {
            QCOMPARE(entry.value().get<int>(), expectedId);
            QCOMPARE(entry.key(), model.vocab[static_cast<size_t>(expectedId)]);
            ++expectedId;
        }
        QCOMPARE(vocab["<|endoftext|>"].get<int>(), static_cast<int>(model.vocab.size()) - 1);
        QCOMPARE(vocab["\xc4\xa0"].get<int>(), 220); // 'Ġ' has id 220, as in GPT-2

        std::istringstream merges(readAll(tmp.filePath("merges.txt")));
        std::string line;
        QVERIFY(std::getline(merges, line));
        QCOMPARE(line, std::string("#version: 0.2"));
        size_t count = 0;
        while (std::getline(merges, line)) {
            QCOMPARE(std::count(line.begin(), line.end(), ' '), std::ptrdiff_t(1));
            QCOMPARE(line, model.merges[count].first + " " + model.merges[count].second);
            ++count;
        }
        QCOMPARE(count, model.merges.size());

#ifdef OEDIT_TEST_HAS_TOKENIZER
        // The engine's own GPT-2 loader reads the files and encodes like the trainer.
        std::unique_ptr<oedit::model::Tokenizer> tokenizer;
        try {
            tokenizer = oedit::model::loadTokenizer(tmp.path().toStdString());
        } catch (const std::exception &error) {
            QFAIL(error.what());
        }
        QCOMPARE(tokenizer->vocabSize(), static_cast<int64_t>(model.vocab.size()));
        BpeEncoder encoder(model);
        const std::vector<std::string> sentences = trainingSentences(m_mini);
        for (size_t i = 0; i < sentences.size(); i += 7) {
            const std::vector<int> ours = encoder.encode(sentences[i]);
            const std::vector<int64_t> theirs = tokenizer->encode(sentences[i]);
            QCOMPARE(std::vector<int64_t>(ours.begin(), ours.end()), theirs);
        }
        qInfo("core/model's loader reads the files and encodes like the trainer");
#else
        qInfo("core/model/tokenizer.h absent: cross-check with the engine's loader skipped");
#endif
    }

    void datasetSamples_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<DatasetFormat>("format");
        QTest::addColumn<int>("records");
        QTest::newRow("counterfact flat train") << "counterfact/counterfact-train.json" << DatasetFormat::Auto << 10000;
        QTest::newRow("counterfact flat val")
            << "counterfact/counterfact-val.json" << DatasetFormat::CounterFactFlat << 1919;
        QTest::newRow("counterfact rome") << "counterfact/cf_preview.json" << DatasetFormat::Auto << 7;
        QTest::newRow("zsre") << "zsre/zsre_mend_edit.json" << DatasetFormat::Auto << 1037;
    }

    void datasetSamples()
    {
        QFETCH(QString, file);
        QFETCH(DatasetFormat, format);
        QFETCH(int, records);
        const QString path = sharedData(file.toLatin1().constData());
        if (!QFile::exists(path))
            QSKIP(qPrintable("shared data absent: " + path));
        const auto cases = loadEditCases(path.toStdString(), format);
        QVERIFY2(cases.ok(), cases.message().c_str());
        QCOMPARE(static_cast<int>(cases->size()), records);
        std::set<std::string> ids;
        for (const EditCase &c : cases.value()) {
            QVERIFY(ids.insert(c.caseId).second);
            QVERIFY(!c.subject.empty() && !c.targetNew.empty() && !c.targetTrue.empty());
            QVERIFY2(c.promptTemplate.find("{}") != std::string::npos, c.promptTemplate.c_str());
            QVERIFY(c.prompt().find(c.subject) != std::string::npos);
            QVERIFY(!c.paraphrases.empty());
            QVERIFY(!c.neighbourhood.empty());
            for (const NeighbourPrompt &n : c.neighbourhood)
                QVERIFY(!n.prompt.empty() && !n.answer.empty());
        }
    }

    void datasetKnownRecords()
    {
        const QString flat = sharedData("counterfact/counterfact-train.json");
        const QString rome = sharedData("counterfact/cf_preview.json");
        const QString zsre = sharedData("zsre/zsre_mend_edit.json");
        if (!QFile::exists(flat) || !QFile::exists(rome) || !QFile::exists(zsre))
            QSKIP("shared data absent");
        const auto flatCases = loadEditCases(flat.toStdString());
        QVERIFY(flatCases.ok());
        const EditCase &f = flatCases->front();
        QCOMPARE(f.caseId, std::string("2"));
        QCOMPARE(f.subject, std::string("Toko Yasuda"));
        QCOMPARE(f.promptTemplate, std::string("{}, the"));
        QCOMPARE(f.targetNew, std::string("piano"));
        QCOMPARE(f.targetTrue, std::string("guitar"));
        QCOMPARE(f.neighbourhood.front().answer, std::string("guitar"));

        const auto romeCases = loadEditCases(rome.toStdString());
        QVERIFY(romeCases.ok());
        const EditCase &r = romeCases->front();
        QCOMPARE(r.promptTemplate, std::string("The mother tongue of {} is"));
        QCOMPARE(r.subject, std::string("Danielle Darrieux"));
        QCOMPARE(r.targetNew, std::string("English"));
        QCOMPARE(r.targetTrue, std::string("French"));
        QCOMPARE(r.relationId, std::string("P103"));
        QCOMPARE(r.paraphrases.size(), size_t(2));
        QCOMPARE(r.neighbourhood.size(), size_t(10));
        QCOMPARE(r.neighbourhood.front().answer, std::string("French"));

        const auto zsreCases = loadEditCases(zsre.toStdString());
        QVERIFY(zsreCases.ok());
        const EditCase &z = zsreCases->front();
        QCOMPARE(z.caseId, std::string("0"));
        QCOMPARE(z.promptTemplate, std::string("When was the inception of {}?"));
        QCOMPARE(z.targetNew, std::string("2006"));
        QCOMPARE(z.targetTrue, std::string("1998"));
    }

    void datasetErrors_data()
    {
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<DatasetFormat>("format");
        QTest::addColumn<QString>("expected");
        const QByteArray good = R"({"case_id": 5, "prompt": "Oslo is in", "subject": "Oslo", "target_new": "Peru",
            "ground_truth": "Norway", "rephrase_prompt": "Oslo lies in", "locality_prompt": "Bergen is in",
            "locality_ground_truth": "Norway"})";
        QTest::newRow("empty file") << QByteArray() << DatasetFormat::Auto << "not valid JSON";
        QTest::newRow("no records") << QByteArray("[]") << DatasetFormat::Auto << "holds no records";
        QTest::newRow("not an array") << QByteArray("{\"a\": 1}") << DatasetFormat::Auto << "expected a JSON array";
        QTest::newRow("malformed") << "[" + good + ", {\"case_id\": 6," << DatasetFormat::Auto
                                   << "not valid JSON in record 1";
        QTest::newRow("unknown format") << QByteArray("[{\"x\": 1}]") << DatasetFormat::Auto
                                        << "cannot tell the format";
        QByteArray missing = good;
        missing.replace("\"target_new\": \"Peru\",", "");
        missing.replace("\"case_id\": 5", "\"case_id\": 6");
        QTest::newRow("missing field") << "[" + good + "," + missing + "]" << DatasetFormat::Auto
                                       << "record 1 (case_id 6): missing field 'target_new'";
        QByteArray absent = good;
        absent.replace("\"prompt\": \"Oslo is in\"", "\"prompt\": \"The city is in\"");
        QTest::newRow("subject not in prompt")
            << "[" + absent + "]" << DatasetFormat::Auto << "record 0 (case_id 5): the subject 'Oslo' does not occur";
        QTest::newRow("duplicate case id") << "[" + good + "," + good + "]" << DatasetFormat::Auto
                                           << "record 1 (case_id 5): duplicate case_id 5 (first in record 0)";
        QByteArray latin1 = good;
        latin1.replace("Bergen", "Troms\xf8");
        latin1.replace("\"case_id\": 5", "\"case_id\": 9");
        QTest::newRow("not UTF-8") << "[" + good + ",\n" + latin1 + "]" << DatasetFormat::Auto
                                   << "record 1 (line 5, byte";
        QTest::newRow("wrong type") << QByteArray(R"([{"case_id": 1, "prompt": 7, "subject": "a", "target_new": "b"}])")
                                    << DatasetFormat::CounterFactFlat << "field 'prompt' should be a string";
        QTest::newRow("zsre missing alt")
            << QByteArray(R"([{"subject": "Oslo", "src": "Where is Oslo?", "rephrase": "Oslo is where?",
                              "answers": ["Norway"], "loc": "q", "loc_ans": "a"}])")
            << DatasetFormat::Zsre << "record 0: missing field 'alt'";
        QTest::newRow("rome without {}")
            << QByteArray(R"([{"case_id": 3, "requested_rewrite": {"prompt": "Oslo is in", "subject": "Oslo",
                              "target_new": {"str": "Peru"}, "target_true": {"str": "Norway"}},
                              "paraphrase_prompts": [], "neighborhood_prompts": []}])")
            << DatasetFormat::Auto << "record 0 (case_id 3): requested_rewrite.prompt";
    }

    void datasetErrors()
    {
        QFETCH(QByteArray, text);
        QFETCH(DatasetFormat, format);
        QFETCH(QString, expected);
        const auto cases = parseEditCases(text.toStdString(), format, "sample.json");
        QVERIFY(!cases.ok());
        QVERIFY2(cases.message().find("sample.json") != std::string::npos, cases.message().c_str());
        QVERIFY2(cases.message().find(expected.toStdString()) != std::string::npos, cases.message().c_str());
    }

    void datasetFormatNames()
    {
        for (const char *name : {"auto", "counterfact-flat", "counterfact-rome", "zsre"}) {
            const auto format = parseDatasetFormat(name);
            QVERIFY(format.ok());
            QCOMPARE(datasetFormatName(format.value()), std::string(name));
        }
        QVERIFY(!parseDatasetFormat("squad").ok());
        QVERIFY(!loadEditCases("/nonexistent/file.json").ok());
    }
};

QTEST_GUILESS_MAIN(TestWorld)
#include "tst_world.moc"
