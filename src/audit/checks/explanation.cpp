// Check "explanation": whether the explanations aegis would show a person
// (the suite's methods; saliency and Integrated Gradients by default) can be
// trusted on this model. For each method on the first `samples` audit
// samples: the model-randomisation sanity check of Adebayo et al. 2018 (maps
// that barely change once every layer is re-randomised explain the input,
// not the model) and deletion AUC against a random order (a map that does
// not beat random order on most samples is not faithful). Plus the
// explanation robustness attack of Ghorbani et al. 2019 as a metric (the top-k
// overlap a small class-keeping perturbation leaves), and example maps of
// clean and adversarial samples for the report.

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/image_io.h"
#include "aegis/core/script_classifier.h"
#include "aegis/explain/explanation_attack.h"
#include "aegis/explain/metrics.h"
#include "aegis/explain/registry.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

/// |map| summed over channels, scaled by its 99th percentile, in a black-red-yellow-white ramp: [3, H, W] in [0, 1].
torch::Tensor heat_image(const torch::Tensor& values) {
  torch::Tensor h = values.detach().to(torch::kFloat).abs();
  h = h.dim() == 3 ? h.sum(0) : h;  // [H, W]
  torch::Tensor sorted = std::get<0>(h.flatten().sort());
  const double top = sorted[int64_t(0.99 * double(sorted.size(0) - 1))].item<double>();
  h = (h / std::max(top, 1e-12)).clamp(0, 1);
  return torch::stack({(3 * h).clamp(0, 1), (3 * h - 1).clamp(0, 1), (3 * h - 2).clamp(0, 1)});
}

