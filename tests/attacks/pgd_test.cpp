#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/evasion/fgsm.h"
#include "aegis/attacks/evasion/pgd.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "support/test_support.h"

namespace aegis {
namespace {

std::shared_ptr<ScriptClassifier> trained_bars_cnn() {
  static std::shared_ptr<ScriptClassifier> model = [] {
    seed_everything(3);
    Dataset d = testing::make_bar_images(512, 4, 1);
    auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 4));
    train(*m, d, nullptr, TrainOptions().epochs(2).batch_size(64).lr(3e-3));
    return m;
  }();
  return model;
}

TEST(PGD, StaysInsideBallAndRangeOverSeeds) {
  auto model = trained_bars_cnn();
  Dataset d = testing::make_bar_images(32, 4, 9);
  for (Norm norm : {Norm::Linf, Norm::L2, Norm::L1}) {
    double eps = norm == Norm::Linf ? 0.05 : norm == Norm::L2 ? 1.0 : 8.0;
    for (uint64_t seed = 0; seed < 4; ++seed) {
      // Absurd step sizes must still never leave the ball or the range.
      PGD pgd(PGDOptions(eps).norm(norm).steps(5).step_size(seed % 2 ? 10.0 : 0).seed(seed));
      AttackResult r = pgd.run(*model, d.x, d.y);
      torch::Tensor n = norm == Norm::Linf ? r.linf : norm == Norm::L2 ? r.l2 : (r.x_adv - d.x).flatten(1).abs().sum(1);
      EXPECT_LE(n.max().item<double>(), eps * (1 + 1e-4) + 1e-5);
      EXPECT_GE(r.x_adv.min().item<double>(), 0.0);
      EXPECT_LE(r.x_adv.max().item<double>(), 1.0);
    }
  }
}

TEST(PGD, NeverChangesParametersAndLeavesEvalMode) {
  auto model = trained_bars_cnn();
  std::vector<torch::Tensor> before;
  for (auto& p : model->parameters()) before.push_back(p.clone());
  Dataset d = testing::make_bar_images(16, 4, 2);
  PGD(PGDOptions(0.1).steps(3)).run(*model, d.x, d.y);
  FGSM(FGSMOptions(0.1)).run(*model, d.x, d.y);
  auto after = model->parameters();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i]));
  EXPECT_FALSE(model->training());
  for (auto& p : after) EXPECT_FALSE(p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
}

TEST(PGD, AtLeastAsStrongAsFGSMAndUnboundedAlwaysWins) {
  auto model = trained_bars_cnn();
  Dataset d = testing::make_bar_images(64, 4, 5);
  double fgsm = FGSM(FGSMOptions(0.15)).run(*model, d.x, d.y).success_rate();
  double pgd = PGD(PGDOptions(0.15).steps(20)).run(*model, d.x, d.y).success_rate();
  EXPECT_GE(pgd, fgsm);
  EXPECT_DOUBLE_EQ(PGD(PGDOptions(1.0).steps(50)).run(*model, d.x, d.y).success_rate(), 1.0);
}

TEST(PGD, TargetedReachesTargets) {
  auto model = trained_bars_cnn();
  Dataset d = testing::make_bar_images(32, 4, 6);
  torch::Tensor targets = (d.y + 1) % 4;
  AttackResult r = PGD(PGDOptions(1.0).steps(50)).run(*model, d.x, d.y, targets);
  EXPECT_TRUE(torch::equal(r.adv_pred.masked_select(r.success), targets.masked_select(r.success)));
  EXPECT_DOUBLE_EQ(r.success_rate(), 1.0);
}

TEST(FGSM, MovesAlongSignOfWeightDifferenceOnLinearModel) {
  // Two classes, logits W x + b: the CE gradient for true class 0 points along w1 - w0.
  torch::Tensor w = torch::tensor({{1.0f, -2.0f, 0.5f, 0.0f}, {-1.0f, 1.0f, 1.5f, 0.0f}});
  auto model = testing::make_linear(w, torch::zeros({2}));
  torch::Tensor x = torch::full({1, 4}, 0.5f);
  AttackResult r = FGSM(FGSMOptions(0.1)).run(*model, x, torch::tensor({0}, torch::kLong));
  torch::Tensor expected = x + 0.1 * (w[1] - w[0]).sign();
  EXPECT_TRUE(torch::allclose(r.x_adv, expected, 1e-6, 1e-6));
}

TEST(Registry, RejectsUnknownNamesAndParameters) {
  EXPECT_NO_THROW(make_attack("pgd", {{"eps", 0.1}, {"steps", 5}}));
  try {
    make_attack("pgd", {{"eps", 0.1}, {"stepz", 5}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown parameter 'stepz'"), std::string::npos) << e.what();
  }
  try {
    make_attack("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown attack 'nope'"), std::string::npos);
  }
  auto a = make_attack("pgd", {{"eps", 0.2}, {"norm", "l2"}});
  auto b = make_attack(a->name(), a->options_json());
  EXPECT_EQ(a->options_json(), b->options_json());
}

}  // namespace
}  // namespace aegis
