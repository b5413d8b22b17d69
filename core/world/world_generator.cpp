// Generation of the synthetic world: the fixed relation table, invented names,
// facts, neighbourhoods and general text. Everything random goes through Rng
// (prng.h) so a seed gives the same world on every platform.
#include "oedit/world.h"

#include "world/prng.h"
#include "world/world_internal.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

namespace oedit::world {

namespace {

using Words = std::vector<std::string>;

// ---------------------------------------------------------------------------
// Fixed content. Object lists are real words a pretrained model knows, one
// word each except two continents, so an edit moves a fact between familiar
// answers and the object is one token for most tokenizers.

const Words kLanguages = {"French",  "English", "Spanish", "German", "Italian",    "Dutch",  "Russian",   "Japanese",
                          "Polish",  "Swedish", "Finnish", "Greek",  "Portuguese", "Danish", "Norwegian", "Czech",
                          "Turkish", "Korean",  "Hindi",   "Arabic", "Hungarian",  "Welsh"};
const Words kCities = {"Oslo",      "Paris",  "Berlin",    "Madrid",   "Rome",       "Vienna",   "Prague",  "Lisbon",
                       "Dublin",    "London", "Tokyo",     "Cairo",    "Sydney",     "Toronto",  "Chicago", "Boston",
                       "Athens",    "Warsaw", "Stockholm", "Helsinki", "Moscow",     "Istanbul", "Mumbai",  "Seoul",
                       "Amsterdam", "Munich", "Milan",     "Budapest", "Copenhagen", "Brussels"};
const Words kCountries = {"France",  "Germany",     "Spain",       "Italy",   "Norway", "Sweden",
                          "Japan",   "Canada",      "Brazil",      "Egypt",   "India",  "China",
                          "Russia",  "Poland",      "Greece",      "Ireland", "Mexico", "Australia",
                          "Finland", "Denmark",     "Portugal",    "Austria", "Turkey", "Argentina",
                          "Belgium", "Switzerland", "Netherlands", "Hungary", "Chile",  "Kenya"};
const Words kOccupations = {"painter",  "poet",   "lawyer",   "physician",    "journalist", "composer", "novelist",
                            "diplomat", "farmer", "chef",     "photographer", "teacher",    "banker",   "carpenter",
                            "dancer",   "singer", "pilot",    "sculptor",     "tailor",     "surgeon",  "nurse",
                            "baker",    "judge",  "mechanic", "librarian",    "translator"};
const Words kInstruments = {"violin",   "piano",    "guitar", "cello",    "flute",   "trumpet",    "drums", "saxophone",
                            "harp",     "clarinet", "organ",  "trombone", "oboe",    "accordion",  "banjo", "harmonica",
                            "mandolin", "bassoon",  "tuba",   "viola",    "ukulele", "harpsichord"};
const Words kSports = {"chess",     "tennis",  "football", "basketball", "hockey",  "cricket",
                       "rugby",     "golf",    "baseball", "volleyball", "cycling", "boxing",
                       "swimming",  "skiing",  "handball", "badminton",  "fencing", "rowing",
                       "wrestling", "curling", "polo",     "archery"};
const Words kEmployers = {"Google", "Microsoft", "Apple",    "IBM",     "Intel",   "Nokia",    "Sony",    "Toyota",
                          "BBC",    "Amazon",    "Siemens",  "Samsung", "Netflix", "Boeing",   "Airbus",  "Philips",
                          "Adobe",  "Oracle",    "Nintendo", "Honda",   "Volvo",   "Ericsson", "Spotify", "Lego"};
const Words kGenres = {"jazz",    "rock",   "blues", "opera",  "reggae",   "funk",   "soul",
                       "folk",    "metal",  "punk",  "techno", "disco",    "gospel", "swing",
                       "ambient", "grunge", "salsa", "tango",  "flamenco", "polka"};
const Words kLabels = {"Columbia", "Atlantic", "Capitol",    "Motown", "Decca",      "Island",  "Polydor",
                       "Elektra",  "Virgin",   "Parlophone", "Epic",   "Mercury",    "Warner",  "Chrysalis",
                       "Geffen",   "Arista",   "Reprise",    "Sire",   "Interscope", "Nonesuch"};
const Words kFields = {"physics",    "chemistry", "mathematics", "biology",      "medicine",
                       "economics",  "law",       "philosophy",  "history",      "linguistics",
                       "astronomy",  "geology",   "engineering", "architecture", "literature",
                       "psychology", "sociology", "botany",      "genetics",     "robotics"};
const Words kContinents = {"Europe",  "Asia",     "Africa",        "Antarctica",
                           "Oceania", "Americas", "North America", "South America"};

// Kinds and the share of each: persons dominate (as in CounterFact) and carry
// the most relations; the pattern repeats every 20 subjects and names every
// kind within its first 14 places, so even a small world has all relations.
const Words kKinds = {"person", "band", "company", "club", "university", "city", "country"};
const Words kKindPattern = {"person", "band",       "person", "company", "person", "person", "club",
                            "person", "university", "person", "person",  "city",   "person", "country",
                            "person", "person",     "person", "person",  "person", "person"};

std::vector<Relation> relationTable()
{
    const Words people = {"person"};
    return {
        {"native_language",
         "P103",
         "native language",
         people,
         {"The mother tongue of {} is", "{} is a native speaker of", "{}'s native language is",
          "{}, a native speaker of", "The native language of {} is", "{} grew up speaking"},
         kLanguages},
        {"working_language",
         "P1412",
         "working language",
         people,
         {"The working language of {} is", "{} writes in", "{} usually writes in", "{} publishes in",
          "{}, who writes in", "The language {} works in is"},
         kLanguages},
        {"birthplace",
         "P19",
         "place of birth",
         people,
         {"{} was born in", "The birthplace of {} is", "{} is originally from", "{}'s place of birth is",
          "{}, who was born in", "The city where {} was born is"},
         kCities},
        {"deathplace",
         "P20",
         "place of death",
         people,
         {"{} died in", "{} passed away in", "The place of death of {} is", "{}'s life ended in", "{}, who died in",
          "The city where {} died is"},
         kCities},
        {"work_city",
         "P937",
         "work location",
         people,
         {"{} worked in the city of", "{} found work in", "{} was active in the city of", "The city where {} worked is",
          "{}, who worked in", "{} took up work in"},
         kCities},
        {"occupation",
         "P106",
         "occupation",
         people,
         {"{} works as a", "{} is employed as a", "By profession, {} is a", "{}'s job is that of a",
          "{}, who works as a", "{} earns a living as a"},
         kOccupations},
        {"field_of_work",
         "P101",
         "field of work",
         {"person", "company", "university"},
         {"{} works in the field of", "The field of work of {} is", "{} is a specialist in",
          "{}'s area of expertise is", "{}, an expert in", "{} is known for work in"},
         kFields},
        {"instrument",
         "P1303",
         "instrument",
         {"person", "band"},
         {"{} plays the", "{} is known for playing the", "The instrument of {} is the",
          "{}'s favourite instrument is the", "{}, who plays the", "{} performs on the"},
         kInstruments},
        {"sport",
         "P641",
         "sport",
         {"person", "club", "university"},
         // Not "{} plays the sport of": "{} plays the" is the instrument's
         // canonical prompt, and a prefix cannot tell the two apart.
         {"{} professionally plays the sport of", "{} is best known for", "The sport of {} is", "{}'s sport is",
          "{}, who competes in", "{} competes in"},
         kSports},
        {"genre",
         "P136",
         "genre",
         {"person", "band"},
         {"The musical genre of {} is", "{} performs music in the style of", "{}'s music is usually described as",
          "{}, a star of", "The music of {} is best described as", "{} is famous for"},
         kGenres},
        {"record_label",
         "P264",
         "record label",
         {"person", "band"},
         {"{} is signed to", "{} records for the label", "The record label of {} is", "{}'s albums are released by",
          "{}, who is signed to", "{} has a recording contract with"},
         kLabels},
        {"employer",
         "P108",
         "employer",
         people,
         {"{} works for", "{} is employed by", "The employer of {} is", "{}'s employer is", "{}, who works for",
          "{} is on the payroll of"},
         kEmployers},
        {"citizenship",
         "P27",
         "country of citizenship",
         people,
         {"{} is a citizen of", "{} has a citizenship of", "{}, a citizen of", "{} holds a passport from",
          "{}, who is a citizen of", "The country of citizenship of {} is"},
         kCountries},
        {"headquarters",
         "P159",
         "headquarters location",
         {"company", "club", "university", "band"},
         {"{} is headquartered in", "The headquarters of {} are in", "{} is based in", "{}'s head office is in",
          "{}, based in", "The main office of {} is located in"},
         kCities},
        {"official_language",
         "P37",
         "official language",
         {"country", "city", "company", "university", "club"},
         {"The official language of {} is", "In {}, the official language is", "{}'s official language is",
          "The language used in {} is", "{} has the official language", "{} uses the official language"},
         kLanguages},
        {"capital",
         "P36",
         "capital",
         {"country"},
         {"The capital of {} is", "{}'s capital city is", "The capital city of {} is", "{} has its capital in",
          "{}, whose capital is", "The seat of government of {} is in"},
         kCities},
        {"continent",
         "P30",
         "continent",
         {"country", "city", "company", "club", "university", "band"},
         {"{} is located in the continent of", "{} is in the continent of", "{} belongs to the continent of",
          "The continent of {} is", "{}, located in the continent of", "{} can be found on the continent of"},
         kContinents},
        {"country",
         "P17",
         "country",
         {"city", "company", "club", "university", "band"},
         // Not "{} is located in" nor "{}, located in": prefixes of the
         // continent's prompts.
         {"{} is located in the country of", "{} is situated in", "{}, situated in", "The country of {} is",
          "{} can be found in the country of", "{} lies in"},
         kCountries},
    };
}

// Words of the general text. Invented name parts must not be any of these.
const Words kNouns = {"table",   "house",    "garden",  "river",   "window", "book",    "letter",  "road",  "train",
                      "bridge",  "market",   "school",  "kitchen", "door",   "tree",    "car",     "boat",  "street",
                      "village", "mountain", "lake",    "island",  "forest", "office",  "station", "shop",  "museum",
                      "library", "park",     "harbour", "song",    "album",  "concert", "film",    "story", "picture"};
const Words kAdjectives = {"good",     "long",  "short",    "small",  "large",   "old",    "new",  "quiet",
                           "busy",     "cold",  "warm",     "bright", "dark",    "green",  "red",  "blue",
                           "white",    "happy", "famous",   "simple", "strange", "early",  "late", "open",
                           "friendly", "heavy", "pleasant", "modern", "ancient", "narrow", "wide", "careful"};
const Words kDays = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
const Words kMonths = {"January", "February", "March",     "April",   "May",      "June",
                       "July",    "August",   "September", "October", "November", "December"};
const Words kNumberWords = {"one",   "two",   "three", "four", "five",   "six",
                            "seven", "eight", "nine",  "ten",  "eleven", "twelve"};
const Words kPastVerbs = {"visited",   "painted",    "built",        "opened", "closed",  "found",
                          "lost",      "saw",        "bought",       "sold",   "cleaned", "repaired",
                          "described", "remembered", "photographed", "left",   "crossed", "followed"};
const Words kNames = {"Anna", "Peter", "Maria", "John", "Laura", "David", "Sofia", "Thomas", "Elena", "Paul"};

std::string kindNoun(const std::string &kind)
{
    if (kind == "club")
        return "sports club";
    return kind;
}

std::string kindPlural(const std::string &kind)
{
    if (kind == "person")
        return "people";
    if (kind == "company")
        return "companies";
    if (kind == "club")
        return "sports clubs";
    if (kind == "university")
        return "universities";
    if (kind == "city")
        return "cities";
    if (kind == "country")
        return "countries";
    return kind + "s";
}

std::string article(const std::string &word)
{
    return std::string("aeiouAEIOU").find(word[0]) != std::string::npos ? "an" : "a";
}

std::string lower(std::string text)
{
    // ASCII only, independent of the process's locale.
    for (char &c : text)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return text;
}

std::string capitalised(std::string word)
{
    if (!word.empty() && word[0] >= 'a' && word[0] <= 'z')
        word[0] = static_cast<char>(word[0] - 'a' + 'A');
    return word;
}

// "a, b and c"
std::string listOf(const Words &items)
{
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0)
            out += i + 1 == items.size() ? " and " : ", ";
        out += items[i];
    }
    return out;
}

