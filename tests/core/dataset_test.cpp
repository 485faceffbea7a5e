#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "aegis/core/dataset.h"
#include "aegis/core/error.h"
#include "support/test_support.h"

namespace aegis {
namespace {

TEST(Dataset, SplitIsStratifiedDeterministicAndDisjoint) {
  Dataset d = testing::make_blobs(1000, 4, 5, 1);
  auto [a, b] = d.split(0.2, 7);
  auto [a2, b2] = d.split(0.2, 7);
  auto [a3, b3] = d.split(0.2, 8);
  EXPECT_EQ(a.size() + b.size(), 1000);
  EXPECT_NEAR(double(b.size()), 200.0, 5.0);
  EXPECT_TRUE(torch::equal(b.x, b2.x));
  EXPECT_FALSE(torch::equal(b.x, b3.x));
  torch::Tensor frac = torch::bincount(b.y, {}, 5).to(torch::kDouble) / torch::bincount(d.y, {}, 5).to(torch::kDouble);
  EXPECT_LT((frac - 0.2).abs().max().item<double>(), 0.02);
  // Disjoint: every sample lands on exactly one side.
  auto la = a.leaf_hashes();
  std::set<std::string> left(la.begin(), la.end());
  for (const auto& h : b.leaf_hashes()) EXPECT_EQ(left.count(h), 0u);
  EXPECT_THROW(d.split(1.0, 0), Error);
}

TEST(Dataset, BatchesCoverEverySampleOnce) {
  Dataset d = testing::make_blobs(103, 3, 2, 2);
  for (auto seed : {std::optional<uint64_t>(), std::optional<uint64_t>(5)}) {
    auto batches = d.batches(10, seed);
    EXPECT_EQ(batches.size(), 11u);
    std::vector<int64_t> seen;
    for (const auto& b : batches) {
      EXPECT_TRUE(torch::equal(b.x, d.x.index_select(0, b.indices)));
      for (int64_t i = 0; i < b.indices.size(0); ++i) seen.push_back(b.indices[i].item<int64_t>());
    }
    std::sort(seen.begin(), seen.end());
    for (int64_t i = 0; i < 103; ++i) EXPECT_EQ(seen[i], i);
  }
  EXPECT_THROW(d.batches(0), Error);
}

TEST(Dataset, FingerprintNamesOneChangedSampleOrLabel) {
  Dataset d = testing::make_blobs(33, 4, 3, 3);
  const std::string base = d.fingerprint();
  EXPECT_EQ(base, testing::make_blobs(33, 4, 3, 3).fingerprint());
  Dataset changed = d;
  changed.x = d.x.clone();
  changed.x[17][2] += 1e-6f;
  EXPECT_NE(changed.fingerprint(), base);
  auto before = d.leaf_hashes(), after = changed.leaf_hashes();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i] == after[i], i != 17);
  Dataset relabelled = d;
  relabelled.y = d.y.clone();
  relabelled.y[0] = (d.y[0].item<int64_t>() + 1) % 3;
  EXPECT_NE(relabelled.fingerprint(), base);
  EXPECT_NE(d.shuffled(1).fingerprint(), base);  // order is part of a dataset
}

TEST(Dataset, ValidateRejectsInconsistentData) {
  Dataset d = testing::make_blobs(10, 2, 2, 4);
  EXPECT_NO_THROW(d.validate());
  Dataset short_labels = d;
  short_labels.y = d.y.narrow(0, 0, 9);
  EXPECT_THROW(short_labels.validate(), Error);
  Dataset named = d;
  named.class_names = {"only-one"};
  EXPECT_THROW(named.validate(), Error);
}

TEST(Dataset, HeadSubsetAndShuffleKeepPairsTogether) {
  Dataset d = testing::make_blobs(50, 2, 4, 5);
  Dataset s = d.shuffled(3);
  // Every (x, y) pair of the shuffle exists in the original.
  auto ld = d.leaf_hashes();
  std::set<std::string> orig(ld.begin(), ld.end());
  for (const auto& h : s.leaf_hashes()) EXPECT_EQ(orig.count(h), 1u);
  EXPECT_EQ(d.head(7).size(), 7);
  EXPECT_EQ(d.head(0).size(), 50);
}

}  // namespace
}  // namespace aegis
