// The table of editing methods: per method its name, how to create it, its
// hyperparameter file and what it can do. Code that needs to know what a
// method does asks this table instead of comparing method names; adding a
// method is one file (its EditMethod), one row here and one hyperparameter file.
#pragma once

#include "edit/editor.h"
#include "edit/oedit_protection.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace oedit::edit {

struct MethodInfo;

// Creates the method of `info` for the resolved hyperparameters `hparams`
// (createEditMethod stores them in it afterwards).
using EditMethodFactory = std::unique_ptr<EditMethod> (*)(const MethodInfo &info, const nlohmann::json &hparams);

// Whether a method's results carry their edits' keys (EditResult::keys).
enum class KeyStorage {
    Never,
    Always,    // AlphaEdit: C_p accumulates them and gives them back on unapply
    ByHparams, // O-Edit+: on the input side with input_edit_basis "keys" (V_E grows from them)
};

struct MethodInfo {
    std::string name;        // what requests and results call it ("oedit+")
    std::string displayName; // for people ("O-Edit+")
    std::string hparamsFile; // in hparamsDirectory() ("oedit_plus.json")
    EditMethodFactory factory = nullptr;
    SubspaceMode subspace = SubspaceMode::Off; // O-Edit's protected subspace, and how it is enforced
    KeyStorage keys = KeyStorage::Never;
    bool multiLayer = false;        // edits several layers per edit with its default hyperparameters
    bool supportsInputSide = false; // O-Edit+'s side 'input'/'both' and capacity_policy 'input'

    bool protectsSubspace() const { return subspace != SubspaceMode::Off; }
};

// Every method, in the stable order editMethodNames() gives.
const std::vector<MethodInfo> &editMethodRegistry();
// The row of `method`, nullptr when there is none.
const MethodInfo *findEditMethod(const std::string &method);

// The method records O-Edit's protected subspace (false for unknown names).
bool protectsSubspace(const std::string &method);
// A result of `method` made with `hparams` carries its keys.
bool storesKeys(const std::string &method, const nlohmann::json &hparams);

} // namespace oedit::edit
