// The surrogate decision tree: it recovers a known two-level rule exactly
// (thresholds at the midpoints, the ignored feature never used), cutting it
// at depth d gives the tree grown to depth d, bad inputs are refused, and on
// the Fashion-MNIST CNN it reaches the 80% held-out fidelity at
// depth 10 (the fidelity per depth is recorded).

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/core/architectures.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "aegis/explain/surrogate_tree.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;

// y = 1 when x0 > 0.5, else 2 when x1 > 0.3, else 0; x2 is noise. Values on
// a 0.1 grid (0.05, 0.15, ...), so the midpoint thresholds are 0.5 and 0.3.
std::pair<torch::Tensor, torch::Tensor> rule_data(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed, "tree rule");
  torch::Tensor x = (torch::randint(0, 10, {n, 3}, gen).to(torch::kFloat) + 0.5) / 10;
  torch::Tensor y = torch::where(
      x.select(1, 0) > 0.5, torch::ones({n}, torch::kLong),
      torch::where(x.select(1, 1) > 0.3, torch::full({n}, 2, torch::kLong), torch::zeros({n}, torch::kLong)));
  return {x, y};
}

TEST(SurrogateTree, RecoversAKnownRuleExactly) {
  auto [x, y] = rule_data(600, 1);
  SurrogateTree t = SurrogateTree::fit(x, y, 3, SurrogateTreeOptions().max_depth(6));
  EXPECT_TRUE(torch::equal(t.predict(x), y));
  EXPECT_EQ(t.depth(), 2);
  EXPECT_EQ(t.leaves(), 3);
  const TreeNode& root = t.nodes()[0];
  EXPECT_EQ(root.feature, 0);
  EXPECT_FLOAT_EQ(float(root.threshold), 0.5f);
  for (const auto& n : t.nodes()) EXPECT_NE(n.feature, 2) << "the noise feature is never a split";
  auto [x2, y2] = rule_data(300, 2);
  EXPECT_TRUE(torch::equal(t.predict(x2), y2)) << "the rule holds on new data";
  const std::string rules = t.rules({3}, {"zero", "one", "two"});
  EXPECT_NE(rules.find("if x[0] <= 0.5:"), std::string::npos) << rules;
  EXPECT_NE(rules.find("-> class one (1)"), std::string::npos) << rules;
  EXPECT_NE(rules.find("if x[1] <= 0.3:"), std::string::npos) << rules;
}

TEST(SurrogateTree, CutAtDepthDIsTheTreeGrownToDepthD) {
  Dataset d = testing::make_blobs(500, 6, 5, 4, /*spread=*/0.15);
  SurrogateTree deep = SurrogateTree::fit(d.x, d.y, 5, SurrogateTreeOptions().max_depth(8).min_samples_leaf(2));
  for (int64_t depth : {1, 2, 4}) {
    SurrogateTree shallow =
        SurrogateTree::fit(d.x, d.y, 5, SurrogateTreeOptions().max_depth(depth).min_samples_leaf(2));
    EXPECT_TRUE(torch::equal(deep.predict(d.x, depth), shallow.predict(d.x))) << depth;
  }
  // Depth 0 is the majority class.
  const int64_t majority = std::get<0>(torch::mode(d.y)).item<int64_t>();
  EXPECT_TRUE(deep.predict(d.x, 0).eq(majority).all().item<bool>());
  // Every leaf keeps at least min_samples_leaf samples.
  for (const auto& n : deep.nodes()) EXPECT_GE(n.samples, 2);
  EXPECT_EQ(error_kind_of([&] { SurrogateTree::fit(d.x, d.y, 5, SurrogateTreeOptions().max_depth(0)); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { SurrogateTree::fit(d.x, d.y + 7, 5, {}); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { SurrogateTree::fit(d.x, d.y.narrow(0, 0, 9), 5, {}); }), ErrorKind::InvalidArgument);
}

TEST(SurrogateTree, FitsTheModelsPredictionsNotTheLabels) {
  // A linear model on blobs whose labels are then scrambled: the tree follows
  // the model, so its fidelity is high while its accuracy is at chance.
  Dataset d = testing::make_blobs(800, 4, 2, 6, /*spread=*/0.2);
  auto model = testing::make_linear(torch::tensor({{1.f, -1.f, 0.f, 0.f}, {-1.f, 1.f, 0.f, 0.f}}), torch::zeros({2}));
  auto gen = make_generator(9, "scramble");
  d.y = torch::randint(0, 2, {d.size()}, gen, torch::kLong);
  SurrogateTreeResult r =
      fit_surrogate_tree(*model, d.head(600), d.subset(torch::arange(600, 800)), SurrogateTreeOptions().max_depth(8));
  ASSERT_EQ(r.fidelity_by_depth.size(), size_t(r.tree.depth() + 1));
  EXPECT_GE(r.fidelity_by_depth.back(), 0.9) << r.to_json().dump();
  EXPECT_LE(r.accuracy_by_depth.back(), 0.65) << r.to_json().dump();
}

TEST(SurrogateTree, FashionMnistCnnReachesEightyPercentFidelityAtDepthTen) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  Dataset train_split = load_dataset(DataSpec("fashion-mnist").split("train").limit(20000));
  Dataset test_split = load_dataset(DataSpec("fashion-mnist").split("test").limit(2000));
  seed_everything(3);
  auto model = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10));
  train(*model, train_split.head(3000), nullptr, TrainOptions().epochs(3).batch_size(64).lr(2e-3));
  SurrogateTreeResult r = fit_surrogate_tree(*model, train_split, test_split, SurrogateTreeOptions().max_depth(10));
  for (size_t d = 0; d < r.fidelity_by_depth.size(); ++d)
    RecordProperty("fidelity_depth_" + std::to_string(d), std::to_string(r.fidelity_by_depth[d]));
  RecordProperty("model_accuracy", std::to_string(r.model_accuracy));
  std::cout << r.to_json().dump() << "\n";
  ASSERT_EQ(r.tree.depth(), 10);
  EXPECT_GE(r.fidelity_by_depth[10], 0.8) << r.to_json().dump();
}

}  // namespace
}  // namespace aegis
