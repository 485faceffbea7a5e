#include "aegis/explain/integrated_gradients.h"

#include <torch/torch.h>

#include <algorithm>

#include "aegis/core/error.h"

namespace aegis {

IntegratedGradients::IntegratedGradients(IntegratedGradientsOptions options) : o_(std::move(options)) {
  quadrature(o_.rule_, o_.steps_);  // checks steps
  AEGIS_CHECK(o_.max_batch_ >= 1, InvalidArgument, "max batch must be >= 1, got " << o_.max_batch_);
}

nlohmann::json IntegratedGradients::options_json() const {
  return {{"steps", o_.steps_},
          {"rule", integration_rule_name(o_.rule_)},
          {"baseline", baseline_json(o_.baseline_)},
          {"max_batch", o_.max_batch_}};
}

Attribution IntegratedGradients::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  const Quadrature q = quadrature(o_.rule_, o_.steps_);
  const torch::Tensor baseline = make_baseline(o_.baseline_, x, model.meta());
  const torch::Tensor diff = x - baseline;
  const int64_t n = x.size(0), steps = int64_t(q.alphas.size());
  // Accumulate sum_k w_k grad(x' + a_k (x - x')) in double, per sample.
  torch::Tensor avg = torch::zeros(x.sizes(), torch::kDouble);
  const int64_t sample_block = std::min(n, o_.max_batch_);
  const int64_t step_block = std::max<int64_t>(1, o_.max_batch_ / sample_block);
  for (int64_t s0 = 0; s0 < n; s0 += sample_block) {
    const int64_t sb = std::min(sample_block, n - s0);
    torch::Tensor xb0 = baseline.narrow(0, s0, sb), db = diff.narrow(0, s0, sb), tb = target.narrow(0, s0, sb);
    for (int64_t k0 = 0; k0 < steps; k0 += step_block) {
      const int64_t kb = std::min(step_block, steps - k0);
      std::vector<torch::Tensor> points;
      for (int64_t k = k0; k < k0 + kb; ++k) points.push_back(xb0 + float(q.alphas[size_t(k)]) * db);
      torch::Tensor grads = explain::target_gradient(model, torch::cat(points), tb.repeat({kb})).second;
      for (int64_t k = 0; k < kb; ++k)
        avg.narrow(0, s0, sb) += q.weights[size_t(k0 + k)] * grads.narrow(0, k * sb, sb).to(torch::kDouble);
    }
  }
  Attribution a;
  a.values = (diff.to(torch::kDouble) * avg).to(torch::kFloat);
  a.baseline_score = explain::target_logit(model, baseline, target);
  return a;
}

}  // namespace aegis
