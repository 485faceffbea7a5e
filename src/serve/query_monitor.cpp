#include "aegis/serve/query_monitor.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "aegis/core/error.h"

namespace aegis::serve {

namespace {

// Acklam's rational approximation of the standard normal quantile.
double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425;
  if (p < lo) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normal_quantile(1 - p);
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

}  // namespace

double shapiro_wilk_w(std::vector<double> x) {
  const size_t n = x.size();
  AEGIS_CHECK(n >= 3 && n <= 5000, InvalidArgument, "Shapiro-Wilk needs 3 to 5000 values, got " << n);
  std::sort(x.begin(), x.end());
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / n;
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  if (ss <= 0) return 0.0;  // all equal: as far from normal as it gets
  std::vector<double> m(n), a(n);
  double mm = 0;
  for (size_t i = 0; i < n; ++i) {
    m[i] = normal_quantile((i + 1 - 0.375) / (n + 0.25));
    mm += m[i] * m[i];
  }
  const double u = 1.0 / std::sqrt(static_cast<double>(n));
  auto poly = [u](const double* c, double first) {
    return first + c[1] * u + c[2] * u * u + c[3] * std::pow(u, 3) + c[4] * std::pow(u, 4) + c[5] * std::pow(u, 5);
  };
  static const double c1[] = {0, 0.221157, -0.147981, -2.071190, 4.434685, -2.706056};
  static const double c2[] = {0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633};
  if (n == 3) {
    a[0] = -std::sqrt(0.5), a[2] = std::sqrt(0.5), a[1] = 0;
  } else {
    const double an = poly(c1, m[n - 1] / std::sqrt(mm));
    double phi;
    if (n > 5) {
      const double an1 = poly(c2, m[n - 2] / std::sqrt(mm));
      phi = (mm - 2 * m[n - 1] * m[n - 1] - 2 * m[n - 2] * m[n - 2]) / (1 - 2 * an * an - 2 * an1 * an1);
      for (size_t i = 2; i + 2 < n; ++i) a[i] = m[i] / std::sqrt(phi);
      a[n - 1] = an, a[0] = -an, a[n - 2] = an1, a[1] = -an1;
    } else {
      phi = (mm - 2 * m[n - 1] * m[n - 1]) / (1 - 2 * an * an);
      for (size_t i = 1; i + 1 < n; ++i) a[i] = m[i] / std::sqrt(phi);
      a[n - 1] = an, a[0] = -an;
    }
  }
  double num = 0;
  for (size_t i = 0; i < n; ++i) num += a[i] * x[i];
  return std::min(1.0, num * num / ss);
}

void MonitorOptions::validate() const {
  AEGIS_CHECK(k_ >= 1, InvalidArgument, "monitor k must be >= 1, got " << k_);
  AEGIS_CHECK(history_ >= k_, InvalidArgument, "monitor history (" << history_ << ") must be >= k (" << k_ << ")");
  AEGIS_CHECK(knn_threshold_ >= 0, InvalidArgument, "monitor knn_threshold must be >= 0");
  AEGIS_CHECK(prada_min_queries_ >= 3 && prada_window_ >= prada_min_queries_ && prada_window_ <= 5000, InvalidArgument,
              "PRADA needs 3 <= min_queries <= window <= 5000");
  AEGIS_CHECK(prada_delta_ > 0 && prada_delta_ < 1, InvalidArgument, "PRADA delta must be in (0, 1)");
}

nlohmann::json MonitorOptions::to_json() const {
  return {{"k", k_},
          {"history", history_},
          {"knn_threshold", knn_threshold_},
          {"prada", prada_},
          {"prada_min_queries", prada_min_queries_},
          {"prada_window", prada_window_},
          {"prada_delta", prada_delta_}};
}

nlohmann::json MonitorVerdict::to_json() const {
  return {
      {"alert", alert}, {"source", source}, {"knn_distance", knn_distance}, {"prada_w", prada_w}, {"queries", queries}};
}

QueryMonitor::QueryMonitor(MonitorOptions options) : options_(std::move(options)) { options_.validate(); }

void QueryMonitor::reset(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  keys_.erase(key);
}

MonitorVerdict QueryMonitor::observe(const std::string& key, const torch::Tensor& x) {
  torch::NoGradGuard ng;
  torch::Tensor flat = x.detach().to(torch::kFloat).reshape({x.size(0), -1}).contiguous();
  std::lock_guard<std::mutex> lock(mu_);
  KeyState& s = keys_[key];
  MonitorVerdict v;
  for (int64_t i = 0; i < flat.size(0); ++i) {
    torch::Tensor q = flat[i].clone();
    if (!s.history.empty()) {
      torch::Tensor h = torch::stack(std::vector<torch::Tensor>(s.history.begin(), s.history.end()));
      torch::Tensor d = (h - q).pow(2).sum(1).sqrt();
      s.min_distances.push_back(d.min().item<double>());
      if (static_cast<int64_t>(s.min_distances.size()) > options_.prada_window_) s.min_distances.pop_front();
      if (options_.knn_threshold_ > 0 && d.size(0) >= options_.k_) {
        double knn = std::get<0>(d.topk(options_.k_, 0, /*largest=*/false)).mean().item<double>();
        if (v.knn_distance < 0 || knn < v.knn_distance) v.knn_distance = knn;
        if (knn < options_.knn_threshold_ && !v.alert) {
          v.alert = true, v.source = "knn";
          s.history.clear();  // as in Chen et al.: start over after a detection
        }
      }
    }
    s.history.push_back(q);
    if (static_cast<int64_t>(s.history.size()) > options_.history_) s.history.pop_front();
    ++s.queries;
  }
  if (options_.prada_ && static_cast<int64_t>(s.min_distances.size()) >= options_.prada_min_queries_) {
    v.prada_w = shapiro_wilk_w(std::vector<double>(s.min_distances.begin(), s.min_distances.end()));
    if (v.prada_w < options_.prada_delta_ && !v.alert) v.alert = true, v.source = "prada";
  }
  v.queries = s.queries;
  return v;
}

double calibrate_knn_threshold(const torch::Tensor& benign, const MonitorOptions& options, double fpr) {
  AEGIS_CHECK(fpr > 0 && fpr < 1, InvalidArgument, "fpr must be in (0, 1), got " << fpr);
  AEGIS_CHECK(benign.dim() >= 2 && benign.size(0) > options.k_ + 1, InvalidArgument,
              "calibration needs more than k + 1 = " << options.k_ + 1 << " benign samples");
  torch::NoGradGuard ng;
  torch::Tensor flat = benign.to(torch::kFloat).reshape({benign.size(0), -1});
  std::vector<double> knn;
  for (int64_t i = options.k_; i < flat.size(0); ++i) {
    int64_t lo = std::max<int64_t>(0, i - options.history_);
    torch::Tensor d = (flat.slice(0, lo, i) - flat[i]).pow(2).sum(1).sqrt();
    knn.push_back(std::get<0>(d.topk(options.k_, 0, false)).mean().item<double>());
  }
  std::sort(knn.begin(), knn.end());
  size_t idx = std::min(knn.size() - 1, static_cast<size_t>(fpr * knn.size()));
  return knn[idx];
}

}  // namespace aegis::serve
