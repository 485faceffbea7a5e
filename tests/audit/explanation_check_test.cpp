// The audit's explanation check: on a small trained CNN it measures the
// sanity check, deletion against random and the robustness attack, passes,
// and puts clean and perturbed example maps in report.html; on controls whose
// maps cannot depend on the weights (the weights only scale the map) the
// sanity finding appears, and where the maps rank first features whose
// deletion raises the score the faithfulness finding appears too.

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>

#include "aegis/audit/audit.h"
#include "aegis/audit/check.h"
#include "aegis/audit/suite.h"
#include "aegis/core/error.h"
#include "aegis/core/json_schema.h"
#include "aegis/core/random.h"
#include "support/test_support.h"

namespace aegis {
namespace {

CheckResult run_check(const nlohmann::json& params, Classifier& model, const Dataset& audit) {
  auto check = make_check("explanation", params);
  CheckContext ctx{model, audit, torch::arange(audit.size(), torch::kLong), 7, 64, "explanation", nullptr};
  return check->run(ctx);
}

const nlohmann::json kSmall = {{"samples", 8}, {"robustness_steps", 8}, {"examples", 2}, {"attack_steps", 5}};

/// Controls whose maps cannot depend on the weights, input [1, 8, 8].
/// "energy": f_c(x) = 0.05 (w_c^2 + 1) sum(x^2) for 3 classes: every weight
/// setting gives saliency and IG maps of the same ranks (|x| and x^2), so
/// the sanity check must fail; deleting the brightest pixels first lowers
/// the predicted class's probability fastest, so deletion is faithful.
/// "inverse": f_0(x) = 3 - 0.05 (w^2 + 1) sum(x[32:]), f_1 = 0: the weight
/// again only scales the map, and the absolute saliency ranks first the
/// pixels whose deletion raises f_0, so saliency fails deletion too.
std::shared_ptr<ScriptClassifier> weight_blind_model(const std::string& kind) {
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.WeightBlind"));
  m.register_attribute("training", c10::BoolType::get(), false);
  ModelMeta meta;
  meta.architecture = "weight-blind";
  meta.input_shape = {1, 8, 8};
  if (kind == "energy") {
    m.register_parameter("scale_weight", torch::tensor({1.0f, 0.5f, 0.2f}), false);
    m.define(R"(
    def forward(self, x):
        return 0.05 * (x * x).flatten(1).sum(1, keepdim=True) * (self.scale_weight * self.scale_weight + 1.0)
  )");
    meta.num_classes = 3;
  } else {
    m.register_parameter("scale_weight", torch::tensor({1.0f}), false);
    m.define(R"(
    def forward(self, x):
        s = x.flatten(1)[:, 32:].sum(1, keepdim=True)
        l0 = 3.0 - 0.05 * s * (self.scale_weight * self.scale_weight + 1.0)
        return torch.cat([l0, torch.zeros_like(l0)], 1)
  )");
    meta.num_classes = 2;
  }
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

Dataset random_images(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed, "explanation-check");
  Dataset d;
  d.x = torch::rand({n, 1, 8, 8}, gen);
  d.y = torch::zeros({n}, torch::kLong);
  d.source = "random";
  return d;
}

Severity grade(const std::string& rule, double value) {
  for (const auto& r : make_check("explanation")->rules())
    if (r.name == rule) return r.thresholds.grade(value);
  ADD_FAILURE() << "no rule " << rule;
  return Severity::Info;
}

TEST(ExplanationCheck, OnATrainedCnnGradientMapsPassAndTheRobustnessAttackIsMeasured) {
  auto model = testing::trained_bars_cnn(4);
  Dataset audit = testing::make_bar_images(24, 4, 5);
  CheckResult r = run_check(kSmall, *model, audit);
  ASSERT_EQ(r.status, "ok") << r.note;
  for (const char* m : {"saliency", "ig"}) {
    const auto& j = r.metrics["methods"][m];
    ASSERT_TRUE(j.contains("randomised_similarity")) << r.metrics.dump();
    std::cout << m << ": randomised similarity " << j["randomised_similarity"] << ", deletion beats random on "
              << j["deletion_better_than_random_fraction"] << " (AUC " << j["deletion_auc"] << " vs "
              << j["random_deletion_auc"] << ")\n";
  }
  ASSERT_EQ(r.observations.size(), 2u);
  EXPECT_EQ(r.observations[0].rule, "explanation-ignores-model");
  EXPECT_EQ(r.observations[1].rule, "explanation-unfaithful");
  EXPECT_EQ(grade("explanation-ignores-model", r.observations[0].value), Severity::Info) << r.observations[0].summary;
  EXPECT_EQ(grade("explanation-unfaithful", r.observations[1].value), Severity::Info) << r.observations[1].summary;
  const auto& rob = r.metrics["robustness"];
  std::cout << "robustness: top-k overlap " << rob["mean_topk_overlap"] << " after the attack, "
            << rob["random_mean_topk_overlap"] << " under noise\n";
  EXPECT_LT(rob["mean_topk_overlap"].get<double>(), rob["random_mean_topk_overlap"].get<double>());
  bool has_overlap_headline = false;
  for (const auto& h : r.headline) has_overlap_headline |= h.name == "explanation_topk_overlap@eps=0.05";
  EXPECT_TRUE(has_overlap_headline);
  // Two examples of the explanation attack and two of PGD, each with four images.
  ASSERT_EQ(r.artefacts["explanations"].size(), 4u);
  for (const auto& e : r.artefacts["explanations"])
    for (const char* k : {"clean_png", "clean_map_png", "adv_png", "adv_map_png"})
      EXPECT_EQ(e[k].get<std::string>().rfind("iVBORw0KGgo", 0), 0u) << k;
  EXPECT_EQ(r.artefacts["explanations"][2]["kind"], "pgd (saliency)");
}

TEST(ExplanationCheck, FlagsMapsThatDoNotDependOnTheWeightsAndUnfaithfulMaps) {
  Dataset audit = random_images(12, 1);
  auto energy = weight_blind_model("energy");
  CheckResult e = run_check(kSmall, *energy, audit);
  ASSERT_EQ(e.status, "ok") << e.note;
  EXPECT_GT(e.observations[0].value, 0.9) << e.observations[0].summary;
  EXPECT_EQ(grade("explanation-ignores-model", e.observations[0].value), Severity::Medium);
  // Deleting the brightest pixels first lowers the energy fastest: faithful.
  EXPECT_EQ(grade("explanation-unfaithful", e.observations[1].value), Severity::Info) << e.observations[1].summary;

  auto dark = weight_blind_model("inverse");
  CheckResult d = run_check(kSmall, *dark, audit);
  EXPECT_EQ(grade("explanation-ignores-model", d.observations[0].value), Severity::Medium);
  EXPECT_LT(d.observations[1].value, 0.5) << d.observations[1].summary;
  EXPECT_EQ(grade("explanation-unfaithful", d.observations[1].value), Severity::Medium);
}

TEST(ExplanationCheck, AuditReportHasTheFindingAndTheExampleMapsSection) {
  testing::TempDir dir;
  auto model = weight_blind_model("energy");
  const std::string path = dir.file("model.pt");
  model->save(path);
  Dataset data = random_images(16, 2);
  Suite suite = parse_suite(R"(
[audit]
name = "explain"
samples = 8
batch_size = 8

[[check]]
id = "explanation"
check = "explanation"
[check.params]
robustness_steps = 4
examples = 2
attack_steps = 3
)");
  AuditReport r =
      run_audit(*model, data, suite, AuditOptions(dir.file("out")).model_path(path).seed(3).reproduce("test"));
  bool found = false;
  for (const auto& f : r.report["findings"])
    if (f["id"] == "explanation/explanation-ignores-model") {
      found = true;
      EXPECT_EQ(f["severity"], "medium");
      EXPECT_NE(f["mitigation"].get<std::string>().find("aegis explain"), std::string::npos);
    }
  EXPECT_TRUE(found) << r.report["findings"].dump();
  std::ifstream schema_in(audit_report_schema_path());
  for (const auto& err : validate_json_schema(r.report, nlohmann::json::parse(schema_in))) ADD_FAILURE() << err;
  std::ifstream html_in(r.html_path);
  const std::string html((std::istreambuf_iterator<char>(html_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("Explanations of clean and perturbed samples"), std::string::npos);
  EXPECT_NE(html.find("alt='map of perturbed sample"), std::string::npos);
  EXPECT_NE(html.find("explanation attack"), std::string::npos);
}

TEST(ExplanationCheck, RefusesBadParametersAndSkipsBlackBoxModels) {
  EXPECT_NE(testing::error_message_of([] {
              make_check("explanation", {{"methods", {"telepathy"}}});
            }).find("unknown method 'telepathy'"),
            std::string::npos);
  EXPECT_EQ(testing::error_kind_of([] { make_check("explanation", {{"samples", 1}}); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(testing::error_kind_of([] { make_check("explanation", {{"eps", 0.0}}); }), ErrorKind::InvalidArgument);
  EXPECT_NE(testing::error_message_of([] {
              make_check("explanation", {{"budget", 3}});
            }).find("budget"),
            std::string::npos);
  auto linear = testing::make_linear(torch::randn({2, 4}), torch::zeros({2}));
  class Opaque : public Classifier {
   public:
    explicit Opaque(std::shared_ptr<ScriptClassifier> m) : Classifier(m->meta()), m_(std::move(m)) {}
    bool has_gradients() const override { return false; }

   protected:
    torch::Tensor compute_logits(const torch::Tensor& x, bool) override { return m_->logits(x); }

   private:
    std::shared_ptr<ScriptClassifier> m_;
  } opaque(linear);
  Dataset d;
  d.x = torch::rand({4, 4});
  d.y = torch::zeros({4}, torch::kLong);
  CheckResult r = run_check({}, opaque, d);
  EXPECT_EQ(r.status, "skipped");
  EXPECT_NE(r.note.find("white-box"), std::string::npos);
}

}  // namespace
}  // namespace aegis
