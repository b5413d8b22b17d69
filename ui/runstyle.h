// How runs look in every plot and table: one colour per run (or per curve,
// in a fixed order) and a label "<method> #<run id>", so the Retention and
// Compare tabs show the same run the same way.
#pragma once

#include "oedit/runs.h"

#include <QColor>
#include <QString>

QColor runColour(int index);
QString runLabel(const oedit::runs::RunReport &report);
