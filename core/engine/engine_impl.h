// Engine::Impl, shared by the facade's translation units (engine.cpp: models
// and prediction; engine_editing.cpp: edits and the run). Internal: it uses
// torch and must never be included from core/include/oedit/.
//
// Ownership: the Impl owns the open model (a run::LoadedModel), its editing
// session and at most one other loaded model; the Engine owns the Impl. Same threading as Engine: one
// thread at a time.
#pragma once

#include "edit/editor.h"
#include "run/edit_session.h"
#include "run/loaded_model.h"
#include "store/ledger.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "oedit/engine.h"
#include "oedit/world.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace oedit {

// The file Engine::saveEditState writes: an "index" (JSON: format, version,
// edit ids in order, statistics text) and each edit as the nested archive
// "edit.<i>". Read by loadEditState and by runs::recordSession.
struct SavedRunFile {
    nlohmann::json index;
    std::vector<edit::EditResult> edits;
    std::shared_ptr<torch::serialize::InputArchive> archive; // the whole file, for the nested "state"
};
// Throws (torch or JSON errors) for a file that is not such an archive.
SavedRunFile readSavedRunFile(const std::string &path);

struct Engine::Impl {
    // The open model, loaded once: weights, tokenizer, base weights, statistics.
    std::unique_ptr<run::LoadedModel> open;
    // The open model's editing session (null until a model is open).
    std::unique_ptr<run::EditSession> session;
    // Another model folder (or the open one on another device) that a run,
    // its resume, export or norm growth needed, kept for the next such call.
    std::unique_ptr<run::LoadedModel> other;
    std::string otherDevice, otherDtype;

    model::Transformer *model() const { return open ? open->model.get() : nullptr; }
    model::Tokenizer *tokenizer() const { return open ? open->tokenizer.get() : nullptr; }
    const std::string &path() const
    {
        static const std::string none;
        return open ? open->dir : none;
    }

    // The model a run on `modelDir` (empty: the open one) computes with, on
    // `device`/`dtype` (empty: the open model's, or the CPU in float32).
    // Loads it when it is neither the open model nor the one kept. Throws.
    run::LoadedModel &modelFor(const std::string &modelDir, const std::string &device, const std::string &dtype);
    // After a run used the open model: the session's weights again.
    void afterRun(run::LoadedModel &used)
    {
        if (open && &used == open.get() && session)
            session->restoreWeights();
    }
};

// Device and dtype names as the facade takes them (engine.cpp).
Expected<torch::Device> parseDevice(const std::string &name);
Expected<torch::ScalarType> parseDtype(const std::string &name);

// Runs `body` with the loaded model for a run and puts the open model's
// session weights back afterwards, whatever happens.
template <typename F>
auto withRunModel(Engine::Impl &d, const std::string &modelDir, const std::string &device, const std::string &dtype,
                  F &&body) -> decltype(body(std::declval<run::LoadedModel &>()))
{
    auto &loaded = d.modelFor(modelDir, device, dtype);
    try {
        auto result = body(loaded);
        d.afterRun(loaded);
        return result;
    } catch (...) {
        d.afterRun(loaded);
        throw;
    }
}

namespace runs {

// The commands that only read or flip flags must not leave an empty ledger
// behind a mistyped path, so they insist the file is there (engine_runs.cpp).
std::unique_ptr<store::Ledger> openExisting(const std::string &db);

// `body`'s result, or its exception's message as a failure: no exception
// leaves the facade.
template <typename F>
auto guarded(F &&body) -> decltype(body())
{
    try {
        return body();
    } catch (const std::exception &error) {
        return Status::failure(error.what());
    }
}

} // namespace runs

} // namespace oedit
