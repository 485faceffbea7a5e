#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "aegis/attacks/poisoning/label_flip.h"
#include "aegis/core/error.h"
#include "aegis/defenses/data/filter.h"
#include "aegis/defenses/data/validation.h"
#include "support/test_support.h"

namespace aegis {
namespace {

bool has_issue(const ValidationReport& r, const std::string& check, const std::string& severity) {
  for (const auto& i : r.issues)
    if (i.check == check && i.severity == severity) return true;
  return false;
}

std::set<int64_t> suspect_set(const ValidationReport& r) {
  auto v = r.suspects.indices();
  return {v.begin(), v.end()};
}

TEST(Validation, CleanDataPasses) {
  Dataset d = testing::make_blobs(300, 16, 3, 1);
  ValidationReport r = validate_data(d, ValidationOptions().expected_shape({16}).expected_classes(3), &d);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.issues.empty()) << r.to_json().dump();
  EXPECT_TRUE(r.suspects.suspects.empty());
  EXPECT_EQ(r.balance_distance, 0.0);
}

TEST(Validation, ReportsNanRangeAndShape) {
  Dataset d = testing::make_blobs(100, 4, 2, 2);
  d.x[3][1] = std::nan("");
  d.x[7][0] = std::numeric_limits<float>::infinity();
  d.x[9][2] = 1.7;
  ValidationReport r = validate_data(d, ValidationOptions().expected_shape({5}));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.nan_samples, 1);
  EXPECT_EQ(r.inf_samples, 1);
  EXPECT_EQ(r.out_of_range_samples, 1);
  EXPECT_TRUE(has_issue(r, "shape", "error"));
  EXPECT_TRUE(has_issue(r, "range", "error"));
  EXPECT_EQ(suspect_set(r), (std::set<int64_t>{3, 7, 9}));
}

TEST(Validation, FindsDuplicatesAndConflictingLabels) {
  Dataset d = testing::make_blobs(100, 16, 3, 3);
  d.x[10] = d.x[5];  // exact copy, same label
  d.y[10] = d.y[5];
  d.x[20] = d.x[6];  // exact copy, different label
  d.y[20] = (d.y[6].item<int64_t>() + 1) % 3;
  d.x[30] = d.x[7] + 0.001;  // near copy (1e-3 << 1/15), different label
  d.y[30] = (d.y[7].item<int64_t>() + 1) % 3;
  ValidationReport r = validate_data(d);
  EXPECT_EQ(r.exact_duplicate_groups.size(), 2u);
  ASSERT_EQ(r.conflicting_groups.size(), 2u) << r.to_json().dump();
  EXPECT_TRUE(has_issue(r, "duplicates", "error"));
  std::set<int64_t> s = suspect_set(r);
  // Conflicting groups are suspected whole; a harmless exact copy only its
  // later member.
  EXPECT_EQ(s, (std::set<int64_t>{6, 7, 10, 20, 30}));
}

TEST(Validation, FlagsClassBalanceDriftAgainstTheReference) {
  Dataset ref = testing::make_blobs(1000, 4, 4, 4);
  PoisonResult p = label_flip(ref, LabelFlipOptions(0.5).source(1).target(2).seed(1));
  ValidationReport r = validate_data(p.poisoned, ValidationOptions().balance_tolerance(0.02), &ref);
  int64_t moved = int64_t(p.indices.size());
  EXPECT_NEAR(r.balance_distance, double(moved) / 1000.0, 1e-9);
  int balance_issues = 0;
  for (const auto& i : r.issues) balance_issues += i.check == "balance";
  EXPECT_EQ(balance_issues, 2);  // classes 1 and 2, no others
}

TEST(Validation, LabelNoiseSuspectsAreTheFlippedSamples) {
  Dataset d = testing::make_blobs(600, 8, 3, 5, 0.04);
  PoisonResult p = label_flip(d, LabelFlipOptions(0.05).seed(2));
  ValidationReport r = validate_data(
      p.poisoned, ValidationOptions().label_noise(true).near_duplicate_levels(0).epochs(15).confidence(0.8).seed(1));
  ASSERT_TRUE(r.label_noise_checked);
  DetectionScore s = score_detection(r.suspects.indices(), p.indices);
  EXPECT_GE(s.recall, 0.8) << r.to_json().dump();
  EXPECT_GE(s.precision, 0.8) << r.to_json().dump();
}

TEST(Validation, RejectsBadOptions) {
  Dataset d = testing::make_blobs(10, 2, 2, 1);
  EXPECT_THROW(validate_data(d, ValidationOptions().range(1, 0)), Error);
  EXPECT_THROW(validate_data(d, ValidationOptions().folds(1)), Error);
  EXPECT_THROW(validate_data(d, ValidationOptions().near_duplicate_levels(1)), Error);
}

TEST(Filter, RemovesExactlyTheSuspectsAndRecordsWhy) {
  Dataset d = testing::make_blobs(50, 3, 2, 6);
  std::vector<Suspect> s = {{4, 0, 0.9, "spectral"}, {17, 0, 0.2, "clustering"}, {4, 0, 0.5, "clustering"}};
  FilterResult f = filter_dataset(d, s);
  EXPECT_EQ(f.cleaned.size(), 48);
  ASSERT_EQ(f.removed.size(), 2u);
  EXPECT_EQ(f.removed[0].index, 4);
  EXPECT_EQ(f.removed[0].reasons, (std::vector<std::string>{"spectral", "clustering"}));
  EXPECT_DOUBLE_EQ(f.removed[0].max_score, 0.9);
  EXPECT_EQ(f.removed[0].sample_hash, d.leaf_hashes()[4]);
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < 50; ++i)
    if (i != 4 && i != 17) kept.push_back(i);
  EXPECT_EQ(f.kept, kept);
  EXPECT_EQ(f.output_fingerprint, d.subset(torch::tensor(kept)).fingerprint());
  EXPECT_EQ(f.input_fingerprint, d.fingerprint());
  nlohmann::json j = f.to_json();
  EXPECT_EQ(j["removed_samples"], 2);
  EXPECT_EQ(j["ledger"]["input"], d.fingerprint());
  try {
    filter_dataset(d, {{50, 0, 1, "x"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("outside the data (50 samples)"), std::string::npos);
  }
}

TEST(Filter, ReadsSuspectsFromReportJson) {
  nlohmann::json j = {{"method", "m"}, {"suspects", {{{"index", 3}, {"score", 0.5}}, {{"index", 1}}}}};
  auto s = SuspectReport::suspects_from_json(j);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].index, 3);
  EXPECT_EQ(s[1].reason, "m");
  EXPECT_THROW(SuspectReport::suspects_from_json(nlohmann::json{{"x", 1}}), Error);
  EXPECT_THROW(SuspectReport::suspects_from_json(nlohmann::json{{"suspects", {{{"index", -1}}}}}), Error);
}

}  // namespace
}  // namespace aegis
