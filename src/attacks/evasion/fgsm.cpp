#include "aegis/attacks/evasion/fgsm.h"

#include <torch/torch.h>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"

namespace aegis {

FGSM::FGSM(FGSMOptions o) : o_(std::move(o)) {
  AEGIS_CHECK(o_.eps_ > 0, InvalidArgument, "fgsm: eps must be > 0, got " << o_.eps_);
  AEGIS_CHECK(o_.norm_ != Norm::L1, InvalidArgument, "fgsm: norm must be linf or l2");
}

std::unique_ptr<Attack> FGSM::from_json(const nlohmann::json& params) {
  FGSMOptions o(0.1);
  ParamReader r(params, "fgsm");
  r.get("eps", o.eps_);
  r.get_norm("norm", o.norm_);
  r.get_target_mode("targeted", o.target_mode_);
  r.get("seed", o.seed_);
  r.finish();
  return std::make_unique<FGSM>(o);
}

nlohmann::json FGSM::options_json() const {
  return {{"eps", o_.eps_}, {"norm", norm_name(o_.norm_)}, {"targeted", target_mode_name(o_.target_mode_)},
          {"seed", o_.seed_}};
}

torch::Tensor FGSM::attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                           const torch::Tensor& targets, int64_t& iterations) {
  const auto& m = model.meta();
  torch::Tensor xg = x.clone().requires_grad_(true);
  torch::Tensor loss = adversarial_loss(model.forward(xg), y, targets, "ce");
  torch::Tensor g = torch::autograd::grad({loss.sum()}, {xg})[0].detach();
  torch::Tensor dir;
  if (o_.norm_ == Norm::Linf) {
    dir = g.sign();
  } else {
    std::vector<int64_t> view(size_t(x.dim()), 1);
    view[0] = x.size(0);
    dir = g / g.flatten(1).norm(2, 1).clamp_min(1e-12).view(view);
  }
  iterations = 1;
  return project(x + o_.eps_ * dir, x, o_.norm_, o_.eps_, m.clip_min, m.clip_max);
}

}  // namespace aegis
