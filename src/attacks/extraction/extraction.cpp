#include "aegis/attacks/extraction/extraction.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

nlohmann::json ExtractionResult::to_json() const {
  nlohmann::json j = {{"method", method},   {"kind", "model-extraction"}, {"atlas", "AML.T0024.002"},
                      {"owasp", "ML05"},    {"access", access.to_json()}, {"budget", budget},
                      {"queries", queries}, {"seconds", seconds},         {"details", details}};
  if (substitute)
    j["substitute"] = {{"architecture", substitute->meta().architecture},
                       {"parameters", substitute->parameter_count()}};
  return j;
}

void TransferOptions::validate() const {
  AEGIS_CHECK(eps_ > 0 && std::isfinite(eps_), InvalidArgument, "transfer: eps must be > 0, got " << eps_);
  AEGIS_CHECK(norm_ == Norm::Linf || norm_ == Norm::L2, InvalidArgument, "transfer: norm must be linf or l2");
  AEGIS_CHECK(steps_ >= 1, InvalidArgument, "transfer: steps must be >= 1, got " << steps_);
  AEGIS_CHECK(samples_ >= 1, InvalidArgument, "transfer: samples must be >= 1, got " << samples_);
}

nlohmann::json ExtractionEvaluation::to_json() const {
  return {{"test_samples", test_samples},
          {"fidelity", fidelity},
          {"substitute_accuracy", substitute_accuracy},
          {"victim_accuracy", victim_accuracy},
          {"transfer",
           {{"samples", transfer_samples},
            {"norm", norm_name(transfer.norm_)},
            {"eps", transfer.eps_},
            {"steps", transfer.steps_},
            {"transfer_rate", transfer_rate},
            {"noise_rate", noise_rate},
            {"substitute_white_box_rate", substitute_white_box_rate},
            {"mean_l2_adversarial", mean_l2_adversarial},
            {"mean_l2_noise", mean_l2_noise}}}};
}

namespace {

torch::Tensor predict_all(Classifier& m, const torch::Tensor& x) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += 512)
    parts.push_back(m.predict(x.narrow(0, i, std::min<int64_t>(512, x.size(0) - i))));
  return torch::cat(parts);
}

}  // namespace

ExtractionEvaluation evaluate_extraction(Classifier& victim, Classifier& substitute, const Dataset& test,
                                         const TransferOptions& t) {
  t.validate();
  AEGIS_CHECK(test.size() > 0, InvalidArgument, "extraction evaluation needs test data");
  check_compatible(victim.meta(), test);
  check_compatible(substitute.meta(), test);
  AEGIS_CHECK(victim.meta().num_classes == substitute.meta().num_classes, ShapeMismatch,
              "victim and substitute disagree on the number of classes");
  ExtractionEvaluation e;
  e.transfer = t;
  e.test_samples = test.size();
  torch::Tensor pv = predict_all(victim, test.x), ps = predict_all(substitute, test.x);
  e.fidelity = (pv == ps).to(torch::kDouble).mean().item<double>();
  e.substitute_accuracy = (ps == test.y).to(torch::kDouble).mean().item<double>();
  e.victim_accuracy = (pv == test.y).to(torch::kDouble).mean().item<double>();

  torch::Tensor idx = (pv == test.y).nonzero().flatten();
  if (idx.numel() > t.samples_) idx = idx.narrow(0, 0, t.samples_);
  e.transfer_samples = idx.numel();
  if (e.transfer_samples == 0 || !substitute.has_gradients()) return e;
  torch::Tensor x = test.x.index_select(0, idx), y = test.y.index_select(0, idx);
  PGD pgd(PGDOptions(t.eps_).norm(t.norm_).steps(t.steps_).seed(t.seed_).early_stop(false));
  AttackResult r = pgd.run(substitute, x, y);
  e.substitute_white_box_rate = r.success_rate();
  e.transfer_rate = (predict_all(victim, r.x_adv) != y).to(torch::kDouble).mean().item<double>();

  // Noise of the same per-sample norm as each adversarial perturbation.
  const ModelMeta& m = victim.meta();
  auto gen = make_generator(t.seed_, "transfer-noise");
  torch::Tensor delta = r.x_adv - x;
  torch::Tensor noise;
  if (t.norm_ == Norm::Linf) {
    // Random signs at the perturbation's own Linf size (the corner PGD mostly
    // reaches).
    torch::Tensor signs = torch::randint(0, 2, x.sizes(), gen).to(x.scalar_type()) * 2 - 1;
    std::vector<int64_t> view(size_t(x.dim()), 1);
    view[0] = x.size(0);
    noise = signs * std::get<0>(delta.flatten(1).abs().max(1)).view(view);
  } else {
    torch::Tensor dir = torch::randn(x.sizes(), gen);
    std::vector<int64_t> view(size_t(x.dim()), 1);
    view[0] = x.size(0);
    noise = dir / dir.flatten(1).norm(2, 1).clamp_min(1e-12).view(view) * delta.flatten(1).norm(2, 1).view(view);
  }
  torch::Tensor x_noise = (x + noise).clamp(m.clip_min, m.clip_max);
  e.noise_rate = (predict_all(victim, x_noise) != y).to(torch::kDouble).mean().item<double>();
  e.mean_l2_adversarial = delta.flatten(1).norm(2, 1).mean().item<double>();
  e.mean_l2_noise = (x_noise - x).flatten(1).norm(2, 1).mean().item<double>();
  return e;
}

std::vector<ExtractionCurvePoint> extraction_curve(Classifier& victim, const Dataset& test,
                                                   const std::vector<int64_t>& budgets,
                                                   const std::function<ExtractionResult(int64_t)>& extract,
                                                   const TransferOptions& transfer) {
  AEGIS_CHECK(!budgets.empty(), InvalidArgument, "extraction curve needs at least one budget");
  std::vector<ExtractionCurvePoint> out;
  for (int64_t b : budgets) {
    AEGIS_CHECK(b >= 1, InvalidArgument, "query budgets must be >= 1, got " << b);
    ExtractionCurvePoint p;
    p.budget = b;
    p.extraction = extract(b);
    p.evaluation = evaluate_extraction(victim, *p.extraction.substitute, test, transfer);
    out.push_back(std::move(p));
  }
  return out;
}

nlohmann::json curve_to_json(const std::vector<ExtractionCurvePoint>& curve) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : curve)
    j.push_back({{"budget", p.budget}, {"extraction", p.extraction.to_json()}, {"evaluation", p.evaluation.to_json()}});
  return j;
}

Dataset noise_queries(const ModelMeta& meta, int64_t n, uint64_t seed) {
  AEGIS_CHECK(n >= 1, InvalidArgument, "noise query set needs n >= 1");
  auto gen = make_generator(seed, "noise-queries");
  std::vector<int64_t> shape = {n};
  shape.insert(shape.end(), meta.input_shape.begin(), meta.input_shape.end());
  Dataset d;
  d.x = torch::rand(shape, gen) * (meta.clip_max - meta.clip_min) + meta.clip_min;
  d.y = torch::zeros({n}, torch::kLong);
  d.source = "uniform noise";
  return d;
}

}  // namespace aegis