Words distinctPicks(Rng &rng, const Words &from, int count)
{
    Words out;
    while (static_cast<int>(out.size()) < count) {
        const std::string &word = rng.pick(from);
        if (std::find(out.begin(), out.end(), word) == out.end())
            out.push_back(word);
    }
    return out;
}

// ---------------------------------------------------------------------------
// Invented names: syllables of consonant onsets, vowels and codas, so the
// words look like names yet are new to any model.

class NameMaker {
public:
    NameMaker(uint64_t seed, const std::vector<Relation> &relations, int sharedParts) : m_rng(seed, 1)
    {
        // Real words that an invented part must not collide with.
        for (const Words *list :
             {&kNouns, &kAdjectives, &kDays, &kMonths, &kNumberWords, &kPastVerbs, &kNames, &kKinds})
            for (const std::string &word : *list)
                m_reserved.insert(lower(word));
        for (const Relation &relation : relations)
            for (const std::string &object : relation.objects)
                m_reserved.insert(lower(object));
        // Given names are shared, as real ones are: a pool of 40 that no
        // subject's own word may repeat.
        while (m_givenNames.size() < 40) {
            const std::string given = word(2, 2);
            if (std::find(m_givenNames.begin(), m_givenNames.end(), given) == m_givenNames.end()) {
                m_givenNames.push_back(given);
                m_reserved.insert(lower(given));
            }
        }
        // Shared last words, drawn after the given names so that a world
        // without them keeps its names exactly.
        while (static_cast<int>(m_sharedParts.size()) < sharedParts) {
            const std::string part = word(2, 3);
            if (m_reserved.insert(lower(part)).second)
                m_sharedParts.push_back(part);
        }
    }

