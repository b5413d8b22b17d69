// A world from the true facts of an editing data set (see dataset_world.h for
// the mapping).
#include "oedit/dataset_world.h"

#include "oedit/bpe_trainer.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace oedit::world {

namespace {

constexpr const char *kEntityKind = "entity";
constexpr int kMaxSubjects = 100000; // what loadWorld accepts

class DatasetWorldError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

bool isSpace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string trimmed(const std::string &text)
{
    size_t begin = 0, end = text.size();
    while (begin < end && isSpace(text[begin]))
        ++begin;
    while (end > begin && isSpace(text[end - 1]))
        --end;
    return text.substr(begin, end - begin);
}

std::string rightTrimmed(const std::string &text)
{
    size_t end = text.size();
    while (end > 0 && isSpace(text[end - 1]))
        --end;
    return text.substr(0, end);
}

// General text is stored one passage per line, so line breaks inside a
// prompt become spaces (and runs of white space one space).
std::string oneLine(const std::string &text)
{
    std::string out;
    bool space = false;
    for (char c : trimmed(text)) {
        if (isSpace(c)) {
            space = true;
            continue;
        }
        if (space)
            out += ' ';
        space = false;
        out += c;
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

std::string quoted(const std::string &text)
{
    return "'" + text + "'";
}

// Who said a prompt's answer first, to find cases that contradict each other.
struct PromptOwner {
    std::string answer;
    size_t caseIndex = 0;
};

} // namespace

Expected<World> worldFromEditCases(const std::vector<EditCase> &cases, const std::string &source,
                                   DatasetWorldReport *report)
{
    DatasetWorldReport local;
    DatasetWorldReport &out = report ? *report : local;
    out = DatasetWorldReport();
    out.cases = static_cast<int>(cases.size());
    try {
        if (cases.empty())
            throw DatasetWorldError(source + ": holds no edit cases");

        World world;
        world.kinds = {kEntityKind};
        std::unordered_map<std::string, int> subjectIds;
        std::unordered_map<std::string, size_t> caseIds;
        // (subject, template, true, new) -> first case, to name duplicates.
        std::map<std::vector<std::string>, size_t> seenCases;
        // Every fact prompt (any template, subject filled in) -> its answer.
        std::unordered_map<std::string, PromptOwner> answers;

        for (size_t i = 0; i < cases.size(); ++i) {
            const EditCase &c = cases[i];
            const std::string record = source + ": record " + std::to_string(i) + " (case_id " + c.caseId + ")";
            auto fail = [&record](const std::string &why) { throw DatasetWorldError(record + ": " + why); };
            if (c.caseId.empty())
                throw DatasetWorldError(source + ": record " + std::to_string(i) + ": has no case id");
            if (const auto first = caseIds.emplace(c.caseId, i); !first.second)
                fail("duplicate case_id " + c.caseId + " (first in record " + std::to_string(first.first->second) +
                     ")");
            if (c.subject.empty() || trimmed(c.subject).empty())
                fail("the subject is empty");
            const std::string canonical = rightTrimmed(c.promptTemplate);
            if (trimmed(canonical).empty())
                fail("the prompt is empty");
            if (countOf(canonical, "{}") != 1)
                fail("the prompt template " + quoted(c.promptTemplate) +
                     " must hold \"{}\" exactly once, where the subject " + quoted(c.subject) + " goes");
            const std::string targetTrue = trimmed(c.targetTrue), targetNew = trimmed(c.targetNew);
            if (targetTrue.empty())
                fail("the true target is empty");
            if (targetNew.empty())
                fail("the new target is empty");

            const std::vector<std::string> key{c.subject, canonical, targetTrue, targetNew};
            if (const auto first = seenCases.emplace(key, i); !first.second)
                fail("duplicate of record " + std::to_string(first.first->second) + " (case_id " +
                     cases[first.first->second].caseId + "): same subject, prompt and targets");

            const std::string prompt = fillTemplate(canonical, c.subject);
            if (const auto owner = answers.find(prompt); owner != answers.end() && owner->second.answer != targetTrue) {
                ++out.skippedCases;
                out.notes.push_back(record + ": skipped: " + quoted(prompt) + " already has the answer " +
                                    quoted(owner->second.answer) + " from case_id " +
                                    cases[owner->second.caseIndex].caseId + ", not " + quoted(targetTrue));
                continue;
            }

            Relation relation;
            relation.id = "case-" + c.caseId;
            relation.wikidataId = c.relationId.empty() ? "unknown" : c.relationId;
            // The prompt names the relation best; "case <id>" would also put
            // every case number into the tokenizer's corpus, 30 times each.
            relation.name = canonical;
            relation.kinds = {kEntityKind};
            relation.templates.push_back(canonical);
            for (size_t p = 0; p < c.paraphrases.size(); ++p) {
                const std::string paraphrase = rightTrimmed(c.paraphrases[p]);
                const std::string which = "paraphrase " + std::to_string(p) + " " + quoted(c.paraphrases[p]);
                const size_t at = paraphrase.find(c.subject);
                if (at == std::string::npos) {
                    ++out.droppedParaphrases;
                    out.notes.push_back(record + ": " + which + " dropped: it does not contain the subject " +
                                        quoted(c.subject));
                    continue;
                }
                std::string paraphraseTemplate = paraphrase;
                paraphraseTemplate.replace(at, c.subject.size(), "{}");
                if (countOf(paraphraseTemplate, "{}") != 1) {
                    ++out.droppedParaphrases;
                    out.notes.push_back(record + ": " + which + " dropped: it holds a literal \"{}\"");
                    continue;
                }
                if (std::find(relation.templates.begin(), relation.templates.end(), paraphraseTemplate) !=
                    relation.templates.end()) {
                    ++out.droppedParaphrases; // a repeat: nothing lost, so no note
                    continue;
                }
                if (const auto owner = answers.find(paraphrase);
                    owner != answers.end() && owner->second.answer != targetTrue) {
                    ++out.droppedParaphrases;
                    out.notes.push_back(record + ": " + which + " dropped: it already has the answer " +
                                        quoted(owner->second.answer) + " from case_id " +
                                        cases[owner->second.caseIndex].caseId);
                    continue;
                }
                relation.templates.push_back(std::move(paraphraseTemplate));
            }
            relation.objects.push_back(targetTrue);
            if (targetNew != targetTrue)
                relation.objects.push_back(targetNew);
            else
                ++out.singleObjectCases;

            for (const std::string &promptTemplate : relation.templates)
                answers.emplace(fillTemplate(promptTemplate, c.subject), PromptOwner{targetTrue, i});

            auto subject = subjectIds.find(c.subject);
            if (subject == subjectIds.end()) {
                if (static_cast<int>(world.subjects.size()) >= kMaxSubjects)
                    fail("more than " + std::to_string(kMaxSubjects) + " distinct subjects; use fewer cases");
                subject = subjectIds.emplace(c.subject, static_cast<int>(world.subjects.size())).first;
                world.subjects.push_back({c.subject, kEntityKind});
            }
            Fact fact;
            fact.subject = subject->second;
            fact.relation = static_cast<int>(world.relations.size());
            fact.object = 0;
            world.facts.push_back(fact);
            world.relations.push_back(std::move(relation));
        }

        // Neighbourhood prompts after all facts are known, so a line never
        // restates a fact's prompt (with a possibly different answer).
        std::unordered_set<std::string> lines;
        long long bytes = 0;
        for (const EditCase &c : cases) {
            for (const NeighbourPrompt &neighbour : c.neighbourhood) {
                const std::string prompt = oneLine(neighbour.prompt), answer = oneLine(neighbour.answer);
                if (prompt.empty() || answer.empty() || answers.count(rightTrimmed(neighbour.prompt)) ||
                    answers.count(prompt)) {
                    ++out.droppedNeighbours;
                    continue;
                }
                std::string line = prompt + " " + answer + ".";
                if (!lines.insert(line).second) {
                    ++out.droppedNeighbours;
                    continue;
                }
                bytes += static_cast<long long>(line.size()) + 1;
                world.generalTrain.push_back(std::move(line));
            }
        }

        std::stable_sort(world.facts.begin(), world.facts.end(), [](const Fact &a, const Fact &b) {
            return a.subject != b.subject ? a.subject < b.subject : a.relation < b.relation;
        });
        world.options.seed = 0;
        world.options.subjects = static_cast<int>(world.subjects.size());
        world.options.generalTextBytes = static_cast<int>(std::min<long long>(bytes, 100000000));
        world.options.heldoutPercent = 1;
        out.facts = static_cast<int>(world.facts.size());
        return world;
    } catch (const DatasetWorldError &error) {
        return Status::failure(error.what());
    } catch (const std::exception &error) {
        return Status::failure(source + ": " + error.what());
    }
}

int suggestedDatasetVocabSize(const World &world)
{
    constexpr int kSpecialTokens = 257; // 256 bytes and <|endoftext|>
    std::unordered_map<std::string, int> counts;
    for (const std::string &text : trainingSentences(world))
        for (const std::string &word : preTokenize(text))
            ++counts[word];
    int repeated = 0;
    for (const auto &entry : counts)
        repeated += entry.second >= 2;
    // Two tokens per word: BPE reaches a whole word through pieces that stay
    // in the vocabulary, about one per word once prefixes are shared.
    return std::clamp(kSpecialTokens + 2 * repeated, 1000, 8000);
}

} // namespace oedit::world
