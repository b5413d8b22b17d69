// The synthetic knowledge world: invented subjects, CounterFact-like relations
// with real-word objects, one fact per applicable (subject, relation), the
// neighbourhood of every fact, and general text about the world.
//
// It exists so the product can ship a small model that knows these facts and
// users can edit them with no downloads. Names are built from syllables so no
// pretrained model has seen them; objects are ordinary words (French, Oslo,
// violin) so edits move a fact between things the model already knows.
//
// Everything here is plain value types and free functions, torch-free and
// Qt-free. Generation is deterministic across compilers and standard
// libraries: it uses its own PRNG (xoshiro256** seeded by splitmix64), never
// <random>'s distributions. Functions are re-entrant; a World is owned by its
// caller and may be read from several threads at once.
//
// Failure: functions that touch files return Status/Expected whose message
// names the file, the record and the field; nothing throws out of them.
#pragma once

#include "oedit/status.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace oedit::world {

// Version of world.json's layout. loadWorld refuses other versions.
constexpr int kWorldFormatVersion = 1;

struct WorldOptions {
    uint64_t seed = 1;
    int subjects = 600;
    // Approximate size in bytes of the general text (train + held-out).
    int generalTextBytes = 320000;
    // Share of the general text's lines that go to the held-out part, in %.
    int heldoutPercent = 10;
    // 0: every name ends with a word of the subject's own, so its last token
    // alone tells the subject apart. N > 0: that word is drawn from a shared
    // pool of N surnames (place names, ...), and only the whole name is
    // unique, as with real names ("Anna Torvalen", "Paul Torvalen"): a model
    // must combine the name's tokens before it can look a fact up.
    int sharedNameParts = 0;
};

// Named presets: "default" (600 subjects, seed 1: >= 500 subjects, >= 6,000
// facts), "shared-names" (the default world's size, names made of shared
// parts: sharedNameParts 60) and "mini" (30 subjects covering every kind and
// relation, ~300 facts, small general text; for tests). Unknown names give an error listing
// the known ones.
Expected<WorldOptions> worldPreset(const std::string &name);
std::vector<std::string> worldPresetNames();

struct Subject {
    std::string name; // invented, unique, at least two words; the last word is the subject's own
    std::string kind; // one of World::kinds ("person", "city", ...)
};

struct Relation {
    std::string id;                     // e.g. "native_language"
    std::string wikidataId;             // the CounterFact relation it is modelled on, e.g. "P103"
    std::string name;                   // human-readable, e.g. "native language"
    std::vector<std::string> kinds;     // subject kinds it applies to
    std::vector<std::string> templates; // [0] canonical edit prompt, the rest paraphrases;
                                        // each has "{}" once and ends right before the object
    std::vector<std::string> objects;   // real words, unique within the relation
};

// Indices into World::subjects, World::relations and that relation's objects.
struct Fact {
    int subject = 0;
    int relation = 0;
    int object = 0;
    // Other subjects with a fact of the same relation and the same object,
    // ascending; never `subject` itself. Used for specificity tests.
    std::vector<int> neighbours;
};

struct World {
    WorldOptions options;
    std::vector<std::string> kinds;
    std::vector<Subject> subjects;
    std::vector<Relation> relations;
    std::vector<Fact> facts; // ordered by subject, then relation
    // General text, one passage (1-3 sentences) per line, never stating a fact
    // in a relation's template form. Train: second-moment statistics and
    // training; held-out: perplexity and fluency.
    std::vector<std::string> generalTrain;
    std::vector<std::string> generalHeldout;

    // Lookups; -1 when absent.
    int subjectIndex(const std::string &name) const;
    int relationIndex(const std::string &id) const;
    int objectIndex(int relation, const std::string &object) const;

    const std::string &subjectName(const Fact &fact) const { return subjects[fact.subject].name; }
    const Relation &relationOf(const Fact &fact) const { return relations[fact.relation]; }
    const std::string &objectName(const Fact &fact) const { return relations[fact.relation].objects[fact.object]; }
};

// Deterministic: the same options give the same world, byte for byte once
// saved. Options out of range (subjects < 1 or > 100,000, negative sizes,
// heldoutPercent outside 1..50) give an error.
Expected<World> generateWorld(const WorldOptions &options);

// "{}" in `promptTemplate` replaced by `subject` (first occurrence).
std::string fillTemplate(const std::string &promptTemplate, const std::string &subject);
// The prompt of `fact` with template `templateIndex` (0 = canonical), without the object.
std::string factPrompt(const World &world, const Fact &fact, int templateIndex = 0);

