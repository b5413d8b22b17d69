// What the editing methods share besides the value optimisation: timing,
// the |cos| diagnostics against earlier updates, the factorisations of the
// statistics kept for the run, and the base of the locate-then-edit methods
// (ROME, MEMIT and the methods built on them).
#pragma once

#include "edit/editor.h"
#include "edit/oedit_protection.h"
#include "edit/value_optimisation.h"

#include <chrono>
#include <string>
#include <vector>

namespace oedit::edit {

using Clock = std::chrono::steady_clock;

inline double since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Raises the diagnostics' largest |cos| with earlier updates of `layer`:
// of the whole update (Frobenius) and of its key-side factor (rank one only).
// O(d + d_k) per earlier update when both are rank one (ROME, MEMIT and
// O-Edit edits of one fact), so the diagnostic stays cheap over long runs.
void noteCosWithHistory(EditContext &context, int64_t layer, const LayerUpdate &update, EditDiagnostics &diagnostics);

// The Cholesky factor of the ridged C at `layer`, computed once per run and
// layer (every edit would otherwise redo an O(d_k^3) factorisation of the same
// matrix), or undefined when C is not positive definite (the closed forms
// then solve with C directly).
torch::Tensor choleskyFor(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples);

// A method that locates the fact at a layer's MLP, learns the value that
// states the new target there and writes it into the layer in closed form.
// With a SubspaceMode other than Off it is O-Edit(+) on that base: the
// protection policy of the context (EditContext::protection) supplies U_S.
// The common start of every edit: refuse bad requests before any work, seed,
// and a result that already names the method, its hyperparameters and the request.
EditResult beginEdit(const std::string &method, const nlohmann::json &hparams, model::Transformer &model,
                     const model::Tokenizer &tokenizer, const EditRequest &request, const EditContext &context);

class LocateEditMethod : public EditMethod {
public:
    LocateEditMethod(std::string name, SubspaceMode subspace) : m_name(std::move(name)), m_subspace(subspace) {}
    std::string name() const override { return m_name; }

    void prepare(model::Transformer &model, const model::Tokenizer &tokenizer, EditContext &context) override;

protected:
    virtual std::vector<int64_t> editLayers() const = 0;
    virtual std::vector<int64_t> statLayers() const { return editLayers(); }
    // What the method derives from C at `layer` and keeps for the run, made
    // now (prepare): by default the Cholesky factor when mom2_adjustment is on.
    virtual void prepareLayer(EditContext &context, const torch::Tensor &C, int64_t layer, int64_t samples);

    bool protects() const { return m_subspace != SubspaceMode::Off; }
    bool projects() const { return m_subspace == SubspaceMode::Projection; }
    // lambda_o, or 0 when a projecting method drops the loss (keep_loss false).
    double orthogonalityWeight() const;
    // The implicit Gram matrix of a layer from the context, for the protection policy.
    OEditProtection::ImplicitGram implicitGram(EditContext &context, const model::Transformer &model,
                                               const model::Tokenizer &tokenizer) const;

    // beginEdit for this method.
    EditResult begin(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                     const EditContext &context);
    // The common end of a locate-then-edit method: the value optimisation's
    // diagnostics and the edit's id in the run.
    static void finish(EditResult &result, const ValueOutcome &value, EditContext &context);

    std::string m_name;
    SubspaceMode m_subspace = SubspaceMode::Off;
};

} // namespace oedit::edit
