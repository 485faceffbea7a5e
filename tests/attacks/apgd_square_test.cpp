#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/evasion/apgd.h"
#include "aegis/attacks/evasion/pgd.h"
#include "aegis/attacks/evasion/square.h"
#include "aegis/core/error.h"
#include "support/test_support.h"

namespace aegis {
namespace {

TEST(APGD, CheckpointsFollowThePaper) {
  // p: 0, 0.22, 0.41, 0.57, 0.7, 0.8, 0.87, 0.93, 0.99 (the increments shrink by 0.03 down to 0.06).
  std::vector<int64_t> expected = {22, 41, 57, 70, 80, 87, 93, 99};
  EXPECT_EQ(apgd_checkpoints(100), expected);
  EXPECT_EQ(apgd_checkpoints(1), std::vector<int64_t>{1});
}

TEST(APGD, DlrLossMatchesItsDefinition) {
  torch::Tensor z = torch::tensor({{3.0f, 1.0f, 0.5f, -1.0f}});
  torch::Tensor y = torch::tensor({0}, torch::kLong);
  // untargeted: -(z_y - max_{j!=y} z_j) / (z1 - z3) = -(3 - 1) / (3 - 0.5)
  EXPECT_NEAR(dlr_loss(z, y, {}).item<double>(), -2.0 / 2.5, 1e-6);
  // targeted at 3: -(z_y - z_t) / (z1 - (z3 + z4) / 2) = -(3 + 1) / (3 - (-0.25))
  EXPECT_NEAR(dlr_loss(z, y, torch::tensor({3}, torch::kLong)).item<double>(), -4.0 / 3.25, 1e-6);
  // shift and scale invariant
  EXPECT_NEAR(dlr_loss(z * 7 + 2, y, {}).item<double>(), dlr_loss(z, y, {}).item<double>(), 1e-6);
  EXPECT_THROW(dlr_loss(torch::tensor({{1.0f, 0.0f}}), torch::tensor({0}, torch::kLong), {}), Error);
}

TEST(APGD, AtLeastAsStrongAsPGDOnTheSameBudget) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(64, 4, 21);
  double pgd = PGD(PGDOptions(0.12).steps(20)).run(*model, d.x, d.y).success_rate();
  double apgd = APGD(APGDOptions(0.12).steps(20)).run(*model, d.x, d.y).success_rate();
  EXPECT_GE(apgd + 1.0 / 64, pgd);
}

TEST(APGD, TargetedVariantsReachTheirGoals) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(24, 4, 22);
  torch::Tensor targets = (d.y + 2) % 4;
  for (std::string loss : {"ce", "dlr"}) {
    AttackResult r = APGD(APGDOptions(0.5).steps(40).loss(loss)).run(*model, d.x, d.y, targets);
    EXPECT_DOUBLE_EQ(r.success_rate(), 1.0) << loss;
    EXPECT_TRUE(torch::equal(r.adv_pred, targets)) << loss;
  }
  // APGD-T succeeds on any misclassification and needs no targets from the caller.
  AttackResult t = APGD(APGDOptions(0.5).steps(20).loss("dlr").target_classes(3)).run(*model, d.x, d.y);
  EXPECT_DOUBLE_EQ(t.success_rate(), 1.0);
  EXPECT_FALSE(t.targets.defined());
  EXPECT_THROW(APGD(APGDOptions(0.1).target_classes(3).target_mode(TargetMode::Random)), Error);
}

TEST(APGD, EarlyStoppingMakesBrokenSamplesFree) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(16, 4, 23);
  // At eps = 1 every sample falls within the first steps; the rest cost nothing.
  AttackResult r = APGD(APGDOptions(1.0).steps(100)).run(*model, d.x, d.y);
  EXPECT_DOUBLE_EQ(r.success_rate(), 1.0);
  EXPECT_LT(r.queries, 16 * 10);
  AttackResult full = APGD(APGDOptions(1.0).steps(100).early_stop(false)).run(*model, d.x, d.y);
  EXPECT_EQ(full.queries, 16 * 101);
  EXPECT_DOUBLE_EQ(full.success_rate(), 1.0);
}

TEST(Square, UsesOnlyQueriesAndCountsThem) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(16, 4, 24);
  // No early stop possible at a tiny eps: every sample pays the whole budget.
  AttackResult r = Square(SquareOptions(1e-4).queries(50)).run(*model, d.x, d.y);
  EXPECT_EQ(r.queries, 16 * 50);
  EXPECT_EQ(r.success_rate(), 0.0);
  AttackResult big = Square(SquareOptions(0.5).queries(500)).run(*model, d.x, d.y);
  EXPECT_DOUBLE_EQ(big.success_rate(), 1.0);
  EXPECT_LT(big.queries, 16 * 500);
}

TEST(Square, PSelectionScheduleIsTheReferenceOne) {
  EXPECT_DOUBLE_EQ(square_p_selection(0.8, 0, 10000), 0.8);
  EXPECT_DOUBLE_EQ(square_p_selection(0.8, 11, 10000), 0.4);
  EXPECT_DOUBLE_EQ(square_p_selection(0.8, 300, 10000), 0.1);
  EXPECT_DOUBLE_EQ(square_p_selection(0.8, 9000, 10000), 0.8 / 512);
  // rescaled to the budget: 100 of 1000 queries is 1000 of 10000
  EXPECT_DOUBLE_EQ(square_p_selection(0.8, 100, 1000), 0.05);
}

TEST(Square, L2StaysInItsBallAndBreaksTheModel) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(16, 4, 25);
  AttackResult r = Square(SquareOptions(8.0).norm(Norm::L2).queries(300)).run(*model, d.x, d.y);
  EXPECT_LE(r.l2.max().item<double>(), 8.0 * (1 + 1e-4));
  EXPECT_GT(r.success_rate(), 0.5);
}

}  // namespace
}  // namespace aegis