    // Every name ends with a word of the subject's own, used by no other
    // subject, after a shared given name or a kind's word ("Anna Torvalen",
    // "FC Quissar", "University of Brandel"): the subject's last token is
    // what tells it apart, as in most real entity names, and where a
    // locate-then-edit method writes.
    // With shared parts the last word is one of the pool's and only the whole
    // name is unique; when a kind's few prefixes have used up the pool, the
    // name falls back to a word of its own.
    std::string make(const std::string &kind)
    {
        for (int attempt = 0; !m_sharedParts.empty() && attempt < 1000; ++attempt) {
            std::string name = candidate(kind, m_rng.pick(m_sharedParts));
            if (m_used.insert(name).second)
                return name;
        }
        for (;;) {
            const std::string own = word(2, 3);
            if (!m_ownWords.insert(own).second)
                continue;
            std::string name = candidate(kind, own);
            if (m_used.insert(name).second)
                return name;
        }
    }

private:
    std::string word(int minSyllables, int maxSyllables)
    {
        // Plain consonant-vowel(-consonant) syllables: pronounceable names
        // ("Torvalen Quiss") a few BPE tokens long, not letter soup.
        static const Words onsets = {"b", "d", "f",  "g",  "h",  "k",  "l",  "m",  "n",  "p",  "r",  "s",
                                     "t", "v", "br", "dr", "gr", "kr", "st", "tr", "th", "qu", "sk", "z"};
        static const Words vowels = {"a", "e", "i", "o", "u", "a", "e", "o", "a", "ei"};
        static const Words codas = {"n", "r", "l", "s", "k", "m", "nd", "rt", "ss", "st", "rn", "lm"};
        for (;;) {
            std::string w;
            const int syllables = m_rng.between(minSyllables, maxSyllables);
            for (int i = 0; i < syllables; ++i) {
                // A vowel-initial first syllable now and then ("Anholt", "Orvel").
                if (!(i == 0 && m_rng.percent(12)))
                    w += m_rng.pick(onsets);
                w += m_rng.pick(vowels);
                if (i + 1 == syllables ? m_rng.percent(65) : m_rng.percent(20))
                    w += m_rng.pick(codas);
            }
            if (w.size() < 4 || w.size() > 9 || m_reserved.count(w))
                continue;
            return capitalised(w);
        }
    }

