#include "aegis/defenses/detectors/mahalanobis_detector.h"

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

MahalanobisDetector::MahalanobisDetector(std::shared_ptr<ScriptClassifier> model, torch::Tensor means,
                                         torch::Tensor precision)
    : model_(std::move(model)), means_(means.to(torch::kDouble)), precision_(precision.to(torch::kDouble)) {
  AEGIS_CHECK(model_ != nullptr, InvalidArgument, "a detector needs the model it watches");
  AEGIS_CHECK(model_->has_features(), Unsupported,
              "the Mahalanobis detector needs a model with features() "
              "(penultimate layer)");
  AEGIS_CHECK(means_.dim() == 2 && precision_.dim() == 2 && precision_.size(0) == precision_.size(1) &&
                  precision_.size(0) == means_.size(1),
              CorruptData, "Mahalanobis statistics have inconsistent shapes");
  AEGIS_CHECK(means_.size(0) == model_->meta().num_classes, CorruptData,
              "Mahalanobis statistics have " << means_.size(0) << " classes, the model " << model_->meta().num_classes);
}

std::unique_ptr<MahalanobisDetector> MahalanobisDetector::fit(std::shared_ptr<ScriptClassifier> model,
                                                              const Dataset& data, const MahalanobisOptions& o) {
  AEGIS_CHECK(model != nullptr, InvalidArgument, "a detector needs the model it watches");
  AEGIS_CHECK(o.ridge_ > 0, InvalidArgument, "Mahalanobis ridge must be > 0");
  AEGIS_CHECK(model->has_features(), Unsupported,
              "the Mahalanobis detector needs a model with features() "
              "(penultimate layer)");
  const int64_t C = model->meta().num_classes;
  std::vector<torch::Tensor> feats;
  {
    torch::NoGradGuard g;
    for (const Batch& b : data.batches(o.batch_size_)) feats.push_back(model->features(b.x).to(torch::kDouble));
  }
  AEGIS_CHECK(!feats.empty(), InvalidArgument, "Mahalanobis fit needs data");
  torch::Tensor f = torch::cat(feats);
  torch::Tensor y = data.y;
  const int64_t d = f.size(1);
  torch::Tensor means = torch::zeros({C, d}, torch::kDouble);
  torch::Tensor centred = torch::empty_like(f);
  for (int64_t c = 0; c < C; ++c) {
    torch::Tensor idx = (y == c).nonzero().flatten();
    AEGIS_CHECK(idx.numel() > 0, InvalidArgument, "Mahalanobis fit: class " << c << " has no samples");
    torch::Tensor fc = f.index_select(0, idx);
    means[c] = fc.mean(0);
    centred.index_copy_(0, idx, fc - means[c]);
  }
  torch::Tensor cov = centred.t().mm(centred) / double(f.size(0));
  double scale = cov.diagonal().mean().item<double>();
  cov += torch::eye(d, torch::kDouble) * (o.ridge_ * std::max(scale, 1e-12));
  torch::Tensor precision = torch::linalg::inv(cov);
  return std::make_unique<MahalanobisDetector>(std::move(model), means, precision);
}

torch::Tensor MahalanobisDetector::distances(const torch::Tensor& features) const {
  torch::Tensor f = features.to(torch::kDouble);
  torch::Tensor diff = f.unsqueeze(1) - means_.unsqueeze(0);  // [B, C, d]
  return (diff.matmul(precision_) * diff).sum(-1);
}

torch::Tensor MahalanobisDetector::score(const torch::Tensor& x) {
  torch::NoGradGuard g;
  return std::get<0>(distances(model_->features(x)).min(1)).to(torch::kFloat);
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
  return {{"means", tensor_rows(means_)}, {"precision", tensor_rows(precision_)}};
}

std::unique_ptr<Detector> MahalanobisDetector::from_state(const nlohmann::json& s, ClassifierPtr model) {
  auto script = std::dynamic_pointer_cast<ScriptClassifier>(model);
  AEGIS_CHECK(script != nullptr, Unsupported, "the Mahalanobis detector needs a TorchScript model");
  torch::Tensor means, precision;
  try {
    means = rows_tensor(s.at("means"));
    precision = rows_tensor(s.at("precision"));
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "Mahalanobis detector state: " << e.what());
  }
  return std::make_unique<MahalanobisDetector>(script, means, precision);
}

}  // namespace aegis
