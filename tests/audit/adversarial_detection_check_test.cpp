// The audit's adversarial-detection check: on the small bars CNN it
// calibrates a detector, measures the robust accuracy of model and detector
// against PGD and against the adaptive attack, reports the finding when the
// detector's protection disappears under adaptation, and shows the figures in
// report.html.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "aegis/audit/audit.h"
#include "aegis/audit/check.h"
#include "aegis/audit/suite.h"
#include "aegis/core/error.h"
#include "aegis/core/json_schema.h"
#include "aegis/defenses/detectors/feature_squeezing_detector.h"
#include "support/test_support.h"

namespace aegis {
namespace {

CheckResult run_check(const nlohmann::json& params, Classifier& model, const Dataset& audit,
                      const Dataset* training = nullptr) {
  auto check = make_check("adversarial-detection", params);
  CheckContext ctx{model, audit, torch::arange(audit.size(), torch::kLong), 7, 64, "adversarial-detection", training};
  return check->run(ctx);
}

double headline(const CheckResult& r, const std::string& name) {
  for (const auto& h : r.headline)
    if (h.name == name) return h.value;
  ADD_FAILURE() << "no headline " << name;
  return -1;
}

TEST(AdversarialDetectionCheck, ReportsTheAdaptiveFigureBesideThePGDOne) {
  auto model = testing::trained_bars_cnn();
  Dataset data = testing::make_bar_images(150, 4, 61);
  for (const std::string det : {"feature-squeezing", "lid"}) {
    CheckResult r = run_check({{"detector", det}, {"eps", 0.2}, {"adaptive_steps", 30}}, *model, data);
    ASSERT_EQ(r.status, "ok") << r.note;
    const double alone = headline(r, "robust_accuracy_model_alone");
    const double pgd = headline(r, "robust_accuracy_with_detector_pgd");
    const double adaptive = headline(r, "robust_accuracy_with_detector_adaptive");
    // The detector can only add protection against PGD, and the adaptive
    // figure is a worst case that includes PGD.
    EXPECT_GE(pgd, alone) << det;
    EXPECT_LE(adaptive, pgd) << det;
    ASSERT_EQ(r.observations.size(), 1u);
    EXPECT_EQ(r.observations[0].rule, "detector-bypassed");
    EXPECT_GE(r.observations[0].value, 0.0);
    EXPECT_LE(r.observations[0].value, 1.0);
    EXPECT_EQ(r.metrics["attacks"].size(), 2u);
    EXPECT_EQ(r.metrics["attacks"][1]["attack"], "adaptive");
    EXPECT_EQ(r.artefacts["bars"][0]["categories"].size(), 4u);
  }
}

TEST(AdversarialDetectionCheck, UsesASavedDetectorAndSkipsTooSmallSamples) {
  auto model = testing::trained_bars_cnn();
  testing::TempDir dir;
  FeatureSqueezingDetector det(model, FeatureSqueezingDetectorOptions().bits(2).median(1));
  det.set_threshold(0.5);
  save_detector(det, dir.file("det.json"));
  Dataset data = testing::make_bar_images(100, 4, 62);
  CheckResult r = run_check({{"detector", dir.file("det.json")}, {"eps", 0.2}, {"adaptive_steps", 10}}, *model, data);
  ASSERT_EQ(r.status, "ok") << r.note;
  EXPECT_EQ(r.metrics["detector"], "feature-squeezing");
  EXPECT_EQ(testing::error_kind_of([&] { run_check({{"detector", dir.file("missing.json")}}, *model, data); }),
            ErrorKind::NotFound);
  CheckResult small = run_check({{"detector", "mahalanobis"}}, *model, testing::make_bar_images(40, 4, 63));
  EXPECT_EQ(small.status, "skipped");
  EXPECT_NE(small.note.find("too small"), std::string::npos);
}

TEST(AdversarialDetectionCheck, RefusesBadParameters) {
  auto bad = [](const nlohmann::json& p) {
    return testing::error_kind_of([&] { make_check("adversarial-detection", p); });
  };
  EXPECT_EQ(bad({{"detector", "crystal-ball"}}), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad({{"fpr", 0.0}}), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad({{"eps", -1.0}}), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad({{"norm", "l1"}}), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad({{"adaptive_method", "sideways"}}), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad({{"adaptive_steps", 0}}), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad({{"colour", "blue"}}), ErrorKind::InvalidArgument);
}

TEST(AdversarialDetectionCheck, FindingAndFiguresAppearInTheReport) {
  auto model = testing::trained_bars_cnn();
  testing::TempDir dir;
  const std::string path = dir.file("model.pt");
  model->save(path);
  Dataset data = testing::make_bar_images(120, 4, 64);
  Suite suite = parse_suite(R"(
[audit]
name = "detection"
samples = 120
batch_size = 64

[[check]]
id = "detection"
check = "adversarial-detection"
[check.params]
eps = 0.2
adaptive_steps = 20
)");
  AuditReport r =
      run_audit(*model, data, suite, AuditOptions(dir.file("out")).model_path(path).seed(3).reproduce("test"));
  std::ifstream schema_in(audit_report_schema_path());
  for (const auto& err : validate_json_schema(r.report, nlohmann::json::parse(schema_in))) ADD_FAILURE() << err;
  std::ifstream html_in(r.html_path);
  const std::string html((std::istreambuf_iterator<char>(html_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("model + detector (adaptive)"), std::string::npos);
  EXPECT_NE(html.find("robust_accuracy_with_detector_adaptive"), std::string::npos);
  // The check's observation becomes a finding whenever it reaches the rule's lowest limit.
  for (const auto& c : r.report["checks"])
    if (c["id"] == "detection") {
      const double lost = c["metrics"]["protection_lost"];
      std::string severity;
      for (const auto& f : r.report["findings"])
        if (f["id"] == "detection/detector-bypassed") severity = f["severity"];
      EXPECT_EQ(severity == "info", lost < 0.05) << lost << " " << severity << " " << c["metrics"].dump();
    }
}

}  // namespace
}  // namespace aegis
