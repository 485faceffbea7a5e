#include "aegis/defenses/detectors/detection_evaluation.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"

namespace aegis {

double roc_auc(const torch::Tensor& neg, const torch::Tensor& pos) {
  AEGIS_CHECK(neg.numel() > 0 && pos.numel() > 0, InvalidArgument, "ROC AUC needs negative and positive scores");
  torch::Tensor n = neg.to(torch::kDouble).flatten(), p = pos.to(torch::kDouble).flatten();
  // Mann-Whitney U: P(pos > neg) + 0.5 P(pos == neg), over all pairs (chunked
  // to bound memory).
  double wins = 0;
  const int64_t chunk = 4096;
  for (int64_t i = 0; i < p.size(0); i += chunk) {
    torch::Tensor pc = p.slice(0, i, std::min(i + chunk, p.size(0))).unsqueeze(1);
    wins += (pc > n.unsqueeze(0)).sum().item<double>() + 0.5 * (pc == n.unsqueeze(0)).sum().item<double>();
  }
  return wins / (double(n.size(0)) * double(p.size(0)));
}

namespace {
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace

nlohmann::json AttackDetection::to_json() const {
  return {{"attack", attack},
          {"options", options},
          {"adaptive", adaptive},
          {"bounded", bounded},
          {"attacked", attacked},
          {"successful", successful},
          {"evaded", evaded},
          {"auc", finite_or_null(auc)},
          {"tpr", finite_or_null(tpr)},
          {"model_robust_accuracy", model_robust_accuracy},
          {"robust_accuracy", robust_accuracy},
          {"warnings", warnings}};
}

nlohmann::json DetectionEvaluation::to_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : attacks) a.push_back(x.to_json());
  return {{"detector", detector},
          {"threshold", threshold},
          {"target_fpr", target_fpr},
          {"clean_fpr", clean_fpr},
          {"clean_samples", clean_samples},
          {"clean_accuracy", clean_accuracy},
          {"attacks", a},
          {"robust_accuracy_model", robust_accuracy_model},
          {"robust_accuracy_detector", robust_accuracy_detector},
          {"robust_accuracy_adaptive", finite_or_null(robust_accuracy_adaptive)},
          {"seconds", seconds}};
}

namespace {

torch::Tensor batched_scores(Detector& d, const torch::Tensor& x, int64_t bs) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < x.size(0); i += bs) out.push_back(d.score(x.slice(0, i, std::min(i + bs, x.size(0)))));
  return out.empty() ? torch::zeros({0}) : torch::cat(out).to(torch::kDouble);
}

/// The adaptive attack on (x, y) in batches, as one AttackDetection entry to
/// be filled by summarise(), the fooled mask and the detector's scores of
/// the adversarial inputs.
struct AdaptiveRun {
  AttackDetection entry;
  torch::Tensor fooled, scores;
};
AdaptiveRun adaptive_in_batches(Classifier& model, Detector& detector, const torch::Tensor& x, const torch::Tensor& y,
                                const AdaptiveDetectorAttackOptions& ao, int64_t bs) {
  AdaptiveRun run;
  run.entry.attack = "adaptive";
  run.entry.adaptive = true;
  run.entry.options = ao.to_json();
  run.entry.options["surrogate"] = detector.surrogate();
  const int64_t n = x.size(0);
  run.fooled = torch::zeros({n}, torch::kBool);
  run.scores = torch::zeros({n}, torch::kDouble);
  std::vector<std::string>& warnings = run.entry.warnings;
  for (int64_t i = 0; i < n; i += bs) {
    const int64_t j = std::min(i + bs, n);
    AdaptiveDetectorAttackResult r = adaptive_detector_attack(model, detector, x.slice(0, i, j), y.slice(0, i, j), ao);
    run.fooled.slice(0, i, j).copy_(r.fooled);
    run.scores.slice(0, i, j).copy_(r.scores);
    for (const auto& w : r.warnings)
      if (std::find(warnings.begin(), warnings.end(), w) == warnings.end()) warnings.push_back(w);
  }
  return run;
}

