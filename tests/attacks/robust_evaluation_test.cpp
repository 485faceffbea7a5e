#include "aegis/attacks/evasion/robust_evaluation.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/evasion/apgd.h"
#include "aegis/core/error.h"
#include "support/test_support.h"

namespace aegis {
namespace {

/// A defence that masks gradients: inputs are quantised to 4 levels before
/// the model (the rounding has zero gradient), the textbook way a model
/// looks robust to white-box attacks without being robust.
class QuantisedModel : public Classifier {
 public:
  explicit QuantisedModel(std::shared_ptr<ScriptClassifier> inner)
      : Classifier(inner->meta()), inner_(std::move(inner)) {}

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override {
    torch::Tensor q = torch::round(x * 3) / 3;
    return grad ? inner_->forward(q) : inner_->logits(q);
  }

 private:
  std::shared_ptr<ScriptClassifier> inner_;
};

RobustEvaluationOptions quick(double eps) {
  return RobustEvaluationOptions(Norm::Linf, eps).budget("quick").batch_size(64);
}

TEST(RobustEvaluation, FallsMonotonicallyWithEpsAndSanityChecksPass) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(64, 4, 31);
  double last = 1.0, first = -1.0;
  for (double eps : {0.02, 0.06, 0.12, 0.25}) {
    RobustEvaluation r = evaluate_robustness(*model, d, quick(eps).sanity_checks(eps == 0.12).sanity_samples(32));
    EXPECT_LE(r.robust_accuracy, last + 1e-12) << eps;
    EXPECT_LE(r.robust_accuracy, r.clean_accuracy);
    last = r.robust_accuracy;
    if (first < 0) first = r.robust_accuracy;
    if (eps == 0.12) {
      EXPECT_TRUE(r.warnings.empty()) << r.to_json().dump(2);
      ASSERT_GE(r.sanity.size(), 4u);
      for (const auto& c : r.sanity) EXPECT_TRUE(c.passed) << c.name << ": " << c.detail;
      // The trained CNN trips no preflight check either.
      ASSERT_GE(r.preflight.checks.size(), 8u);
      for (const auto& c : r.preflight.checks)
        EXPECT_EQ(c.verdict, PreflightVerdict::Pass) << c.name << ": " << c.detail;
    }
  }
  EXPECT_LT(last, first);  // the attacks do bite as eps grows
}

TEST(RobustEvaluation, EnsembleIsNoWeakerThanItsFirstAttackAndAccountsForEverySample) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(64, 4, 32);
  RobustEvaluation r = evaluate_robustness(*model, d, quick(0.08).sanity_checks(false));
  ASSERT_EQ(r.stages.size(), 3u);
  EXPECT_EQ(r.stages[0].attack, "apgd-ce");
  EXPECT_EQ(r.stages[1].attack, "apgd-t");
  EXPECT_EQ(r.stages[2].attack, "square");
  EXPECT_EQ(r.protocol, "autoattack-quick");
  // Stage 1 alone, as a single attack on the same samples.
  AttackResult single = APGD(APGDOptions(0.08).steps(20).seed(0)).run(*model, d.x, d.y);
  double single_robust = (~single.success & (single.adv_pred == d.y)).to(torch::kDouble).mean().item<double>();
  EXPECT_LE(r.robust_accuracy, single_robust + 1e-12);
  // Each stage only attacks what is left, and the per-sample record adds up.
  int64_t clean_wrong = 0, robust = 0, broken = 0;
  for (int64_t i = 0; i < r.samples; ++i) {
    const std::string& b = r.broken_by[size_t(i)];
    clean_wrong += b == "clean";
    robust += b.empty();
    broken += !b.empty() && b != "clean";
    EXPECT_EQ(b.empty(), r.robust[i].item<bool>());
  }
  int64_t attacked = r.stages[0].attacked;
  EXPECT_EQ(attacked, r.samples - clean_wrong);
  for (size_t s = 1; s < r.stages.size(); ++s)
    EXPECT_EQ(r.stages[s].attacked, r.stages[s - 1].attacked - r.stages[s - 1].broken);
  EXPECT_EQ(broken, r.stages[0].broken + r.stages[1].broken + r.stages[2].broken);
  EXPECT_NEAR(r.robust_accuracy, double(robust) / double(r.samples), 1e-12);
  // Every adversarial example found is a real one: inside the ball, misclassified.
  torch::Tensor br = (~r.robust & r.clean_correct).nonzero().flatten();
  if (br.numel() > 0) {
    torch::Tensor xa = r.x_adv.index_select(0, br), x = d.x.index_select(0, br);
    EXPECT_LE((xa - x).abs().max().item<double>(), 0.08 + 1e-6);
    EXPECT_FALSE(torch::any(model->predict(xa) == d.y.index_select(0, br)).item<bool>());
  }
  auto j = r.to_json(true);
  EXPECT_EQ(j["stages"].size(), 3u);
  EXPECT_EQ(j["per_sample"]["broken_by"].size(), 64u);
}

