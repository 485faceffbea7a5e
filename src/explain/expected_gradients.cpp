#include "aegis/explain/expected_gradients.h"

#include <torch/torch.h>

#include <algorithm>

#include "aegis/core/error.h"

namespace aegis {

ExpectedGradients::ExpectedGradients(torch::Tensor background, ExpectedGradientsOptions options)
    : background_(std::move(background)), o_(options) {
  AEGIS_CHECK(background_.defined() && background_.dim() >= 2 && background_.size(0) >= 1, InvalidArgument,
              "expected gradients needs a background set [M, ...] with M >= 1");
  AEGIS_CHECK(o_.samples_ >= 1, InvalidArgument, "expected gradients needs samples >= 1, got " << o_.samples_);
  AEGIS_CHECK(o_.max_batch_ >= 1, InvalidArgument, "max batch must be >= 1, got " << o_.max_batch_);
  background_ = background_.detach().to(torch::kFloat).contiguous();
}

nlohmann::json ExpectedGradients::options_json() const {
  return {
      {"samples", o_.samples_}, {"background", background_.size(0)}, {"max_batch", o_.max_batch_}, {"seed", o_.seed_}};
}

Attribution ExpectedGradients::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  AEGIS_CHECK(background_.sizes().slice(1) == x.sizes().slice(1), ShapeMismatch,
              "the background samples' shape differs from the inputs'");
  const int64_t n = x.size(0), K = o_.samples_, M = background_.size(0);
  Attribution a;
  a.values = torch::empty_like(x);
  a.baseline_score = torch::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor xi = x.narrow(0, i, 1);
    at::Generator gen = explain::sample_generator(o_.seed_, xi, "expected-gradients");
    torch::Tensor refs = background_.index_select(0, torch::randint(0, M, {K}, gen, torch::kLong));
    torch::Tensor alphas = torch::rand({K}, gen, torch::kDouble);
    std::vector<int64_t> view(size_t(x.dim()), 1);
    view[0] = K;
    torch::Tensor diff = xi - refs;  // [K, ...]
    torch::Tensor points = refs + alphas.to(torch::kFloat).view(view) * diff;
    torch::Tensor acc = torch::zeros(xi.sizes().slice(1), torch::kDouble);
    const torch::Tensor ti = target.narrow(0, i, 1);
    for (int64_t k0 = 0; k0 < K; k0 += o_.max_batch_) {
      const int64_t kb = std::min(o_.max_batch_, K - k0);
      torch::Tensor g = explain::target_gradient(model, points.narrow(0, k0, kb), ti.expand({kb})).second;
      acc += (diff.narrow(0, k0, kb).to(torch::kDouble) * g.to(torch::kDouble)).sum(0);
    }
    a.values[i].copy_((acc / double(K)).to(torch::kFloat));
    std::vector<torch::Tensor> scores;
    for (int64_t k0 = 0; k0 < K; k0 += o_.max_batch_) {
      const int64_t kb = std::min(o_.max_batch_, K - k0);
      scores.push_back(explain::target_logit(model, refs.narrow(0, k0, kb), ti.expand({kb})).to(torch::kDouble));
    }
    a.baseline_score[i] = torch::cat(scores).mean().item<double>();
  }
  return a;
}

}  // namespace aegis
