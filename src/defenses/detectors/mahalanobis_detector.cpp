#include "aegis/defenses/detectors/mahalanobis_detector.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "aegis/core/error.h"
#include "defenses/detectors/logistic_regression.h"

namespace aegis {

namespace {

constexpr double kTiny = 1e-12;

/// One layer's activations as a vector per sample: [B, d] as is, a map
/// [B, C, ...] as each channel's mean and standard deviation over positions.
torch::Tensor summarise(const torch::Tensor& map) {
  if (map.dim() <= 2) return map.flatten(1).to(torch::kDouble);
  torch::Tensor f = map.flatten(2).to(torch::kDouble);  // [B, C, positions]
  return torch::cat({f.mean(2), f.std(2, /*unbiased=*/false)}, 1);
}

/// [B, classes] squared Mahalanobis distances of features [B, d] to the class means.
torch::Tensor squared_distances(const torch::Tensor& f, const torch::Tensor& means, const torch::Tensor& precision) {
  torch::Tensor diff = f.unsqueeze(1) - means.unsqueeze(0);  // [B, C, d]
  return (diff.matmul(precision) * diff).sum(-1);
}

void check_model(const std::shared_ptr<ScriptClassifier>& model) {
  AEGIS_CHECK(model != nullptr, InvalidArgument, "a detector needs the model it watches");
  AEGIS_CHECK(model->has_features() || model->has_feature_maps(), Unsupported,
              "the Mahalanobis detector needs a model with features() (penultimate layer) or feature_maps()");
}

}  // namespace

MahalanobisDetector::MahalanobisDetector(std::shared_ptr<ScriptClassifier> model, std::vector<Layer> layers,
                                         torch::Tensor weights, double noise)
    : model_(std::move(model)), layers_(std::move(layers)), noise_(noise) {
  check_model(model_);
  AEGIS_CHECK(!layers_.empty(), CorruptData, "Mahalanobis detector has no layers");
  AEGIS_CHECK(std::isfinite(noise_) && noise_ >= 0, CorruptData, "Mahalanobis input noise must be >= 0");
  for (Layer& l : layers_) {
    l.means = l.means.to(torch::kDouble);
    l.precision = l.precision.to(torch::kDouble);
    AEGIS_CHECK(l.means.dim() == 2 && l.precision.dim() == 2 && l.precision.size(0) == l.precision.size(1) &&
                    l.precision.size(0) == l.means.size(1),
                CorruptData, "Mahalanobis statistics of layer " << l.index << " have inconsistent shapes");
    AEGIS_CHECK(l.means.size(0) == model_->meta().num_classes, CorruptData,
                "Mahalanobis statistics have " << l.means.size(0) << " classes, the model "
                                               << model_->meta().num_classes);
    AEGIS_CHECK(std::isfinite(l.log_mean) && std::isfinite(l.log_std) && l.log_std > 0, CorruptData,
                "Mahalanobis layer " << l.index << " has an invalid standardisation");
  }
  weights_ = weights.defined() ? weights.to(torch::kDouble).flatten()
                               : torch::ones({int64_t(layers_.size())}, torch::kDouble);
  AEGIS_CHECK(weights_.size(0) == int64_t(layers_.size()), CorruptData,
              "Mahalanobis detector has " << weights_.size(0) << " weights for " << layers_.size() << " layers");
  AEGIS_CHECK(torch::isfinite(weights_).all().item<bool>(), CorruptData, "Mahalanobis weights must be finite");
}

std::unique_ptr<MahalanobisDetector> MahalanobisDetector::fit(std::shared_ptr<ScriptClassifier> model,
                                                              const Dataset& data, const MahalanobisOptions& o) {
  check_model(model);
  AEGIS_CHECK(o.ridge_ > 0, InvalidArgument, "Mahalanobis ridge must be > 0");
  AEGIS_CHECK(std::isfinite(o.noise_) && o.noise_ >= 0, InvalidArgument, "Mahalanobis input noise must be >= 0");
  AEGIS_CHECK(o.batch_size_ > 0, InvalidArgument, "batch size must be > 0");
  const int64_t C = model->meta().num_classes;
  std::vector<std::vector<torch::Tensor>> per_map;  // [map][batch]
  {
    torch::NoGradGuard g;
    for (const Batch& b : data.batches(o.batch_size_)) {
      std::vector<torch::Tensor> maps = model->feature_maps(b.x);
      per_map.resize(maps.size());
      for (size_t m = 0; m < maps.size(); ++m) per_map[m].push_back(summarise(maps[m]));
    }
  }
  AEGIS_CHECK(!per_map.empty(), InvalidArgument, "Mahalanobis fit needs data");
  const int64_t n_maps = int64_t(per_map.size());
  std::vector<int64_t> chosen;
  if (o.layers_.empty()) {
    for (int64_t i = 0; i < n_maps; ++i) chosen.push_back(i);
  } else {
    for (int64_t i : o.layers_) {
      int64_t k = i < 0 ? n_maps + i : i;
      AEGIS_CHECK(k >= 0 && k < n_maps, InvalidArgument,
                  "Mahalanobis layer " << i << " out of range: the model has " << n_maps << " feature maps");
      if (std::find(chosen.begin(), chosen.end(), k) == chosen.end()) chosen.push_back(k);
    }
  }
  const torch::Tensor& y = data.y;
  std::vector<torch::Tensor> class_idx;
  for (int64_t c = 0; c < C; ++c) {
    class_idx.push_back((y == c).nonzero().flatten());
    AEGIS_CHECK(class_idx.back().numel() > 0, InvalidArgument, "Mahalanobis fit: class " << c << " has no samples");
  }

  std::vector<Layer> layers;
  for (int64_t k : chosen) {
    torch::Tensor f = torch::cat(per_map[size_t(k)]);
    const int64_t d = f.size(1);
    Layer l;
    l.index = k;
    l.means = torch::zeros({C, d}, torch::kDouble);
    torch::Tensor centred = torch::empty_like(f);
    for (int64_t c = 0; c < C; ++c) {
      torch::Tensor fc = f.index_select(0, class_idx[size_t(c)]);
      l.means[c] = fc.mean(0);
      centred.index_copy_(0, class_idx[size_t(c)], fc - l.means[c]);
    }
    torch::Tensor cov = centred.t().mm(centred) / double(f.size(0));
    double scale = cov.diagonal().mean().item<double>();
    cov += torch::eye(d, torch::kDouble) * (o.ridge_ * std::max(scale, kTiny));
    l.precision = torch::linalg::inv(cov);
    torch::Tensor logd = torch::log(std::get<0>(squared_distances(f, l.means, l.precision).min(1)) + kTiny);
    l.log_mean = logd.mean().item<double>();
    l.log_std = std::max(logd.numel() > 1 ? logd.std().item<double>() : 1.0, 1e-6);
    layers.push_back(std::move(l));
  }
  return std::make_unique<MahalanobisDetector>(std::move(model), std::move(layers), torch::Tensor(), o.noise_);
}

torch::Tensor MahalanobisDetector::distances(size_t layer, const torch::Tensor& features) const {
  AEGIS_CHECK(layer < layers_.size(), InvalidArgument, "no Mahalanobis layer " << layer);
  const Layer& l = layers_[layer];
  torch::Tensor f = features.to(torch::kDouble);
  AEGIS_CHECK(f.dim() == 2 && f.size(1) == l.means.size(1), ShapeMismatch,
              "Mahalanobis layer " << l.index << " expects " << l.means.size(1) << " features, got "
                                   << (f.dim() == 2 ? f.size(1) : -1));
  return squared_distances(f, l.means, l.precision);
}

torch::Tensor MahalanobisDetector::layer_scores_graph(const torch::Tensor& x) {
  std::vector<torch::Tensor> maps = model_->feature_maps(x);
  std::vector<torch::Tensor> cols;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    AEGIS_CHECK(l.index < int64_t(maps.size()), ShapeMismatch,
                "the detector uses feature map " << l.index << " but the model has " << maps.size()
                                                 << " (fitted for another model?)");
    torch::Tensor d = std::get<0>(distances(i, summarise(maps[size_t(l.index)])).min(1));
    cols.push_back((torch::log(d + kTiny) - l.log_mean) / l.log_std);
  }
  return torch::stack(cols, 1);
}

