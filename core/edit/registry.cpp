// The table of editing methods, and the calls that go through it
// (editMethodNames, createEditMethod, the facade's methodCapabilities).
#include "edit/registry.h"

#include "edit/hparams.h"
#include "oedit/editing.h"

namespace oedit::edit {

// Defined in each method's file.
std::unique_ptr<EditMethod> makeFineTune(const MethodInfo &info, const nlohmann::json &hparams);
std::unique_ptr<EditMethod> makeRome(const MethodInfo &info, const nlohmann::json &hparams);
std::unique_ptr<EditMethod> makeMemit(const MethodInfo &info, const nlohmann::json &hparams);
std::unique_ptr<EditMethod> makeAlphaEdit(const MethodInfo &info, const nlohmann::json &hparams);

namespace {

// O-Edit(+) runs on the base its hyperparameters name ('rome' or 'memit',
// checked by resolveHparams): that method's factory, with O-Edit's name and
// subspace mode.
std::unique_ptr<EditMethod> makeOnBase(const MethodInfo &info, const nlohmann::json &hparams)
{
    const auto *base = findEditMethod(hparams.value("base", std::string("rome")));
    if (!base || base->factory == makeOnBase)
        throw EditError(info.name + ": unknown base '" + hparams.value("base", std::string("rome")) + "'");
    return base->factory(info, hparams);
}

} // namespace

const std::vector<MethodInfo> &editMethodRegistry()
{
    // name, display name, hyperparameter file, factory, subspace protection, keys, multi-layer, input side
    static const std::vector<MethodInfo> methods = {
        {"ft", "Fine-tuning", "ft.json", makeFineTune, SubspaceMode::Off, KeyStorage::Never, false, false},
        {"rome", "ROME", "rome.json", makeRome, SubspaceMode::Off, KeyStorage::Never, false, false},
        {"memit", "MEMIT", "memit.json", makeMemit, SubspaceMode::Off, KeyStorage::Never, true, false},
        {"alphaedit", "AlphaEdit", "alphaedit.json", makeAlphaEdit, SubspaceMode::Off, KeyStorage::Always, true, false},
        {"oedit", "O-Edit", "oedit.json", makeOnBase, SubspaceMode::Loss, KeyStorage::Never, false, false},
        {"oedit+", "O-Edit+", "oedit_plus.json", makeOnBase, SubspaceMode::Projection, KeyStorage::ByHparams, false,
         true},
    };
    return methods;
}

const MethodInfo *findEditMethod(const std::string &method)
{
    for (const auto &info : editMethodRegistry())
        if (info.name == method)
            return &info;
    return nullptr;
}

bool protectsSubspace(const std::string &method)
{
    const auto *info = findEditMethod(method);
    return info && info->protectsSubspace();
}

bool storesKeys(const std::string &method, const nlohmann::json &hparams)
{
    const auto *info = findEditMethod(method);
    if (!info)
        return false;
    switch (info->keys) {
    case KeyStorage::Always:
        return true;
    case KeyStorage::ByHparams:
        // V_E grows from the edits' keys only on the input side.
        return hparams.value("input_edit_basis", std::string("updates")) == "keys" &&
               OEditProtection::usesInputSide(hparams);
    case KeyStorage::Never:
        break;
    }
    return false;
}

std::vector<std::string> editMethodNames()
{
    std::vector<std::string> names;
    for (const auto &info : editMethodRegistry())
        names.push_back(info.name);
    return names;
}

std::unique_ptr<EditMethod> createEditMethod(const std::string &method, const nlohmann::json &overrides,
                                             const model::ModelConfig &config)
{
    auto hp = resolveHparams(method, overrides, config); // throws for an unknown method
    const auto *info = findEditMethod(method);
    auto m = info->factory(*info, hp);
    m->m_hparams = std::move(hp);
    return m;
}

} // namespace oedit::edit

namespace oedit {

std::optional<MethodCapabilities> methodCapabilities(const std::string &method)
{
    const auto *info = edit::findEditMethod(method);
    if (!info)
        return std::nullopt;
    MethodCapabilities c;
    c.name = info->name;
    c.displayName = info->displayName;
    c.protectsSubspace = info->protectsSubspace();
    c.storesKeys = info->keys != edit::KeyStorage::Never;
    c.multiLayer = info->multiLayer;
    c.supportsInputSide = info->supportsInputSide;
    return c;
}

} // namespace oedit
