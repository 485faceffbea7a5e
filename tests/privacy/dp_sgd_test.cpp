// DP-SGD's pieces and loop: clipping bounds every per-sample norm; Poisson
// batches include each example at the sampling rate over many draws (empty
// batches included); the noise is N(0, std^2); the seeded stream is
// reproducible and the secure one is not; training records the privacy
// budget in the model, spends at most a target epsilon, refuses batch norm
// before any step, and a resumed run keeps counting (bitwise the
// uninterrupted run in seeded mode).

#include "aegis/privacy/dp_sgd.h"

#include <gtest/gtest.h>

#include <cmath>

#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/privacy/accountant.h"
#include "aegis/privacy/clipping.h"
#include "aegis/privacy/dp_random.h"
#include "aegis/privacy/per_sample_grad.h"
#include "aegis/privacy/poisson_sampler.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;
using testing::error_message_of;

TEST(Clipping, BoundsEveryPerSampleNormAndSumsTheClippedGradients) {
  torch::manual_seed(5);
  std::vector<torch::Tensor> g = {torch::randn({16, 4, 3}) * 3, torch::randn({16, 4}) * 0.01};
  g[0][3].zero_();
  g[1][3].zero_();  // a zero gradient stays zero (and finite)
  for (const std::string mode : {"flat", "per-layer"}) {
    const double C = 0.7;
    std::vector<torch::Tensor> sum = clip_and_sum(g, C, mode);
    std::vector<torch::Tensor> expect = {torch::zeros({4, 3}), torch::zeros({4})};
    for (int64_t b = 0; b < 16; ++b) {
      std::vector<torch::Tensor> one = {g[0].slice(0, b, b + 1), g[1].slice(0, b, b + 1)};
      std::vector<torch::Tensor> c = clip_and_sum(one, C, mode);
      const double norm = std::sqrt(c[0].pow(2).sum().item<double>() + c[1].pow(2).sum().item<double>());
      EXPECT_LE(norm, C * (1 + 1e-6)) << mode << " sample " << b;
      if (mode == "per-layer") {
        for (const auto& t : c) EXPECT_LE(t.norm().item<double>(), C / std::sqrt(2.0) * (1 + 1e-6));
      }
      // A gradient already inside the bound is left as it is.
      const double raw = per_sample_norms(one)[0].item<double>();
      if (mode == "flat" && raw < C) {
        EXPECT_NEAR(norm, raw, 1e-6);
      }
      if (mode == "flat" && raw > C) {
        EXPECT_NEAR(norm, C, 1e-5);
      }
      expect[0] += c[0];
      expect[1] += c[1];
    }
    EXPECT_TRUE(torch::allclose(sum[0], expect[0], 1e-5, 1e-5)) << mode;
    EXPECT_TRUE(torch::allclose(sum[1], expect[1], 1e-5, 1e-6)) << mode;
    EXPECT_TRUE(torch::isfinite(sum[0]).all().item<bool>());
  }
  EXPECT_EQ(error_kind_of([&] { clip_and_sum(g, 0, "flat"); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { clip_and_sum(g, 1, "global"); }), ErrorKind::InvalidArgument);
}

TEST(PoissonSampler, IncludesEachExampleAtTheSamplingRate) {
  const int64_t n = 50, draws = 4000;
  const double q = 0.2;
  PoissonSampler sampler(n, q);
  DpRandom rng = DpRandom::seeded(11);
  std::vector<int64_t> count(n, 0);
  int64_t total = 0;
  for (int64_t t = 0; t < draws; ++t) {
    DpStream s = rng.stream(t);
    auto batch = sampler.sample(s);
    for (size_t i = 1; i < batch.size(); ++i) ASSERT_LT(batch[i - 1], batch[i]);
    for (int64_t i : batch) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      ++count[i];
    }
    total += int64_t(batch.size());
  }
  const double sd = std::sqrt(draws * q * (1 - q));  // binomial, about 25
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(double(count[i]), draws * q, 5 * sd) << "example " << i;
  EXPECT_NEAR(double(total) / draws, n * q, 0.05 * n * q);
  // The first index is not favoured (the gap from the start is geometric too).
  EXPECT_NEAR(double(count[0]), draws * q, 5 * sd);

  // A small rate gives empty batches at the binomial's rate (1 - q)^n.
  PoissonSampler sparse(10, 0.05);
  int64_t empty = 0;
  for (int64_t t = 0; t < draws; ++t) {
    DpStream s = rng.stream(t);
    empty += sparse.sample(s).empty();
  }
  const double p_empty = std::pow(0.95, 10);  // 0.599
  EXPECT_NEAR(double(empty) / draws, p_empty, 5 * std::sqrt(p_empty * (1 - p_empty) / draws));

  DpStream all = rng.stream(0);
  EXPECT_EQ(PoissonSampler(7, 1.0).sample(all).size(), 7u);
  EXPECT_EQ(error_kind_of([] { PoissonSampler(10, 0.0); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([] { PoissonSampler(10, 1.5); }), ErrorKind::InvalidArgument);
}

TEST(DpRandom, GaussianHasTheRequestedStdAndSeededStreamsRepeat) {
  DpRandom seeded = DpRandom::seeded(3);
  DpStream s = seeded.stream(9);
  torch::Tensor z = s.gaussian({400, 500}, 2.5);
  EXPECT_EQ(z.scalar_type(), torch::kFloat);
  EXPECT_NEAR(z.mean().item<double>(), 0.0, 0.02);
  EXPECT_NEAR(z.std().item<double>(), 2.5, 0.02);
  EXPECT_NEAR((z.abs() > 2.5 * 1.96).to(torch::kDouble).mean().item<double>(), 0.05, 0.003);
  DpStream again = seeded.stream(9);
  EXPECT_TRUE(torch::equal(again.gaussian({400, 500}, 2.5), z));
  DpStream other = seeded.stream(10);
  EXPECT_FALSE(torch::equal(other.gaussian({400, 500}, 2.5), z));
  DpRandom secure = DpRandom::secure();
  EXPECT_FALSE(secure.is_seeded());
  DpStream a = secure.stream(9), b = secure.stream(9);
  EXPECT_FALSE(torch::equal(a.gaussian({100}, 1.0), b.gaussian({100}, 1.0)));
}

TrainOptions small_options() {
  return TrainOptions().epochs(2).batch_size(20).lr(0.5).optimizer("sgd").momentum(0).schedule("constant").seed(4);
}

TEST(DpSgd, TrainsAndRecordsTheBudgetInTheModel) {
  Dataset data = testing::make_blobs(200, 6, 3, 1);
  seed_everything(2);
  auto model = build_architecture(ArchitectureOptions("mlp", {6}, 3).hidden({16}));
  DpSgdResult r = train_dp_sgd(*model, data, &data, small_options().epochs(10),
                               DpSgdOptions(1.0).noise_multiplier(0.8).seeded(true));
  EXPECT_EQ(r.steps, 100);  // ceil(10 epochs / q), q = 20 / 200
  EXPECT_DOUBLE_EQ(r.sample_rate, 0.1);
  auto fresh = make_accountant("prv");
  fresh->step(0.8, 0.1, 100);
  EXPECT_DOUBLE_EQ(r.epsilon, fresh->epsilon(1e-5));
  EXPECT_GT(r.training.history.back().val_accuracy, 0.6);  // blobs are easy even with noise
  const nlohmann::json& p = model->meta().provenance.at("privacy");
  EXPECT_EQ(p["epsilon"], r.epsilon);
  EXPECT_EQ(p["delta"], 1e-5);
  EXPECT_EQ(p["accountant"], "prv");
  EXPECT_EQ(p["noise_multiplier"], 0.8);
  EXPECT_EQ(p["max_grad_norm"], 1.0);
  EXPECT_EQ(p["sample_rate"], 0.1);
  EXPECT_EQ(p["steps"], 100);
  EXPECT_EQ(p["seeded"], true);
  EXPECT_NE(p["noise"].get<std::string>().find("NOT private"), std::string::npos);
  EXPECT_EQ(model->meta().provenance["training"]["objective"], "dp-sgd");
  EXPECT_FALSE(model->training());
}

TEST(DpSgd, TargetEpsilonIsSpentAndNotExceeded) {
  Dataset data = testing::make_blobs(100, 4, 2, 2);
  auto model = build_architecture(ArchitectureOptions("mlp", {4}, 2).hidden({8}));
  DpSgdResult r = train_dp_sgd(*model, data, nullptr, small_options().batch_size(10),
                               DpSgdOptions(1.0).target_epsilon(2.0).accountant("rdp").clipping("per-layer"));
  EXPECT_LE(r.epsilon, 2.0);
  EXPECT_GE(r.epsilon, 2.0 - 2e-3);
  EXPECT_FALSE(r.seeded);
  EXPECT_EQ(model->meta().provenance["privacy"]["clipping"], "per-layer");
}

TEST(DpSgd, NoiseOfStdSigmaTimesCIsAddedOncePerLogicalStep) {
  // q = 1 and one epoch: exactly one step, update = -lr (clipped sum + noise) / N.
  // With sigma * C = 5 on every coordinate and a clipped sum of norm <= N C = 20
  // spread over 2000 weights, the update's spread is the noise's.
  Dataset data = testing::make_blobs(20, 4, 2, 3);
  auto model = build_architecture(ArchitectureOptions("mlp", {4}, 2).hidden({500}));
  auto before = model->parameters();
  for (auto& p : before) p = p.clone();
  const double lr = 0.1;
  train_dp_sgd(*model, data, nullptr, small_options().epochs(1).batch_size(20).lr(lr),
               DpSgdOptions(1.0).noise_multiplier(5.0).physical_batch_size(7).seeded(true));
  torch::Tensor delta = (model->parameters()[0] - before[0]).flatten();  // fc1 weight [500, 4]
  const double expected = lr * 5.0 * 1.0 / 20;
  EXPECT_NEAR(delta.std().item<double>() / expected, 1.0, 0.06);
}

TEST(DpSgd, ThePhysicalBatchOnlyBoundsMemory) {
  Dataset data = testing::make_blobs(60, 4, 2, 4);
  seed_everything(3);
  auto a = build_architecture(ArchitectureOptions("mlp", {4}, 2).hidden({8}));
  auto b = a->clone();
  const DpSgdOptions dp = DpSgdOptions(1.0).noise_multiplier(1.0).seeded(true);
  train_dp_sgd(*a, data, nullptr, small_options().batch_size(30), DpSgdOptions(dp).physical_batch_size(1));
  train_dp_sgd(*b, data, nullptr, small_options().batch_size(30), DpSgdOptions(dp).physical_batch_size(64));
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::allclose(pa[i], pb[i], 1e-4, 1e-5)) << i;
}

TEST(DpSgd, EmptyAndVariableBatchesAreSteps) {
  Dataset data = testing::make_blobs(20, 4, 2, 3);
  auto model = build_architecture(ArchitectureOptions("mlp", {4}, 2).hidden({8}));
  // q = 1/20: most logical batches are empty, some hold two or more.
  DpSgdResult r = train_dp_sgd(*model, data, nullptr, small_options().epochs(1).batch_size(1),
                               DpSgdOptions(1.0).noise_multiplier(1.0).physical_batch_size(1).seeded(true));
  EXPECT_EQ(r.steps, 20);
  for (const auto& p : model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(DpSgd, RefusesBatchNormBeforeTraining) {
  Dataset data = testing::make_blobs(20, 3 * 8 * 8, 2, 3);
  data.x = data.x.view({20, 3, 8, 8});
  auto model = build_architecture(ArchitectureOptions("resnet", {3, 8, 8}, 2));
  auto before = model->parameters()[0].clone();
  const std::string msg = error_message_of(
      [&] { train_dp_sgd(*model, data, nullptr, small_options(), DpSgdOptions(1.0).noise_multiplier(1.0)); });
  EXPECT_NE(msg.find("GroupNorm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bn0_weight"), std::string::npos) << msg;
  EXPECT_TRUE(torch::equal(before, model->parameters()[0]));
}

TEST(DpSgd, RefusesBadOptions) {
  Dataset data = testing::make_blobs(20, 4, 2, 3);
  auto model = build_architecture(ArchitectureOptions("mlp", {4}, 2).hidden({8}));
  auto kind = [&](const TrainOptions& o, const DpSgdOptions& dp) {
    return error_kind_of([&] { train_dp_sgd(*model, data, nullptr, o, dp); });
  };
  EXPECT_EQ(kind(small_options(), DpSgdOptions(1.0)), ErrorKind::InvalidArgument);  // neither sigma nor epsilon
  EXPECT_EQ(kind(small_options(), DpSgdOptions(1.0).noise_multiplier(1).target_epsilon(1)), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind(small_options(), DpSgdOptions(0).noise_multiplier(1)), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind(small_options(), DpSgdOptions(1).noise_multiplier(1).delta(1)), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind(small_options().batch_size(21), DpSgdOptions(1).noise_multiplier(1)), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind(small_options().patience(2), DpSgdOptions(1).noise_multiplier(1)), ErrorKind::InvalidArgument);
}

TEST(DpSgd, ResumeKeepsCountingAndMatchesTheUninterruptedRun) {
  Dataset data = testing::make_blobs(60, 4, 2, 5);
  const DpSgdOptions dp = DpSgdOptions(1.0).noise_multiplier(1.2).seeded(true);
  seed_everything(8);
  auto straight = build_architecture(ArchitectureOptions("mlp", {4}, 2).hidden({8}));
  auto resumed = straight->clone();
  DpSgdResult full = train_dp_sgd(*straight, data, nullptr, small_options().batch_size(15), dp);

  testing::TempDir dir;
  const std::string ck = (dir.path() / "ck").string();
  DpSgdResult first =
      train_dp_sgd(*resumed, data, nullptr, small_options().batch_size(15).epochs(1).checkpoint_dir(ck), dp);
  EXPECT_EQ(first.steps, 4);
  DpSgdResult second =
      train_dp_sgd(*resumed, data, nullptr, small_options().batch_size(15).checkpoint_dir(ck).resume(true), dp);
  EXPECT_TRUE(second.training.resumed);
  EXPECT_EQ(second.training.resumed_from_epoch, 1);
  EXPECT_EQ(second.steps, 8);
  EXPECT_EQ(second.steps, full.steps);
  EXPECT_DOUBLE_EQ(second.epsilon, full.epsilon);
  EXPECT_GT(second.epsilon, first.epsilon);
  ASSERT_EQ(second.training.history.size(), 2u);
  auto a = straight->parameters(), b = resumed->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;

  // Other privacy options cannot resume the same checkpoint.
  EXPECT_EQ(error_kind_of([&] {
              train_dp_sgd(*resumed, data, nullptr,
                           small_options().batch_size(15).epochs(3).checkpoint_dir(ck).resume(true),
                           DpSgdOptions(2.0).noise_multiplier(1.2).seeded(true));
            }),
            ErrorKind::InvalidArgument);
}

TEST(DpSgd, WeightAverageIsTheAverageOfTheIteratesAndResumes) {
  Dataset data = testing::make_blobs(60, 4, 2, 5);
  const DpSgdOptions plain = DpSgdOptions(1.0).noise_multiplier(1.2).seeded(true);
  const DpSgdOptions avg = DpSgdOptions(plain).ema_decay(0.9);
  seed_everything(8);
  auto init = build_architecture(ArchitectureOptions("mlp", {4}, 2).hidden({8}));
  // The same run one epoch at a time without averaging gives the iterates;
  // the average over them, by hand, is what the averaged run keeps.
  auto it = init->clone();
  std::vector<torch::Tensor> ema;
  for (const auto& p : init->parameters()) ema.push_back(p.clone());
  testing::TempDir by_hand;
  for (int64_t e = 1; e <= 2; ++e) {
    const std::string ck = (by_hand.path() / "ck").string();
    // One step per epoch (batch = the whole set), so each epoch ends on one iterate.
    train_dp_sgd(*it, data, nullptr, small_options().batch_size(60).epochs(e).checkpoint_dir(ck).resume(e > 1), plain);
    const double d = std::min(0.9, (1.0 + double(e - 1)) / (10.0 + double(e - 1)));
    auto p = it->parameters();
    for (size_t i = 0; i < ema.size(); ++i) ema[i] = ema[i] * d + p[i] * (1 - d);
  }
  auto averaged = init->clone();
  DpSgdResult r = train_dp_sgd(*averaged, data, nullptr, small_options().batch_size(60), avg);
  EXPECT_EQ(r.steps, 2);
  EXPECT_EQ(r.privacy["ema_decay"], 0.9);
  auto a = averaged->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i], ema[i], 1e-5, 1e-6)) << i;

  // Interrupted after the first epoch and resumed: the same average.
  testing::TempDir dir;
  const std::string ck = (dir.path() / "ck").string();
  auto resumed = init->clone();
  train_dp_sgd(*resumed, data, nullptr, small_options().batch_size(60).epochs(1).checkpoint_dir(ck), avg);
  train_dp_sgd(*resumed, data, nullptr, small_options().batch_size(60).checkpoint_dir(ck).resume(true), avg);
  auto b = resumed->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  EXPECT_EQ(error_kind_of([] { DpSgdOptions(1).noise_multiplier(1).ema_decay(1.0).validate(); }),
            ErrorKind::InvalidArgument);
}

}  // namespace
}  // namespace aegis
