// Preflight checks: each one tripped by a model or data built to trip it
// (probabilities for logits, a gradient-killing layer, a random forward,
// autograd inside forward, batch statistics, a module in training mode, data
// off the model's scale, an eps that makes no sense for its norm), and a
// clean linear model that trips none. Then the evaluation and the CLI: a
// refusal stops the run unless forced, and a warning marks the result suspect.

#include "aegis/attacks/evasion/preflight.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "aegis/attacks/evasion/robust_evaluation.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/script_classifier.h"
#include "support/test_support.h"

namespace aegis {
namespace {

constexpr int64_t kFeatures = 6, kClasses = 3;

/// A TorchScript model over kFeatures inputs in [0, 1] whose forward is `body`
/// (with self.weight [kClasses, kFeatures] and self.bias in scope).
std::shared_ptr<ScriptClassifier> scripted(const std::string& body, bool training = false) {
  torch::manual_seed(3);
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.PreflightProbe"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_parameter("weight", torch::randn({kClasses, kFeatures}) * 3, false);
  m.register_parameter("bias", torch::randn({kClasses}), false);
  m.define("def forward(self, x):\n" + body);
  ModelMeta meta;
  meta.architecture = "preflight-probe";
  meta.input_shape = {kFeatures};
  meta.num_classes = kClasses;
  meta.clip_min = 0;
  meta.clip_max = 1;
  auto model = std::make_shared<ScriptClassifier>(std::move(m), meta);
  if (training) model->module().train(true);
  return model;
}

const char* kLinear = "    return torch.linear(x, self.weight, self.bias)\n";

struct Probe {
  torch::Tensor x, y;
};

Probe probe_data(int64_t n = 32) {
  torch::manual_seed(11);
  Probe p;
  p.x = torch::rand({n, kFeatures});
  p.y = torch::randint(kClasses, {n});
  return p;
}

/// The named check, by value (callers pass temporaries).
PreflightCheck check(const Preflight& p, const std::string& name) {
  for (const auto& c : p.checks)
    if (c.name == name) return c;
  ADD_FAILURE() << "no check named " << name << " in " << p.to_json().dump(2);
  return {};
}

Preflight run(Classifier& model, Norm norm = Norm::Linf, double eps = 0.1, bool gradient_only = false,
              const Probe& d = probe_data()) {
  return run_preflight(model, d.x, d.y, PreflightOptions(norm, eps).gradient_only(gradient_only));
}

TEST(Preflight, CleanLinearModelPassesEveryCheck) {
  auto model = scripted(kLinear);
  Preflight p = run(*model, Norm::Linf, 0.1, true);
  for (const char* name : {"inputs-in-range", "eps-fits-norm", "logits-not-probabilities", "deterministic-forward",
                           "batch-independent", "eval-mode", "no-autograd-in-forward", "gradients-nonzero"})
    EXPECT_EQ(check(p, name).verdict, PreflightVerdict::Pass) << name << ": " << check(p, name).detail;
  EXPECT_TRUE(p.warnings().empty());
  EXPECT_FALSE(p.refused());
  EXPECT_NO_THROW(p.enforce());
  // The checks only query the model: its parameters are unchanged.
  auto fresh = scripted(kLinear);
  for (size_t i = 0; i < model->parameters().size(); ++i)
    EXPECT_TRUE(torch::equal(model->parameters()[i], fresh->parameters()[i]));
}

TEST(Preflight, SoftmaxOutputIsFlagged) {
  auto model = scripted("    return torch.softmax(torch.linear(x, self.weight, self.bias), 1)\n");
  const PreflightCheck& c = check(run(*model), "logits-not-probabilities");
  EXPECT_EQ(c.verdict, PreflightVerdict::Warn);
  EXPECT_NE(c.detail.find("probabilities"), std::string::npos) << c.detail;
  // Log-probabilities are logits up to a shift: no warning.
  auto log_probs = scripted("    return torch.log_softmax(torch.linear(x, self.weight, self.bias), 1)\n");
  EXPECT_EQ(check(run(*log_probs), "logits-not-probabilities").verdict, PreflightVerdict::Pass);
}

TEST(Preflight, GradientKillingLayerRefusesGradientOnlyRunsAndWarnsOthers) {
  // Rounding the input to a quarter step: the gradient through round is zero.
  auto model = scripted("    return torch.linear(torch.round(x * 4.0) / 4.0, self.weight, self.bias)\n");
  const PreflightCheck& only = check(run(*model, Norm::Linf, 0.1, true), "gradients-nonzero");
  EXPECT_EQ(only.verdict, PreflightVerdict::Refuse) << only.detail;
  EXPECT_NE(only.detail.find("none of 16"), std::string::npos) << only.detail;
  EXPECT_NE(only.detail.find("kills gradients"), std::string::npos) << only.detail;
  EXPECT_EQ(check(run(*model, Norm::Linf, 0.1, false), "gradients-nonzero").verdict, PreflightVerdict::Warn);
}

TEST(Preflight, SaturatedSoftmaxIsToldApartFromAGradientKiller) {
  // Huge logits: the true class's softmax is exactly 1 in float32 for the
  // samples the model gets right, and their cross-entropy gradient is zero.
  auto model = scripted("    return 1000.0 * torch.linear(x, self.weight, self.bias)\n");
  Probe d = probe_data();
  d.y = model->predict(d.x);
  const PreflightCheck& c = check(run(*model, Norm::Linf, 0.1, false, d), "gradients-nonzero");
  ASSERT_NE(c.verdict, PreflightVerdict::Pass) << c.detail;
  EXPECT_NE(c.detail.find("saturated"), std::string::npos) << c.detail;
}

TEST(Preflight, RandomForwardWarnsUnlessEot) {
  auto model = scripted("    return torch.linear(x + 0.2 * torch.randn_like(x), self.weight, self.bias)\n");
  Probe d = probe_data();
  const PreflightCheck& c = check(run(*model), "deterministic-forward");
  EXPECT_EQ(c.verdict, PreflightVerdict::Warn);
  EXPECT_NE(c.detail.find("EOT"), std::string::npos) << c.detail;
  Preflight eot = run_preflight(*model, d.x, d.y, PreflightOptions(Norm::Linf, 0.1).eot_samples(8));
  EXPECT_EQ(check(eot, "deterministic-forward").verdict, PreflightVerdict::Pass);
}

TEST(Preflight, AutogradInsideForwardIsFound) {
  // A test-time "purifier": one gradient step on the input inside forward.
  auto model = scripted(
      "    z = x.detach().requires_grad_(True)\n"
      "    e = torch.linear(z, self.weight, self.bias).pow(2).sum()\n"
      "    g = torch.autograd.grad([e], [z])[0]\n"
      "    assert g is not None\n"
      "    return torch.linear(x - 0.01 * g.detach(), self.weight, self.bias)\n");
  const PreflightCheck& c = check(run(*model), "no-autograd-in-forward");
  // Queried without autograd (as attacks and the gateway query), it fails:
  // the run would be meaningless, and the graph names the culprit.
  EXPECT_EQ(c.verdict, PreflightVerdict::Refuse) << c.detail;
  EXPECT_NE(c.detail.find("aten::grad"), std::string::npos) << c.detail;
}

TEST(Preflight, BatchStatisticsAndTrainingModeAreFlagged) {
  // Centering by the batch mean: what BatchNorm does in training mode.
  auto model = scripted("    return torch.linear(x - x.mean(0, True), self.weight, self.bias)\n");
  const PreflightCheck& c = check(run(*model), "batch-independent");
  EXPECT_EQ(c.verdict, PreflightVerdict::Warn);
  EXPECT_NE(c.detail.find("batch statistics"), std::string::npos) << c.detail;

  auto training = scripted(kLinear, true);
  const PreflightCheck& t = check(run(*training), "eval-mode");
  EXPECT_EQ(t.verdict, PreflightVerdict::Warn);
  EXPECT_NE(t.detail.find("(top)"), std::string::npos) << t.detail;
}

TEST(Preflight, DataOffTheModelsScaleIsRefusedOrFlagged) {
  auto model = scripted(kLinear);
  Probe d = probe_data();
  Probe big = d;
  big.x = d.x * 255;  // [0, 255] data for a [0, 1] model
  const PreflightCheck& out = check(run(*model, Norm::Linf, 0.1, false, big), "inputs-in-range");
  EXPECT_EQ(out.verdict, PreflightVerdict::Refuse);
  EXPECT_NE(out.detail.find("outside the model's declared range"), std::string::npos) << out.detail;
  Probe small = d;
  small.x = d.x / 255;  // [0, 1/255]: a sliver of the range
  EXPECT_EQ(check(run(*model, Norm::Linf, 0.1, false, small), "inputs-in-range").verdict, PreflightVerdict::Warn);
  Probe nan = d;
  nan.x = d.x.clone();
  nan.x[0][0] = std::nan("");
  EXPECT_EQ(check(run(*model, Norm::Linf, 0.1, false, nan), "inputs-in-range").verdict, PreflightVerdict::Refuse);
}

TEST(Preflight, EpsMustFitItsNorm) {
  auto model = scripted(kLinear);
  // 8/255 as an L2 budget over 6 values: 0.013 per value, above half a grey
  // level; over 784 values (an image) it is not.
  EXPECT_EQ(check(run(*model, Norm::L2, 8.0 / 255), "eps-fits-norm").verdict, PreflightVerdict::Pass);
  auto image = testing::make_linear(torch::randn({2, 784}), torch::zeros({2}), 0, 1);
  torch::Tensor xi = torch::rand({8, 784}), yi = torch::zeros({8}, torch::kLong);
  const PreflightCheck& l2 =
      check(run_preflight(*image, xi, yi, PreflightOptions(Norm::L2, 8.0 / 255)), "eps-fits-norm");
  EXPECT_EQ(l2.verdict, PreflightVerdict::Warn) << l2.detail;
  EXPECT_NE(l2.detail.find("8/255"), std::string::npos) << l2.detail;
  EXPECT_EQ(check(run_preflight(*image, xi, yi, PreflightOptions(Norm::L2, 1.5)), "eps-fits-norm").verdict,
            PreflightVerdict::Pass);
  // A budget that reaches every input of the box: refused, for each norm.
  EXPECT_EQ(check(run(*model, Norm::Linf, 1.0), "eps-fits-norm").verdict, PreflightVerdict::Refuse);
  EXPECT_EQ(check(run(*model, Norm::L2, std::sqrt(6.0)), "eps-fits-norm").verdict, PreflightVerdict::Refuse);
  EXPECT_EQ(check(run(*model, Norm::L1, 6.0), "eps-fits-norm").verdict, PreflightVerdict::Refuse);
  EXPECT_EQ(check(run(*model, Norm::Linf, 0.7), "eps-fits-norm").verdict, PreflightVerdict::Warn);
  // A [0, 255] model given a [0, 1]-scale linf eps.
  auto wide = testing::make_linear(torch::randn({3, kFeatures}), torch::zeros({3}), 0, 255);
  Probe d = probe_data();
  const PreflightCheck& scale =
      check(run_preflight(*wide, d.x * 255, d.y, PreflightOptions(Norm::Linf, 0.3)), "eps-fits-norm");
  EXPECT_EQ(scale.verdict, PreflightVerdict::Warn) << scale.detail;
  // No eps (minimum-norm attacks): no eps check.
  for (const auto& c : run(*model, Norm::L2, 0).checks) EXPECT_NE(c.name, "eps-fits-norm");
}

TEST(Preflight, EvaluationRefusesUnlessForcedAndMarksWarningsSuspect) {
  auto masked = scripted("    return torch.linear(torch.round(x * 4.0) / 4.0, self.weight, self.bias)\n");
  Probe p = probe_data(24);
  Dataset d;
  d.x = p.x;
  d.y = masked->predict(p.x);
  auto options = [] {
    return RobustEvaluationOptions(Norm::Linf, 0.1).budget("quick").sanity_checks(false).attacks({{"pgd", {}}});
  };
  // Gradient attacks only, no gradient anywhere: refused with the reason.
  const std::string msg = testing::error_message_of([&] { evaluate_robustness(*masked, d, options()); });
  EXPECT_NE(msg.find("preflight refused"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gradients-nonzero"), std::string::npos) << msg;
  // Forced: it runs, the refusal is a warning and the result is suspect.
  RobustEvaluation forced = evaluate_robustness(*masked, d, options().force(true));
  ASSERT_FALSE(forced.warnings.empty());
  EXPECT_NE(forced.warnings[0].find("preflight gradients-nonzero"), std::string::npos) << forced.warnings[0];
  EXPECT_FALSE(forced.to_json()["sanity_passed"].get<bool>());
  EXPECT_EQ(forced.to_json()["preflight"].size(), forced.preflight.checks.size());
  // The standard ensemble has Square, which needs no gradient: a warning, not a refusal.
  RobustEvaluation standard =
      evaluate_robustness(*masked, d, RobustEvaluationOptions(Norm::Linf, 0.1).budget("quick").sanity_checks(false));
  EXPECT_EQ(check(standard.preflight, "gradients-nonzero").verdict, PreflightVerdict::Warn);
  EXPECT_FALSE(standard.warnings.empty());
}

TEST(Preflight, CliRefusesAndForceRunsWithTheWarning) {
  testing::TempDir dir;
  auto masked = scripted("    return torch.linear(torch.round(x * 4.0) / 4.0, self.weight, self.bias)\n");
  masked->save(dir.file("masked.pt"));
  Probe p = probe_data(16);
  save_npy(p.x, dir.file("x.npy"));
  save_npy(masked->predict(p.x), dir.file("y.npy"));
  const std::string args = " -m '" + dir.file("masked.pt") + "' --data '" + dir.file("x.npy") + "' --labels '" +
                           dir.file("y.npy") + "' -a pgd --eps 0.1 --steps 5 -o '" + dir.file("atk") + "'";
  auto refused = testing::run_aegis("attack" + args);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("preflight refused the run"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.exit_code, 2);
  auto forced = testing::run_aegis("attack" + args + " --force --json");
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  nlohmann::json j = nlohmann::json::parse(forced.out);
  ASSERT_FALSE(j["warnings"].empty()) << j.dump(2);
  EXPECT_NE(j["warnings"][0].get<std::string>().find("gradients-nonzero"), std::string::npos);
}

}  // namespace
}  // namespace aegis
