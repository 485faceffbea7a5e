// The one-run privacy audit: its p-value against a closed form (all guesses
// right, delta 0) and against the binomial sums written out here; its lower
// bound rejects eps = 0 in at most the 5% the confidence allows when the
// scores carry no information; a correct DP-SGD gives a bound at or below
// its claim, and the same recipe with noise and clipping off (the broken
// configuration, still claiming DP-SGD's epsilon) a bound far above it.

#include "aegis/privacy/dp_audit.h"

#include <gtest/gtest.h>

#include <cmath>

#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/privacy/dp_sgd.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;

double sigmoid(double e) { return 1 / (1 + std::exp(-e)); }

TEST(DpAuditBound, AllGuessesRightWithoutDeltaIsAPowerOfQ) {
  for (double eps : {0.0, 0.5, 2.0, 6.0})
    EXPECT_NEAR(dp_audit_p_value(100, 10, 10, eps, 0), std::pow(sigmoid(eps), 10), 1e-12) << eps;
  // The bound solves q^r = 1 - confidence: q* = 0.05^(1/r), eps = logit(q*).
  for (int64_t r : {10, 40, 200}) {
    const double q = std::pow(0.05, 1.0 / double(r));
    EXPECT_NEAR(dp_audit_epsilon_lower_bound(1000, r, r, 0, 0.95), std::log(q / (1 - q)), 1e-6) << r;
  }
}

