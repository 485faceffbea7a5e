// The audit's poisoning checks on cases with a known answer: data validation
// and poison detection on a training set with planted defects, the backdoor
// scan's bookkeeping, and each one skipping when what it needs is missing.

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "aegis/audit/audit.h"
#include "aegis/audit/check.h"
#include "aegis/audit/suite.h"
#include "aegis/core/architectures.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/json_schema.h"
#include "aegis/core/random.h"
#include "support/test_support.h"

namespace aegis {
namespace {

CheckResult run_check(const std::string& name, const nlohmann::json& params, Classifier& model, const Dataset& audit,
                      const Dataset* training) {
  auto check = make_check(name, params);
  CheckContext ctx{model, audit, torch::arange(audit.size(), torch::kLong), 7, 64, name, training};
  return check->run(ctx);
}

TEST(PoisonDetectionCheck, ReportsThePlantedShareGradedByItsThresholds) {
  auto model = testing::identity_features_model(8, 2);
  Dataset train = testing::make_planted_features(0), audit = train.head(50);
  CheckResult r = run_check("poison-detection", {}, *model, audit, &train);
  ASSERT_EQ(r.status, "ok") << r.note;
  ASSERT_EQ(r.observations.size(), 1u);
  EXPECT_EQ(r.observations[0].rule, "suspected-poison");
  EXPECT_NEAR(r.observations[0].value, 40.0 / 440.0, 1e-6);
  EXPECT_EQ(r.metrics["flagged"].get<int64_t>(), 40);
  for (const auto& id : r.observations[0].evidence["training_sample_ids"]) EXPECT_GE(id.get<int64_t>(), 400);
  auto check = make_check("poison-detection");
  const auto rules = check->rules();
  EXPECT_EQ(rules[0].atlas, "AML.T0020");
  EXPECT_EQ(rules[0].owasp, "ML02");
  EXPECT_EQ(rules[0].thresholds.grade(r.observations[0].value), Severity::Critical);
  EXPECT_EQ(rules[0].thresholds.grade(0.0), Severity::Info);

  // Both methods find the same 40; a subsample scans only what it was asked.
  CheckResult both = run_check("poison-detection", {{"method", "both"}}, *model, audit, &train);
  EXPECT_EQ(both.metrics["flagged"].get<int64_t>(), 40) << both.metrics.dump();
  CheckResult sub = run_check("poison-detection", {{"max_samples", 220}}, *model, audit, &train);
  EXPECT_EQ(sub.metrics["samples_scanned"].get<int64_t>(), 220);
  EXPECT_EQ(sub.metrics["training_samples"].get<int64_t>(), 440);

  // A clean training set: nothing flagged.
  Dataset clean = train.head(400);
  CheckResult c = run_check("poison-detection", {}, *model, audit, &clean);
  EXPECT_EQ(c.observations[0].value, 0.0) << c.metrics.dump();
}

TEST(PoisonDetectionCheck, SkipsWithoutTrainingDataOrFeaturesAndRejectsBadParameters) {
  auto model = testing::identity_features_model(8, 2);
  Dataset train = testing::make_planted_features(1), audit = train.head(50);
  CheckResult none = run_check("poison-detection", {}, *model, audit, nullptr);
  EXPECT_EQ(none.status, "skipped");
  EXPECT_NE(none.note.find("--training-data"), std::string::npos);
  EXPECT_TRUE(none.observations.empty());
  auto linear = testing::make_linear(torch::randn({2, 8}), torch::zeros({2}), -10, 10);
  CheckResult nofeat = run_check("poison-detection", {}, *linear, audit, &train);
  EXPECT_EQ(nofeat.status, "skipped");
  EXPECT_NE(nofeat.note.find("features"), std::string::npos);
  EXPECT_NE(testing::error_message_of([] { make_check("poison-detection", {{"method", "magic"}}); })
                .find("'method' must be spectral, activation-clustering or both"),
            std::string::npos);
  EXPECT_EQ(testing::error_kind_of([] { make_check("poison-detection", {{"max_samples", -1}}); }),
            ErrorKind::InvalidArgument);
}

TEST(DataValidationCheck, MeasuresInvalidSamplesConflictingDuplicatesAndBalanceDrift) {
  auto model = testing::make_linear(torch::randn({2, 16}), torch::zeros({2}), 0, 1);
  auto gen = make_generator(3, "audit-validation");
  // 100 training samples, 70 of class 0 and 30 of class 1; one NaN sample, one
  // out of range, and a duplicate pair (69, 70) with different labels.
  Dataset train;
  train.x = torch::rand({100, 16}, gen);
  train.y = (torch::arange(100, torch::kLong) >= 70).to(torch::kLong);
  train.x[5][0] = std::numeric_limits<float>::quiet_NaN();
  train.x[6][3] = 5.0f;
  train.x[70].copy_(train.x[69]);
  // Audit data: balanced.
  Dataset audit;
  audit.x = torch::rand({40, 16}, gen);
  audit.y = torch::arange(40, torch::kLong) % 2;
  CheckResult r = run_check("data-validation", {}, *model, audit, &train);
  ASSERT_EQ(r.status, "ok") << r.note;
  ASSERT_EQ(r.observations.size(), 3u);
  std::map<std::string, double> v;
  for (const auto& o : r.observations) v[o.rule] = o.value;
  EXPECT_NEAR(v["invalid-training-samples"], 0.02, 1e-9);
  EXPECT_NEAR(v["conflicting-duplicates"], 0.02, 1e-9);
  EXPECT_NEAR(v["class-balance-drift"], 0.2, 1e-9);
  auto check = make_check("data-validation");
  for (const auto& rule : check->rules()) {
    EXPECT_EQ(rule.atlas, "AML.T0020");
    EXPECT_EQ(rule.owasp, "ML02");
  }
  EXPECT_EQ(check->rules()[2].thresholds.grade(0.2), Severity::High);

  CheckResult none = run_check("data-validation", {}, *model, audit, nullptr);
  EXPECT_EQ(none.status, "skipped");
  EXPECT_NE(testing::error_message_of([] { make_check("data-validation", {{"near_duplicate_levels", 1}}); })
                .find("'near_duplicate_levels' must be 0 (off) or >= 2"),
            std::string::npos);
}

TEST(BackdoorScanCheck, ReportsTheLargestAnomalyIndexAndSkipsNonImageModels) {
  seed_everything(2);
  auto cnn = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 3));
  Dataset audit = testing::make_bar_images(30, 3, 4);
  CheckResult r = run_check("backdoor-scan", {{"steps", 5}, {"max_samples", 20}}, *cnn, audit, nullptr);
  ASSERT_EQ(r.status, "ok") << r.note;
  EXPECT_EQ(r.metrics["samples"].get<int64_t>(), 20);
  ASSERT_EQ(r.metrics["classes"].size(), 3u);
  double largest = -std::numeric_limits<double>::infinity();
  for (const auto& c : r.metrics["classes"]) largest = std::max(largest, c["anomaly_index"].get<double>());
  ASSERT_EQ(r.observations.size(), 1u);
  EXPECT_EQ(r.observations[0].rule, "backdoor-anomaly-index");
  EXPECT_DOUBLE_EQ(r.observations[0].value, largest);
  auto rule = make_check("backdoor-scan")->rules()[0];
  EXPECT_EQ(rule.atlas, "AML.T0018.000");
  EXPECT_EQ(rule.owasp, "ML10");
  EXPECT_EQ(rule.thresholds.grade(2.5), Severity::High);  // the paper's "> 2"
  EXPECT_EQ(rule.thresholds.grade(1.0), Severity::Info);

