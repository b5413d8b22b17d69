// Worlds built from real editing data sets: the case -> relation/fact mapping
// for every format, what is skipped and why, errors that name the record, and
// the first cases of the real CounterFact and zsRE files (when ../shared/data
// is present) building worlds that save, load and tokenize.
#include "oedit/bpe_trainer.h"
#include "oedit/dataset_world.h"
#include "oedit/datasets.h"
#include "oedit/world.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <set>

using namespace oedit::world;

namespace {

QString sharedData(const char *relative)
{
    return QStringLiteral(OEDIT_SHARED_DIR "/data/") + QString::fromLatin1(relative);
}

std::vector<EditCase> parsed(const std::string &json, DatasetFormat format = DatasetFormat::Auto)
{
    auto cases = parseEditCases(json, format, "test.json");
    if (!cases)
        qFatal("parseEditCases: %s", cases.message().c_str());
    return std::move(cases).value();
}

World built(const std::vector<EditCase> &cases, DatasetWorldReport *report = nullptr)
{
    auto world = worldFromEditCases(cases, "test.json", report);
    if (!world)
        qFatal("worldFromEditCases: %s", world.message().c_str());
    return std::move(world).value();
}

bool contains(const std::vector<std::string> &items, const std::string &item)
{
    return std::find(items.begin(), items.end(), item) != items.end();
}

const char *const kFlat = R"([
  {"case_id": 2, "prompt": "Toko Yasuda, the", "subject": "Toko Yasuda", "target_new": "piano",
   "ground_truth": "guitar", "rephrase_prompt": "Toko Yasuda is incredible at",
   "locality_prompt": "John Lennon performs on the", "locality_ground_truth": "guitar"},
  {"case_id": 3, "prompt": "Autonomous University of Madrid, which is located in",
   "subject": "Autonomous University of Madrid", "target_new": "Sweden", "ground_truth": "Spain",
   "rephrase_prompt": "and Sallie Beavers Riley.\nAutonomous University of Madrid is located in",
   "locality_prompt": "Biure, which is\nlocated in", "locality_ground_truth": "Spain"},
  {"case_id": 9, "prompt": "Toko Yasuda was born in", "subject": "Toko Yasuda", "target_new": "Oslo",
   "ground_truth": "Tokyo", "rephrase_prompt": "Toko Yasuda was born in",
   "locality_prompt": "John Lennon performs on the", "locality_ground_truth": "guitar"}
])";

const char *const kRome = R"([
  {"case_id": 0, "requested_rewrite": {"prompt": "The mother tongue of {} is", "relation_id": "P103",
     "target_new": {"str": "English", "id": "Q1860"}, "target_true": {"str": "French", "id": "Q150"},
     "subject": "Danielle Darrieux"},
   "paraphrase_prompts": ["Shayna does this. Danielle Darrieux, a native",
                          "An album was recorded. Danielle Darrieux spoke the language"],
   "neighborhood_prompts": ["The mother tongue of L\u00e9on Blum is", "Michel Rocard is a native speaker of"]},
  {"case_id": 1, "requested_rewrite": {"prompt": "{}, the", "relation_id": "P1303",
     "target_new": {"str": "piano"}, "target_true": {"str": "guitar"}, "subject": "Toko Yasuda"},
   "paraphrase_prompts": ["Toko Yasuda is incredible at"],
   "neighborhood_prompts": ["John Lennon performs on the"]}
])";

const char *const kZsre = R"([
  {"subject": "IAAF Combined Events Challenge", "src": "When was the inception of IAAF Combined Events Challenge?",
   "rephrase": "When was the IAAF Combined Events Challenge launched?", "alt": " 2006", "answers": ["1998"],
   "loc": "nq question: what is the name of the last episode of spongebob", "loc_ans": "The String"},
  {"subject": "Dale Earnhardt", "src": "What was the cause of death of Dale Earnhardt?",
   "rephrase": "How did Dale Earnhardt die?", "alt": "accident", "answers": ["accident", "crash"],
   "loc": "nq question: who sings love will keep us alive", "loc_ans": "the Eagles"}
])";

} // namespace

