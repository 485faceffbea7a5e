// Check "evasion-curve": robust accuracy against the perturbation budget eps,
// for one norm and one threat model (white-box gradients or black-box
// scores), with the attack taken from the attack registry by name.

#include <fmt/format.h>

#include <algorithm>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class EvasionCurveCheck : public Check {
 public:
  explicit EvasionCurveCheck(const nlohmann::json& params) {
    ParamReader r(params, "check evasion-curve");
    std::string norm = "linf";
    r.get("norm", norm);
    norm_ = parse_norm(norm);
    eps_ = default_eps(norm_);
    r.get("eps", eps_);
    r.get("reference_eps", reference_eps_);
    r.get("threat", threat_);
    r.get("attack", attack_);
    r.get("attack_params", attack_params_);
    r.get("examples", examples_);
    r.finish();
    AEGIS_CHECK(!eps_.empty(), InvalidArgument, "check evasion-curve: 'eps' must list at least one value");
    for (double e : eps_) AEGIS_CHECK(e > 0, InvalidArgument, "check evasion-curve: every eps must be > 0, got " << e);
    std::sort(eps_.begin(), eps_.end());
    if (reference_eps_ == 0) reference_eps_ = eps_.back();
    AEGIS_CHECK(std::find(eps_.begin(), eps_.end(), reference_eps_) != eps_.end(), InvalidArgument,
                "check evasion-curve: 'reference_eps' (" << reference_eps_ << ") must be one of 'eps'");
    AEGIS_CHECK(examples_ >= 0, InvalidArgument, "check evasion-curve: 'examples' must be >= 0");
    resolved_ = pick_attack(threat_, attack_);
    // Build the attack once now so that bad attack parameters fail when the
    // suite loads.
    if (!resolved_.empty()) make_attack(resolved_, attack_params(attack_params_, norm_, eps_[0], 0, context()));
  }

  std::string name() const override { return "evasion-curve"; }

  std::vector<FindingRule> rules() const override {
    bool bb = threat_ == "black-box";
    return {
        {"robust-accuracy-drop", fmt::format("Small {} perturbations ({}) defeat the model", norm_name(norm_), threat_),
         fmt::format("relative drop of accuracy under attack at {} eps {}: "
                     "(clean - robust) / clean",
                     norm_name(norm_), eps_str(reference_eps_)),
         Thresholds().higher_is_worse(true).critical(0.8).high(0.5).medium(0.2).low(0.05),
         bb ? "AML.T0043.001" : "AML.T0043.000", "ML01",
         fmt::format("aegis train --defense pgd-at --norm {} --eps {}", norm_name(norm_), eps_str(reference_eps_))}};
  }

  nlohmann::json options_json() const override {
    return {{"norm", norm_name(norm_)}, {"eps", eps_},       {"reference_eps", reference_eps_},
            {"threat", threat_},        {"attack", attack_}, {"attack_params", attack_params_},
            {"examples", examples_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    if (resolved_.empty()) {
      res.status = "skipped";
      res.note = "no black-box attack is registered in this build of aegis";
      return res;
    }
    std::unique_ptr<BlackBoxView> view;
    Classifier* target = &ctx.model;
    if (threat_ == "black-box") {
      view = std::make_unique<BlackBoxView>(ctx.model);
      target = view.get();
    }
    const Dataset& data = ctx.data;
    torch::Tensor clean_correct = predict_all(ctx.model, data.x, ctx.batch_size).eq(data.y);
    double clean = mean_of(clean_correct);
    int64_t batches = (data.size() + ctx.batch_size - 1) / ctx.batch_size;
    Progress bar(ctx.label, batches * int64_t(eps_.size()));

    nlohmann::json curve = nlohmann::json::array();
    nlohmann::json points = nlohmann::json::array({{0.0, round6(clean)}});
    SampleAttack at_ref;
    double robust_ref = clean;
    for (double eps : eps_) {
      auto attack = make_attack(resolved_, attack_params(attack_params_, norm_, eps, ctx.seed, context()));
      SampleAttack a = attack_all(*target, data, *attack, ctx.batch_size, &bar);
      double robust = 1.0 - mean_of(a.success);
      torch::Tensor broken = a.success & clean_correct;
      curve.push_back(
          {{"eps", eps},
           {"robust_accuracy", round6(robust)},
           {"success_rate_on_correct", round6(clean > 0 ? mean_of(broken) / clean : 0.0)},
           {"median_l2_of_successes", round6(broken.any().item<bool>() ? median_of(a.l2.index({broken})) : 0.0)},
           {"queries", a.queries}});
      points.push_back({eps, round6(robust)});
      res.headline.push_back({"robust_accuracy@" + eps_str(eps), round6(robust), true});
      if (eps == reference_eps_) {
        robust_ref = robust;
        at_ref = std::move(a);
      }
    }
    bar.finish(fmt::format("robust accuracy {:.3f} at eps {}", robust_ref, eps_str(reference_eps_)));

    res.metrics = {{"norm", norm_name(norm_)},
                   {"threat", threat_},
                   {"attack", resolved_},
                   {"samples", data.size()},
                   {"clean_accuracy", round6(clean)},
                   {"reference_eps", reference_eps_},
                   {"robust_accuracy", round6(robust_ref)},
                   {"curve", curve}};
    res.headline.insert(res.headline.begin(), {"clean_accuracy", round6(clean), true});
    double drop = clean > 0 ? std::max(0.0, (clean - robust_ref) / clean) : 1.0;
    torch::Tensor broken_ref = at_ref.success & clean_correct;
    res.observations.push_back(
        {"robust-accuracy-drop",
         round6(drop),
         fmt::format("{} ({}) at {} eps {} lowers accuracy from {:.3f} to "
                     "{:.3f} on {} samples",
                     resolved_, threat_, norm_name(norm_), eps_str(reference_eps_), clean, robust_ref, data.size()),
         {{"clean_accuracy", round6(clean)},
          {"robust_accuracy", round6(robust_ref)},
          {"eps", reference_eps_},
          {"norm", norm_name(norm_)},
          {"attack", resolved_},
          {"samples", data.size()},
          {"broken_sample_ids", first_ids(broken_ref, ctx.indices, 20)}}});
    res.artefacts["curves"] = nlohmann::json::array(
        {{{"title", fmt::format("Robust accuracy vs {} eps ({}, {})", norm_name(norm_), threat_, resolved_)},
          {"x_label", norm_name(norm_) + " eps"},
          {"y_label", "accuracy"},
          {"series", nlohmann::json::array({{{"name", resolved_}, {"points", points}}})}}});
    res.artefacts["examples"] = adversarial_examples(ctx.model, data, ctx.indices, clean_correct, at_ref, examples_);
    return res;
  }

 private:
  std::string context() const { return "check evasion-curve"; }

  Norm norm_ = Norm::Linf;
  std::vector<double> eps_;
  double reference_eps_ = 0;
  std::string threat_ = "white-box";
  std::string attack_;
  std::string resolved_;
  nlohmann::json attack_params_ = nlohmann::json::object();
  int64_t examples_ = 8;
};

}  // namespace

std::unique_ptr<Check> make_evasion_curve_check(const nlohmann::json& params) {
  return std::make_unique<EvasionCurveCheck>(params);
}

}  // namespace aegis
