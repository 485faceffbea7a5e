#include "aegis/attacks/evasion/preflight.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <optional>
#include <set>

#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"

namespace aegis {

namespace {

using Verdict = PreflightVerdict;

/// A forward pass that may fail: the failure is what a check reports.
struct Pass {
  torch::Tensor out;
  std::string error;
  bool ok() const { return error.empty(); }
};

template <class F>
Pass attempt(F&& f) {
  Pass p;
  try {
    p.out = f().detach();
  } catch (const std::exception& e) {
    p.error = e.what();
    if (auto nl = p.error.find('\n'); nl != std::string::npos) p.error.resize(nl);
  }
  return p;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

bool close(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  return a.sizes() == b.sizes() && torch::allclose(a.to(torch::kDouble), b.to(torch::kDouble), rtol, atol);
}

PreflightCheck check_range(const ModelMeta& meta, const torch::Tensor& x) {
  const double lo = meta.clip_min, hi = meta.clip_max, range = hi - lo;
  const double xmin = x.min().item<double>(), xmax = x.max().item<double>();
  const double tol = 1e-6 * std::max(1.0, std::abs(range));
  if (!std::isfinite(xmin) || !std::isfinite(xmax))
    return {"inputs-in-range", Verdict::Refuse, "the data holds NaN or infinite values"};
  if (xmin < lo - tol || xmax > hi + tol) {
    const int64_t out = ((x < lo - tol) | (x > hi + tol)).sum().item<int64_t>();
    return {
        "inputs-in-range", Verdict::Refuse,
        fmt::format("{} of {} values lie outside the model's declared range [{:g}, {:g}] (data spans [{:g}, {:g}]): "
                    "attacks clip to the declared range, so the budget and the clean inputs would not be what "
                    "they seem; rescale the data or fix the model's range (aegis model meta --clip)",
                    out, x.numel(), lo, hi, xmin, xmax)};
  }
  if (range > 0 && xmax - xmin < 0.02 * range && x.numel() > 1)
    return {"inputs-in-range", Verdict::Warn,
            fmt::format("the data spans [{:g}, {:g}], {:.2g}% of the declared range [{:g}, {:g}]: eps is measured on "
                        "the declared scale, so a budget chosen for the data's scale is wrong (data in [0, 1] for a "
                        "[0, 255] model?)",
                        xmin, xmax, 100 * (xmax - xmin) / range, lo, hi)};
  return {"inputs-in-range", Verdict::Pass,
          fmt::format("data in [{:g}, {:g}], declared [{:g}, {:g}]", xmin, xmax, lo, hi)};
}

PreflightCheck check_eps(const ModelMeta& meta, Norm norm, double eps) {
  const double range = meta.clip_max - meta.clip_min;
  double d = 1;
  for (int64_t s : meta.input_shape) d *= double(s);
  // The norm of the whole box's diagonal, and eps spread evenly over the values.
  double box = range, per_value = eps;
  if (norm == Norm::L2) box = range * std::sqrt(d), per_value = eps / std::sqrt(d);
  if (norm == Norm::L1) box = range * d, per_value = eps / d;
  const std::string n = norm_name(norm);
  if (eps >= box)
    return {"eps-fits-norm", Verdict::Refuse,
            fmt::format("{} eps {:g} reaches every input in the box [{:g}, {:g}]^{:g} (its {} diameter is {:.4g}): any "
                        "class is reachable, so the robust accuracy would be meaningless",
                        n, eps, meta.clip_min, meta.clip_max, d, n, box)};
  if (range > 0 && per_value < range / 510.0)
    return {"eps-fits-norm", Verdict::Warn,
            norm == Norm::Linf
                ? fmt::format("linf eps {:g} is under half a grey level (1/255) of the range [{:g}, {:g}]: was it "
                              "given on a [0, 1] scale for a [0, 255] model?",
                              eps, meta.clip_min, meta.clip_max)
                : fmt::format("{} eps {:g} over {:g} values is {:.2g} per value, under half a grey level (1/255) of "
                              "the range: was a linf budget such as 8/255 given as {}?",
                              n, eps, d, per_value, n)};
  if (norm == Norm::Linf && eps > 0.5 * range)
    return {"eps-fits-norm", Verdict::Warn,
            fmt::format("linf eps {:g} is more than half the range [{:g}, {:g}]: the perturbed inputs need not look "
                        "like the originals, so breaking them says little",
                        eps, meta.clip_min, meta.clip_max)};
  return {"eps-fits-norm", Verdict::Pass,
          fmt::format("{} eps {:g} over {:g} values ({:.3g} per value, range {:g})", n, eps, d, per_value, range)};
}

PreflightCheck check_probabilities(const torch::Tensor& out) {
  if (out.dim() != 2 || out.size(1) < 2) return {"logits-not-probabilities", Verdict::Pass, "one output per sample"};
  torch::Tensor o = out.to(torch::kDouble);
  const bool in_unit = o.min().item<double>() >= -1e-6 && o.max().item<double>() <= 1 + 1e-6;
  const double sum_err = (o.sum(1) - 1).abs().max().item<double>();
  if (in_unit && sum_err < 1e-3)
    return {"logits-not-probabilities", Verdict::Warn,
            fmt::format("every output row is non-negative and sums to 1 (within {:.1g}): the model returns "
                        "probabilities, so the cross-entropy attacks see is flat and they look weak; export the "
                        "logits (drop the final softmax)",
                        sum_err)};
  const double lse_err = torch::logsumexp(o, 1).abs().max().item<double>();
  if (o.max().item<double>() <= 1e-6 && lse_err < 1e-3)
    return {"logits-not-probabilities", Verdict::Pass,
            "log-probabilities (each row's logsumexp is 0): logits up to a shift, which attacks handle"};
  return {"logits-not-probabilities", Verdict::Pass, "outputs are unnormalised logits"};
}

/// Operator kinds in a TorchScript module's forward graph, submodules inlined.
std::set<std::string> forward_ops(torch::jit::Module& module) {
  std::set<std::string> ops;
  auto graph = module.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  std::vector<torch::jit::Block*> blocks = {graph->block()};
  while (!blocks.empty()) {
    torch::jit::Block* b = blocks.back();
    blocks.pop_back();
    for (torch::jit::Node* node : b->nodes()) {
      ops.insert(node->kind().toQualString());
      for (torch::jit::Block* inner : node->blocks()) blocks.push_back(inner);
    }
  }
  return ops;
}

PreflightCheck check_autograd(Classifier& model, const Pass& plain, const torch::Tensor& probe, bool deterministic) {
  std::vector<std::string> found;
  if (auto* script = dynamic_cast<ScriptClassifier*>(&model)) {
    try {
      for (const std::string& op : forward_ops(script->module()))
        if (op == "aten::grad" || op == "aten::backward" || op == "aten::_backward") found.push_back(op);
    } catch (const std::exception&) {
      // A module without a scripted forward (traced-only archives still have one).
    }
  }
  const std::string adaptive =
      "a defence that differentiates or optimises at test time needs an adaptive attack (BPDA through that step, or "
      "attacking the full procedure), or the robust accuracy is overstated";
  if (!plain.ok())
    return {"no-autograd-in-forward", Verdict::Refuse,
            fmt::format("the forward pass fails without autograd ({}){}; attacks query it that way", plain.error,
                        found.empty() ? "" : fmt::format(", and its graph calls {}", fmt::join(found, ", ")))};
  if (!found.empty())
    return {"no-autograd-in-forward", Verdict::Warn,
            fmt::format("the forward graph calls {}: {}", fmt::join(found, ", "), adaptive)};
  if (model.has_gradients() && deterministic) {
    Pass with_grad = attempt([&] { return model.forward(probe.detach().clone().requires_grad_(true)); });
    if (!with_grad.ok())
      return {"no-autograd-in-forward", Verdict::Refuse,
              "the forward pass fails with autograd (" + with_grad.error + "); gradient attacks cannot run"};
    if (!close(with_grad.out, plain.out, 1e-4, 1e-5))
      return {"no-autograd-in-forward", Verdict::Warn,
              fmt::format("the outputs with autograd differ from those without (by {:.3g}): the forward pass "
                          "depends on the grad mode, so {}",
                          max_abs_diff(with_grad.out, plain.out), adaptive)};
  }
  return {"no-autograd-in-forward", Verdict::Pass,
          dynamic_cast<ScriptClassifier*>(&model) ? "no autograd calls in the forward graph"
                                                  : "same outputs with and without autograd"};
}

PreflightCheck check_gradients(Classifier& model, const torch::Tensor& probe, const torch::Tensor& y,
                               const torch::Tensor& probs, bool gradient_only) {
  Pass g = attempt([&] { return model.loss_gradient(probe, y).second; });
  if (!g.ok())
    return {"gradients-nonzero", gradient_only ? Verdict::Refuse : Verdict::Warn,
            "the loss gradient cannot be computed (" + g.error + ")"};
  torch::Tensor grad = g.out.flatten(1).to(torch::kDouble);
  const int64_t n = grad.size(0);
  torch::Tensor finite = torch::isfinite(grad).all(1);
  torch::Tensor zero = finite & (grad.abs().amax(1) == 0);
  const int64_t bad = n - finite.sum().item<int64_t>(), zeros = zero.sum().item<int64_t>();
  if (bad > 0)
    return {"gradients-nonzero", bad == n && gradient_only ? Verdict::Refuse : Verdict::Warn,
            fmt::format("{} of {} probe samples have NaN or infinite input gradients: the model's arithmetic "
                        "overflows (a log of a probability, a division), which breaks gradient attacks",
                        bad, n)};
  if (zeros == 0)
    return {"gradients-nonzero", Verdict::Pass, fmt::format("every one of {} probe samples has an input gradient", n)};
  // A softmax saturated in float32 (the true class at probability 1) also has
  // an exactly zero cross-entropy gradient; say which it is.
  int64_t saturated = 0;
  if (probs.defined() && probs.dim() == 2) {
    torch::Tensor p_true = probs.gather(1, y.view({-1, 1})).squeeze(1);
    saturated = (zero & (p_true >= 1.0f)).sum().item<int64_t>();
  }
  const std::string why =
      saturated == zeros
          ? "their softmax is saturated (the true class at probability 1 in float32), so the cross-entropy cannot "
            "move them; the DLR loss (APGD-T) and black-box attacks can"
          : "a layer that kills gradients (rounding, quantisation, argmax, detach) masks them; attack with BPDA "
            "through that layer or with black-box attacks (square, hsj)";
  if (zeros == n)
    return {"gradients-nonzero", gradient_only ? Verdict::Refuse : Verdict::Warn,
            fmt::format("none of {} probe samples has a non-zero input gradient: {}{}", n, why,
                        gradient_only ? "; gradient attacks alone would report the clean accuracy as robust" : "")};
  return {"gradients-nonzero", Verdict::Warn,
          fmt::format("{} of {} probe samples have an all-zero input gradient: {}", zeros, n, why)};
}

}  // namespace

std::string preflight_verdict_name(PreflightVerdict v) {
  switch (v) {
    case PreflightVerdict::Pass:
      return "pass";
    case PreflightVerdict::Warn:
      return "warn";
    case PreflightVerdict::Refuse:
      return "refuse";
  }
  return "?";
}

bool Preflight::refused() const {
  for (const auto& c : checks)
    if (c.verdict == PreflightVerdict::Refuse) return true;
  return false;
}

std::vector<std::string> Preflight::warnings() const {
  std::vector<std::string> w;
  for (const auto& c : checks)
    if (c.verdict != PreflightVerdict::Pass) w.push_back(c.name + ": " + c.detail);
  return w;
}

void Preflight::enforce() const {
  std::string why;
  for (const auto& c : checks)
    if (c.verdict == PreflightVerdict::Refuse) why += (why.empty() ? "" : "; ") + c.name + ": " + c.detail;
  AEGIS_CHECK(why.empty(), InvalidArgument,
              "preflight refused the run, its result would be meaningless (--force runs it anyway): " << why);
}

nlohmann::json Preflight::to_json() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : checks)
    j.push_back({{"name", c.name}, {"verdict", preflight_verdict_name(c.verdict)}, {"detail", c.detail}});
  return j;
}

