#include "aegis/defenses/detectors/lid_detector.h"

#include <torch/torch.h>

#include <limits>
#include <string>

#include "aegis/core/error.h"
#include "defenses/detectors/logistic_regression.h"
#include "defenses/detectors/tensor_codec.h"

namespace aegis {

namespace {

/// [B, M] Euclidean distances between rows of a [B, d] and r [M, d].
torch::Tensor distances(const torch::Tensor& a, const torch::Tensor& r) {
  torch::Tensor sq = a.pow(2).sum(1, true) + r.pow(2).sum(1).unsqueeze(0) - 2 * a.matmul(r.t());
  return sq.clamp_min(1e-12).sqrt();
}

/// The maximum-likelihood LID estimate from [B, M] distances: the k nearest.
torch::Tensor lid_from_distances(const torch::Tensor& d, int64_t k) {
  torch::Tensor r = std::get<0>(d.topk(k, 1, /*largest=*/false, /*sorted=*/true)).to(torch::kDouble).clamp_min(1e-12);
  torch::Tensor mean_log = torch::log(r / r.select(1, k - 1).unsqueeze(1)).mean(1);
  return -1.0 / mean_log.clamp_max(-1e-9);
}

std::vector<int64_t> resolve_layers(const std::vector<int64_t>& wanted, int64_t maps) {
  std::vector<int64_t> out;
  if (wanted.empty()) {
    for (int64_t i = 0; i < maps; ++i) out.push_back(i);
    return out;
  }
  for (int64_t l : wanted) {
    int64_t i = l < 0 ? maps + l : l;
    AEGIS_CHECK(i >= 0 && i < maps, InvalidArgument,
                "LID layer " << l << " is out of range: the model has " << maps << " feature maps");
    out.push_back(i);
  }
  return out;
}

std::vector<double> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

LIDDetector::LIDDetector(std::shared_ptr<ScriptClassifier> model, torch::Tensor reference, std::vector<int64_t> layers,
                         int64_t k, torch::Tensor mean, torch::Tensor std, torch::Tensor weights)
    : model_(std::move(model)), reference_(std::move(reference)), layers_(std::move(layers)), k_(k) {
  AEGIS_CHECK(model_ != nullptr, InvalidArgument, "a detector needs the model it watches");
  AEGIS_CHECK(model_->has_features() || model_->has_feature_maps(), Unsupported,
              "the LID detector needs a model with feature_maps() or features()");
  AEGIS_CHECK(reference_.defined() && reference_.dim() >= 2, CorruptData, "LID detector: no reference inputs");
  model_->check_input(reference_);
  AEGIS_CHECK(k_ >= 2 && k_ < reference_.size(0), InvalidArgument,
              "LID: k must be >= 2 and below the " << reference_.size(0) << " reference inputs, got " << k_);
  const int64_t L = int64_t(layers_.size()) + 1;
  mean_ = mean.to(torch::kDouble);
  std_ = std.to(torch::kDouble);
  AEGIS_CHECK(mean_.numel() == L && std_.numel() == L, CorruptData,
              "LID detector: " << L << " layers but " << mean_.numel() << " means and " << std_.numel() << " spreads");
  AEGIS_CHECK((std_ > 0).all().item<bool>(), CorruptData, "LID detector: every layer's spread must be > 0");
  weights_ = weights.defined() ? weights.to(torch::kDouble) : torch::ones({L}, torch::kDouble);
  AEGIS_CHECK(weights_.numel() == L, CorruptData, "LID detector: " << L << " layers but " << weights_.numel() << " weights");
}

std::vector<torch::Tensor> LIDDetector::activations(const torch::Tensor& x) {
  std::vector<torch::Tensor> maps = model_->feature_maps(x);
  std::vector<torch::Tensor> out;
  for (int64_t i : layers_) {
    AEGIS_CHECK(i < int64_t(maps.size()), ShapeMismatch,
                "the LID detector uses feature map " << i << " but the model has " << maps.size()
                                                     << " (fitted for another model?)");
    out.push_back(maps[size_t(i)].flatten(1));
  }
  out.push_back(model_->forward(x));  // the logits
  return out;
}

const std::vector<torch::Tensor>& LIDDetector::reference_activations() {
  if (reference_acts_.empty()) {
    torch::NoGradGuard g;
    reference_acts_ = activations(reference_);
  }
  return reference_acts_;
}

torch::Tensor LIDDetector::lids_graph(const torch::Tensor& x) {
  const auto& ref = reference_activations();
  std::vector<torch::Tensor> acts = activations(x);
  std::vector<torch::Tensor> cols;
  for (size_t i = 0; i < acts.size(); ++i) cols.push_back(lid_from_distances(distances(acts[i], ref[i]), k_));
  return torch::stack(cols, 1);
}

torch::Tensor LIDDetector::lids(const torch::Tensor& x) {
  torch::NoGradGuard g;
  return lids_graph(x);
}

torch::Tensor LIDDetector::score_graph(const torch::Tensor& x) {
  return ((lids_graph(x) - mean_) / std_).matmul(weights_).to(torch::kFloat);
}

torch::Tensor LIDDetector::score(const torch::Tensor& x) {
  torch::NoGradGuard g;
  return score_graph(x);
}

std::unique_ptr<LIDDetector> LIDDetector::fit(std::shared_ptr<ScriptClassifier> model, const Dataset& data,
                                              const LIDOptions& o) {
  AEGIS_CHECK(model != nullptr, InvalidArgument, "a detector needs the model it watches");
  AEGIS_CHECK(model->has_features() || model->has_feature_maps(), Unsupported,
              "the LID detector needs a model with feature_maps() or features()");
  AEGIS_CHECK(o.reference_ > o.k_ && o.k_ >= 2, InvalidArgument,
              "LID: k must be >= 2 and below the reference size; got k " << o.k_ << ", reference " << o.reference_);
  AEGIS_CHECK(data.size() >= o.reference_ + 2, InvalidArgument,
              "LID: fitting needs the " << o.reference_ << " reference inputs and at least 2 more, got " << data.size());
  torch::Tensor reference = data.x.slice(0, 0, o.reference_).clone();
  int64_t maps = 0;
  {
    torch::NoGradGuard g;
    maps = int64_t(model->feature_maps(reference.slice(0, 0, 1)).size());
  }
  std::vector<int64_t> layers = resolve_layers(o.layers_, maps);
  const int64_t L = int64_t(layers.size()) + 1;
  // Provisional statistics, then each layer's mean and spread on the rest.
  auto det = std::make_unique<LIDDetector>(model, reference, layers, o.k_, torch::zeros({L}), torch::ones({L}));
  torch::Tensor rest = data.x.slice(0, o.reference_, data.size());
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < rest.size(0); i += o.batch_size_)
    parts.push_back(det->lids(rest.slice(0, i, std::min(i + o.batch_size_, rest.size(0)))));
  torch::Tensor z = torch::cat(parts);
  det->mean_ = z.mean(0);
  det->std_ = z.std(0).clamp_min(1e-6);
  return det;
}

void LIDDetector::fit_weights(const torch::Tensor& clean_x, const torch::Tensor& adversarial_x, double l2) {
  AEGIS_CHECK(clean_x.size(0) > 0 && adversarial_x.size(0) > 0, InvalidArgument,
              "fitting the LID layer weights needs clean and adversarial inputs");
  auto standardised = [&](const torch::Tensor& x) { return (lids(x) - mean_) / std_; };
  torch::Tensor theta =
      detector_internal::fit_logistic_weights(standardised(clean_x), standardised(adversarial_x), l2);
  weights_ = theta.slice(0, 0, theta.size(0) - 1).clone();
  calibrated_fpr_ = std::numeric_limits<double>::quiet_NaN();  // the old threshold no longer applies
}

nlohmann::json LIDDetector::state_json() const {
  nlohmann::json s = {{"k", k_},
                      {"layers", layers_},
                      {"mean", to_vector(mean_)},
                      {"std", to_vector(std_)},
                      {"weights", to_vector(weights_)}};
  detector_internal::put_f32(s, "reference", reference_);
  return s;
}

std::unique_ptr<Detector> LIDDetector::from_state(const nlohmann::json& s, ClassifierPtr model) {
  auto script = std::dynamic_pointer_cast<ScriptClassifier>(model);
  AEGIS_CHECK(script != nullptr, Unsupported, "the LID detector needs a TorchScript model");
  try {
    torch::Tensor reference = detector_internal::get_f32(s, "reference", "LID detector reference inputs");
    std::vector<int64_t> layers = s.at("layers").get<std::vector<int64_t>>();
    for (int64_t l : layers) AEGIS_CHECK(l >= 0, CorruptData, "LID detector: layer indices must be >= 0");
    return std::make_unique<LIDDetector>(script, reference, layers, s.at("k").get<int64_t>(),
                                         torch::tensor(s.at("mean").get<std::vector<double>>(), torch::kDouble),
                                         torch::tensor(s.at("std").get<std::vector<double>>(), torch::kDouble),
                                         torch::tensor(s.at("weights").get<std::vector<double>>(), torch::kDouble));
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "LID detector state: " << e.what());
  }
}

}  // namespace aegis
