// Fuzzes the world.json reader (core/world/world_io.cpp): an input is a
// world.json. parseWorldJson returns an error or a world whose facts point
// inside its tables; writing it back and reading that again gives the same
// bytes.
#include "fuzz_util.h"

#include "oedit/world.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    using namespace oedit::world;
    const auto world = parseWorldJson(std::string(reinterpret_cast<const char *>(data), size));
    if (!world) {
        if (world.message().empty())
            oedit::fuzz::fail();
        return 0;
    }
    const World &w = world.value();
    for (const Fact &fact : w.facts) {
        if (fact.subject < 0 || size_t(fact.subject) >= w.subjects.size() || fact.relation < 0 ||
            size_t(fact.relation) >= w.relations.size() || fact.object < 0 ||
            size_t(fact.object) >= w.relations[fact.relation].objects.size())
            oedit::fuzz::fail();
        for (int t = 0; t < int(w.relations[fact.relation].templates.size()); ++t)
            (void)factPrompt(w, fact, t);
    }
    (void)trainingSentences(w, false);
    const std::string text = worldJson(w);
    const auto again = parseWorldJson(text);
    if (!again || worldJson(again.value()) != text)
        oedit::fuzz::fail();
    return 0;
}
