#include "aegis/defenses/certification/randomized_smoothing.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"
#include "aegis/defenses/certification/binomial.h"

namespace aegis {

void RandomizedSmoothingOptions::validate() const {
  AEGIS_CHECK(sigma_ > 0 && std::isfinite(sigma_), InvalidArgument, "smoothing: sigma must be > 0, got " << sigma_);
  AEGIS_CHECK(n0_ >= 1, InvalidArgument, "smoothing: n0 must be >= 1, got " << n0_);
  AEGIS_CHECK(n_ >= 1, InvalidArgument, "smoothing: n must be >= 1, got " << n_);
  AEGIS_CHECK(alpha_ > 0 && alpha_ < 1, InvalidArgument, "smoothing: alpha must be in (0, 1), got " << alpha_);
  AEGIS_CHECK(batch_size_ >= 1, InvalidArgument, "smoothing: batch size must be >= 1");
}

nlohmann::json RandomizedSmoothingOptions::to_json() const {
  return {{"sigma", sigma_}, {"n0", n0_}, {"n", n_}, {"alpha", alpha_}, {"seed", seed_}};
}

namespace {

/// Class counts of the base model's predictions on `num` noisy copies of one
/// sample.
torch::Tensor sample_counts(Classifier& model, const torch::Tensor& x1, int64_t num,
                            const RandomizedSmoothingOptions& o, at::Generator& gen) {
  torch::Tensor counts = torch::zeros({model.meta().num_classes}, torch::kLong);
  for (int64_t done = 0; done < num;) {
    int64_t b = std::min(o.batch_size_, num - done);
    std::vector<int64_t> shape = {b};
    for (int64_t s : x1.sizes()) shape.push_back(s);
    torch::Tensor batch = x1.unsqueeze(0).expand(shape) + o.sigma_ * torch::randn(shape, gen).to(x1.scalar_type());
    torch::Tensor pred = model.predict(batch);
    counts += torch::bincount(pred, {}, model.meta().num_classes);
    done += b;
  }
  return counts;
}

}  // namespace

double SmoothingCertificate::abstain_rate() const {
  if (samples() == 0) return 0;
  return (prediction < 0).to(torch::kDouble).mean().item<double>();
}

double SmoothingCertificate::certified_accuracy(double r) const {
  AEGIS_CHECK(labels.defined(), InvalidArgument, "certified accuracy needs labels");
  if (samples() == 0) return 0;
  return ((prediction == labels) & (radius >= r)).to(torch::kDouble).mean().item<double>();
}

double SmoothingCertificate::certified_fraction_of_correct(double r) const {
  AEGIS_CHECK(labels.defined(), InvalidArgument, "needs labels");
  torch::Tensor correct = prediction == labels;
  int64_t c = correct.sum().item<int64_t>();
  if (c == 0) return 0;
  return double((correct & (radius >= r)).sum().item<int64_t>()) / double(c);
}

nlohmann::json SmoothingCertificate::to_json(const std::vector<double>& radii, bool per_sample) const {
  nlohmann::json j = {
      {"options", options.to_json()}, {"samples", samples()}, {"abstain_rate", abstain_rate()}, {"seconds", seconds}};
  if (samples() > 0) {
    torch::Tensor certified = prediction >= 0;
    j["mean_radius_certified"] = certified.any().item<bool>() ? radius.index({certified}).mean().item<double>() : 0.0;
    j["median_radius"] = radius.median().item<double>();
  }
  if (labels.defined() && samples() > 0) {
    j["smoothed_accuracy"] = (prediction == labels).to(torch::kDouble).mean().item<double>();
    j["nonzero_radius_fraction_of_correct"] = certified_fraction_of_correct(1e-12);
    nlohmann::json ca = nlohmann::json::array();
    for (double r : radii) ca.push_back({{"radius", r}, {"certified_accuracy", certified_accuracy(r)}});
    j["certified_accuracy"] = ca;
  }
  if (per_sample) {
    std::vector<int64_t> p(prediction.data_ptr<int64_t>(), prediction.data_ptr<int64_t>() + samples());
    std::vector<double> rr(radius.data_ptr<double>(), radius.data_ptr<double>() + samples());
    j["prediction"] = p;
    j["radius"] = rr;
  }
  return j;
}

SmoothingCertificate certify_smoothed(Classifier& model, const torch::Tensor& x, const torch::Tensor& labels,
                                      const RandomizedSmoothingOptions& o) {
  o.validate();
  model.check_input(x);
  AEGIS_CHECK(!labels.defined() || (labels.dim() == 1 && labels.size(0) == x.size(0)), ShapeMismatch,
              "labels must be [" << x.size(0) << "]");
  auto start = std::chrono::steady_clock::now();
  const int64_t N = x.size(0);
  SmoothingCertificate c;
  c.options = o;
  c.prediction = torch::full({N}, -1, torch::kLong);
  c.radius = torch::zeros({N}, torch::kDouble);
  c.p_lower = torch::zeros({N}, torch::kDouble);
  if (labels.defined()) c.labels = labels.to(torch::kLong);
  auto gen = make_generator(o.seed_, "randomized-smoothing");
  Progress bar("certify", N);
  for (int64_t i = 0; i < N; ++i) {
    torch::Tensor xi = x[i];
    int64_t cA = sample_counts(model, xi, o.n0_, o, gen).argmax().item<int64_t>();
    int64_t nA = sample_counts(model, xi, o.n_, o, gen)[cA].item<int64_t>();
    double pA = clopper_pearson_lower(nA, o.n_, o.alpha_);
    c.p_lower[i] = pA;
    if (pA > 0.5) {
      c.prediction[i] = cA;
      c.radius[i] = o.sigma_ * normal_quantile(pA);
    }
    bar.advance(1);
  }
  bar.finish("");
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return c;
}

torch::Tensor majority_smoothed(Classifier& model, const torch::Tensor& x, const RandomizedSmoothingOptions& o) {
  o.validate();
  model.check_input(x);
  auto gen = make_generator(o.seed_, "randomized-smoothing-majority");
  torch::Tensor out = torch::empty({x.size(0)}, torch::kLong);
  for (int64_t i = 0; i < x.size(0); ++i) out[i] = sample_counts(model, x[i], o.n_, o, gen).argmax().item<int64_t>();
  return out;
}

torch::Tensor predict_smoothed(Classifier& model, const torch::Tensor& x, const RandomizedSmoothingOptions& o) {
  o.validate();
  model.check_input(x);
  auto gen = make_generator(o.seed_, "randomized-smoothing-predict");
  torch::Tensor out = torch::full({x.size(0)}, -1, torch::kLong);
  for (int64_t i = 0; i < x.size(0); ++i) {
    torch::Tensor counts = sample_counts(model, x[i], o.n_, o, gen);
    auto [top, idx] = counts.topk(2);
    int64_t nA = top[0].item<int64_t>(), nB = top[1].item<int64_t>();
    if (binomial_test_half(nA, nA + nB) <= o.alpha_) out[i] = idx[0].item<int64_t>();
  }
  return out;
}

}  // namespace aegis