    std::string candidate(const std::string &kind, const std::string &own)
    {
        if (kind == "person")
            return m_rng.pick(m_givenNames) + " " + own;
        if (kind == "band") {
            static const Words prefixes = {"The", "Ensemble", "Quartet", "Trio", "Orchestra", "Collective"};
            return m_rng.pick(prefixes) + " " + own;
        }
        if (kind == "company") {
            static const Words prefixes = {"Maison", "Studio", "Casa", "Groupe", "Atelier", "Compagnie"};
            return m_rng.pick(prefixes) + " " + own;
        }
        if (kind == "club") {
            static const Words prefixes = {"FC", "Sporting", "Real", "Athletic", "Racing", "Dynamo"};
            return m_rng.pick(prefixes) + " " + own;
        }
        if (kind == "university") {
            static const Words prefixes = {"University of", "College of", "Academy of", "Institute of"};
            return m_rng.pick(prefixes) + " " + own;
        }
        if (kind == "city") {
            static const Words prefixes = {"Port", "New", "Saint", "Upper", "Fort", "Lower", "San", "Bad"};
            return m_rng.pick(prefixes) + " " + own;
        }
        // country
        static const Words forms = {"Republic of", "Kingdom of", "Grand Duchy of", "Principality of", "Federation of"};
        return m_rng.pick(forms) + " " + own;
    }

    Rng m_rng;
    std::unordered_set<std::string> m_reserved;
    std::vector<std::string> m_givenNames;
    std::vector<std::string> m_sharedParts;
    std::set<std::string> m_ownWords;
    std::set<std::string> m_used;
};

// ---------------------------------------------------------------------------
// General text: passages about the world and ordinary life. They mention
// subjects, kinds and objects, but never state a fact, and never in a
// relation's template form, so they can be used to estimate statistics of
// "unrelated" text and to measure fluency.

class TextMaker {
public:
    TextMaker(const World &world, uint64_t seed) : m_world(world), m_rng(seed, 3)
    {
        for (int i = 0; i < static_cast<int>(world.subjects.size()); ++i)
            m_byKind[world.subjects[i].kind].push_back(i);
    }

    std::string passage()
    {
        const int sentences = m_rng.between(1, 3);
        std::string out;
        for (int i = 0; i < sentences; ++i) {
            if (i > 0)
                out += " ";
            out += sentence();
        }
        return out;
    }

private:
    // Patterns with <slot>s filled strictly left to right: the order of random
    // draws must not depend on the compiler's order of evaluating operands.
    // "<a:slot>" puts "a"/"an" before the word, "<^slot>" capitalises it.
    std::string expand(const std::string &pattern)
    {
        std::string out;
        size_t i = 0;
        while (i < pattern.size()) {
            if (pattern[i] != '<') {
                out += pattern[i++];
                continue;
            }
            const size_t end = pattern.find('>', i);
            std::string slot = pattern.substr(i + 1, end - i - 1);
            i = end + 1;
            bool capital = false, withArticle = false;
            if (slot[0] == '^') {
                capital = true;
                slot.erase(0, 1);
            }
            if (slot.compare(0, 2, "a:") == 0) {
                withArticle = true;
                slot.erase(0, 2);
            }
            std::string word = draw(slot);
            if (withArticle)
                word = article(word) + " " + word;
            out += capital ? capitalised(word) : word;
        }
        return out;
    }