/// Fills `a` from one attack on `fooled.numel()` correctly classified
/// samples (`adv_scores`: the detector's scores of their adversarial inputs,
/// read where fooled) out of `total`: counts, ROC AUC against the clean
/// scores, TPR and robust accuracies at `threshold`. Returns the evaded mask.
torch::Tensor summarise(AttackDetection& a, const torch::Tensor& fooled, const torch::Tensor& adv_scores,
                        const torch::Tensor& clean_scores, double threshold, double total) {
  const int64_t n = fooled.numel();
  a.attacked = n;
  torch::Tensor s = fooled.nonzero().flatten();
  a.successful = s.numel();
  a.auc = a.tpr = std::numeric_limits<double>::quiet_NaN();
  torch::Tensor evaded = fooled & ~(adv_scores > threshold);
  if (s.numel() > 0) {
    torch::Tensor fs = adv_scores.index_select(0, s);
    a.auc = roc_auc(clean_scores, fs);
    a.tpr = (fs > threshold).to(torch::kDouble).mean().item<double>();
  }
  a.evaded = evaded.sum().item<int64_t>();
  a.model_robust_accuracy = double(n - a.successful) / total;
  a.robust_accuracy = double(n - a.evaded) / total;
  return evaded;
}

}  // namespace

DetectionEvaluation evaluate_detector(Detector& detector, Classifier& model, const torch::Tensor& calibration_x,
                                      const Dataset& data,
                                      const std::vector<std::pair<std::string, nlohmann::json>>& attacks,
                                      const DetectionEvaluationOptions& o) {
  AEGIS_CHECK(o.target_fpr_ > 0 && o.target_fpr_ < 1, InvalidArgument, "target FPR must be in (0, 1)");
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "detection evaluation needs data");
  auto start = std::chrono::steady_clock::now();
  DetectionEvaluation e;
  e.detector = detector.name();
  e.target_fpr = o.target_fpr_;
  detector.calibrate(calibration_x, o.target_fpr_);
  e.threshold = detector.threshold();

  torch::Tensor clean_scores = batched_scores(detector, data.x, o.batch_size_);
  e.clean_samples = data.size();
  e.clean_fpr = (clean_scores > e.threshold).to(torch::kDouble).mean().item<double>();

  torch::Tensor correct = (model.predict(data.x) == data.y).nonzero().flatten();
  torch::Tensor xc = data.x.index_select(0, correct), yc = data.y.index_select(0, correct);
  const int64_t n = xc.size(0);
  const double total = double(data.size());
  e.clean_accuracy = double(n) / total;
  // Per correctly classified sample: broken by some attack (model alone; with the detector).
  torch::Tensor broken_model = torch::zeros({n}, torch::kBool), broken_pair = torch::zeros({n}, torch::kBool);
  std::vector<std::unique_ptr<Attack>> built;
  bool any_bounded = false;
  for (const auto& [name, params] : attacks) {
    built.push_back(make_attack(name, params));
    any_bounded |= built.back()->budget().has_value();
  }

  for (size_t k = 0; k < built.size(); ++k) {
    Attack& attack = *built[k];
    AttackDetection a;
    a.attack = attacks[k].first;
    a.options = attack.options_json();
    a.bounded = attack.budget().has_value();
    torch::Tensor fooled = torch::zeros({n}, torch::kBool), adv_scores = torch::zeros({n}, torch::kDouble);
    for (int64_t i = 0; i < n; i += o.batch_size_) {
      int64_t j = std::min(i + o.batch_size_, n);
      AttackResult r = attack.run(model, xc.slice(0, i, j), yc.slice(0, i, j));
      fooled.slice(0, i, j).copy_(r.success);
      torch::Tensor s = r.success.nonzero().flatten();
      if (s.numel() > 0)
        adv_scores.slice(0, i, j).index_put_({s}, batched_scores(detector, r.x_adv.index_select(0, s), o.batch_size_));
    }
    torch::Tensor evaded = summarise(a, fooled, adv_scores, clean_scores, e.threshold, total);
    if (a.bounded || !any_bounded) {
      broken_pair |= evaded;
      broken_model |= fooled;
    }
    e.attacks.push_back(a);
  }
  if (o.backdoor_) {
    const auto& [trigger, target] = *o.backdoor_;
    AttackDetection a;
    a.attack = "trigger";
    a.options = {{"trigger", trigger.to_json()}, {"target", target}};
    a.bounded = false;
    torch::Tensor others = (yc != target).nonzero().flatten();
    torch::Tensor xt = trigger.apply(xc.index_select(0, others));
    torch::Tensor fooled = model.predict(xt) == target;
    torch::Tensor s = fooled.nonzero().flatten();
    torch::Tensor adv_scores = torch::zeros({others.numel()}, torch::kDouble);
    if (s.numel() > 0) adv_scores.index_put_({s}, batched_scores(detector, xt.index_select(0, s), o.batch_size_));
    summarise(a, fooled, adv_scores, clean_scores, e.threshold, total);
    // Target-class samples are not attacked and stay correct.
    a.model_robust_accuracy = double(n - a.successful) / total;
    a.robust_accuracy = double(n - a.evaded) / total;
    if (s.numel() == 0) a.warnings.push_back("the trigger fooled the model on no sample: is this the backdoored model?");
    e.attacks.push_back(a);
  }
  e.robust_accuracy_model = double(n - broken_model.sum().item<int64_t>()) / total;
  e.robust_accuracy_detector = double(n - broken_pair.sum().item<int64_t>()) / total;

  if (o.adaptive_) {
    AdaptiveRun run = adaptive_in_batches(model, detector, xc, yc, *o.adaptive_, o.batch_size_);
    broken_pair |= summarise(run.entry, run.fooled, run.scores, clean_scores, e.threshold, total);
    e.attacks.push_back(run.entry);
    e.robust_accuracy_adaptive = double(n - broken_pair.sum().item<int64_t>()) / total;
  }
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return e;
}

