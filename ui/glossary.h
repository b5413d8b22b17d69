// What the workbench's metric codes and diagnostics mean, in one place: the
// tooltips of metric names in Retention and Compare and the Help > Glossary
// page read it.
#pragma once

#include <QString>

// One line for a metric's name as the ledger records it ("ES", "unedited_acc",
// "delta_norm_L1", ...); empty for a name it does not know.
QString metricDescription(const QString &name);

// Every term, as HTML, for Help > Glossary.
QString glossaryHtml();
