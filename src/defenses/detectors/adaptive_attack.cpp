#include "aegis/defenses/detectors/adaptive_attack.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

namespace {

/// Per-sample dot product of two [B, ...] tensors, shaped to broadcast.
torch::Tensor per_sample_dot(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.flatten(1) * b.flatten(1)).sum(1).view(batch_view(a));
}

/// `g` without its component along `along`, per sample.
torch::Tensor orthogonal_to(const torch::Tensor& g, const torch::Tensor& along) {
  return g - along * per_sample_dot(g, along) / per_sample_dot(along, along).clamp_min(1e-20);
}

torch::Tensor unit_l2(const torch::Tensor& g) {
  return g / g.flatten(1).norm(2, 1).clamp_min(1e-20).view(batch_view(g));
}

/// The step's direction: the sign in Linf ("sign"), or the gradient scaled
/// to the L2 length of a sign step ("scaled"; the projection keeps the result
/// in the Linf ball); the unit L2 direction in L2.
torch::Tensor unit_step(const torch::Tensor& g, Norm norm, bool sign) {
  if (norm == Norm::Linf && sign) return g.sign();
  torch::Tensor u = unit_l2(g);
  return norm == Norm::Linf ? u * std::sqrt(double(g[0].numel())) : u;
}

/// The model's margin max_{j != y} z_j - z_y (ascend it to misclassify).
torch::Tensor margin(const torch::Tensor& logits, const torch::Tensor& y) {
  return adversarial_loss(logits, y, torch::Tensor(), "margin");
}

}  // namespace

nlohmann::json AdaptiveDetectorAttackOptions::to_json() const {
  return {{"eps", eps_},         {"norm", norm_name(norm_)}, {"steps", steps_},
          {"step_size", step_size_}, {"restarts", restarts_}, {"method", method_},
          {"eot_samples", eot_samples_}, {"linf_step", linf_step_}, {"seed", seed_}};
}