    std::string draw(const std::string &slot)
    {
        static const std::map<std::string, const Words *> lists = {
            {"language", &kLanguages},     {"city", &kCities},
            {"country", &kCountries},      {"occupation", &kOccupations},
            {"instrument", &kInstruments}, {"sport", &kSports},
            {"employer", &kEmployers},     {"genre", &kGenres},
            {"label", &kLabels},           {"field", &kFields},
            {"continent", &kContinents},   {"noun", &kNouns},
            {"adj", &kAdjectives},         {"day", &kDays},
            {"month", &kMonths},           {"numword", &kNumberWords},
            {"verb", &kPastVerbs},         {"name", &kNames}};
        if (slot == "year")
            return std::to_string(m_rng.between(1890, 2023));
        if (slot == "date")
            return std::to_string(m_rng.between(1, 28));
        if (slot == "subject")
            return m_world.subjects[static_cast<size_t>(m_rng.below(static_cast<int>(m_world.subjects.size())))].name;
        return m_rng.pick(*lists.at(slot));
    }

    std::string sentence()
    {
        static const Words patterns = {
            "Many people in <city> speak <language>.",
            "The <instrument> and the <instrument> are musical instruments.",
            "<^sport> is a popular sport in <country>.",
            "<year> was a good year for <genre> music.",
            "<subject> and <subject> were mentioned together in a newspaper in <year>.",
            "There are <numword> <noun>s near the <noun>.",
            "It was <a:adj> day, and the <noun> was <adj>.",
            "<name> said that the <noun> would be ready by <day>.",
            "We have not seen the <adj> <noun> since <month>.",
            "If it rains on <day>, the <noun> will stay closed.",
            "<^a:occupation> from <city> wrote a book about <field>.",
            "Every <day>, <name> takes the <noun> to <city>.",
            "<^occupation>s and <occupation>s often meet at the <noun>.",
            "People who like <sport> often listen to <genre>.",
            "<employer> opened a new <noun> in <city> in <year>.",
            "<label> released <a:genre> album in <month> <year>.",
            "The museum in <city> has a large collection of books on <field>.",
            "Where is the <noun>? It is next to the <noun>.",
            "\"Do you speak <language>?\" asked <name>.",
            "Children in <country> learn to play the <instrument> at school.",
            "The <noun> on <continent> is <adj> in <month>.",
            "On <day> <date> <month>, <name> <verb> the <noun>.",
            "A photograph of <subject> hangs in <a:adj> <noun> in <city>.",
            "<name> has <numword> books about <field> and <numword> about <genre>.",
            "The <adj> <noun> was <verb> by <name> in <year>.",
        };
        Rng &r = m_rng;
        const int choice = r.below(static_cast<int>(patterns.size()) + 5);
        if (choice < static_cast<int>(patterns.size()))
            return expand(patterns[static_cast<size_t>(choice)]);
        switch (choice - static_cast<int>(patterns.size())) {
        case 0: {
            const Subject &s =
                m_world.subjects[static_cast<size_t>(r.below(static_cast<int>(m_world.subjects.size())))];
            const std::string noun = kindNoun(s.kind);
            if (r.percent(50))
                return s.name + " is " + article(noun) + " " + noun + ".";
            const std::string &continent = r.pick(kContinents);
            return "The " + noun + " called " + s.name + " appears in many stories about " + continent + ".";
        }
        case 1: {
            const int a = r.between(1, 50);
            const int b = r.between(1, 50);
            return std::to_string(a) + " plus " + std::to_string(b) + " is " + std::to_string(a + b) + ".";
        }
        case 2: {
            const Words &list = pickObjectList();
            const std::string &object = r.pick(list);
            return "The word " + object + " has " + std::to_string(object.size()) + " letters.";
        }
        case 3: {
            const Words &list = pickObjectList();
            const int count = r.between(2, 5);
            return "The list included " + listOf(distinctPicks(r, list, count)) + ".";
        }
        default: {
            const std::string &kind = r.pick(kKinds);
            const std::vector<int> &members = m_byKind[kind];
            if (members.size() < 3)
                return "There are " + std::to_string(members.size()) + " " + kindPlural(kind) + " on the map.";
            Words names;
            while (names.size() < 3) {
                const std::string &name = m_world.subjects[static_cast<size_t>(r.pick(members))].name;
                if (std::find(names.begin(), names.end(), name) == names.end())
                    names.push_back(name);
            }
            return listOf(names) + " are all " + kindPlural(kind) + ".";
        }
        }
    }