TEST(DpAuditBound, PValueMatchesTheBinomialSumsWithTheDeltaTerm) {
  const int64_t m = 50, r = 20, v = 15;
  const double eps = 1.0, delta = 1e-3;
  const long double q = 1.0L / (1.0L + std::exp(-(long double)eps));
  auto pmf = [&](int64_t j) {
    long double c = 1;
    for (int64_t i = 1; i <= j; ++i) c = c * (long double)(r - j + i) / (long double)i;
    return c * std::pow(q, (long double)j) * std::pow(1 - q, (long double)(r - j));
  };
  long double beta = 0;
  for (int64_t j = v; j <= r; ++j) beta += pmf(j);
  long double alpha = 0;
  for (int64_t i = 1; i <= v; ++i) {
    long double s = 0;
    for (int64_t j = v - i; j < v; ++j) s += pmf(j);
    alpha = std::max(alpha, s / (long double)i);
  }
  const double expect = double(beta + alpha * (long double)delta * 2 * m);
  EXPECT_NEAR(dp_audit_p_value(m, r, v, eps, delta), expect, 1e-12);
  // More epsilon makes every observation likelier; more delta too.
  EXPECT_LT(dp_audit_p_value(m, r, v, 0.5, delta), dp_audit_p_value(m, r, v, 1.0, delta));
  EXPECT_LT(dp_audit_p_value(m, r, v, 1.0, 0), dp_audit_p_value(m, r, v, 1.0, delta));
  // Half right is what eps = 0 predicts: nothing is rejected.
  EXPECT_EQ(dp_audit_epsilon_lower_bound(m, r, r / 2, delta), 0.0);
  EXPECT_EQ(error_kind_of([] { dp_audit_p_value(10, 5, 6, 1, 0); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([] { dp_audit_p_value(10, 5, 3, -1, 0); }), ErrorKind::InvalidArgument);
}

TEST(DpAuditBound, UninformativeScoresRejectEpsZeroAtMostAtTheConfidenceLevel) {
  // Scores independent of inclusion: any eps is true (eps = 0 included), so a
  // positive lower bound is a false rejection, allowed 5% of the time.
  int rejected = 0;
  const int trials = 300;
  for (int t = 0; t < trials; ++t) {
    auto gen = make_generator(uint64_t(t), "audit null");
    torch::Tensor included = torch::rand({200}, gen) < 0.5;
    torch::Tensor scores = torch::randn({200}, gen);
    DpAuditBound b = dp_audit_bound(scores, included, 1e-5, DpAuditOptions());
    EXPECT_EQ(b.tries, 4);
    if (b.epsilon_lower_bound > 0) ++rejected;
  }
  EXPECT_LE(rejected, trials * 0.08) << rejected << " of " << trials;
}

TEST(DpAuditBound, PerfectScoresGiveTheLargestBoundTheCanariesAllow) {
  auto gen = make_generator(3, "audit perfect");
  torch::Tensor included = torch::rand({200}, gen) < 0.5;
  ASSERT_GE(std::min(included.sum().item<int64_t>(), 200 - included.sum().item<int64_t>()), 80);
  DpAuditBound b =
      dp_audit_bound(included.to(torch::kFloat), included, 0, DpAuditOptions().guess_fractions({0.05, 0.2, 0.4}));
  // The best try is the largest: 80 canaries guessed on each side, all right.
  EXPECT_EQ(b.guesses, 160);
  EXPECT_EQ(b.correct, 160);
  EXPECT_GT(b.epsilon_lower_bound, 3.0);
  EXPECT_EQ(error_kind_of([&] { dp_audit_bound(included.to(torch::kFloat), included.narrow(0, 0, 5), 0, {}); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { DpAuditOptions().guess_fractions({0.7}).validate(); }), ErrorKind::InvalidArgument);
}

TEST(MakeCanaries, RelabelsEveryCanaryAndIncludesAboutHalf) {
  Dataset pool = testing::make_blobs(400, 6, 3, 9);
  Canaries c = make_canaries(pool, 300, 3, 5);
  ASSERT_EQ(c.data.size(), 300);
  // Each canary is a pool sample with a different label.
  int64_t relabelled = 0;
  for (int64_t i = 0; i < 300; ++i) {
    torch::Tensor match = (pool.x - c.data.x[i]).abs().flatten(1).sum(1).eq(0).nonzero().flatten();
    ASSERT_EQ(match.numel(), 1);
    relabelled += pool.y[match[0]].item<int64_t>() != c.data.y[i].item<int64_t>();
  }
  EXPECT_EQ(relabelled, 300);
  const int64_t in = c.included.sum().item<int64_t>();
  EXPECT_GT(in, 120);
  EXPECT_LT(in, 180);
  Canaries again = make_canaries(pool, 300, 3, 5);
  EXPECT_TRUE(torch::equal(again.included, c.included));
  EXPECT_TRUE(torch::equal(again.data.y, c.data.y));
}

// The end-to-end audit at CI size: an MLP on blobs, 200 canaries.
struct AuditSetup {
  Dataset all = testing::make_blobs(660, 16, 4, 21, 0.2);
  Dataset train = all.head(400);
  Dataset pool = all.subset(torch::arange(400, 660));
  TrainOptions recipe = TrainOptions().epochs(30).batch_size(64).lr(0.5).optimizer("sgd").schedule("constant").seed(3);
  DpSgdOptions dp = DpSgdOptions(1.0).target_epsilon(0.5).delta(1e-5).seeded(true);
  std::shared_ptr<ScriptClassifier> fresh() {
    seed_everything(7);
    return build_architecture(ArchitectureOptions("mlp", {16}, 4).hidden({128, 128}));
  }
};

TEST(OneRunAudit, CorrectDpSgdStaysBelowItsClaimAndTheBrokenRecipeExceedsItFar) {
  AuditSetup s;
  const DpAuditOptions audit = DpAuditOptions().canaries(200).seed(1);
  double claimed = 0;
  AuditTrainer dp = [&](ScriptClassifier& m, const Dataset& d) {
    DpSgdResult r = train_dp_sgd(m, d, nullptr, s.recipe, s.dp);
    claimed = r.epsilon;
    return r.epsilon;
  };
  auto model = s.fresh();
  DpAuditResult good = one_run_audit(*model, s.train, s.pool, dp, s.dp.delta_, audit);
  EXPECT_LE(good.claimed_epsilon, 0.5 + 1e-9);
  EXPECT_LE(good.bound.epsilon_lower_bound, good.claimed_epsilon) << good.to_json().dump();
  EXPECT_FALSE(good.violated);
  EXPECT_GT(good.test_accuracy, 0.35) << "the private model should still learn the blobs (chance: 0.25)";

  // Noise and clipping off: ordinary training, still claiming DP-SGD's epsilon.
  AuditTrainer broken = [&](ScriptClassifier& m, const Dataset& d) {
    train(m, d, nullptr, TrainOptions(s.recipe).optimizer("adam").lr(3e-3).epochs(200).weight_decay(0));
    return claimed;
  };
  auto twin = s.fresh();
  DpAuditResult bad = one_run_audit(*twin, s.train, s.pool, broken, s.dp.delta_, audit);
  EXPECT_TRUE(bad.violated) << bad.to_json().dump();
  EXPECT_GT(bad.bound.epsilon_lower_bound, 4 * claimed) << bad.to_json().dump();
  EXPECT_GT(bad.membership.auc, good.membership.auc);
}

}  // namespace
}  // namespace aegis