class ExplanationCheck : public Check {
 public:
  explicit ExplanationCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    r.get("methods", methods_);
    r.get("samples", samples_);
    r.get("curve_steps", curve_steps_);
    r.get("eps", eps_);
    r.get("robustness_steps", robustness_steps_);
    r.get("top_k", top_k_);
    r.get("attack", attack_);
    r.get("attack_steps", attack_steps_);
    r.get("examples", examples_);
    r.finish();
    AEGIS_CHECK(!methods_.empty(), InvalidArgument, context() << ": 'methods' needs at least one method");
    for (const auto& m : methods_) make_explainer(m);  // unknown names fail here, naming the valid ones
    AEGIS_CHECK(samples_ >= 2, InvalidArgument, context() << ": 'samples' must be >= 2, got " << samples_);
    AEGIS_CHECK(curve_steps_ >= 1, InvalidArgument, context() << ": 'curve_steps' must be >= 1, got " << curve_steps_);
    AEGIS_CHECK(eps_ > 0, InvalidArgument, context() << ": 'eps' must be > 0, got " << eps_);
    AEGIS_CHECK(robustness_steps_ >= 0, InvalidArgument,
                context() << ": 'robustness_steps' must be >= 0 (0: no robustness attack), got " << robustness_steps_);
    AEGIS_CHECK(top_k_ >= 0, InvalidArgument, context() << ": 'top_k' must be >= 0 (0: 5% of the features)");
    AEGIS_CHECK(attack_steps_ >= 1, InvalidArgument, context() << ": 'attack_steps' must be >= 1");
    AEGIS_CHECK(examples_ >= 0, InvalidArgument, context() << ": 'examples' must be >= 0, got " << examples_);
    if (!attack_.empty()) make_attack(attack_, {{"eps", eps_}, {"steps", attack_steps_}});
  }

  std::string name() const override { return "explanation"; }

  std::vector<FindingRule> rules() const override {
    return {{"explanation-ignores-model",
             "An explanation method's maps barely change when the model's weights are randomised: it explains the "
             "input, not the model",
             "largest rank correlation over the methods between the maps of the model and of the model with every "
             "layer re-randomised (Adebayo et al. 2018 sanity check; 1 = unchanged)",
             Thresholds().higher_is_worse(true).medium(0.5), "AML.T0031", "ML09",
             "aegis explain --model MODEL --method ig --metrics sanity,deletion (show reviewers a method that passes)"},
            {"explanation-unfaithful",
             "An explanation method's maps are not faithful: removing the features it ranks first hurts the model no "
             "more than removing random ones",
             "smallest share over the methods of samples whose deletion AUC is below the random-order AUC",
             Thresholds().higher_is_worse(false).medium(0.5), "AML.T0031", "ML09",
             "aegis explain --model MODEL --method ig --metrics deletion,insertion (pick a faithful method)"}};
  }

  nlohmann::json options_json() const override {
    return {{"methods", methods_},
            {"samples", samples_},
            {"curve_steps", curve_steps_},
            {"eps", eps_},
            {"robustness_steps", robustness_steps_},
            {"top_k", top_k_},
            {"attack", attack_},
            {"attack_steps", attack_steps_},
            {"examples", examples_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const ModelMeta& meta = ctx.model.meta();
    if (!ctx.model.has_gradients()) {
      res.status = "skipped";
      res.note =
          "the explanation check needs a white-box model (gradient maps, the sanity check, the robustness "
          "attack)";
      return res;
    }
    const int64_t n = std::min<int64_t>(samples_, ctx.data.size());
    if (n < 2) {
      res.status = "skipped";
      res.note = "fewer than 2 audit samples";
      return res;
    }
    const torch::Tensor x = ctx.data.x.narrow(0, 0, n);
    auto* script = dynamic_cast<ScriptClassifier*>(&ctx.model);
    Progress bar(ctx.label, int64_t(methods_.size()) + 2);

    nlohmann::json per_method = nlohmann::json::object();
    double worst_similarity = -1, worst_faithful = 2;
    std::string worst_similarity_method, worst_faithful_method;
    Attribution first;  // the first method's clean maps, for the examples
    for (const auto& m : methods_) {
      auto explainer = make_explainer(m, {{"seed", ctx.seed}});
      Attribution a = explainer->explain(ctx.model, x);
      if (!first.values.defined()) first = a;
      PerturbationCurves c =
          perturbation_curves(ctx.model, x, a, PerturbationCurveOptions().steps(curve_steps_).seed(ctx.seed));
      const double faithful = c.better_than_random_fraction();
      nlohmann::json j = {{"deletion_auc", round6(c.auc.mean().item<double>())},
                          {"random_deletion_auc", round6(c.random_auc.mean().item<double>())},
                          {"deletion_better_than_random_fraction", round6(faithful)}};
      res.headline.push_back({"deletion_better_than_random@" + m, round6(faithful), true});
      if (faithful < worst_faithful) worst_faithful = faithful, worst_faithful_method = m;
      if (script) {
        RandomisationCheck s =
            model_randomisation_check(*script, *explainer, x, RandomisationCheckOptions().seed(ctx.seed));
        j["randomised_similarity"] = round6(s.final_similarity);
        j["randomised_similarity_abs"] = round6(s.similarity_abs.back());
        j["sanity_cascade"] = s.to_json()["cascade"];
        res.headline.push_back({"randomised_map_similarity@" + m, round6(s.final_similarity), false});
        if (s.final_similarity > worst_similarity) worst_similarity = s.final_similarity, worst_similarity_method = m;
      }
      per_method[m] = j;
      bar.advance(1);
    }
    res.metrics = {{"samples", n}, {"curve_steps", curve_steps_}, {"methods", per_method}};
    if (script) {
      res.observations.push_back(
          {"explanation-ignores-model",
           round6(worst_similarity),
           fmt::format("{} maps keep a rank correlation of {:.2f} with the original ones once every layer of the "
                       "model is re-randomised (on {} samples; a method that explains the model falls well below "
                       "0.5)",
                       worst_similarity_method, worst_similarity, n),
           {{"method", worst_similarity_method}, {"methods", per_method}}});
    } else {
      res.note = "the sanity check re-randomises weights: skipped for a model that is not a TorchScript file";
    }
    res.observations.push_back(
        {"explanation-unfaithful",
         round6(worst_faithful),
         fmt::format("{} maps beat a random deletion order on {:.0f}% of {} samples (deletion AUC {:.3f} against "
                     "{:.3f} for random order)",
                     worst_faithful_method, 100 * worst_faithful, n,
                     per_method[worst_faithful_method]["deletion_auc"].get<double>(),
                     per_method[worst_faithful_method]["random_deletion_auc"].get<double>()),
         {{"method", worst_faithful_method}, {"methods", per_method}}});

    // Explanation robustness: how far a class-keeping perturbation moves the saliency map.
    nlohmann::json examples = nlohmann::json::array();
    const bool image = is_image_data(ctx.data) && x.dim() == 4;
    const int scale = image && x.size(3) < 64 ? 3 : 1;
    auto png = [&](const torch::Tensor& img) {
      return base64_encode(encode_png(img, meta.clip_min, meta.clip_max, scale));
    };
    auto heat_png = [&](const torch::Tensor& v) { return base64_encode(encode_png(heat_image(v), 0.0, 1.0, scale)); };
    if (robustness_steps_ > 0) {
      ExplanationAttackOptions o(eps_);
      o.steps(robustness_steps_).top_k(top_k_).seed(ctx.seed);
      ExplanationAttackResult r = attack_explanation(ctx.model, x, o);
      res.metrics["robustness"] = r.to_json(false);
      res.metrics["robustness"]["eps"] = eps_;
      res.metrics["robustness"]["steps"] = robustness_steps_;
      res.headline.push_back(
          {"explanation_topk_overlap@eps=" + eps_str(eps_), round6(r.topk_overlap.mean().item<double>()), true});
      res.headline.push_back(
          {"explanation_topk_overlap_drop@eps=" + eps_str(eps_), round6(r.mean_overlap_drop()), false});
      if (image)
        for (int64_t i = 0; i < std::min<int64_t>(examples_, n); ++i)
          examples.push_back({{"kind", "explanation attack"},
                              {"index", ctx.indices[i].item<int64_t>()},
                              {"label_name", meta.class_name(r.label[i].item<int64_t>())},
                              {"adv_pred_name", meta.class_name(r.adv_pred[i].item<int64_t>())},
                              {"topk_overlap", round6(r.topk_overlap[i].item<double>())},
                              {"linf", round6(r.linf[i].item<double>())},
                              {"clean_png", png(x[i])},
                              {"clean_map_png", heat_png(r.original_map[i])},
                              {"adv_png", png(r.x_adv[i])},
                              {"adv_map_png", heat_png(r.attacked_map[i])}});
    }
    bar.advance(1);

    // Maps of adversarial samples (what an evasion attack changed), with the first method.
    if (image && examples_ > 0 && !attack_.empty()) {
      const int64_t k = std::min<int64_t>(examples_, n);
      auto attack = make_attack(attack_, {{"eps", eps_}, {"steps", attack_steps_}});
      const torch::Tensor xk = x.narrow(0, 0, k);
      AttackResult adv = attack->run(ctx.model, xk, ctx.data.y.narrow(0, 0, k));
      auto explainer = make_explainer(methods_.front(), {{"seed", ctx.seed}});
      Attribution a = explainer->explain(ctx.model, adv.x_adv, adv.adv_pred);
      const torch::Tensor overlap = explain::top_k_overlap(
          first.values.narrow(0, 0, k), a.values,
          top_k_ > 0 ? top_k_ : explain::default_top_k(explain::feature_relevance(a.values).size(1)));
      for (int64_t i = 0; i < k; ++i)
        examples.push_back({{"kind", attack_ + " (" + methods_.front() + ")"},
                            {"index", ctx.indices[i].item<int64_t>()},
                            {"label_name", meta.class_name(ctx.data.y[i].item<int64_t>())},
                            {"adv_pred_name", meta.class_name(adv.adv_pred[i].item<int64_t>())},
                            {"topk_overlap", round6(overlap[i].item<double>())},
                            {"linf", round6(adv.linf[i].item<double>())},
                            {"clean_png", png(xk[i])},
                            {"clean_map_png", heat_png(first.values[i])},
                            {"adv_png", png(adv.x_adv[i])},
                            {"adv_map_png", heat_png(a.values[i])}});
      res.metrics["adversarial_examples"] = {{"attack", attack_},
                                             {"eps", eps_},
                                             {"samples", k},
                                             {"mean_topk_overlap", round6(overlap.mean().item<double>())}};
    }
    bar.advance(1);
    bar.finish();
    if (!examples.empty()) res.artefacts["explanations"] = examples;
    return res;
  }

 private:
  std::string context() const { return "check explanation"; }

  std::vector<std::string> methods_ = {"saliency", "ig"};
  int64_t samples_ = 16;
  int64_t curve_steps_ = 20;
  double eps_ = 0.05;
  int64_t robustness_steps_ = 20;
  int64_t top_k_ = 0;
  std::string attack_ = "pgd";
  int64_t attack_steps_ = 10;
  int64_t examples_ = 4;
};

}  // namespace

std::unique_ptr<Check> make_explanation_check(const nlohmann::json& params) {
  return std::make_unique<ExplanationCheck>(params);
}

}  // namespace aegis
