#include "aegis/attacks/evasion/deepfool.h"

#include <torch/torch.h>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"

namespace aegis {

DeepFool::DeepFool(DeepFoolOptions o) : o_(std::move(o)) {
  AEGIS_CHECK(o_.steps_ >= 1, InvalidArgument, "deepfool: steps must be >= 1, got " << o_.steps_);
  AEGIS_CHECK(o_.overshoot_ >= 0, InvalidArgument, "deepfool: overshoot must be >= 0");
  AEGIS_CHECK(o_.norm_ != Norm::L1, InvalidArgument, "deepfool: norm must be l2 or linf");
  AEGIS_CHECK(o_.candidates_ >= 2, InvalidArgument, "deepfool: candidates must be >= 2");
  AEGIS_CHECK(o_.target_mode_ == TargetMode::None, InvalidArgument, "deepfool is untargeted");
}

std::unique_ptr<Attack> DeepFool::from_json(const nlohmann::json& params) {
  DeepFoolOptions o;
  ParamReader r(params, "deepfool");
  r.get("steps", o.steps_);
  r.get("overshoot", o.overshoot_);
  r.get_norm("norm", o.norm_);
  r.get("candidates", o.candidates_);
  r.get("seed", o.seed_);
  r.finish();
  return std::make_unique<DeepFool>(o);
}

nlohmann::json DeepFool::options_json() const {
  return {{"steps", o_.steps_},
          {"overshoot", o_.overshoot_},
          {"norm", norm_name(o_.norm_)},
          {"candidates", o_.candidates_},
          {"seed", o_.seed_}};
}

torch::Tensor DeepFool::attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                               const torch::Tensor& targets, int64_t& iterations) {
  AEGIS_CHECK(!targets.defined(), Unsupported, "deepfool is untargeted: it takes no targets");
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const int64_t n = x.size(0), k_all = model.meta().num_classes;
  const int64_t k = std::min(o_.candidates_, k_all);

  torch::Tensor best = x.clone();
  torch::Tensor idx = torch::arange(n, torch::kLong);
  torch::Tensor x0 = x, y0 = y, r_tot = torch::zeros_like(x);
  torch::Tensor cand;  // [m, k] candidate classes: the true class first, then the k-1 most likely others
  for (int64_t it = 0; it <= o_.steps_; ++it) {
    torch::Tensor xa = (x0 + (1 + o_.overshoot_) * r_tot).clamp(lo, hi);
    torch::Tensor xg = xa.detach().requires_grad_(true);
    torch::Tensor logits = model.forward(xg);
    torch::Tensor succ = logits.detach().argmax(1) != y0;
    torch::Tensor rows = (~succ).nonzero().flatten();
    if (succ.any().item<bool>()) {
      torch::Tensor s = succ.nonzero().flatten();
      best.index_copy_(0, idx.index_select(0, s), xa.detach().index_select(0, s));
    }
    if (rows.numel() == 0 || it == o_.steps_) break;
    iterations = std::max(iterations, it + 1);
    idx = idx.index_select(0, rows);
    x0 = x0.index_select(0, rows);
    y0 = y0.index_select(0, rows);
    r_tot = r_tot.index_select(0, rows);
    if (cand.defined()) {
      cand = cand.index_select(0, rows);
    } else {
      torch::Tensor lg = logits.detach().index_select(0, rows);
      torch::Tensor others = lg.scatter(1, y0.unsqueeze(1), -std::numeric_limits<float>::infinity());
      cand = torch::cat({y0.unsqueeze(1), std::get<1>(others.topk(k - 1, 1))}, 1);
    }
    // Gradients of the k candidate logits (one backward each, rows of the
    // broken samples dropped afterwards: they cost nothing from the next step).
    torch::Tensor full_cand = torch::zeros({logits.size(0), k}, torch::kLong);
    full_cand.index_copy_(0, rows, cand);
    std::vector<torch::Tensor> grads;
    for (int64_t j = 0; j < k; ++j) {
      torch::Tensor sel = logits.gather(1, full_cand.select(1, j).unsqueeze(1)).sum();
      grads.push_back(torch::autograd::grad({sel}, {xg}, {}, /*retain_graph=*/j + 1 < k)[0].index_select(0, rows));
    }
    torch::Tensor z = logits.detach().index_select(0, rows).gather(1, cand);  // [m, k]
    torch::Tensor g = torch::stack(grads, 1).flatten(2);                      // [m, k, d]
    torch::Tensor wv = g.narrow(1, 1, k - 1) - g.narrow(1, 0, 1);
    torch::Tensor f = z.narrow(1, 1, k - 1) - z.narrow(1, 0, 1);
    torch::Tensor dual = o_.norm_ == Norm::L2 ? wv.norm(2, 2) : wv.abs().sum(2);
    torch::Tensor l = (f.abs() / dual.clamp_min(1e-12)).argmin(1);
    torch::Tensor wl = wv.gather(1, l.view({-1, 1, 1}).expand({-1, 1, wv.size(2)})).squeeze(1);
    torch::Tensor fl = f.gather(1, l.unsqueeze(1)).squeeze(1).abs() + 1e-4;
    torch::Tensor dl = dual.gather(1, l.unsqueeze(1)).squeeze(1).clamp_min(1e-12);
    torch::Tensor r = o_.norm_ == Norm::L2 ? wl * (fl / (dl * dl)).unsqueeze(1) : wl.sign() * (fl / dl).unsqueeze(1);
    r_tot = r_tot + r.view(r_tot.sizes());
  }
  return best;
}

}  // namespace aegis