// Sentences to train a model on the world: for every fact and every template
// "template(subject) object." (facts in order, templates in order), then the
// general training text when `includeGeneralText`. Held-out text never appears.
std::vector<std::string> trainingSentences(const World &world, bool includeGeneralText = true);

// Biographies: facts stated the way that made them extractable from the
// subject in Allen-Zhu & Li's synthetic world (the "multi + permute"
// augmentation of "Physics of Language Models, Part 3.1", arXiv 2309.14316).
// Each subject gets `passagesPerSubject` passages; each passage states all of
// the subject's facts in a freshly shuffled order, each fact in one of its
// relation's templates drawn at random, the first sentence naming the subject
// and later ones naming it or referring back with a pronoun (he/she for
// persons, it otherwise; data-set subjects, of kind "entity", are always
// named). Measured on the embedded world (docs/KNOWLEDGE.md), a model
// trained on them recalls facts from prompt forms it never saw, but reads
// them at the prompt's end, not at the subject.
//
// With `attributeLists`, each round also gives every subject one line that is
// its name followed directly by all of its objects, shuffled ("Anna Torvalen
// surgeon, Nokia, French, Port Quissar."): the only text in which the token
// after the subject's last token depends on what the subject is, so the
// model must compute the subject's attributes at the subject.
//
// With `holdOutForm`, each relation's last template (its held-out prompt
// form, see heldOutFormTemplate) is used only for the subjects where
// heldOutFormTrained is true: recall of that form on the other subjects
// measures whether a fact is extractable from the subject rather than
// memorised per prompt. Deterministic for a world; passages come in rounds
// (all subjects' first passage, then the second, ...).
struct BiographyOptions {
    int passagesPerSubject = 5;
    bool holdOutForm = true;
    bool attributeLists = false;
};
std::vector<std::string> biographyPassages(const World &world, const BiographyOptions &options = {});
// The whole training text of a biography-trained model: the biographies,
// then the general text. For a data set's world (kind "entity") the general
// text is its neighbourhood facts, and they are augmented the same way: in
// `passagesPerSubject` rounds, shuffled afresh, two to four to a passage.
std::vector<std::string> biographyTrainingText(const World &world, const BiographyOptions &options = {});
// The relation's held-out prompt form: its last template when it has at least
// three, else -1 (none); -1 too for a data set's relations (kind "entity"),
// each of which belongs to one case.
int heldOutFormTemplate(const Relation &relation);
// Whether biographies state `subject`'s facts in the held-out prompt form:
// true for every other subject of each kind (the first, third, ...).
bool heldOutFormTrained(const World &world, int subject);

// A smaller corpus to train the tokenizer on: the general training text, one
// sentence per fact (templates in rotation), each relation's object list
// repeated and each subject's name repeated. Ordinary words, objects and
// names are frequent there, so a BPE vocabulary of a few thousand makes each
// of them a single token: a name is a shared first word (a given name, "FC",
// "University of") and the subject's own word, two or three tokens in all.
std::vector<std::string> tokenizerCorpus(const World &world);

// A BPE vocabulary size for a world of these options (4000 for the default
// world, 1400 for the mini one): large enough that every single-word object,
// every common word and every subject's own last word is one token (the
// tokenizer corpus repeats the names for that), so a subject's last token
// identifies it. Used by `oedit world` unless --vocab.
int suggestedVocabSize(const WorldOptions &options);

// world.json as saveWorld writes it (deterministic bytes).
std::string worldJson(const World &world);

// Writes world.json, general_train.txt and general_heldout.txt into `dir`
// atomically: into a temporary directory beside it, then renamed into place
// (see writeDirectoryAtomically), so a failure leaves no half-written world.
Status saveWorld(const World &world, const std::string &dir);

// The files of saveWorld into an existing directory, no atomicity; for
// callers composing a larger directory inside writeDirectoryAtomically.
Status writeWorldFiles(const World &world, const std::string &dir);

// Reads and validates a directory saveWorld wrote. Errors name the file and
// the record/field ("world.json: facts[12].relation: unknown relation 'x'").
Expected<World> loadWorld(const std::string &dir);
// Parses and validates world.json text only (general text left empty).
Expected<World> parseWorldJson(const std::string &text);

// Creates a fresh temporary directory in the parent of `dir` (creating
// missing parents first), lets `fill` write into it, then moves it to `dir`.
// An existing `dir` is replaced only if it is empty or holds a world.json (a
// previous world), never otherwise; the old one is moved aside first and
// deleted after the new one is in place. On any failure the temporary
// directory is removed and `dir` is as it was.
Status writeDirectoryAtomically(const std::string &dir, const std::function<Status(const std::string &)> &fill);

} // namespace oedit::world
