#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "aegis/attacks/poisoning/badnets.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/backdoor/neural_cleanse.h"
#include "aegis/defenses/data/activation_clustering.h"
#include "aegis/defenses/data/spectral_signatures.h"
#include "aegis/defenses/training/trainer.h"
#include "support/test_support.h"

namespace aegis {
namespace {

TEST(SpectralSignatures, FindsAPlantedClusterAndNothingInACleanClass) {
  auto model = testing::identity_features_model(8, 2);
  for (uint64_t seed = 0; seed < 5; ++seed) {
    Dataset ds = testing::make_planted_features(seed);
    SuspectReport r = spectral_signatures(*model, ds);
    DetectionScore s = score_detection(r.indices(), testing::planted_indices());
    EXPECT_EQ(s.precision, 1.0) << "seed " << seed;
    EXPECT_EQ(s.recall, 1.0) << "seed " << seed;
    EXPECT_EQ(r.details["classes"][1]["flagged"].get<int64_t>(), 0);
    // The paper's fixed-fraction rule flags 1.5 * eps * n of every class.
    SuspectReport f = spectral_signatures(*model, ds, SpectralOptions().expected_fraction(0.1));
    EXPECT_EQ(int64_t(f.suspects.size()), std::llround(0.15 * 240) + std::llround(0.15 * 200));
  }
}

// Class 0: a skewed (exponential) spread along axis 0, which two-means splits
// into a small, well-separated-looking tail (share ~0.2, silhouette ~0.65,
// R^2 ~0.65) although its density never dips; class 1: 200 clean
// samples plus two planted groups (20 at +0.6 and 20 at -0.6 along axis 1),
// each separated from the clean mode by an empty gap. Poison at 500..539.
Dataset flat_and_two_groups(uint64_t seed) {
  auto gen = make_generator(seed, "flat-and-two-groups");
  const int64_t d = 8;
  torch::Tensor flat = torch::randn({300, d}, gen) * 0.02;
  flat.select(1, 0).copy_(-0.3 * torch::log(torch::rand({300}, gen).clamp_min(1e-12)));
  torch::Tensor c1 = torch::randn({200, d}, gen) * 0.05;
  torch::Tensor up = torch::randn({20, d}, gen) * 0.05, down = torch::randn({20, d}, gen) * 0.05;
  up.select(1, 1).add_(0.6);
  down.select(1, 1).add_(-0.6);
  Dataset ds;
  ds.x = torch::cat({flat, c1, up, down});
  ds.y = torch::cat({torch::zeros({300}, torch::kLong), torch::ones({240}, torch::kLong)});
  return ds;
}

std::vector<int64_t> two_groups_truth() {
  std::vector<int64_t> t;
  for (int64_t i = 500; i < 540; ++i) t.push_back(i);
  return t;
}

TEST(SpectralSignatures, GapRuleIgnoresASkewedClassAndSplitsOffEveryGappedGroup) {
  auto model = testing::identity_features_model(8, 2);
  for (uint64_t seed = 0; seed < 5; ++seed) {
    SuspectReport r = spectral_signatures(*model, flat_and_two_groups(seed));
    DetectionScore s = score_detection(r.indices(), two_groups_truth());
    EXPECT_EQ(s.precision, 1.0) << "seed " << seed << " " << r.details.dump();
    EXPECT_EQ(s.recall, 1.0) << "seed " << seed << " " << r.details.dump();
    const auto& flat = r.details["classes"][0];
    EXPECT_EQ(flat["flagged"].get<int64_t>(), 0);
    EXPECT_GE(flat["rounds"][0]["separation"].get<double>(), 0.5);
    EXPECT_GT(flat["rounds"][0]["valley"].get<double>(), 0.5);
    // Two groups, two rounds; the third finds no gap.
    const auto& rounds = r.details["classes"][1]["rounds"];
    ASSERT_EQ(rounds.size(), 3u) << rounds.dump();
    EXPECT_LT(rounds[0]["valley"].get<double>(), 0.05);
    EXPECT_LT(rounds[1]["valley"].get<double>(), 0.05);
    EXPECT_GT(rounds[2]["valley"].get<double>(), 0.2);
    // One round only: the first group alone.
    SuspectReport one = spectral_signatures(*model, flat_and_two_groups(seed), SpectralOptions().max_rounds(1));
    EXPECT_EQ(one.suspects.size(), 20u);
  }
}

TEST(SpectralSignatures, RejectsBadOptions) {
  auto model = testing::identity_features_model(8, 2);
  Dataset ds = testing::make_planted_features(0);
  auto msg = [&](const SpectralOptions& o) {
    try {
      spectral_signatures(*model, ds, o);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(msg(SpectralOptions().max_valley(0)).find("max valley must be in (0, 1)"), std::string::npos);
  EXPECT_NE(msg(SpectralOptions().max_rounds(0)).find("max rounds must be >= 1"), std::string::npos);
  EXPECT_NE(msg(SpectralOptions().expected_fraction(1)).find("expected fraction"), std::string::npos);
}

TEST(ActivationClustering, GapCriterionIgnoresASkewedClass) {
  auto model = testing::identity_features_model(8, 2);
  for (uint64_t seed = 0; seed < 5; ++seed) {
    SuspectReport r =
        activation_clustering(*model, flat_and_two_groups(seed), ActivationClusteringOptions().seed(seed));
    const auto& flat = r.details["classes"][0];
    EXPECT_EQ(flat["flagged"].get<int64_t>(), 0) << flat.dump();
    // The paper's size and silhouette criteria alone would flag its tail.
    EXPECT_LE(flat["smaller_cluster_fraction"].get<double>(), 0.4) << flat.dump();
    EXPECT_GE(flat["silhouette"].get<double>(), 0.25) << flat.dump();
    EXPECT_GT(flat["valley"].get<double>(), 0.5) << flat.dump();
    // One split per class: one of the two planted groups (20 samples), no clean one.
    DetectionScore s = score_detection(r.indices(), two_groups_truth());
    EXPECT_EQ(s.precision, 1.0) << r.details.dump();
    EXPECT_EQ(s.true_positives, 20) << r.details.dump();
  }
}

TEST(ActivationClustering, FindsAPlantedClusterAndNothingInACleanClass) {
  auto model = testing::identity_features_model(8, 2);
  for (uint64_t seed = 0; seed < 5; ++seed) {
    Dataset ds = testing::make_planted_features(seed);
    SuspectReport r = activation_clustering(*model, ds, ActivationClusteringOptions().seed(seed));
    DetectionScore s = score_detection(r.indices(), testing::planted_indices());
    EXPECT_EQ(s.precision, 1.0) << "seed " << seed;
    EXPECT_EQ(s.recall, 1.0) << "seed " << seed;
    EXPECT_EQ(r.details["classes"][1]["flagged"].get<int64_t>(), 0);
    for (const auto& sus : r.suspects) EXPECT_GT(sus.score, 0.0);
  }
}

TEST(PoisonDetectors, RejectModelsWithoutFeatures) {
  auto lin = testing::make_linear(torch::randn({2, 8}), torch::zeros({2}));
  Dataset ds = testing::make_planted_features(0);
  try {
    spectral_signatures(*lin, ds);
    FAIL() << "expected Unsupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("features"), std::string::npos);
  }
}

// End to end on images: a tiny CNN trained on BadNets-poisoned bars.
struct Backdoored {
  Dataset clean, poisoned, test;
  PoisonResult record;
  std::shared_ptr<ScriptClassifier> backdoored, clean_model;
};

const Backdoored& backdoored_bars() {
  static Backdoored b = [] {
    Backdoored out;
    out.clean = testing::make_bar_images(900, 6, 21);
    out.test = testing::make_bar_images(240, 6, 22);
    out.record = badnets(out.clean, BadNetsOptions(0).fraction(0.1).seed(1));
    out.poisoned = out.record.poisoned;
    auto fit = [](const Dataset& d) {
      seed_everything(4);
      auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 6));
      train(*m, d, nullptr, TrainOptions().epochs(3).batch_size(64).lr(3e-3).seed(2));
      return m;
    };
    out.backdoored = fit(out.poisoned);
    out.clean_model = fit(out.clean);
    return out;
  }();
  return b;
}

TEST(PoisonDetectors, FindBadNetsSamplesThroughACnnsFeatures) {
  const auto& b = backdoored_bars();
  SuspectReport r = spectral_signatures(*b.backdoored, b.poisoned);
  DetectionScore s = score_detection(r.indices(), b.record.indices);
  EXPECT_GE(s.precision, 0.8) << r.to_json()["details"].dump();
  EXPECT_GE(s.recall, 0.8) << r.to_json()["details"].dump();
  // Activation clustering (one split per class) finds only part of this
  // poison, which forms several groups; it must still not flag clean samples.
  SuspectReport a = activation_clustering(*b.backdoored, b.poisoned);
  EXPECT_GE(score_detection(a.indices(), b.record.indices).precision, 0.8) << a.to_json()["details"].dump();
}

TEST(NeuralCleanse, AnomalyIndexIsTheMadRule) {
  // median 10, |dev| = {8, 0, 1, 1, 2} -> MAD 1 -> scaled 1.4826.
  std::vector<double> ai = anomaly_indices({2, 10, 9, 11, 12});
  EXPECT_NEAR(ai[0], 8 / 1.4826, 1e-9);
  EXPECT_NEAR(ai[4], -2 / 1.4826, 1e-9);
  EXPECT_EQ(anomaly_indices({5, 5, 5})[0],
            0.0);  // no spread: nothing stands out
}

TEST(NeuralCleanse, FlagsTheBackdooredTargetOnlyInTheBackdooredModel) {
  const auto& b = backdoored_bars();
  NeuralCleanseOptions o;
  o.steps(100).batch_size(16).init_cost(1e-2).seed(3);
  Dataset sample = b.test.head(120);
  NeuralCleanseResult bad = neural_cleanse(*b.backdoored, sample, o);
  NeuralCleanseResult good = neural_cleanse(*b.clean_model, sample, o);
  EXPECT_EQ(bad.flagged_classes, std::vector<int64_t>{0}) << bad.to_json().dump();
  // On this toy set the clean model's class 0 (the top bar) is naturally easy
  // to reach (anomaly index ~2.7 with 6 classes), so "clean model not flagged"
  // is measured on Fashion-MNIST (bench/poisoning_eval.sh), not here. What
  // must hold: the backdoor makes the target's reversed trigger much smaller.
  EXPECT_LT(bad.classes[0].mask_l1, 0.75 * good.classes[0].mask_l1) << bad.to_json().dump() << good.to_json().dump();
  EXPECT_EQ(bad.classes.size(), 6u);
  EXPECT_EQ(bad.classes[0].mask.sizes(), (std::vector<int64_t>{1, 28, 28}));
}

TEST(NeuralCleanse, SmoothnessTermKeepsFindingACompactPlantedTrigger) {
  // The total-variation term costs a compact patch little (perimeter ~ its
  // size) and scattered pixels much: the planted trigger is still flagged.
  const auto& b = backdoored_bars();
  NeuralCleanseOptions o;
  o.steps(100).batch_size(16).init_cost(1e-2).seed(3).smoothness(1.0);
  NeuralCleanseResult bad = neural_cleanse(*b.backdoored, b.test.head(120), o);
  EXPECT_EQ(bad.flagged_classes, std::vector<int64_t>{0}) << bad.to_json().dump();
  EXPECT_EQ(bad.options["smoothness"].get<double>(), 1.0);
  EXPECT_THROW(neural_cleanse(*b.backdoored, b.test.head(120), NeuralCleanseOptions().smoothness(-1)), Error);
}

TEST(NeuralCleanse, RejectsNonImageModels) {
  auto lin = testing::make_linear(torch::randn({3, 4}), torch::zeros({3}));
  Dataset d = testing::make_blobs(20, 4, 3, 1);
  try {
    neural_cleanse(*lin, d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("[C, H, W]"), std::string::npos);
  }
}

}  // namespace
}  // namespace aegis
