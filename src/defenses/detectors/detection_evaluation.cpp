#include "aegis/defenses/detectors/detection_evaluation.h"

#include <torch/torch.h>

#include <chrono>

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

nlohmann::json AttackDetection::to_json() const {
  return {{"attack", attack},         {"options", options}, {"attacked", attacked},
          {"successful", successful}, {"auc", auc},         {"tpr", tpr}};
}

nlohmann::json DetectionEvaluation::to_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : attacks) a.push_back(x.to_json());
  return {{"detector", detector},   {"threshold", threshold},         {"target_fpr", target_fpr},
          {"clean_fpr", clean_fpr}, {"clean_samples", clean_samples}, {"attacks", a},
          {"seconds", seconds}};
}

namespace {
torch::Tensor batched_scores(Detector& d, const torch::Tensor& x, int64_t bs) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < x.size(0); i += bs) out.push_back(d.score(x.slice(0, i, std::min(i + bs, x.size(0)))));
  return out.empty() ? torch::zeros({0}) : torch::cat(out).to(torch::kDouble);
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
  for (const auto& [name, params] : attacks) {
    auto attack = make_attack(name, params);
    AttackDetection a;
    a.attack = name;
    a.options = attack->options_json();
    a.attacked = xc.size(0);
    std::vector<torch::Tensor> adv;
    for (int64_t i = 0; i < xc.size(0); i += o.batch_size_) {
      int64_t j = std::min(i + o.batch_size_, xc.size(0));
      AttackResult r = attack->run(model, xc.slice(0, i, j), yc.slice(0, i, j));
      torch::Tensor s = r.success.nonzero().flatten();
      if (s.numel() > 0) adv.push_back(r.x_adv.index_select(0, s));
    }
    if (!adv.empty()) {
      torch::Tensor xa = torch::cat(adv);
      a.successful = xa.size(0);
      torch::Tensor adv_scores = batched_scores(detector, xa, o.batch_size_);
      a.auc = roc_auc(clean_scores, adv_scores);
      a.tpr = (adv_scores > e.threshold).to(torch::kDouble).mean().item<double>();
    }
    e.attacks.push_back(a);
  }
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return e;
}

}  // namespace aegis
