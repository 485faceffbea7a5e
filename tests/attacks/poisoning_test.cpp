#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "aegis/attacks/poisoning/badnets.h"
#include "aegis/attacks/poisoning/clean_label.h"
#include "aegis/attacks/poisoning/label_flip.h"
#include "aegis/attacks/poisoning/poison_metrics.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "support/test_support.h"

namespace aegis {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LabelFlip, RandomFlipsExactlyTheRateAndRecordsIt) {
  Dataset d = testing::make_blobs(1000, 4, 5, 1);
  for (double rate : {0.0, 0.013, 0.1, 0.5, 1.0}) {
    for (uint64_t seed = 0; seed < 3; ++seed) {
      PoisonResult r = label_flip(d, LabelFlipOptions(rate).seed(seed));
      int64_t want = std::llround(rate * 1000);
      ASSERT_EQ(int64_t(r.indices.size()), want);
      torch::Tensor changed = (r.poisoned.y != d.y).nonzero().view(-1);
      ASSERT_EQ(changed.size(0),
                want);  // every chosen sample got a *different* class
      for (int64_t i = 0; i < want; ++i) {
        EXPECT_EQ(changed[i].item<int64_t>(), r.indices[i]);
        EXPECT_EQ(r.original_labels[i], d.y[r.indices[i]].item<int64_t>());
        EXPECT_EQ(r.new_labels[i], r.poisoned.y[r.indices[i]].item<int64_t>());
        EXPECT_GE(r.new_labels[i], 0);
        EXPECT_LT(r.new_labels[i], 5);
      }
      EXPECT_TRUE(torch::equal(r.poisoned.x, d.x));
      EXPECT_EQ(r.clean_fingerprint, d.fingerprint());
    }
  }
}

TEST(LabelFlip, TargetedTouchesOnlyTheSourceClass) {
  Dataset d = testing::make_blobs(900, 3, 4, 2);
  int64_t sources = (d.y == 2).sum().item<int64_t>();
  for (uint64_t seed = 0; seed < 5; ++seed) {
    PoisonResult r = label_flip(d, LabelFlipOptions(0.3).source(2).target(1).seed(seed));
    EXPECT_EQ(int64_t(r.indices.size()), std::llround(0.3 * double(sources)));
    torch::Tensor changed = r.poisoned.y != d.y;
    EXPECT_TRUE((d.y.index({changed}) == 2).all().item<bool>());
    EXPECT_TRUE((r.poisoned.y.index({changed}) == 1).all().item<bool>());
    EXPECT_EQ(changed.sum().item<int64_t>(), int64_t(r.indices.size()));
  }
}

TEST(LabelFlip, ReproducibleBySeed) {
  Dataset d = testing::make_blobs(500, 3, 4, 3);
  auto a = label_flip(d, LabelFlipOptions(0.2).seed(7)), b = label_flip(d, LabelFlipOptions(0.2).seed(7));
  auto c = label_flip(d, LabelFlipOptions(0.2).seed(8));
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.new_labels, b.new_labels);
  EXPECT_NE(a.indices, c.indices);
  EXPECT_EQ(a.poisoned_fingerprint, b.poisoned_fingerprint);
}

TEST(LabelFlip, RejectsBadOptions) {
  Dataset d = testing::make_blobs(50, 2, 3, 1);
  EXPECT_NE(error_of([&] { label_flip(d, LabelFlipOptions(1.5)); }).find("flip rate must be in [0, 1]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { label_flip(d, LabelFlipOptions(0.1).source(1)); }).find("both a source and a target"),
            std::string::npos);
  EXPECT_NE(error_of([&] { label_flip(d, LabelFlipOptions(0.1).source(1).target(1)); }).find("both 1"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { label_flip(d, LabelFlipOptions(0.1).source(0).target(7)); }).find("classes must be in [0, 3)"),
      std::string::npos);
}

TEST(Trigger, PatchIsStampedExactlyAndBlendMixes) {
  torch::Tensor x = torch::full({2, 1, 8, 8}, 0.5);
  Trigger t = Trigger::patch(3, "bottom-right", "checker");
  torch::Tensor xt = t.apply(x);
  // Rows/cols 4..6 (margin 1): checker starting bright at the corner.
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < 8; ++j) {
      bool inside = i >= 4 && i < 7 && j >= 4 && j < 7;
      double want = inside ? ((i - 4 + j - 4) % 2 == 0 ? 1.0 : 0.0) : 0.5;
      EXPECT_DOUBLE_EQ(xt[1][0][i][j].item<double>(), want) << i << "," << j;
    }
  Trigger b = Trigger::blend(0.2, "white");
  EXPECT_TRUE(torch::allclose(b.apply(x), torch::full_like(x, 0.5 * 0.8 + 0.2)));
  Trigger back = Trigger::from_json(t.to_json());
  EXPECT_TRUE(torch::equal(back.apply(x), xt));
  EXPECT_NE(error_of([&] { Trigger::patch(9).apply(x); }).find("does not fit a 8x8 image"), std::string::npos);
}