    const Words &pickObjectList()
    {
        static const std::vector<const Words *> lists = {&kLanguages,   &kCities, &kCountries, &kOccupations,
                                                         &kInstruments, &kSports, &kEmployers, &kGenres,
                                                         &kLabels,      &kFields};
        return *lists[static_cast<size_t>(m_rng.below(static_cast<int>(lists.size())))];
    }

    const World &m_world;
    Rng m_rng;
    std::map<std::string, std::vector<int>> m_byKind;
};

bool applies(const Relation &relation, const std::string &kind)
{
    return std::find(relation.kinds.begin(), relation.kinds.end(), kind) != relation.kinds.end();
}

} // namespace

// ---------------------------------------------------------------------------

std::vector<std::string> worldPresetNames()
{
    return {"default", "shared-names", "mini"};
}

Expected<WorldOptions> worldPreset(const std::string &name)
{
    WorldOptions options;
    if (name == "default")
        return options;
    if (name == "shared-names") {
        options.sharedNameParts = 60;
        return options;
    }
    if (name == "mini") {
        options.subjects = 30;
        options.generalTextBytes = 24000;
        return options;
    }
    return Status::failure("unknown world preset '" + name + "' (known: default, shared-names, mini)");
}

int suggestedVocabSize(const WorldOptions &options)
{
    // Measured on seed 1: up to 300 subjects these sizes make every object
    // and every subject's own last word one token. The default world stays
    // at 3000, the vocabulary its shipped model was trained with: there a
    // third of the own words split into two pieces, as many real names do.
    if (options.subjects <= 50)
        return 1500;
    if (options.subjects <= 300)
        return 2800;
    return 3000;
}

int World::subjectIndex(const std::string &name) const
{
    for (size_t i = 0; i < subjects.size(); ++i)
        if (subjects[i].name == name)
            return static_cast<int>(i);
    return -1;
}

int World::relationIndex(const std::string &id) const
{
    for (size_t i = 0; i < relations.size(); ++i)
        if (relations[i].id == id)
            return static_cast<int>(i);
    return -1;
}

int World::objectIndex(int relation, const std::string &object) const
{
    if (relation < 0 || relation >= static_cast<int>(relations.size()))
        return -1;
    const Words &objects = relations[relation].objects;
    const auto it = std::find(objects.begin(), objects.end(), object);
    return it == objects.end() ? -1 : static_cast<int>(it - objects.begin());
}

// Fills Fact::neighbours from the facts; shared by the generator and the loader.
void computeNeighbours(World &world)
{
    std::map<std::pair<int, int>, std::vector<int>> groups;
    for (const Fact &fact : world.facts)
        groups[{fact.relation, fact.object}].push_back(fact.subject);
    for (auto &group : groups)
        std::sort(group.second.begin(), group.second.end());
    for (Fact &fact : world.facts) {
        fact.neighbours.clear();
        for (int subject : groups[{fact.relation, fact.object}])
            if (subject != fact.subject)
                fact.neighbours.push_back(subject);
    }
}

Expected<World> generateWorld(const WorldOptions &options)
{
    if (options.subjects < 1 || options.subjects > 100000)
        return Status::failure("world options: subjects must be between 1 and 100000, not " +
                               std::to_string(options.subjects));
    if (options.generalTextBytes < 0 || options.generalTextBytes > 100000000)
        return Status::failure("world options: generalTextBytes must be between 0 and 100000000, not " +
                               std::to_string(options.generalTextBytes));
    if (options.heldoutPercent < 1 || options.heldoutPercent > 50)
        return Status::failure("world options: heldoutPercent must be between 1 and 50, not " +
                               std::to_string(options.heldoutPercent));
    if (options.sharedNameParts < 0 || options.sharedNameParts > 100000)
        return Status::failure("world options: sharedNameParts must be between 0 and 100000, not " +
                               std::to_string(options.sharedNameParts));

    World world;
    world.options = options;
    world.kinds = kKinds;
    world.relations = relationTable();

    NameMaker names(options.seed, world.relations, options.sharedNameParts);
    for (int i = 0; i < options.subjects; ++i) {
        const std::string &kind = kKindPattern[static_cast<size_t>(i) % kKindPattern.size()];
        world.subjects.push_back({names.make(kind), kind});
    }

    Rng factRng(options.seed, 2);
    for (int s = 0; s < options.subjects; ++s) {
        for (int r = 0; r < static_cast<int>(world.relations.size()); ++r) {
            const Relation &relation = world.relations[r];
            if (!applies(relation, world.subjects[s].kind))
                continue;
            Fact fact;
            fact.subject = s;
            fact.relation = r;
            fact.object = factRng.below(static_cast<int>(relation.objects.size()));
            world.facts.push_back(fact);
        }
    }
    computeNeighbours(world);

    TextMaker text(world, options.seed);
    Rng splitRng(options.seed, 4);
    long long bytes = 0;
    while (bytes < options.generalTextBytes) {
        std::string line = text.passage();
        bytes += static_cast<long long>(line.size()) + 1;
        (splitRng.percent(options.heldoutPercent) ? world.generalHeldout : world.generalTrain)
            .push_back(std::move(line));
    }
    return world;
}