torch::Tensor MahalanobisDetector::layer_scores(const torch::Tensor& x) {
  torch::NoGradGuard g;
  return layer_scores_graph(x);
}

torch::Tensor MahalanobisDetector::preprocess(const torch::Tensor& x) {
  // Move the input towards the nearest class (lower score) before scoring:
  // clean inputs get much closer than adversarial ones (Lee et al.).
  torch::Tensor xg = x.detach().clone().requires_grad_(true);
  torch::Tensor total = layer_scores_graph(xg).matmul(weights_).sum();
  torch::Tensor grad = torch::autograd::grad({total}, {xg})[0];
  return (x.detach() - noise_ * grad.sign()).clamp(model_->meta().clip_min, model_->meta().clip_max).detach();
}

torch::Tensor MahalanobisDetector::score(const torch::Tensor& x) {
  torch::Tensor input = noise_ > 0 ? preprocess(x) : x;
  torch::NoGradGuard g;
  return layer_scores_graph(input).matmul(weights_).to(torch::kFloat);
}

torch::Tensor MahalanobisDetector::score_graph(const torch::Tensor& x) {
  torch::Tensor input = noise_ > 0 ? x + (preprocess(x) - x).detach() : x;
  return layer_scores_graph(input).matmul(weights_).to(torch::kFloat);
}

