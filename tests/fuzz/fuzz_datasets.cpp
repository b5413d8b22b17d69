// Fuzzes the CounterFact / zsRE loaders (core/world/datasets.*): an input is a
// data set file, read by loadEditCases in every format. They return an error
// or cases that hold what the runner relies on: a prompt template with "{}"
// and non-empty subject and targets.
#include "fuzz_util.h"

#include "oedit/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    using namespace oedit::world;
    static const oedit::fuzz::ScratchDir scratch;
    const std::string path = scratch.write("dataset.json", std::string(reinterpret_cast<const char *>(data), size));
    for (const DatasetFormat format : {DatasetFormat::Auto, DatasetFormat::CounterFactFlat,
                                       DatasetFormat::CounterFactRome, DatasetFormat::Zsre}) {
        const auto cases = loadEditCases(path, format);
        if (!cases) {
            if (cases.message().empty())
                oedit::fuzz::fail(); // a failure must say what is wrong
            continue;
        }
        if (cases.value().empty())
            oedit::fuzz::fail();
        for (const EditCase &c : cases.value()) {
            if (c.promptTemplate.find("{}") == std::string::npos || c.subject.empty() || c.targetNew.empty() ||
                c.targetTrue.empty() || c.caseId.empty())
                oedit::fuzz::fail();
            (void)c.prompt();
        }
    }
    return 0;
}