nlohmann::json DetectorRobustness::to_json() const {
  return {{"detector", detector},
          {"threshold", threshold},
          {"clean_flagged", clean_flagged},
          {"samples", samples},
          {"robust_accuracy_model", robust_accuracy_model},
          {"robust_accuracy_detector", robust_accuracy_detector},
          {"robust_accuracy_adaptive", robust_accuracy_adaptive},
          {"adaptive", adaptive.to_json()}};
}

DetectorRobustness evaluate_with_detector(Detector& detector, Classifier& model, const Dataset& data,
                                          const torch::Tensor& x_adv, const torch::Tensor& robust,
                                          const AdaptiveDetectorAttackOptions& ao, int64_t bs) {
  const int64_t N = data.size();
  AEGIS_CHECK(N > 0, InvalidArgument, "the detector evaluation needs data");
  AEGIS_CHECK(x_adv.sizes() == data.x.sizes() && robust.numel() == N, ShapeMismatch,
              "the evaluation's adversarial examples do not match its data");
  DetectorRobustness d;
  d.detector = detector.name();
  d.threshold = detector.threshold();
  d.samples = N;
  const double total = double(N);
  torch::Tensor clean_scores = batched_scores(detector, data.x, bs);
  d.clean_flagged = (clean_scores > d.threshold).to(torch::kDouble).mean().item<double>();
  torch::Tensor correct = model.predict(data.x) == data.y;
  torch::Tensor rob = robust.to(torch::kBool).flatten();
  d.robust_accuracy_model = rob.to(torch::kDouble).mean().item<double>();
  // Non-adaptive: a broken sample whose adversarial example is flagged is defended.
  torch::Tensor broken = (correct & ~rob).nonzero().flatten();
  torch::Tensor broken_pair = torch::zeros({N}, torch::kBool);
  if (broken.numel() > 0) {
    torch::Tensor s = batched_scores(detector, x_adv.index_select(0, broken), bs);
    broken_pair.index_put_({broken}, s <= d.threshold);
  }
  d.robust_accuracy_detector = double(correct.sum().item<int64_t>() - broken_pair.sum().item<int64_t>()) / total;

  // Adaptive, on every correctly classified sample.
  torch::Tensor ci = correct.nonzero().flatten();
  AdaptiveRun run = adaptive_in_batches(model, detector, data.x.index_select(0, ci), data.y.index_select(0, ci), ao, bs);
  torch::Tensor evaded = torch::zeros({N}, torch::kBool);
  evaded.index_put_({ci}, summarise(run.entry, run.fooled, run.scores, clean_scores.index_select(0, ci), d.threshold,
                                    total));
  d.adaptive = run.entry;
  d.robust_accuracy_adaptive =
      double(correct.sum().item<int64_t>() - (broken_pair | evaded).sum().item<int64_t>()) / total;
  return d;
}

}  // namespace aegis