TEST(RobustEvaluation, SamplesTheSanityReRunsBreakAreNotReportedRobust) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(48, 4, 35);
  // A deliberately weak ensemble (one FGSM step); the sanity checks' APGD-CE
  // re-runs at the same eps break more, and those samples must count.
  RobustEvaluation weak = evaluate_robustness(*model, d, quick(0.24).attacks({{"fgsm", {}}}).sanity_checks(false));
  RobustEvaluation r = evaluate_robustness(*model, d, quick(0.24).attacks({{"fgsm", {}}}).sanity_samples(48));
  ASSERT_GE(r.stages.size(), 2u) << r.to_json().dump(2);
  const EvaluationStage& rerun = r.stages.back();
  EXPECT_EQ(rerun.attack, "apgd-ce (sanity re-runs)");
  EXPECT_GT(rerun.broken, 0);
  EXPECT_LT(r.robust_accuracy, weak.robust_accuracy);
  EXPECT_NEAR(r.robust_accuracy, weak.robust_accuracy - double(rerun.broken) / 48.0, 1e-12);
  int64_t by_rerun = 0;
  for (int64_t i = 0; i < r.samples; ++i) {
    EXPECT_EQ(r.broken_by[size_t(i)].empty(), r.robust[i].item<bool>());
    by_rerun += r.broken_by[size_t(i)] == rerun.attack;
  }
  EXPECT_EQ(by_rerun, rerun.broken);
  torch::Tensor br = (~r.robust & r.clean_correct).nonzero().flatten();
  torch::Tensor xa = r.x_adv.index_select(0, br), x = d.x.index_select(0, br);
  EXPECT_LE((xa - x).abs().max().item<double>(), 0.24 + 1e-6);
  EXPECT_FALSE(torch::any(model->predict(xa) == d.y.index_select(0, br)).item<bool>());
}

TEST(RobustEvaluation, FlagsGradientMasking) {
  QuantisedModel masked(testing::trained_bars_cnn());
  Dataset d = testing::make_bar_images(48, 4, 33);
  RobustEvaluation r = evaluate_robustness(masked, d, quick(0.2).sanity_samples(32));
  ASSERT_FALSE(r.warnings.empty());
  // The zero gradient stops APGD even with an unbounded budget: the check
  // that catches it. (Square at this eps finds nothing either on this model,
  // so the black-box check has nothing to compare and stays quiet.)
  bool unbounded_failed = false;
  for (const auto& c : r.sanity)
    if (c.name == "unbounded-attack-succeeds") unbounded_failed = !c.passed;
  EXPECT_TRUE(unbounded_failed) << r.to_json().dump(2);
  EXPECT_FALSE(r.to_json()["sanity_passed"].get<bool>());
}

TEST(RobustEvaluation, RejectsBadOptions) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(8, 4, 34);
  EXPECT_THROW(evaluate_robustness(*model, d, quick(0)), Error);
  EXPECT_THROW(evaluate_robustness(*model, d, quick(0.1).budget("huge")), Error);
  try {
    evaluate_robustness(*model, d, quick(0.1).attacks({{"pgd", {{"eps", 0.5}}}}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the evaluation"), std::string::npos) << e.what();
  }
  RobustEvaluation custom =
      evaluate_robustness(*model, d, quick(0.1).attacks({{"pgd", {{"steps", 5}}}}).sanity_checks(false));
  EXPECT_EQ(custom.protocol, "custom");
  ASSERT_EQ(custom.stages.size(), 1u);
  EXPECT_EQ(custom.stages[0].options["eps"], 0.1);
}

}  // namespace
}  // namespace aegis