class TestDatasetWorld : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void flatCounterFact()
    {
        DatasetWorldReport report;
        const World w = built(parsed(kFlat), &report);
        QCOMPARE(w.kinds, std::vector<std::string>{"entity"});
        // Toko Yasuda has two cases, so two facts; subjects in order of first appearance.
        QCOMPARE(w.subjects.size(), size_t(2));
        QCOMPARE(w.subjects[0].name, std::string("Toko Yasuda"));
        QCOMPARE(w.subjects[1].name, std::string("Autonomous University of Madrid"));
        QCOMPARE(w.relations.size(), size_t(3));
        QCOMPARE(w.facts.size(), size_t(3));

        const Relation &first = w.relations[0];
        QCOMPARE(first.id, std::string("case-2"));
        QCOMPARE(first.wikidataId, std::string("unknown"));
        QCOMPARE(first.templates, (std::vector<std::string>{"{}, the", "{} is incredible at"}));
        QCOMPARE(first.objects, (std::vector<std::string>{"guitar", "piano"}));
        // A paraphrase's line break is kept: the template is the data set's prompt.
        QCOMPARE(w.relations[1].templates[1], std::string("and Sallie Beavers Riley.\n{} is located in"));
        // A paraphrase equal to the prompt is one template.
        QCOMPARE(w.relations[2].templates, std::vector<std::string>{"{} was born in"});
        QCOMPARE(report.droppedParaphrases, 1);

        // Ordered by subject, then relation; every fact's object is the true target.
        QCOMPARE(w.facts[0].subject, 0);
        QCOMPARE(w.facts[0].relation, 0);
        QCOMPARE(w.facts[1].subject, 0);
        QCOMPARE(w.facts[1].relation, 2);
        QCOMPARE(w.facts[2].subject, 1);
        QCOMPARE(w.facts[2].relation, 1);
        for (const Fact &fact : w.facts) {
            QCOMPARE(fact.object, 0);
            QVERIFY(fact.neighbours.empty());
        }
        QCOMPARE(factPrompt(w, w.facts[2], 0), std::string("Autonomous University of Madrid, which is located in"));

        // Neighbourhood prompts with their answers, on one line, without repeats.
        QCOMPARE(w.generalTrain, (std::vector<std::string>{"John Lennon performs on the guitar.",
                                                           "Biure, which is located in Spain."}));
        QVERIFY(w.generalHeldout.empty());
        QCOMPARE(report.droppedNeighbours, 1);
        QCOMPARE(report.cases, 3);
        QCOMPARE(report.facts, 3);
        QCOMPARE(report.skippedCases, 0);
        QCOMPARE(w.options.subjects, 2);

        const std::vector<std::string> sentences = trainingSentences(w);
        QVERIFY(contains(sentences, "Toko Yasuda, the guitar."));
        QVERIFY(contains(sentences, "Toko Yasuda is incredible at guitar."));
        QVERIFY(contains(sentences, "Toko Yasuda was born in Tokyo."));
        QVERIFY(contains(sentences, "John Lennon performs on the guitar."));
        for (const std::string &sentence : sentences)
            QVERIFY2(sentence.find("piano") == std::string::npos, sentence.c_str()); // never the new target

        // Biography text: every subject's facts by name (no pronouns for
        // data-set subjects), and each neighbourhood fact once per round.
        BiographyOptions options;
        options.passagesPerSubject = 4;
        const std::vector<std::string> text = biographyTrainingText(w, options);
        int lennon = 0, biure = 0, yasudaBorn = 0;
        for (const std::string &passage : text) {
            QVERIFY2(passage.find("piano") == std::string::npos, passage.c_str());
            QVERIFY2(passage.find("It ") == std::string::npos && passage.find("She ") == std::string::npos,
                     passage.c_str());
            lennon += passage.find("John Lennon performs on the guitar.") != std::string::npos;
            biure += passage.find("Biure, which is located in Spain.") != std::string::npos;
            yasudaBorn += passage.find(" Tokyo.") != std::string::npos;
        }
        QCOMPARE(lennon, 4);
        QCOMPARE(biure, 4);
        QCOMPARE(yasudaBorn, 4); // one birthplace fact, stated in each of its subject's 4 passages
        QCOMPARE(heldOutFormTemplate(w.relations[0]), -1); // a case's relation has no held-out form
    }

    void romeCounterFact()
    {
        const World w = built(parsed(kRome));
        QCOMPARE(w.relations.size(), size_t(2));
        const Relation &tongue = w.relations[0];
        QCOMPARE(tongue.id, std::string("case-0"));
        QCOMPARE(tongue.wikidataId, std::string("P103"));
        QCOMPARE(tongue.name, std::string("The mother tongue of {} is"));
        QCOMPARE(tongue.templates,
                 (std::vector<std::string>{"The mother tongue of {} is", "Shayna does this. {}, a native",
                                           "An album was recorded. {} spoke the language"}));
        QCOMPARE(tongue.objects, (std::vector<std::string>{"French", "English"}));
        QCOMPARE(w.relations[1].wikidataId, std::string("P1303"));
        // ROME's neighbourhood prompts expect the case's true target.
        QCOMPARE(w.generalTrain, (std::vector<std::string>{"The mother tongue of L\xc3\xa9on Blum is French.",
                                                           "Michel Rocard is a native speaker of French.",
                                                           "John Lennon performs on the guitar."}));
    }

    void zsre()
    {
        DatasetWorldReport report;
        const World w = built(parsed(kZsre), &report);
        QCOMPARE(w.relations.size(), size_t(2));
        // zsRE has no case ids: the record index is the id; answers[0] is the true target.
        QCOMPARE(w.relations[0].id, std::string("case-0"));
        QCOMPARE(w.relations[0].templates,
                 (std::vector<std::string>{"When was the inception of {}?", "When was the {} launched?"}));
        // The new target's leading space is trimmed.
        QCOMPARE(w.relations[0].objects, (std::vector<std::string>{"1998", "2006"}));
        // alt equal to the true answer: a fact with nothing to rewrite.
        QCOMPARE(w.relations[1].objects, std::vector<std::string>{"accident"});
        QCOMPARE(report.singleObjectCases, 1);
        QCOMPARE(w.generalTrain.front(),
                 std::string("nq question: what is the name of the last episode of spongebob The String."));
        QVERIFY(contains(trainingSentences(w), "When was the inception of IAAF Combined Events Challenge? 1998."));
    }

    void contradictingCasesAreSkipped()
    {
        // CounterFact lists multi-valued facts twice (two twin cities of one
        // city): the later case is skipped, and the report names both.
        const std::string json = R"([
          {"case_id": 8, "prompt": "What is the twin city of Wellington? It is", "subject": "Wellington",
           "target_new": "Sheffield", "ground_truth": "Sydney", "rephrase_prompt": "Wellington's twin city is",
           "locality_prompt": "The twin city of Seoul is", "locality_ground_truth": "Sydney"},
          {"case_id": 21182, "prompt": "What is the twin city of Wellington? It is", "subject": "Wellington",
           "target_new": "Sydney", "ground_truth": "Beijing", "rephrase_prompt": "Wellington is twinned with",
           "locality_prompt": "The twin city of Moscow is", "locality_ground_truth": "Beijing"},
          {"case_id": 30, "prompt": "Wellington is twinned with", "subject": "Wellington",
           "target_new": "Oslo", "ground_truth": "Sydney", "rephrase_prompt": "Wellington's twin city is",
           "locality_prompt": "Wellington's twin city is", "locality_ground_truth": "Sydney"},
          {"case_id": 31, "prompt": "The sister city of Wellington is", "subject": "Wellington",
           "target_new": "Oslo", "ground_truth": "Beijing", "rephrase_prompt": "Wellington's twin city is",
           "locality_prompt": "The twin city of Rome is", "locality_ground_truth": "Paris"}
        ])";
        DatasetWorldReport report;
        const World w = built(parsed(json), &report);
        QCOMPARE(report.skippedCases, 1);
        QCOMPARE(w.facts.size(), size_t(3));
        QCOMPARE(w.relationIndex("case-21182"), -1);
        QVERIFY(!report.notes.empty());
        QVERIFY2(report.notes.front().find("record 1 (case_id 21182)") != std::string::npos &&
                     report.notes.front().find("case_id 8") != std::string::npos,
                 report.notes.front().c_str());
        // Case 31's paraphrase would teach "Sydney" and "Beijing" for one prompt: dropped.
        const Relation &sister = w.relations[w.relationIndex("case-31")];
        QCOMPARE(sister.templates, std::vector<std::string>{"The sister city of {} is"});
        QCOMPARE(report.droppedParaphrases, 1);
        // Case 30's neighbour restates a fact's prompt: the fact wins.
        QCOMPARE(w.generalTrain,
                 (std::vector<std::string>{"The twin city of Seoul is Sydney.", "The twin city of Moscow is Beijing.",
                                           "The twin city of Rome is Paris."}));
    }

    void savesAndLoads()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::string dir = (tmp.path() + "/world").toStdString();
        std::vector<EditCase> cases = parsed(kFlat);
        for (EditCase c : parsed(kZsre)) {
            c.caseId = "z" + c.caseId;
            cases.push_back(std::move(c));
        }
        const World w = built(cases);
        const auto saved = saveWorld(w, dir);
        QVERIFY2(saved.ok(), saved.message().c_str());
        const auto loaded = loadWorld(dir);
        QVERIFY2(loaded.ok(), loaded.message().c_str());
        QCOMPARE(worldJson(loaded.value()), worldJson(w));
        QCOMPARE(loaded->generalTrain, w.generalTrain);
        QCOMPARE(loaded->generalHeldout, w.generalHeldout);
    }

    void badInput_data()
    {
        QTest::addColumn<QByteArray>("json");
        QTest::addColumn<QString>("expected");
        const QByteArray flatRecord = R"({"case_id": 5, "prompt": "Toko Yasuda, the", "subject": "Toko Yasuda",
            "target_new": "piano", "ground_truth": "guitar", "rephrase_prompt": "Toko Yasuda plays the",
            "locality_prompt": "John Lennon performs on the", "locality_ground_truth": "guitar"})";
        QTest::newRow("empty file") << QByteArray() << "test.json: not valid JSON";
        QTest::newRow("empty array") << QByteArray("[]") << "test.json: holds no records";
        QTest::newRow("not an array") << QByteArray(R"({"case_id": 1})") << "expected a JSON array";
        QByteArray missing = flatRecord;
        missing.replace(R"("ground_truth": "guitar", )", "");
        QTest::newRow("missing field") << "[" + flatRecord + ", " + missing + "]"
                                       << "record 1 (case_id 5): missing field 'ground_truth'";
        QByteArray wrongSubject = flatRecord;
        wrongSubject.replace(R"("subject": "Toko Yasuda")", R"("subject": "Yoko Tasuda")");
        QTest::newRow("subject not in prompt") << "[" + wrongSubject + "]"
                                               << "record 0 (case_id 5): the subject 'Yoko Tasuda' does not occur";
        QByteArray emptyTarget = flatRecord;
        emptyTarget.replace(R"("target_new": "piano")", R"("target_new": "")");
        QTest::newRow("empty target") << "[" + emptyTarget + "]"
                                      << "record 0 (case_id 5): field 'target_new' is empty";
        QTest::newRow("duplicate case ids") << "[" + flatRecord + ",\n" + flatRecord + "]"
                                            << "record 1 (case_id 5): duplicate case_id 5 (first in record 0)";
        QByteArray sameCase = flatRecord;
        sameCase.replace(R"("case_id": 5)", R"("case_id": 6)");
        QTest::newRow("duplicate case") << "[" + flatRecord + ",\n" + sameCase + "]"
                                        << "record 1 (case_id 6): duplicate of record 0 (case_id 5)";
        QByteArray latin1 = flatRecord;
        latin1.replace("John Lennon", "Jos\xe9 Lennon");
        QTest::newRow("invalid UTF-8") << "[" + flatRecord + ",\n" + latin1 + "]"
                                       << "record 1 (line ";
        QTest::newRow("truncated") << "[" + flatRecord + ",\n" + flatRecord.left(60) << "not valid JSON in record 1";
        QTest::newRow("rome prompt without {}")
            << QByteArray(R"([{"case_id": 7, "requested_rewrite": {"prompt": "The mother tongue of X is",
                 "target_new": {"str": "English"}, "target_true": {"str": "French"}, "subject": "X"},
                 "paraphrase_prompts": [], "neighborhood_prompts": []}])")
            << "record 0 (case_id 7): requested_rewrite.prompt";
        QTest::newRow("rome prompt with two {}")
            << QByteArray(R"([{"case_id": 7, "requested_rewrite": {"prompt": "{} and {} speak",
                 "target_new": {"str": "English"}, "target_true": {"str": "French"}, "subject": "X"},
                 "paraphrase_prompts": [], "neighborhood_prompts": []}])")
            << "record 0 (case_id 7): the prompt template '{} and {} speak' must hold \"{}\" exactly once";
        QTest::newRow("zsre without answers")
            << QByteArray(R"([{"subject": "X", "src": "Who made X?", "rephrase": "X was made by", "alt": "Y",
                 "answers": [], "loc": "a", "loc_ans": "b"}])")
            << "record 0: field 'answers' is empty";
    }

    // Bad files fail in the loader or in worldFromEditCases, never both silently:
    // the message names the source and the record.
    void badInput()
    {
        QFETCH(QByteArray, json);
        QFETCH(QString, expected);
        const auto cases = parseEditCases(json.toStdString(), DatasetFormat::Auto, "test.json");
        std::string message;
        if (!cases) {
            message = cases.message();
        } else {
            const auto world = worldFromEditCases(cases.value(), "test.json");
            QVERIFY2(!world.ok(), "a bad data set built a world");
            message = world.message();
        }
        QVERIFY2(message.rfind("test.json", 0) == 0, message.c_str());
        QVERIFY2(message.find(expected.toStdString()) != std::string::npos, message.c_str());
    }

    // Cases built in code skip the loader's checks; worldFromEditCases checks again.
    void badCasesInCode_data()
    {
        QTest::addColumn<int>("field");
        QTest::addColumn<QString>("expected");
        QTest::newRow("no cases") << -1 << "test.json: holds no edit cases";
        QTest::newRow("empty subject") << 0 << "record 1 (case_id b): the subject is empty";
        QTest::newRow("no placeholder") << 1 << "record 1 (case_id b): the prompt template 'Paris is in' must hold";
        QTest::newRow("empty true target") << 2 << "record 1 (case_id b): the true target is empty";
        QTest::newRow("blank new target") << 3 << "record 1 (case_id b): the new target is empty";
        QTest::newRow("duplicate id") << 4 << "record 1 (case_id a): duplicate case_id a (first in record 0)";
    }

    void badCasesInCode()
    {
        QFETCH(int, field);
        QFETCH(QString, expected);
        EditCase good;
        good.caseId = "a";
        good.subject = "Paris";
        good.promptTemplate = "{} is in";
        good.targetTrue = "France";
        good.targetNew = "Italy";
        EditCase bad = good;
        bad.caseId = "b";
        bad.promptTemplate = "{} lies in";
        switch (field) {
        case 0:
            bad.subject.clear();
            break;
        case 1:
            bad.promptTemplate = "Paris is in";
            break;
        case 2:
            bad.targetTrue.clear();
            break;
        case 3:
            bad.targetNew = "  ";
            break;
        case 4:
            bad.caseId = "a";
            break;
        default:
            break;
        }
        const std::vector<EditCase> cases = field < 0 ? std::vector<EditCase>{} : std::vector<EditCase>{good, bad};
        const auto world = worldFromEditCases(cases, "test.json");
        QVERIFY(!world.ok());
        QVERIFY2(world.message().find(expected.toStdString()) != std::string::npos, world.message().c_str());
    }

    void vocabularyHasAFloor()
    {
        // A handful of cases still gets a vocabulary in which common words are whole.
        QCOMPARE(suggestedDatasetVocabSize(built(parsed(kFlat))), 1000);
    }

    void realFiles_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<int>("limit");
        QTest::addColumn<int>("minFacts");
        QTest::addColumn<double>("tokensPerObject"); // at most, on average
        QTest::newRow("counterfact flat, 200") << "counterfact/counterfact-train.json" << 200 << 195 << 1.1;
        QTest::newRow("counterfact rome preview") << "counterfact/cf_preview.json" << 0 << 7 << 0.0;
        // zsRE's answers are often several words ("27 March 1943").
        QTest::newRow("zsre, 200") << "zsre/zsre_mend_edit.json" << 200 << 200 << 3.0;
        QTest::newRow("counterfact val, all") << "counterfact/counterfact-val.json" << 0 << 1800 << 0.0;
    }

    // The first cases of the real files make valid worlds that save and load,
    // and a tokenizer of the suggested size covers them.
    void realFiles()
    {
        QFETCH(QString, file);
        QFETCH(int, limit);
        QFETCH(int, minFacts);
        QFETCH(double, tokensPerObject);
        const QString path = sharedData(file.toLatin1().constData());
        if (!QFile::exists(path))
            QSKIP(qPrintable("shared data absent: " + path));
        auto cases = loadEditCases(path.toStdString());
        QVERIFY2(cases.ok(), cases.message().c_str());
        std::vector<EditCase> subset = cases.value();
        if (limit > 0 && subset.size() > size_t(limit))
            subset.resize(size_t(limit));
        DatasetWorldReport report;
        const auto world = worldFromEditCases(subset, path.toStdString(), &report);
        QVERIFY2(world.ok(), world.message().c_str());
        QCOMPARE(report.facts, static_cast<int>(subset.size()) - report.skippedCases);
        QVERIFY2(report.facts >= minFacts, qPrintable(QString::number(report.facts)));
        QCOMPARE(world->facts.size(), size_t(report.facts));
        QVERIFY(!world->generalTrain.empty());
        for (const Relation &relation : world->relations)
            QVERIFY(!relation.templates.empty() && !relation.objects.empty() && relation.objects.size() <= 2);

        QTemporaryDir tmp;
        const std::string dir = (tmp.path() + "/world").toStdString();
        const auto saved = saveWorld(world.value(), dir);
        QVERIFY2(saved.ok(), saved.message().c_str());
        const auto loaded = loadWorld(dir);
        QVERIFY2(loaded.ok(), loaded.message().c_str());
        QCOMPARE(worldJson(loaded.value()), worldJson(world.value()));
        QCOMPARE(loaded->generalTrain, world->generalTrain);

        if (limit > 0) { // the tokenizer: costly on whole files, so on the subsets only
            const int vocab = suggestedDatasetVocabSize(world.value());
            QVERIFY(vocab >= 1000 && vocab <= 8000);
            const auto bpe = trainByteLevelBpe(tokenizerCorpus(world.value()), vocab);
            QVERIFY2(bpe.ok(), bpe.message().c_str());
            BpeEncoder encoder(bpe.value());
            long long tokens = 0, objects = 0;
            for (const std::string &sentence : trainingSentences(world.value(), false)) {
                QCOMPARE(encoder.decode(encoder.encode(sentence)), sentence);
            }
            for (const Fact &fact : world->facts) {
                tokens += static_cast<long long>(encoder.encode(" " + world->objectName(fact)).size());
                ++objects;
            }
            // Objects are frequent in the tokenizer's corpus: whole words are one token each.
            QVERIFY2(double(tokens) <= tokensPerObject * double(objects),
                     qPrintable(QString::number(double(tokens) / double(objects))));
        }
    }

    // The whole CounterFact training file: its 74 contradicting repeats are
    // skipped, not fatal, so the full file is usable.
    void wholeCounterFactFile()
    {
        const QString path = sharedData("counterfact/counterfact-train.json");
        if (!QFile::exists(path))
            QSKIP(qPrintable("shared data absent: " + path));
        const auto cases = loadEditCases(path.toStdString());
        QVERIFY2(cases.ok(), cases.message().c_str());
        DatasetWorldReport report;
        const auto world = worldFromEditCases(cases.value(), path.toStdString(), &report);
        QVERIFY2(world.ok(), world.message().c_str());
        QVERIFY(report.skippedCases > 0 && report.skippedCases < 200);
        QCOMPARE(static_cast<int>(world->facts.size()), report.facts);
        QVERIFY(suggestedDatasetVocabSize(world.value()) == 8000);
    }
};

QTEST_GUILESS_MAIN(TestDatasetWorld)
#include "tst_dataset_world.moc"
