#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/evasion/carlini_wagner.h"
#include "aegis/attacks/evasion/deepfool.h"
#include "aegis/attacks/evasion/fgsm.h"
#include "aegis/attacks/evasion/hop_skip_jump.h"
#include "aegis/attacks/evasion/pgd.h"
#include "aegis/attacks/evasion/square.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "support/black_box.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::BlackBox;

/// A linear 3-class problem with a known minimal L2 perturbation:
/// d* = min_k |z_k - z_y| / ||w_k - w_y|| (the region of y is a polytope).
struct LinearCase {
  std::shared_ptr<ScriptClassifier> model;
  torch::Tensor x, y;
  double d_min = 0;
};

LinearCase linear_case(uint64_t seed) {
  auto gen = make_generator(seed, "linear-case");
  torch::Tensor w = torch::randn({3, 10}, gen) * 3;
  torch::Tensor x = 0.4 + torch::rand({1, 10}, gen) * 0.2;
  torch::Tensor z0 = torch::mv(w, x[0]);
  torch::Tensor b = -z0 + torch::tensor({0.0f, -1.0f, -0.5f});
  LinearCase c{testing::make_linear(w, b), x, torch::tensor({0}, torch::kLong)};
  double d1 = 1.0 / (w[1] - w[0]).norm().item<double>(), d2 = 0.5 / (w[2] - w[0]).norm().item<double>();
  c.d_min = std::min(d1, d2);
  return c;
}

TEST(DeepFool, FindsTheMinimalPerturbationOfALinearModelWithinItsOvershoot) {
  for (uint64_t seed = 0; seed < 6; ++seed) {
    LinearCase c = linear_case(seed);
    ASSERT_LT(c.d_min * 1.1, 0.4);  // the box never clips the step
    AttackResult r = DeepFool(DeepFoolOptions().overshoot(0.02)).run(*c.model, c.x, c.y);
    ASSERT_TRUE(r.success[0].item<bool>()) << seed;
    const double l2 = r.l2[0].item<double>();
    EXPECT_GE(l2, c.d_min * (1 - 1e-4)) << seed;
    EXPECT_LE(l2, c.d_min * 1.02 + 1e-3) << seed;
    EXPECT_EQ(r.iterations, 1) << seed;  // linear: one step suffices
  }
}

TEST(CarliniWagner, GetsWithinFivePercentOfTheMinimalPerturbation) {
  for (uint64_t seed = 0; seed < 4; ++seed) {
    LinearCase c = linear_case(seed);
    AttackResult r = CarliniWagner(CarliniWagnerOptions().steps(200).binary_search_steps(9).initial_const(1e-2))
                         .run(*c.model, c.x, c.y);
    ASSERT_TRUE(r.success[0].item<bool>()) << seed;
    const double l2 = r.l2[0].item<double>();
    EXPECT_GE(l2, c.d_min * (1 - 1e-4)) << seed;
    EXPECT_LE(l2, c.d_min * 1.05) << seed << " l2 " << l2 << " d* " << c.d_min;
  }
}

/// Registry parameters for a short run of each attack at a given budget.
nlohmann::json small_params(const std::string& name, double eps_linf) {
  if (name == "fgsm") return {{"eps", eps_linf}};
  if (name == "bim" || name == "pgd") return {{"eps", eps_linf}, {"steps", 10}};
  if (name == "apgd") return {{"eps", eps_linf}, {"steps", 10}};
  if (name == "apgd-t") return {{"eps", eps_linf}, {"steps", 5}, {"target_classes", 2}};
  if (name == "cw") return {{"steps", 20}, {"binary_search_steps", 1}, {"initial_const", 1.0}};
  if (name == "deepfool") return {{"steps", 20}};
  if (name == "square") return {{"eps", eps_linf}, {"queries", 60}};
  if (name == "hopskipjump") return {{"steps", 3}, {"init_evals", 20}};
  return nlohmann::json::object();
}

TEST(EvasionAttacks, EveryAttackKeepsBallRangeEvalModeAndParametersOverSeeds) {
  auto model = testing::trained_bars_cnn();
  std::vector<torch::Tensor> before;
  for (auto& p : model->parameters()) before.push_back(p.clone());
  Dataset d = testing::make_bar_images(6, 4, 41);
  ASSERT_EQ(attack_catalog().size(), 9u);
  for (const auto& info : attack_catalog()) {
    for (uint64_t seed = 0; seed < 3; ++seed) {
      {
        const std::string norm = seed % 2 ? "l2" : "linf";
        nlohmann::json p = small_params(info.name, norm == "linf" ? 0.08 : 1.5);
        if (info.name != "cw") p["norm"] = norm;
        p["seed"] = seed;
        auto a = make_attack(info.name, p);
        AttackResult r = a->run(*model, d.x, d.y);
        SCOPED_TRACE(info.name + " " + norm + " seed " + std::to_string(seed));
        EXPECT_GE(r.x_adv.min().item<double>(), 0.0);
        EXPECT_LE(r.x_adv.max().item<double>(), 1.0);
        if (auto b = a->budget()) {
          torch::Tensor n = b->first == Norm::Linf ? r.linf : r.l2;
          EXPECT_LE(n.max().item<double>(), b->second * (1 + 1e-4) + 1e-6);
        }
        // Every success is real: the model's label on x_adv says so.
        torch::Tensor pred = model->predict(r.x_adv);
        EXPECT_TRUE(torch::equal(pred.masked_select(r.success), r.adv_pred.masked_select(r.success)));
        EXPECT_FALSE(torch::any((pred == d.y) & r.success).item<bool>());
        EXPECT_GE(r.queries, d.size());
        EXPECT_FALSE(model->training());
      }
    }
  }
  auto after = model->parameters();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i]));
}