TEST(BadNets, PoisonsExactlyTheFractionFromOtherClasses) {
  Dataset d = testing::make_bar_images(400, 4, 5);
  for (uint64_t seed = 0; seed < 3; ++seed) {
    BadNetsOptions o(2);
    o.fraction(0.07).seed(seed);
    PoisonResult r = badnets(d, o);
    ASSERT_EQ(int64_t(r.indices.size()), 28);
    torch::Tensor idx = torch::tensor(r.indices);
    EXPECT_TRUE((d.y.index_select(0, idx) != 2).all().item<bool>());
    EXPECT_TRUE((r.poisoned.y.index_select(0, idx) == 2).all().item<bool>());
    // Everything else is bitwise untouched; poisoned samples differ only in the
    // patch.
    torch::Tensor others = torch::ones({400}, torch::kBool).index_fill_(0, idx, false);
    EXPECT_TRUE(torch::equal(r.poisoned.x.index({others}), d.x.index({others})));
    EXPECT_TRUE(torch::equal(r.poisoned.y.index({others}), d.y.index({others})));
    torch::Tensor mask = o.trigger_.mask({1, 28, 28}).to(torch::kBool);
    torch::Tensor px = r.poisoned.x.index_select(0, idx), cx = d.x.index_select(0, idx);
    EXPECT_TRUE(torch::equal(px.masked_select(~mask), cx.masked_select(~mask)));
    EXPECT_TRUE(torch::equal(px, o.trigger_.apply(cx)));
    EXPECT_EQ(r.original_labels.size(), r.indices.size());
  }
  auto a = badnets(d, BadNetsOptions(1).seed(4)), b = badnets(d, BadNetsOptions(1).seed(4));
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_NE(error_of([&] { badnets(d, BadNetsOptions(9)); }).find("target class must be in [0, 4)"), std::string::npos);
  EXPECT_NE(error_of([&] { badnets(d, BadNetsOptions(0).fraction(0.99)); }).find("outside the target class"),
            std::string::npos);
  Dataset flat = testing::make_blobs(50, 4, 2, 1);
  EXPECT_NE(error_of([&] { badnets(flat, BadNetsOptions(0)); }).find("image samples"), std::string::npos);
}

TEST(CleanLabel, KeepsLabelsAndPerturbsOnlyTargetSamplesWithinEps) {
  Dataset d = testing::make_bar_images(200, 4, 6);
  seed_everything(1);
  auto surrogate = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 4));
  CleanLabelOptions o(3);
  o.fraction(0.5).eps(0.1).steps(3).seed(2);
  PoisonResult r = clean_label(d, *surrogate, o);
  int64_t pool = (d.y == 3).sum().item<int64_t>();
  EXPECT_EQ(int64_t(r.indices.size()), std::llround(0.5 * double(pool)));
  EXPECT_TRUE(torch::equal(r.poisoned.y, d.y));
  torch::Tensor idx = torch::tensor(r.indices);
  EXPECT_TRUE((d.y.index_select(0, idx) == 3).all().item<bool>());
  torch::Tensor changed = (r.poisoned.x != d.x).flatten(1).any(1);
  torch::Tensor expected = torch::zeros({200}, torch::kBool).index_fill_(0, idx, true);
  EXPECT_TRUE(torch::equal(changed, expected));
  torch::Tensor outside = ~o.trigger_.mask({1, 28, 28}).to(torch::kBool);
  torch::Tensor delta = (r.poisoned.x - d.x).index_select(0, idx).masked_select(outside);
  EXPECT_LE(delta.abs().max().item<double>(), 0.1 + 1e-6);
  EXPECT_GT(delta.abs().max().item<double>(),
            0.0);  // the adversarial perturbation is there
  EXPECT_NE(error_of([&] { clean_label(d, *surrogate, CleanLabelOptions(3).fraction(0)); }).find("(0, 1]"),
            std::string::npos);
}

// A tiny CNN learns a BadNets trigger on bar images: ASR near 1, clean accuracy
// kept; a model trained on the clean set is not fooled by the trigger.
TEST(PoisonMetrics, BackdoorIsLearnedAndMeasured) {
  Dataset train_set = testing::make_bar_images(800, 4, 11), test = testing::make_bar_images(200, 4, 12);
  BadNetsOptions o(0);
  o.fraction(0.1).seed(3);
  PoisonResult r = badnets(train_set, o);
  auto fit = [](const Dataset& d) {
    seed_everything(5);
    auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 4));
    train(*m, d, nullptr, TrainOptions().epochs(3).batch_size(64).lr(3e-3).seed(1));
    return m;
  };
  auto poisoned = fit(r.poisoned), clean = fit(train_set);
  PoisonMetricsOptions mo;
  mo.trigger(o.trigger_, 0);
  PoisonMetrics pm = measure_poisoning(*poisoned, test, mo), cm = measure_poisoning(*clean, test, mo);
  EXPECT_EQ(pm.triggered_samples, (test.y != 0).sum().item<int64_t>());
  EXPECT_GE(pm.attack_success_rate, 0.9);
  EXPECT_GE(pm.clean_accuracy, 0.9);
  EXPECT_LE(cm.attack_success_rate, 0.3);
  EXPECT_GE(cm.clean_accuracy, 0.9);
  // Targeted flip bookkeeping: source class samples predicted as target.
  PoisonMetrics fm = measure_poisoning(*clean, test, PoisonMetricsOptions().flip(1, 2));
  EXPECT_EQ(fm.source_samples, (test.y == 1).sum().item<int64_t>());
  EXPECT_LE(fm.source_to_target_rate, 0.1);
}

}  // namespace
}  // namespace aegis
