// Helpers shared by the world's generator and its loader; not public API.
#pragma once

#include "oedit/world.h"

namespace oedit::world {

// Recomputes Fact::neighbours from World::facts: for each fact, the other
// subjects with a fact of the same relation and object, ascending.
void computeNeighbours(World &world);

} // namespace oedit::world
