// Fine-tuning (FT-L): the naive baseline, Adam on one layer's MLP output
// projection with every entry of DeltaW bounded by norm_constraint.
#include "edit/method_base.h"
#include "edit/registry.h"
#include "edit/value_optimisation.h"

namespace oedit::edit {

namespace {

// Fine-tuning of one MLP output projection, each entry of DeltaW bounded by
// norm_constraint (FT-L's L-infinity constraint): the naive baseline.
class FineTuneMethod : public EditMethod {
public:
    explicit FineTuneMethod(std::string name) : m_name(std::move(name)) {}
    std::string name() const override { return m_name; }

    EditResult edit(model::Transformer &model, const model::Tokenizer &tokenizer, const EditRequest &request,
                    EditContext &context) override
    {
        const auto start = Clock::now();
        auto result = beginEdit(m_name, m_hparams, model, tokenizer, request, context);
        const int64_t layer = m_hparams["layer"];
        const auto prompt = tokenizePrompt(tokenizer, request.prompt, request.subject);
        const auto target = targetTokens(tokenizer, request.targetNew);
        auto seq = prompt.ids;
        seq.insert(seq.end(), target.begin(), target.end() - 1);
        const auto ids = torch::tensor(seq, torch::kLong).unsqueeze(0).to(model.device());
        const int64_t first = static_cast<int64_t>(prompt.ids.size()) - 1;
        const auto targetT = torch::tensor(target, torch::kLong).to(model.device());

        // The stored weight itself takes gradients for the duration (the
        // tensor handle shares storage with the model); restored below.
        torch::Tensor weight = model.weights().at(model.mlpOutWeightName(layer));
        const auto original = weight.detach().clone();
        const auto originalEditView = model.mlpOutWeight(layer);
        const double bound = m_hparams.value("norm_constraint", 5e-3);
        auto t = Clock::now();
        try {
            weight.set_requires_grad(true);
            torch::optim::Adam optimiser({weight}, torch::optim::AdamOptions(m_hparams.value("lr", 5e-3)));
            torch::AutoGradMode gradMode(true);
            const int64_t steps = m_hparams.value("num_steps", 25);
            for (int64_t step = 0; step <= steps; ++step) {
                const auto logProbs = torch::log_softmax(model.forward(ids).to(torch::kFloat)[0], -1);
                const auto positions = torch::arange(first, first + static_cast<int64_t>(target.size()),
                                                     torch::TensorOptions().dtype(torch::kLong).device(model.device()));
                const auto nll = -logProbs.index({positions, targetT}).mean();
                result.diagnostics.lossCurve.push_back(nll.item<double>());
                result.diagnostics.finalTargetNll = nll.item<double>();
                if (nll.item<double>() < m_hparams.value("loss_stop", 0.05) || step == steps)
                    break;
                optimiser.zero_grad();
                nll.backward();
                optimiser.step();
                torch::NoGradGuard noGrad;
                weight.copy_(torch::max(torch::min(weight, original + bound), original - bound));
            }
        } catch (...) {
            torch::NoGradGuard noGrad;
            weight.set_requires_grad(false);
            weight.copy_(original);
            throw;
        }
        {
            torch::NoGradGuard noGrad;
            weight.set_requires_grad(false);
        }
        const auto M = (model.mlpOutWeight(layer) - originalEditView).to(torch::kCPU, torch::kFloat);
        {
            torch::NoGradGuard noGrad;
            weight.copy_(original);
        }
        result.timings.value = since(t);
        LayerUpdate update;
        update.layer = layer;
        update.dense = M;
        result.layers.push_back(update);
        result.diagnostics.updateNorms.push_back(M.norm().item<double>());
        noteCosWithHistory(context, layer, update, result.diagnostics);
        result.diagnostics.lookupPosition = prompt.lookup;
        result.id = context.nextEditId();
        result.timings.total = since(start);
        return result;
    }

private:
    std::string m_name;
};

} // namespace

std::unique_ptr<EditMethod> makeFineTune(const MethodInfo &info, const nlohmann::json &hparams)
{
    return std::make_unique<FineTuneMethod>(info.name);
}

} // namespace oedit::edit