AdaptiveDetectorAttackResult adaptive_detector_attack(Classifier& model, Detector& detector, const torch::Tensor& x,
                                                      const torch::Tensor& y, const AdaptiveDetectorAttackOptions& o) {
  AEGIS_CHECK(o.eps_ > 0, InvalidArgument, "adaptive attack: eps must be > 0, got " << o.eps_);
  AEGIS_CHECK(o.norm_ == Norm::Linf || o.norm_ == Norm::L2, InvalidArgument,
              "adaptive attack: norm must be linf or l2");
  AEGIS_CHECK(o.steps_ >= 1, InvalidArgument, "adaptive attack: steps must be >= 1, got " << o.steps_);
  AEGIS_CHECK(o.restarts_ >= 1, InvalidArgument, "adaptive attack: restarts must be >= 1, got " << o.restarts_);
  AEGIS_CHECK(o.step_size_ >= 0, InvalidArgument, "adaptive attack: step size must be >= 0 (0 = automatic)");
  AEGIS_CHECK(o.eot_samples_ >= 1, InvalidArgument, "adaptive attack: eot_samples must be >= 1");
  AEGIS_CHECK(o.method_ == "combined" || o.method_ == "orthogonal" || o.method_ == "selective", InvalidArgument,
              "adaptive attack: method must be 'combined', 'orthogonal' or 'selective', got '" << o.method_ << "'");
  AEGIS_CHECK(o.linf_step_ == "sign" || o.linf_step_ == "scaled", InvalidArgument,
              "adaptive attack: linf_step must be 'sign' or 'scaled', got '" << o.linf_step_ << "'");
  AEGIS_CHECK(model.has_gradients(), Unsupported,
              "the adaptive attack needs the model's gradients; attack a remote model through the gateway instead");
  AEGIS_CHECK(x.size(0) == y.size(0), ShapeMismatch, "adaptive attack: x and y have different batch sizes");
  model.check_input(x);

  AdaptiveDetectorAttackResult r;
  r.surrogate = detector.surrogate();
  if (detector.randomized() && o.eot_samples_ == 1)
    r.warnings.push_back("the " + detector.name() +
                         " detector is randomised but the attack took one gradient draw per step; use eot_samples > 1");
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const double thr = detector.threshold();
  const double alpha = o.step_size_ > 0 ? o.step_size_ : 2.5 * o.eps_ / double(o.steps_);
  const bool orthogonal = o.method_ == "orthogonal";
  const int64_t B = x.size(0);
  auto gen = make_generator(o.seed_, "adaptive-detector-start");

  torch::Tensor best = x.detach().clone();
  torch::Tensor evaded = torch::zeros({B}, torch::kBool);
  // Fallback per sample: the misclassified iterate with the lowest score.
  torch::Tensor lowest = torch::full({B}, std::numeric_limits<float>::infinity());

  for (int64_t restart = 0; restart < o.restarts_; ++restart) {
    torch::Tensor idx = (~evaded).nonzero().flatten();
    if (idx.numel() == 0) break;
    torch::Tensor x0 = x.index_select(0, idx).detach(), y0 = y.index_select(0, idx);
    // The first run starts at the clean input: a random start in the whole
    // ball is noise a detector sees at once, and the classifier step does not
    // undo it. Later restarts start at random points a quarter as far out.
    torch::Tensor xa = restart == 0 ? x0.clone() : random_start(x0, o.norm_, 0.25 * o.eps_, lo, hi, gen);
    for (int64_t step = 0; step <= o.steps_ && idx.numel() > 0; ++step) {
      // Gradients of both constraints at xa (averaged over draws for EOT).
      torch::Tensor gc = torch::zeros_like(xa), gd = torch::zeros_like(xa);
      torch::Tensor logits, scores;
      for (int64_t k = 0; k < o.eot_samples_; ++k) {
        torch::Tensor xg = xa.detach().requires_grad_(true);
        torch::Tensor z = model.forward(xg);
        torch::Tensor s = detector.score_graph(xg);
        AEGIS_CHECK(s.dim() == 1 && s.size(0) == xg.size(0), Internal,
                    "the " << detector.name() << " detector's score_graph returned the wrong shape");
        gc += torch::autograd::grad({margin(z, y0).sum()}, {xg}, {}, /*retain_graph=*/true)[0].detach();
        torch::Tensor g = torch::autograd::grad({s.sum()}, {xg}, {}, /*retain_graph=*/false, false,
                                                /*allow_unused=*/true)[0];
        if (g.defined()) gd += g.detach();
        logits = k == 0 ? z.detach() : logits + z.detach();
        scores = k == 0 ? s.detach().to(torch::kFloat) : scores + s.detach().to(torch::kFloat);
      }
      logits /= double(o.eot_samples_);
      scores /= double(o.eot_samples_);
      r.iterations = std::max(r.iterations, step + 1);

      torch::Tensor fooled = logits.argmax(1) != y0;
      torch::Tensor flagged = scores > thr;
      // Record: evasions end the sample's attack; misclassified-but-flagged
      // iterates are kept when their score is the lowest yet.
      torch::Tensor better = fooled & (scores < lowest.index_select(0, idx));
      if (better.any().item<bool>()) {
        torch::Tensor b = better.nonzero().flatten(), gi = idx.index_select(0, b);
        best.index_copy_(0, gi, xa.index_select(0, b));
        lowest.index_copy_(0, gi, scores.index_select(0, b));
      }
      torch::Tensor done = fooled & ~flagged;
      if (done.any().item<bool>()) {
        torch::Tensor d = done.nonzero().flatten();
        best.index_copy_(0, idx.index_select(0, d), xa.index_select(0, d));
        evaded.index_fill_(0, idx.index_select(0, d), true);
        torch::Tensor keep = (~done).nonzero().flatten();
        idx = idx.index_select(0, keep);
        x0 = x0.index_select(0, keep);
        y0 = y0.index_select(0, keep);
        xa = xa.index_select(0, keep);
        gc = gc.index_select(0, keep);
        gd = gd.index_select(0, keep);
        fooled = fooled.index_select(0, keep);
        flagged = flagged.index_select(0, keep);
        if (idx.numel() == 0) break;
      }
      if (step == o.steps_) break;  // the last point is checked, not moved
      // Correctly classified: raise the margin; misclassified but flagged:
      // lower the score.
      torch::Tensor view_f = fooled.view(batch_view(xa)), view_d = flagged.view(batch_view(xa));
      torch::Tensor dir;
      if (o.method_ == "combined") {
        // Every violated constraint at once, each gradient at unit L2 size:
        // a correctly classified sample the detector flags climbs the margin
        // and descends the score in the same step.
        torch::Tensor uc = unit_l2(gc), ud = unit_l2(gd);
        torch::Tensor up = torch::where(view_d, uc - ud, uc);
        dir = torch::where(view_f, -orthogonal_to(gd, gc), up);
      } else {
        torch::Tensor up = orthogonal ? orthogonal_to(gc, gd) : gc;
        torch::Tensor down = orthogonal ? -orthogonal_to(gd, gc) : -gd;
        dir = torch::where(view_f, down, up);
      }
      xa = project(xa + alpha * unit_step(dir, o.norm_, o.linf_step_ == "sign"), x0, o.norm_, o.eps_, lo, hi).detach();
    }
  }

  // Samples never misclassified keep the clean input (the attack failed).
  // Verify with the detector's and the model's own answers.
  torch::NoGradGuard g;
  r.x_adv = best;
  r.fooled = model.predict(best) != y;
  r.scores = detector.score(best).to(torch::kFloat);
  r.flagged = r.scores > thr;
  r.evaded = r.fooled & ~r.flagged;
  const int64_t claimed = evaded.sum().item<int64_t>(), verified = (r.evaded & evaded).sum().item<int64_t>();
  if (verified < claimed)
    r.warnings.push_back(std::to_string(claimed - verified) + " of " + std::to_string(claimed) +
                         " evasions found with the detector's surrogate did not hold under its own score (counted as "
                         "detected)");
  return r;
}

}  // namespace aegis
