#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "aegis/core/accuracy.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "support/test_support.h"

namespace aegis {
namespace {

std::shared_ptr<ScriptClassifier> mlp(uint64_t seed, double dropout = 0.2) {
  seed_everything(seed);
  return build_architecture(ArchitectureOptions("mlp", {8}, 4).hidden({32}).dropout(dropout));
}

TEST(Trainer, LearnsSeparableBlobs) {
  Dataset all = testing::make_blobs(800, 8, 4, 1, 0.05);
  auto [fit, val] = all.split(0.25, 1);
  auto m = mlp(1);
  TrainResult r = train(*m, fit, &val, TrainOptions().epochs(8).batch_size(32).lr(5e-3));
  EXPECT_EQ(r.history.size(), 8u);
  EXPECT_GT(r.history.back().val_accuracy, 0.95);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_GT(measure_accuracy(*m, val, 64, false).accuracy, 0.95);
  EXPECT_FALSE(m->training());
  const auto& prov = m->meta().provenance["training"];
  EXPECT_EQ(prov["objective"], "standard");
  EXPECT_EQ(prov["data"]["fingerprint"], fit.fingerprint());
}

TEST(Trainer, SameSeedSameModel) {
  Dataset d = testing::make_blobs(200, 8, 4, 2);
  auto a = mlp(5);  // seeds the global generator (init and dropout)
  train(*a, d, nullptr, TrainOptions().epochs(2).seed(9));
  auto b = mlp(5);
  train(*b, d, nullptr, TrainOptions().epochs(2).seed(9));
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
}

TEST(Trainer, ResumeEqualsAnUninterruptedRun) {
  testing::TempDir dir;
  Dataset all = testing::make_blobs(300, 8, 4, 3);
  auto [fit, val] = all.split(0.2, 3);
  TrainOptions o = TrainOptions().epochs(4).batch_size(32).seed(4).checkpoint_dir(dir.file("ck"));

  auto full = mlp(7);
  train(*full, fit, &val, TrainOptions(o).checkpoint_dir(dir.file("full")));

  // A run that crashes during epoch 2 (before its checkpoint is written).
  auto part = mlp(7);
  EXPECT_THROW(train(*part, fit, &val, o,
                     nullptr,
                     [](const EpochStats& s) {
                       if (s.epoch == 2) throw std::runtime_error("simulated crash");
                     }),
               std::runtime_error);
  // The crash happened before epoch 2's checkpoint: resume from epoch 1's.
  seed_everything(12345);  // a resumed process starts with another RNG state
  auto resumed = mlp(99);  // and other initial weights: the checkpoint must win
  TrainResult r = train(*resumed, fit, &val, TrainOptions(o).resume(true));
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.resumed_from_epoch, 1);
  EXPECT_EQ(r.history.size(), 4u);
  auto pf = full->parameters(), pr = resumed->parameters();
  for (size_t i = 0; i < pf.size(); ++i) EXPECT_TRUE(torch::equal(pf[i], pr[i])) << "parameter " << i;
}

TEST(Trainer, EarlyStoppingKeepsTheBestEpoch) {
  Dataset all = testing::make_blobs(300, 8, 4, 6);
  auto [fit, val] = all.split(0.3, 6);
  auto m = mlp(3);
  // A learning rate this large makes validation accuracy wander; patience 1
  // must stop and restore the best epoch's weights.
  TrainResult r = train(*m, fit, &val, TrainOptions().epochs(30).lr(0.5).optimizer("sgd").schedule("constant").patience(1));
  double best = 0;
  for (const auto& e : r.history) best = std::max(best, e.val_accuracy);
  EXPECT_LT(r.history.size(), 30u);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_NEAR(measure_accuracy(*m, val, 64, false).accuracy, best, 1e-9);
}

TEST(Trainer, RejectsBadOptions) {
  Dataset d = testing::make_blobs(20, 8, 4, 1);
  auto m = mlp(1);
  EXPECT_THROW(train(*m, d, nullptr, TrainOptions().epochs(0)), Error);
  EXPECT_THROW(train(*m, d, nullptr, TrainOptions().lr(-1)), Error);
  EXPECT_THROW(train(*m, d, nullptr, TrainOptions().optimizer("adagrad")), Error);
  EXPECT_THROW(train(*m, d, nullptr, TrainOptions().resume(true)), Error);
}

TEST(Trainer, SmallFashionMnistSubsetReachesSensibleAccuracy) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  Dataset train_set = load_dataset(DataSpec("fashion-mnist").split("train").limit(3000));
  Dataset test_set = load_dataset(DataSpec("fashion-mnist").split("test").limit(1000));
  seed_everything(0);
  auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10).normalization({0.286}, {0.353}));
  train(*m, train_set, nullptr, TrainOptions().epochs(2).lr(2e-3));
  EXPECT_GT(measure_accuracy(*m, test_set, 256, false).accuracy, 0.70);
}

}  // namespace
}  // namespace aegis