TEST(EvasionAttacks, TargetedAttacksReachTheirTargets) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(16, 4, 42);
  torch::Tensor targets = (d.y + 1) % 4;
  std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"pgd", {{"eps", 0.5}, {"steps", 40}}},
      {"apgd", {{"eps", 0.5}, {"steps", 40}, {"loss", "ce"}}},
      {"cw", {{"steps", 100}, {"binary_search_steps", 3}, {"initial_const", 1.0}}},
      {"square", {{"eps", 0.5}, {"queries", 2000}}},
      {"hopskipjump", {{"steps", 5}, {"init_evals", 30}}},
  };
  for (const auto& [name, params] : cases) {
    AttackResult r = make_attack(name, params)->run(*model, d.x, d.y, targets);
    EXPECT_DOUBLE_EQ(r.success_rate(), 1.0) << name;
    EXPECT_TRUE(torch::equal(r.adv_pred, targets)) << name;
    EXPECT_TRUE(torch::equal(r.targets, targets)) << name;
  }
  // Least-likely and random targets are resolved and then reached.
  AttackResult ll =
      make_attack("pgd", {{"eps", 0.5}, {"steps", 40}, {"targeted", "least-likely"}})->run(*model, d.x, d.y);
  EXPECT_DOUBLE_EQ(ll.success_rate(), 1.0);
  EXPECT_TRUE(torch::equal(ll.adv_pred, ll.targets));
  EXPECT_THROW(make_attack("deepfool")->run(*model, d.x, d.y, targets), Error);
}

TEST(EvasionAttacks, BlackBoxAttacksNeedOnlyOutputs) {
  BlackBox box(testing::trained_bars_cnn());
  Dataset d = testing::make_bar_images(8, 4, 43);
  AttackResult sq = Square(SquareOptions(0.4).queries(400)).run(box, d.x, d.y);
  EXPECT_DOUBLE_EQ(sq.success_rate(), 1.0);
  AttackResult hsj = HopSkipJump(HopSkipJumpOptions().steps(10).init_evals(50)).run(box, d.x, d.y);
  EXPECT_DOUBLE_EQ(hsj.success_rate(), 1.0);
  EXPECT_EQ(hsj.queries, box.queries() - 8 - sq.queries - 8);  // run()'s two verification passes are not charged
  // HopSkipJump shrinks the perturbation as it iterates.
  AttackResult longer = HopSkipJump(HopSkipJumpOptions().steps(25).init_evals(50)).run(box, d.x, d.y);
  EXPECT_LT(longer.l2.mean().item<double>(), hsj.l2.mean().item<double>());
  HopSkipJumpOptions linf;
  linf.norm(Norm::Linf).steps(10).init_evals(50);
  EXPECT_DOUBLE_EQ(HopSkipJump(linf).run(box, d.x, d.y).success_rate(), 1.0);
  try {
    PGD(PGDOptions(0.1)).run(box, d.x, d.y);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("black-box attack"), std::string::npos) << e.what();
  }
}

TEST(EvasionAttacks, OnATrainedCnnPgdBeatsFgsmAndUnboundedPgdAlwaysWins) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(64, 4, 44);
  double last_robust = 1.0;
  for (double eps : {0.03, 0.06, 0.1, 0.15, 0.25}) {
    AttackResult pgd = PGD(PGDOptions(eps).steps(20)).run(*model, d.x, d.y);
    AttackResult fgsm = FGSM(FGSMOptions(eps)).run(*model, d.x, d.y);
    double robust = (pgd.adv_pred == d.y).to(torch::kDouble).mean().item<double>();
    EXPECT_LE(robust, last_robust + 1.0 / 64) << eps;  // robust accuracy falls with eps
    last_robust = std::min(last_robust, robust);
    EXPECT_GE(pgd.success_rate(), fgsm.success_rate()) << eps;
  }
  EXPECT_DOUBLE_EQ(PGD(PGDOptions(1.0).steps(20)).run(*model, d.x, d.y).success_rate(), 1.0);
  EXPECT_DOUBLE_EQ(DeepFool().run(*model, d.x, d.y).success_rate(), 1.0);
}

TEST(Registry, EveryAttackRoundTripsAndRejectsUnknownParameters) {
  for (const auto& info : attack_catalog()) {
    auto a = make_attack(info.name, small_params(info.name, 0.1));
    EXPECT_EQ(a->name(), info.name);
    EXPECT_EQ(a->needs_gradients(), info.white_box) << info.name;
    auto b = make_attack(info.name, a->options_json());
    EXPECT_EQ(a->options_json(), b->options_json()) << info.name;
    try {
      make_attack(info.name, {{"no_such_knob", 1}});
      FAIL() << info.name;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
      EXPECT_NE(std::string(e.what()).find("unknown parameter 'no_such_knob'"), std::string::npos) << e.what();
      const std::string context = info.name == "bim" ? "pgd:" : info.name + ":";  // bim is PGD's table
      EXPECT_NE(std::string(e.what()).find(context), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(make_attack("cw", {{"eps", 0.1}}), Error);  // minimal-perturbation: no budget
  EXPECT_THROW(make_attack("square", {{"p_init", 2.0}}), Error);
  EXPECT_THROW(make_attack("apgd", {{"loss", "hinge"}}), Error);
  EXPECT_THROW(make_attack("hopskipjump", {{"norm", "l1"}}), Error);
  EXPECT_THROW(make_attack("deepfool", {{"steps", "many"}}), Error);
}

}  // namespace
}  // namespace aegis