  auto linear = testing::make_linear(torch::randn({3, 4}), torch::zeros({3}));
  Dataset flat = testing::make_blobs(30, 4, 3, 1);
  CheckResult skipped = run_check("backdoor-scan", {}, *linear, flat, nullptr);
  EXPECT_EQ(skipped.status, "skipped");
  EXPECT_NE(skipped.note.find("[C, H, W]"), std::string::npos);
  EXPECT_NE(testing::error_message_of([] { make_check("backdoor-scan", {{"steps", 0}}); }).find("'steps' must be >= 1"),
            std::string::npos);
}

// The audit passes its training set to the data checks, records it in the
// report (schema-valid) and keys resumed checks on it.
TEST(Audit, TrainingDataReachesTheDataChecksAndTheReport) {
  auto model = testing::identity_features_model(8, 2);
  Dataset train = testing::make_planted_features(2), audit = train.head(60);
  Suite suite = parse_suite(R"(
[audit]
name = "data"
samples = 60
batch_size = 60

[[check]]
id = "data-validation"
check = "data-validation"

[[check]]
id = "poison-detection"
check = "poison-detection"
)",
                            "data.toml");
  testing::TempDir dir;
  AuditReport without = run_audit(*model, audit, suite, AuditOptions((dir.path() / "a").string()).write_html(false));
  for (const auto& c : without.report["checks"]) EXPECT_EQ(c["status"], "skipped") << c.dump();
  EXPECT_FALSE(without.report["data"].contains("training_data"));

  AuditReport with = run_audit(*model, audit, suite,
                               AuditOptions((dir.path() / "b").string()).write_html(false).training_data(&train, "t"));
  EXPECT_EQ(with.report["data"]["training_data"]["samples"].get<int64_t>(), 440);
  EXPECT_EQ(with.report["data"]["training_data"]["fingerprint"].get<std::string>(), train.fingerprint());
  EXPECT_EQ(with.worst, Severity::Critical);
  bool found = false;
  for (const auto& f : with.report["findings"])
    if (f["id"] == "poison-detection/suspected-poison") {
      found = true;
      EXPECT_EQ(f["severity"], "critical");
      EXPECT_EQ(f["atlas"], "AML.T0020");
      EXPECT_EQ(f["owasp"], "ML02");
    }
  EXPECT_TRUE(found) << with.report["findings"].dump();
  std::ifstream in(audit_report_schema_path());
  for (const auto& e : validate_json_schema(with.report, nlohmann::json::parse(in))) ADD_FAILURE() << e;

  // Resuming with another training set reruns the data checks.
  Dataset clean = train.head(400);
  AuditOptions again = AuditOptions((dir.path() / "b").string()).write_html(false).resume(true);
  EXPECT_EQ(run_audit(*model, audit, suite, again.training_data(&train, "t")).resumed_checks, 2);
  AuditReport other = run_audit(*model, audit, suite, again.training_data(&clean, "t"));
  EXPECT_EQ(other.resumed_checks, 0);
  EXPECT_LT(other.worst, Severity::Critical);
}

}  // namespace
}  // namespace aegis
