// The privacy and model-theft audit checks on synthetic data: members from a
// file, a deliberately overfit model, MI-Face on bar images, extraction of a
// small MLP.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "aegis/audit/check.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "aegis/privacy/dp_sgd.h"
#include "support/test_support.h"

namespace aegis {
namespace {

void write_csv(const Dataset& d, const std::string& path) {
  std::ofstream f(path);
  for (int64_t j = 0; j < d.x.size(1); ++j) f << "f" << j << ",";
  f << "label\n";
  for (int64_t i = 0; i < d.size(); ++i) {
    for (int64_t j = 0; j < d.x.size(1); ++j) f << fmt::format("{:.7f},", d.x[i][j].item<double>());
    f << d.y[i].item<int64_t>() << "\n";
  }
}

CheckResult run_check(Check& check, Classifier& model, const Dataset& data) {
  CheckContext ctx{model, data, torch::arange(data.size()), /*seed=*/0, /*batch_size=*/128, check.name()};
  return check.run(ctx);
}

const Observation& observation(const CheckResult& r, const std::string& rule) {
  for (const auto& o : r.observations)
    if (o.rule == rule) return o;
  throw std::runtime_error("no observation " + rule);
}

TEST(DpAuditCheck, ReplaysTheRecipeBoundsEpsilonBelowTheClaimAndComparesTheTwin) {
  Dataset all = testing::make_blobs(600, 16, 4, 31, /*spread=*/0.2);
  Dataset train_data = all.head(400), held_out = all.subset(torch::arange(400, 600, torch::kLong));
  seed_everything(0);
  auto model = build_architecture(ArchitectureOptions("mlp", {16}, 4).hidden({64, 64}));
  const TrainOptions recipe = TrainOptions().epochs(8).batch_size(64).lr(0.5).optimizer("sgd").schedule("constant");
  DpSgdResult trained = train_dp_sgd(*model, train_data, nullptr, recipe,
                                     DpSgdOptions(1.0).target_epsilon(2.0).delta(1e-4).seeded(true));
  auto check = make_check("dp-audit", {{"canaries", 200}});
  CheckContext ctx{*model, held_out, torch::arange(200), /*seed=*/0, /*batch_size=*/128, "dp-audit"};
  ctx.training = &train_data;
  CheckResult r = check->run(ctx);
  ASSERT_EQ(r.status, "ok") << r.note;
  const Observation& o = observation(r, "dp-guarantee-violated");
  EXPECT_LE(o.value, 1.0) << o.summary;
  EXPECT_EQ(check->rules()[0].thresholds.grade(1.0), Severity::Critical);
  EXPECT_EQ(check->rules()[0].thresholds.grade(0.9), Severity::Info);
  // The replay spends what the recipe spends on 400 samples plus the included canaries.
  const double claimed = r.metrics["private"]["claimed_epsilon"].get<double>();
  EXPECT_GT(claimed, 0.5 * trained.epsilon);
  EXPECT_LT(claimed, 2.0 * trained.epsilon);
  EXPECT_EQ(r.metrics["private"]["bound"]["canaries"], 200);
  ASSERT_TRUE(r.metrics.contains("non_private_twin"));
  EXPECT_EQ(r.metrics["non_private_twin"]["claimed_epsilon"], "inf");
  ASSERT_EQ(r.artefacts["bars"][0]["series"].size(), 2u);
  EXPECT_EQ(r.artefacts["curves"][0]["series"].size(), 2u);
  EXPECT_EQ(r.headline[0].name, "dp_epsilon_lower_bound");

  // Nothing to audit without a privacy record or the training data.
  auto plain = build_architecture(ArchitectureOptions("mlp", {16}, 4));
  CheckContext no_record{*plain, held_out, torch::arange(200), 0, 128, "dp-audit"};
  no_record.training = &train_data;
  EXPECT_EQ(check->run(no_record).status, "skipped");
  CheckContext no_data{*model, held_out, torch::arange(200), 0, 128, "dp-audit"};
  CheckResult skipped = check->run(no_data);
  EXPECT_EQ(skipped.status, "skipped");
  EXPECT_NE(skipped.note.find("--training-data"), std::string::npos) << skipped.note;
  EXPECT_EQ(testing::error_kind_of([] { make_check("dp-audit", {{"canaries", 1}}); }), ErrorKind::InvalidArgument);
}

TEST(MembershipCheck, FindsTheMembersOfAnOverfitModelAndSkipsWithoutThem) {
  testing::TempDir dir;
  Dataset all = testing::make_blobs(400, 10, 4, 17, /*spread=*/0.3);
  Dataset members = all.head(200), held_out = all.subset(torch::arange(200, 400, torch::kLong));
  write_csv(members, dir.file("members.csv"));
  seed_everything(0);
  auto model = build_architecture(ArchitectureOptions("mlp", {10}, 4));
  train(*model, members, nullptr, TrainOptions().epochs(150).batch_size(32).lr(3e-3).schedule("constant"));
  auto check = make_check("membership-inference", {{"members", dir.file("members.csv")}});
  CheckResult r = run_check(*check, *model, held_out);
  ASSERT_EQ(r.status, "ok") << r.note;
  EXPECT_GE(observation(r, "membership-auc").value, 0.65);
  EXPECT_EQ(observation(r, "membership-auc").evidence["members"], 200);
  for (const auto& rule : check->rules()) {
    EXPECT_EQ(rule.atlas, "AML.T0024.000");
    EXPECT_EQ(rule.owasp, "ML04");
  }
  // Members drawn from the very same held-out records: nothing to find.
  write_csv(held_out, dir.file("same.csv"));
  CheckResult same =
      run_check(*make_check("membership-inference", {{"members", dir.file("same.csv")}}), *model, held_out);
  EXPECT_NEAR(observation(same, "membership-auc").value, 0.5, 0.01);  // the CSV rounds to 7 decimals
  // No provenance and no members: skipped with the reason, never passed.
  CheckResult skipped = run_check(*make_check("membership-inference"), *model, held_out);
  EXPECT_EQ(skipped.status, "skipped");
  EXPECT_NE(skipped.note.find("members"), std::string::npos);
  EXPECT_TRUE(skipped.observations.empty());
  EXPECT_THROW(make_check("membership-inference", {{"signal", "entropy"}}), Error);
  EXPECT_THROW(make_check("membership-inference", {{"shadows", 3}}), Error);
}

TEST(InversionCheck, ReconstructsBarClassesAndSkipsTabularModels) {
  auto model = testing::trained_bars_cnn(4);
  Dataset bars = testing::make_bar_images(256, 4, 3);
  auto check = make_check("model-inversion", {{"steps", 150}});
  CheckResult r = run_check(*check, *model, bars);
  ASSERT_EQ(r.status, "ok") << r.note;
  EXPECT_GE(observation(r, "class-reconstruction").value, 0.75);
  EXPECT_EQ(check->rules()[0].atlas, "AML.T0024.001");
  EXPECT_EQ(check->rules()[0].owasp, "ML03");
  EXPECT_FALSE(check->rules()[0].thresholds.high_.has_value());  // never above medium
  auto tabular = testing::make_linear(torch::eye(3), torch::zeros({3}));
  EXPECT_EQ(run_check(*check, *tabular, testing::make_blobs(30, 3, 3, 1)).status, "skipped");
  EXPECT_THROW(make_check("model-inversion", {{"gradient", "magic"}}), Error);
  EXPECT_THROW(make_check("model-inversion", {{"steps", 0}}), Error);
}

TEST(ExtractionCheck, CopiesASmallModelAndNoiseQueriesCopyLess) {
  Dataset all = testing::make_blobs(1600, 10, 4, 5, /*spread=*/0.15);
  seed_everything(0);
  auto model = build_architecture(ArchitectureOptions("mlp", {10}, 4).hidden({32}));
  train(*model, all.head(600), nullptr, TrainOptions().epochs(10).batch_size(64).lr(3e-3));
  Dataset sample = all.subset(torch::arange(600, 1600, torch::kLong));
  auto check = make_check("model-extraction", {{"budget", 400}, {"substitute_epochs", 10}});
  model->reset_queries();
  CheckResult r = run_check(*check, *model, sample);
  ASSERT_EQ(r.status, "ok") << r.note;
  const Observation& o = observation(r, "extraction-fidelity");
  EXPECT_GE(o.value, 0.85);
  EXPECT_EQ(o.evidence["queries"], 400);
  EXPECT_EQ(check->rules()[0].atlas, "AML.T0024.002");
  EXPECT_EQ(check->rules()[0].owasp, "ML05");
  CheckResult noise =
      run_check(*make_check("model-extraction", {{"budget", 400}, {"substitute_epochs", 10}, {"query_data", "noise"}}),
                *model, sample);
  EXPECT_LT(observation(noise, "extraction-fidelity").value, o.value);
  EXPECT_THROW(make_check("model-extraction", {{"budget", 0}}), Error);
  EXPECT_THROW(make_check("model-extraction", {{"access", "probs"}}), Error);
  EXPECT_THROW(make_check("model-extraction", {{"query_data", "web"}}), Error);
}

}  // namespace
}  // namespace aegis