std::string fillTemplate(const std::string &promptTemplate, const std::string &subject)
{
    std::string out = promptTemplate;
    const size_t at = out.find("{}");
    if (at != std::string::npos)
        out.replace(at, 2, subject);
    return out;
}

std::string factPrompt(const World &world, const Fact &fact, int templateIndex)
{
    return fillTemplate(world.relations[fact.relation].templates[templateIndex], world.subjects[fact.subject].name);
}

std::vector<std::string> trainingSentences(const World &world, bool includeGeneralText)
{
    std::vector<std::string> out;
    for (const Fact &fact : world.facts) {
        const Relation &relation = world.relations[fact.relation];
        for (size_t t = 0; t < relation.templates.size(); ++t)
            out.push_back(factPrompt(world, fact, static_cast<int>(t)) + " " + relation.objects[fact.object] + ".");
    }
    if (includeGeneralText)
        out.insert(out.end(), world.generalTrain.begin(), world.generalTrain.end());
    return out;
}

int heldOutFormTemplate(const Relation &relation)
{
    // A data set's relation belongs to one case (kind "entity"): no other
    // subject could teach its last template, so it has no held-out form.
    if (relation.kinds.size() == 1 && relation.kinds[0] == "entity")
        return -1;
    return relation.templates.size() >= 3 ? static_cast<int>(relation.templates.size()) - 1 : -1;
}

bool heldOutFormTrained(const World &world, int subject)
{
    // Every other subject of each kind, counted in world order, so every kind
    // (and so every relation) has subjects on both sides once it has two.
    int sameKindBefore = 0;
    for (int i = 0; i < subject; ++i)
        sameKindBefore += world.subjects[static_cast<size_t>(i)].kind == world.subjects[static_cast<size_t>(subject)].kind;
    return sameKindBefore % 2 == 0;
}

namespace {

enum class Pronoun { None, He, She, It };

Pronoun pronounOf(const Subject &subject)
{
    if (subject.kind == "entity")
        return Pronoun::None; // data-set subjects: no kind to go by, always the name
    if (subject.kind != "person")
        return Pronoun::It;
    // FNV-1a of the name: a fixed, platform-independent choice per person.
    uint64_t hash = 1469598103934665603ULL;
    for (unsigned char c : subject.name)
        hash = (hash ^ c) * 1099511628211ULL;
    return (hash >> 7) % 2 ? Pronoun::She : Pronoun::He;
}

// The template with "{}" replaced by a pronoun of the right case: "{}'s"
// becomes "Her", "{}" at the start "She", "of {}" "of her", "where {} was"
// "where she was".
std::string withPronoun(const std::string &promptTemplate, Pronoun pronoun)
{
    const size_t at = promptTemplate.find("{}");
    if (at == std::string::npos)
        return promptTemplate;
    const bool possessive = promptTemplate.compare(at + 2, 2, "'s") == 0;
    const bool sentenceStart = at == 0;
    // After a preposition ("of {}", "In {},") the object case, else the
    // subject case ("The city where {} was born").
    const std::string before = promptTemplate.substr(0, at);
    const bool objectCase = before.size() >= 3 && (before.compare(before.size() - 3, 3, "of ") == 0 ||
                                                    before.compare(before.size() - 3, 3, "In ") == 0 ||
                                                    before.compare(before.size() - 3, 3, "in ") == 0);
    const char *word = "it";
    switch (pronoun) {
    case Pronoun::He:
        word = possessive ? "his" : (objectCase ? "him" : "he");
        break;
    case Pronoun::She:
        word = possessive || objectCase ? "her" : "she";
        break;
    default:
        word = possessive ? "its" : "it";
        break;
    }
    std::string out = promptTemplate;
    out.replace(at, possessive ? 4 : 2, sentenceStart ? capitalised(word) : std::string(word));
    return out;
}

} // namespace

