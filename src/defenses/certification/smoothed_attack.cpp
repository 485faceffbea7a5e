#include "aegis/defenses/certification/smoothed_attack.h"

#include <torch/torch.h>

#include <chrono>

#include "aegis/attacks/attack.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

nlohmann::json SmoothedAttackOptions::to_json() const {
  return {{"attack", "smoothadv-pgd"}, {"norm", "l2"}, {"eps", eps_}, {"steps", steps_}, {"eot_samples", eot_samples_}};
}

nlohmann::json SmoothedAttackResult::to_json() const {
  return {{"options", options.to_json()},
          {"samples", robust.defined() ? robust.size(0) : 0},
          {"smoothed_clean_accuracy", clean_accuracy},
          {"empirical_robust_accuracy", robust_accuracy},
          {"seconds", seconds}};
}

SmoothedAttackResult attack_smoothed(const ClassifierPtr& model, const torch::Tensor& x, const torch::Tensor& y,
                                     const RandomizedSmoothingOptions& smoothing, const SmoothedAttackOptions& o) {
  smoothing.validate();
  AEGIS_CHECK(model != nullptr, InvalidArgument, "attack_smoothed needs a model");
  AEGIS_CHECK(o.eps_ > 0, InvalidArgument, "smoothed attack: eps must be > 0, got " << o.eps_);
  AEGIS_CHECK(o.steps_ >= 1 && o.eot_samples_ >= 1 && o.batch_size_ >= 1, InvalidArgument,
              "smoothed attack: steps, EOT samples and batch size must be >= 1");
  AEGIS_CHECK(model->has_gradients(), Unsupported, "the smoothed attack needs a white-box base model");
  model->check_input(x);
  AEGIS_CHECK(y.dim() == 1 && y.size(0) == x.size(0), ShapeMismatch, "labels must be [" << x.size(0) << "]");
  auto start = std::chrono::steady_clock::now();
  const double lo = model->meta().clip_min, hi = model->meta().clip_max, eps = o.eps_;
  const double step = 2.5 * eps / double(o.steps_);
  auto gen = make_generator(smoothing.seed_, "smoothed-attack");
  // PGD on the smoothed soft classifier (SmoothAdv): maximise
  // -log mean_k softmax(f(x' + d_k))_y over m noise draws d_k per step; the
  // noise is the smoothed model's own (not clipped, like certify_smoothed).
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += o.batch_size_) {
    const int64_t j = std::min(i + o.batch_size_, x.size(0));
    torch::Tensor x0 = x.slice(0, i, j).detach(), y0 = y.slice(0, i, j).to(torch::kLong);
    const int64_t b = x0.size(0), m = o.eot_samples_;
    torch::Tensor xa = x0.clone();
    for (int64_t k = 0; k < o.steps_; ++k) {
      torch::Tensor xg = xa.detach().requires_grad_(true);
      std::vector<int64_t> rep = {m};
      for (int64_t d : x0.sizes()) rep.push_back(d);
      torch::Tensor noisy = xg.unsqueeze(0).expand(rep) + smoothing.sigma_ * torch::randn(rep, gen);
      std::vector<int64_t> flat = {m * b};
      for (int64_t d = 1; d < x0.dim(); ++d) flat.push_back(x0.size(d));
      torch::Tensor probs = torch::softmax(model->forward(noisy.reshape(flat)), 1).view({m, b, -1}).mean(0);
      torch::Tensor loss = -torch::log(probs.gather(1, y0.unsqueeze(1)).squeeze(1).clamp_min(1e-12)).sum();
      torch::Tensor g = torch::autograd::grad({loss}, {xg})[0];
      torch::NoGradGuard ng;
      std::vector<int64_t> per_sample(size_t(g.dim()), 1);
      per_sample[0] = g.size(0);
      torch::Tensor unit = g / g.flatten(1).norm(2, 1).clamp_min(1e-12).view(per_sample);
      xa = project(xa + step * unit, x0, Norm::L2, eps, lo, hi).detach();
    }
    parts.push_back(xa);
  }
  SmoothedAttackResult r;
  r.options = o;
  r.x_adv = parts.empty() ? x.clone() : torch::cat(parts);
  r.clean_class = majority_smoothed(*model, x, smoothing);
  r.adv_class = majority_smoothed(*model, r.x_adv, smoothing);
  torch::Tensor yl = y.to(torch::kLong);
  r.robust = (r.clean_class == yl) & (r.adv_class == yl);
  if (x.size(0) > 0) {
    r.clean_accuracy = (r.clean_class == yl).to(torch::kDouble).mean().item<double>();
    r.robust_accuracy = r.robust.to(torch::kDouble).mean().item<double>();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