void MahalanobisDetector::fit_weights(const torch::Tensor& clean_x, const torch::Tensor& adversarial_x, double l2) {
  AEGIS_CHECK(clean_x.size(0) > 0 && adversarial_x.size(0) > 0, InvalidArgument,
              "fitting the layer weights needs clean and adversarial inputs");
  torch::Tensor theta = detector_internal::fit_logistic_weights(layer_scores(clean_x), layer_scores(adversarial_x), l2);
  weights_ = theta.slice(0, 0, theta.size(0) - 1).clone();
  calibrated_fpr_ = std::numeric_limits<double>::quiet_NaN();  // the old threshold no longer applies
}

namespace {
nlohmann::json tensor_rows(const torch::Tensor& t) {
  nlohmann::json rows = nlohmann::json::array();
  torch::Tensor c = t.contiguous();
  for (int64_t i = 0; i < c.size(0); ++i) {
    const double* p = c[i].data_ptr<double>();
    rows.push_back(std::vector<double>(p, p + c.size(1)));
  }
  return rows;
}
torch::Tensor rows_tensor(const nlohmann::json& rows) {
  AEGIS_CHECK(rows.is_array() && !rows.empty() && rows[0].is_array(), CorruptData, "expected a matrix");
  const int64_t r = int64_t(rows.size()), c = int64_t(rows[0].size());
  torch::Tensor t = torch::empty({r, c}, torch::kDouble);
  for (int64_t i = 0; i < r; ++i) {
    auto v = rows[size_t(i)].get<std::vector<double>>();
    AEGIS_CHECK(int64_t(v.size()) == c, CorruptData, "ragged matrix");
    t[i] = torch::tensor(v, torch::kDouble);
  }
  return t;
}
}  // namespace

nlohmann::json MahalanobisDetector::state_json() const {
  nlohmann::json ls = nlohmann::json::array();
  for (const Layer& l : layers_)
    ls.push_back({{"index", l.index},
                  {"means", tensor_rows(l.means)},
                  {"precision", tensor_rows(l.precision)},
                  {"log_mean", l.log_mean},
                  {"log_std", l.log_std}});
  torch::Tensor w = weights_.contiguous();
  return {{"layers", ls},
          {"weights", std::vector<double>(w.data_ptr<double>(), w.data_ptr<double>() + w.numel())},
          {"noise", noise_}};
}

std::unique_ptr<Detector> MahalanobisDetector::from_state(const nlohmann::json& s, ClassifierPtr model) {
  auto script = std::dynamic_pointer_cast<ScriptClassifier>(model);
  AEGIS_CHECK(script != nullptr, Unsupported, "the Mahalanobis detector needs a TorchScript model");
  AEGIS_CHECK(!s.contains("means"), CorruptData,
              "this Mahalanobis detector was saved in the single-layer format of an earlier aegis; fit it again "
              "(aegis detect-eval --detector mahalanobis --save ...)");
  std::vector<Layer> layers;
  torch::Tensor weights;
  double noise = 0;
  try {
    for (const auto& j : s.at("layers")) {
      Layer l;
      l.index = j.at("index").get<int64_t>();
      AEGIS_CHECK(l.index >= 0, CorruptData, "Mahalanobis layer index must be >= 0");
      l.means = rows_tensor(j.at("means"));
      l.precision = rows_tensor(j.at("precision"));
      l.log_mean = j.at("log_mean").get<double>();
      l.log_std = j.at("log_std").get<double>();
      layers.push_back(std::move(l));
    }
    weights = torch::tensor(s.at("weights").get<std::vector<double>>(), torch::kDouble);
    noise = s.value("noise", 0.0);
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "Mahalanobis detector state: " << e.what());
  }
  return std::make_unique<MahalanobisDetector>(script, std::move(layers), weights, noise);
}

}  // namespace aegis