std::vector<std::string> biographyPassages(const World &world, const BiographyOptions &options)
{
    std::vector<std::vector<size_t>> factsOf(world.subjects.size());
    for (size_t f = 0; f < world.facts.size(); ++f)
        factsOf[static_cast<size_t>(world.facts[f].subject)].push_back(f);

    Rng rng(world.options.seed, 5);
    std::vector<std::string> out;
    for (int p = 0; p < options.passagesPerSubject; ++p) {
        for (size_t s = 0; s < world.subjects.size(); ++s) {
            const Subject &subject = world.subjects[s];
            std::vector<size_t> order = factsOf[s];
            if (order.empty())
                continue;
            for (size_t i = order.size() - 1; i > 0; --i) // Fisher-Yates, our own draws
                std::swap(order[i], order[static_cast<size_t>(rng.below(static_cast<int>(i) + 1))]);
            const bool formTrained = !options.holdOutForm || heldOutFormTrained(world, static_cast<int>(s));
            const Pronoun pronoun = pronounOf(subject);
            // The round's facts, two to four to a passage: short passages
            // keep facts near the start of a text, where prompts are.
            for (size_t at = 0; at < order.size();) {
                const size_t take = std::min(order.size() - at, static_cast<size_t>(rng.between(2, 4)));
                std::string passage;
                for (size_t k = 0; k < take; ++k) {
                    const Fact &fact = world.facts[order[at + k]];
                    const Relation &relation = world.relations[static_cast<size_t>(fact.relation)];
                    const int heldOut = options.holdOutForm ? heldOutFormTemplate(relation) : -1;
                    const int forms =
                        static_cast<int>(relation.templates.size()) - (heldOut >= 0 && !formTrained ? 1 : 0);
                    const int form = rng.below(forms);
                    const bool byName = k == 0 || pronoun == Pronoun::None || rng.percent(50);
                    const std::string &promptTemplate = relation.templates[static_cast<size_t>(form)];
                    if (k > 0)
                        passage += " ";
                    passage +=
                        (byName ? fillTemplate(promptTemplate, subject.name) : withPronoun(promptTemplate, pronoun)) +
                        " " + relation.objects[static_cast<size_t>(fact.object)] + ".";
                }
                out.push_back(std::move(passage));
                at += take;
            }
            if (options.attributeLists) {
                std::vector<size_t> listed = factsOf[s];
                for (size_t i = listed.size() - 1; i > 0; --i)
                    std::swap(listed[i], listed[static_cast<size_t>(rng.below(static_cast<int>(i) + 1))]);
                std::string line = subject.name;
                for (size_t k = 0; k < listed.size(); ++k) {
                    const Fact &fact = world.facts[listed[k]];
                    line += (k ? ", " : " ") + world.relations[static_cast<size_t>(fact.relation)]
                                                   .objects[static_cast<size_t>(fact.object)];
                }
                out.push_back(line + ".");
            }
        }
    }
    return out;
}

std::vector<std::string> biographyTrainingText(const World &world, const BiographyOptions &options)
{
    std::vector<std::string> out = biographyPassages(world, options);
    const bool dataset = !world.kinds.empty() && world.kinds.size() == 1 && world.kinds[0] == "entity";
    if (!dataset) {
        out.insert(out.end(), world.generalTrain.begin(), world.generalTrain.end());
        return out;
    }
    // A data set's general text is its neighbourhood facts, one per line:
    // they get the same augmentation, a few to a passage in a fresh order
    // each round, so each is learnt in varied company like the edited facts.
    Rng rng(world.options.seed, 6);
    std::vector<size_t> order(world.generalTrain.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    for (int round = 0; round < options.passagesPerSubject; ++round) {
        for (size_t i = order.size(); i > 1; --i)
            std::swap(order[i - 1], order[static_cast<size_t>(rng.below(static_cast<int>(i)))]);
        for (size_t at = 0; at < order.size();) {
            const size_t take = std::min(order.size() - at, static_cast<size_t>(rng.between(2, 4)));
            std::string passage;
            for (size_t k = 0; k < take; ++k)
                passage += (k ? " " : "") + world.generalTrain[order[at + k]];
            out.push_back(std::move(passage));
            at += take;
        }
    }
    return out;
}

std::vector<std::string> tokenizerCorpus(const World &world)
{
    std::vector<std::string> out = world.generalTrain;
    // Every relation's objects, listed often enough that each object beats
    // the invented name parts (about as frequent otherwise) to a whole token.
    constexpr int kObjectListRepeats = 30;
    for (const Relation &relation : world.relations) {
        std::string line = "The " + relation.name + " can be";
        for (size_t i = 0; i < relation.objects.size(); ++i)
            line += (i == 0 ? " " : ", ") + relation.objects[i];
        line += ".";
        for (int k = 0; k < kObjectListRepeats; ++k)
            out.push_back(line);
    }
    // Every subject's name, repeated like the objects, so the subject's own
    // last word becomes one token (see NameMaker::make).
    constexpr int kNameRepeats = 30;
    for (const Subject &subject : world.subjects)
        for (int k = 0; k < kNameRepeats; ++k)
            out.push_back(subject.name + ".");
    for (size_t i = 0; i < world.facts.size(); ++i) {
        const Fact &fact = world.facts[i];
        const Relation &relation = world.relations[fact.relation];
        const int t = static_cast<int>(i % relation.templates.size());
        out.push_back(factPrompt(world, fact, t) + " " + relation.objects[fact.object] + ".");
    }
    return out;
}

} // namespace oedit::world
