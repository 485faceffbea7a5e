#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/extraction/jacobian_augmentation.h"
#include "aegis/attacks/extraction/knockoff.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "support/test_support.h"

namespace aegis {
namespace {

struct Blobs {
  Dataset train, pool, test;
};

/// One draw of separable blobs: the victim's training data, the thief's pool,
/// test data.
const Blobs& blobs() {
  static Blobs b = [] {
    Dataset all = testing::make_blobs(5000, 10, 4, 23, 0.1);
    Blobs s;
    s.train = all.subset(torch::arange(0, 2000, torch::kLong));
    s.pool = all.subset(torch::arange(2000, 4000, torch::kLong));
    s.test = all.subset(torch::arange(4000, 5000, torch::kLong));
    return s;
  }();
  return b;
}

std::shared_ptr<ScriptClassifier> victim() {
  static std::shared_ptr<ScriptClassifier> m = [] {
    seed_everything(4);
    auto v = build_architecture(ArchitectureOptions("mlp", {10}, 4));
    train(*v, blobs().train, nullptr, TrainOptions().epochs(10).batch_size(64).lr(3e-3));
    return v;
  }();
  return m;
}

const SurrogateModelOptions kSub =
    SurrogateModelOptions().arch("mlp").hidden({64}).train(TrainOptions().epochs(30).batch_size(64).lr(3e-3));

TEST(Knockoff, StealsAFaithfulCopyWithinTheBudget) {
  auto v = victim();
  v->reset_queries();
  ExtractionResult r = knockoff_extraction(*v, blobs().pool, KnockoffOptions().budget(500).substitute(kSub));
  EXPECT_EQ(r.queries, 500);
  EXPECT_EQ(v->queries(), 500);
  ExtractionEvaluation e = evaluate_extraction(*v, *r.substitute, blobs().test, TransferOptions().eps(0.15));
  EXPECT_GE(e.victim_accuracy, 0.9);
  EXPECT_GE(e.fidelity, 0.9);
  EXPECT_GE(e.substitute_accuracy, 0.85);
  // Adversarial examples from the copy transfer; random noise of the same size
  // does not.
  EXPECT_GT(e.transfer_rate, e.noise_rate + 0.2);
  EXPECT_NEAR(e.mean_l2_noise, e.mean_l2_adversarial, 0.35 * e.mean_l2_adversarial);
  nlohmann::json j = r.to_json();
  EXPECT_EQ(j["atlas"], "AML.T0024.002");
  EXPECT_EQ(j["owasp"], "ML05");
}

TEST(Knockoff, LabelsOnlyAndNoiseQueriesStillWorkButFidelityIsMeasured) {
  auto v = victim();
  auto labels = knockoff_extraction(
      *v, blobs().pool, KnockoffOptions().budget(500).substitute(kSub).access(OutputAccess().mode(AnswerMode::Label)));
  double fid = evaluate_extraction(*v, *labels.substitute, blobs().test).fidelity;
  EXPECT_GE(fid, 0.8);
  EXPECT_LE(fid, 1.0);
  Dataset noise = noise_queries(v->meta(), 500, 3);
  EXPECT_GE(noise.x.min().item<double>(), 0.0);
  EXPECT_LE(noise.x.max().item<double>(), 1.0);
  auto from_noise = knockoff_extraction(*v, noise, KnockoffOptions().budget(500).substitute(kSub));
  EXPECT_GT(evaluate_extraction(*v, *from_noise.substitute, blobs().test).fidelity, 0.25);
}

TEST(JacobianAugmentation, GrowsTheSetWithinBudgetAndLearnsTheVictim) {
  auto v = victim();
  v->reset_queries();
  ExtractionResult r = jacobian_extraction(
      *v, blobs().pool, JacobianAugmentationOptions().budget(300).seed_size(40).lambda(0.1).substitute(kSub));
  EXPECT_EQ(r.queries, 300);
  EXPECT_EQ(v->queries(), 300);
  // 40 -> 80 -> 160 -> 300 (the last round capped by the budget).
  ASSERT_EQ(r.details["rounds"].size(), 4u);
  EXPECT_EQ(r.details["rounds"][3]["set_size"], 300);
  EXPECT_GE(evaluate_extraction(*v, *r.substitute, blobs().test).fidelity, 0.8);
}

TEST(Extraction, CurveRunsEveryBudget) {
  auto v = victim();
  auto curve = extraction_curve(*v, blobs().test.head(200), {50, 400}, [&](int64_t b) {
    return knockoff_extraction(*v, blobs().pool, KnockoffOptions().budget(b).substitute(kSub));
  });
  ASSERT_EQ(curve.size(), 2u);
  EXPECT_EQ(curve[0].extraction.queries, 50);
  EXPECT_EQ(curve[1].extraction.queries, 400);
  EXPECT_EQ(curve_to_json(curve).size(), 2u);
}

TEST(Extraction, RejectsBadInputs) {
  auto v = victim();
  try {
    knockoff_extraction(*v, blobs().pool.head(10), KnockoffOptions().budget(11));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("exceeds"), std::string::npos);
  }
  EXPECT_THROW(jacobian_extraction(*v, blobs().pool, JacobianAugmentationOptions().budget(10).seed_size(20)), Error);
  EXPECT_THROW(knockoff_extraction(*v, testing::make_blobs(10, 3, 4, 1), KnockoffOptions().budget(5)), Error);
  EXPECT_THROW(evaluate_extraction(*v, *v, blobs().test, TransferOptions().eps(0)), Error);
}

}  // namespace
}  // namespace aegis
