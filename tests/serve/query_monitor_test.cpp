#include "aegis/serve/query_monitor.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis::serve {
namespace {

TEST(ShapiroWilk, HighForNormalLowForSkewedAndTwoPointData) {
  std::mt19937_64 rng(5);
  for (int n : {20, 100, 500}) {
    std::normal_distribution<double> normal(3.0, 2.0);
    std::exponential_distribution<double> expo(1.0);
    std::vector<double> a, b, c;
    for (int i = 0; i < n; ++i) {
      a.push_back(normal(rng));
      b.push_back(expo(rng));
      c.push_back(i % 2 ? 0.0 : 1.0);
    }
    const double wa = shapiro_wilk_w(a), wb = shapiro_wilk_w(b), wc = shapiro_wilk_w(c);
    EXPECT_GT(wa, 0.9) << n;
    EXPECT_LE(wa, 1.0);
    EXPECT_LT(wb, wa) << n;
    EXPECT_LT(wc, 0.8) << n;
  }
  // Invariant to shifting and scaling.
  std::vector<double> x = {1, 4, 2, 8, 5, 7, 3.5, 9, 0.5, 6};
  std::vector<double> y;
  for (double v : x) y.push_back(3 * v - 11);
  EXPECT_NEAR(shapiro_wilk_w(x), shapiro_wilk_w(y), 1e-12);
  EXPECT_THROW(shapiro_wilk_w({1, 2}), Error);
}

TEST(ShapiroWilk, MatchesAKnownValue) {
  // scipy.stats.shapiro([1..10]) gives W = 0.9702 (uniform spacing).
  std::vector<double> x;
  for (int i = 1; i <= 10; ++i) x.push_back(i);
  EXPECT_NEAR(shapiro_wilk_w(x), 0.9702, 2e-3);
}

torch::Tensor benign_stream(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed, "benign");
  return torch::rand({n, 1, 8, 8}, gen);
}

TEST(QueryMonitor, CatchesSmallPerturbationsAroundOneImageButNotBenignTraffic) {
  MonitorOptions opt = MonitorOptions().k(5).history(200).prada(false);
  torch::Tensor calib = benign_stream(300, 1);
  const double thr = calibrate_knn_threshold(calib, opt, 0.01);
  EXPECT_GT(thr, 0.5);
  QueryMonitor mon(opt.knn_threshold(thr));
  torch::Tensor benign = benign_stream(200, 2);
  int false_alarms = 0;
  for (int64_t i = 0; i < benign.size(0); ++i) false_alarms += mon.observe("good", benign.slice(0, i, i + 1)).alert;
  EXPECT_LE(false_alarms, 8);
  // A Square-style probe: one image, small random changes each query.
  auto gen = make_generator(3, "attack");
  torch::Tensor base = torch::rand({1, 1, 8, 8}, gen);
  int64_t detected_at = -1;
  for (int64_t q = 1; q <= 50 && detected_at < 0; ++q) {
    torch::Tensor x = (base + 0.05 * torch::randn({1, 1, 8, 8}, gen)).clamp(0, 1);
    MonitorVerdict v = mon.observe("bad", x);
    if (v.alert) {
      EXPECT_EQ(v.source, "knn");
      EXPECT_LT(v.knn_distance, thr);
      detected_at = q;
    }
  }
  EXPECT_EQ(detected_at, opt.k_ + 1);  // as soon as k neighbours exist
}

TEST(QueryMonitor, PradaFlagsSyntheticQueriesByTheirDistanceDistribution) {
  // Extraction-style traffic: few seeds, each perturbed along a sweep, gives
  // minimum distances bunched into two values: far from normal.
  MonitorOptions opt = MonitorOptions().prada_min_queries(30).prada_window(200);
  QueryMonitor mon(opt);
  auto gen = make_generator(4, "prada");
  torch::Tensor seed = torch::rand({1, 16}, gen);
  MonitorVerdict v;
  for (int i = 0; i < 60; ++i) {
    torch::Tensor x = seed.clone();
    x[0][i % 16] = (i / 16) % 2 ? 1.0 : 0.0;  // one feature set to 0 or 1
    v = mon.observe("extractor", x);
  }
  EXPECT_TRUE(v.alert);
  EXPECT_EQ(v.source, "prada");
  EXPECT_LT(v.prada_w, opt.prada_delta_);
  // Gaussian queries give near-normal minimum distances.
  QueryMonitor clean(opt);
  MonitorVerdict c;
  for (int i = 0; i < 60; ++i) c = clean.observe("user", torch::randn({1, 16}, gen));
  EXPECT_GT(c.prada_w, opt.prada_delta_);
  EXPECT_FALSE(c.alert);
  EXPECT_EQ(c.queries, 60);
}

TEST(QueryMonitor, OptionsAreValidated) {
  EXPECT_THROW(QueryMonitor(MonitorOptions().k(0)), Error);
  EXPECT_THROW(QueryMonitor(MonitorOptions().k(10).history(5)), Error);
  EXPECT_THROW(QueryMonitor(MonitorOptions().prada_delta(1.5)), Error);
  EXPECT_THROW(calibrate_knn_threshold(torch::rand({3, 4}), MonitorOptions().k(5), 0.1), Error);
}

}  // namespace
}  // namespace aegis::serve