Preflight run_preflight(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const PreflightOptions& o) {
  AEGIS_CHECK(o.probe_samples_ >= 1, InvalidArgument, "preflight: probe_samples must be >= 1");
  AEGIS_CHECK(x.dim() >= 1 && x.size(0) > 0, InvalidArgument, "preflight: no samples");
  const ModelMeta& meta = model.meta();
  Preflight p;
  torch::Tensor xf = x.to(torch::kFloat);
  p.checks.push_back(check_range(meta, xf));
  if (o.eps_ > 0) p.checks.push_back(check_eps(meta, o.norm_, o.eps_));

  const int64_t k = std::min<int64_t>(o.probe_samples_, x.size(0));
  // Probe inputs clamped into the declared range: a refused range must not
  // make the behavioural checks fail too.
  torch::Tensor probe = xf.narrow(0, 0, k).clamp(meta.clip_min, meta.clip_max).contiguous();
  torch::Tensor yp = y.narrow(0, 0, k).to(torch::kLong);

  Pass a = attempt([&] { return model.logits(probe); });
  Pass b = attempt([&] { return model.logits(probe); });
  bool deterministic = false;
  if (a.ok()) p.checks.push_back(check_probabilities(a.out));
  if (a.ok() && b.ok()) {
    deterministic = close(a.out, b.out, 1e-5, 1e-6);
    if (deterministic)
      p.checks.push_back({"deterministic-forward", Verdict::Pass, "two passes over the same inputs agree"});
    else if (o.eot_samples_ > 1)
      p.checks.push_back({"deterministic-forward", Verdict::Pass,
                          fmt::format("the outputs vary between passes (by {:.3g}); the run averages {} samples per "
                                      "gradient (EOT)",
                                      max_abs_diff(a.out, b.out), o.eot_samples_)});
    else
      p.checks.push_back({"deterministic-forward", Verdict::Warn,
                          fmt::format("two passes over the same inputs differ (by up to {:.3g}): a randomised model "
                                      "attacked without EOT looks more robust than it is; use EOT (--eot 10 or more)",
                                      max_abs_diff(a.out, b.out))});
  }
  if (deterministic && k >= 2) {
    PreflightCheck c{"batch-independent", Verdict::Pass,
                     fmt::format("{} samples alone match them in a batch of {}", std::min<int64_t>(k, 4), k)};
    for (int64_t i = 0; i < std::min<int64_t>(k, 4); ++i) {
      Pass alone = attempt([&] { return model.logits(probe.narrow(0, i, 1)); });
      torch::Tensor in_batch = a.out.narrow(0, i, 1);
      const double scale = 1 + in_batch.abs().max().item<double>();
      if (alone.ok() && !close(alone.out, in_batch, 0, 1e-4 * scale)) {
        c = {"batch-independent", Verdict::Warn,
             fmt::format("sample {}'s outputs alone differ from its outputs in a batch of {} (by {:.3g}): the model "
                         "uses batch statistics (BatchNorm in training mode?), so an attacked sample's fate depends "
                         "on its batch; put the model in eval mode before exporting it",
                         i, k, max_abs_diff(alone.out, in_batch))};
        break;
      }
    }
    p.checks.push_back(c);
  }
  if (auto* script = dynamic_cast<ScriptClassifier*>(&model)) {
    std::vector<std::string> training;
    for (const auto& m : script->module().named_modules())
      if (m.value.is_training()) training.push_back(m.name.empty() ? "(top)" : m.name);
    if (training.empty())
      p.checks.push_back({"eval-mode", Verdict::Pass, "every module is in eval mode"});
    else
      p.checks.push_back({"eval-mode", Verdict::Warn,
                          fmt::format("module(s) in training mode: {}; dropout and BatchNorm then behave as in "
                                      "training (random, batch-dependent)",
                                      fmt::join(training, ", "))});
  }
  p.checks.push_back(check_autograd(model, a, probe, deterministic));
  if (model.has_gradients() && a.ok())
    p.checks.push_back(check_gradients(model, probe, yp, torch::softmax(a.out.to(torch::kFloat), 1), o.gradient_only_));
  return p;
}

}  // namespace aegis
