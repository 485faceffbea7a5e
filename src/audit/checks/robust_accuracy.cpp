// Check "robust-accuracy": worst-case robust accuracy by the AutoAttack
// protocol (the evasion area's evaluate_robustness: APGD-CE, targeted
// APGD-DLR, Square, each on the samples still standing), with its sanity
// checks. The strongest single number an audit gives for evasion; the
// evasion-curve checks show how it changes with eps. A failed sanity check
// is a finding of its own: the number is then suspect, not reassuring.

#include <fmt/format.h>

#include <map>

#include "aegis/attacks/evasion/robust_evaluation.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class RobustAccuracyCheck : public Check {
 public:
  explicit RobustAccuracyCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    std::string norm = "linf";
    r.get("norm", norm);
    norm_ = parse_norm(norm);
    AEGIS_CHECK(norm_ != Norm::L1, InvalidArgument, context() << ": 'norm' must be linf or l2");
    eps_ = norm_ == Norm::Linf ? 0.1 : 1.5;
    r.get("eps", eps_);
    r.get("budget", budget_);
    r.get("sanity_checks", sanity_checks_);
    r.get("sanity_samples", sanity_samples_);
    r.get("examples", examples_);
    r.finish();
    AEGIS_CHECK(eps_ > 0, InvalidArgument, context() << ": 'eps' must be > 0, got " << eps_);
    AEGIS_CHECK(budget_ == "quick" || budget_ == "standard", InvalidArgument,
                context() << ": 'budget' must be quick or standard, got '" << budget_ << "'");
    AEGIS_CHECK(sanity_samples_ >= 1, InvalidArgument, context() << ": 'sanity_samples' must be >= 1");
    AEGIS_CHECK(examples_ >= 0, InvalidArgument, context() << ": 'examples' must be >= 0");
  }

  std::string name() const override { return "robust-accuracy"; }

  std::vector<FindingRule> rules() const override {
    return {{"robust-accuracy-drop",
             fmt::format("Worst-case {} perturbations (AutoAttack protocol) defeat the model", norm_name(norm_)),
             fmt::format("relative drop of accuracy under the APGD-CE, APGD-T, Square ensemble at {} eps {}: "
                         "(clean - robust) / clean",
                         norm_name(norm_), eps_str(eps_)),
             Thresholds().higher_is_worse(true).critical(0.8).high(0.5).medium(0.2).low(0.05), "AML.T0043.000", "ML01",
             fmt::format("aegis train --defense pgd-at --norm {} --eps {}", norm_name(norm_), eps_str(eps_))},
            {"evaluation-suspect", "The robust accuracy may be overstated (preflight or sanity checks failed)",
             "number of preflight checks that warned or refused and sanity checks that failed", Thresholds().higher_is_worse(true).high(1),
             "AML.T0043", "ML01",
             "aegis evaluate --budget standard (then attack the defence adaptively: BPDA/EOT for "
             "non-differentiable or randomised parts)"}};
  }

  nlohmann::json options_json() const override {
    return {{"norm", norm_name(norm_)},
            {"eps", eps_},
            {"budget", budget_},
            {"sanity_checks", sanity_checks_},
            {"sanity_samples", sanity_samples_},
            {"examples", examples_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    RobustEvaluation ev = evaluate_robustness(ctx.model, ctx.data,
                                              RobustEvaluationOptions(norm_, eps_)
                                                  .budget(budget_)
                                                  .batch_size(ctx.batch_size)
                                                  .seed(ctx.seed)
                                                  .sanity_checks(sanity_checks_)
                                                  .sanity_samples(sanity_samples_)
                                                  .force(true));  // a refusal is a finding, not an error
    const double clean = ev.clean_accuracy, robust = ev.robust_accuracy;
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& s : ev.stages)
      stages.push_back({{"attack", s.attack},
                        {"attacked", s.attacked},
                        {"broken", s.broken},
                        {"robust_accuracy_after", round6(s.robust_accuracy_after)},
                        {"queries", s.queries},
                        {"white_box", s.white_box}});
    nlohmann::json sanity = nlohmann::json::array();
    int64_t failed = 0;
    for (const auto& s : ev.sanity) {
      failed += s.passed ? 0 : 1;
      sanity.push_back({{"name", s.name}, {"passed", s.passed}, {"detail", s.detail}});
    }
    // Preflight warnings and refusals count as failed checks of the evaluation.
    for (const auto& c : ev.preflight.checks) failed += c.verdict == PreflightVerdict::Pass ? 0 : 1;
    res.metrics = {{"protocol", ev.protocol}, {"norm", norm_name(norm_)},        {"eps", eps_},
                   {"samples", ev.samples},   {"clean_accuracy", round6(clean)}, {"robust_accuracy", round6(robust)},
                   {"stages", stages},        {"sanity_checks", sanity},         {"warnings", ev.warnings},
                   {"preflight", ev.preflight.to_json()},
                   {"notes", ev.notes}};
    res.headline.push_back({"clean_accuracy", round6(clean), true});
    res.headline.push_back({"robust_accuracy@" + eps_str(eps_), round6(robust), true});
    if (sanity_checks_) res.headline.push_back({"sanity_checks_failed", double(failed), false});

    torch::Tensor broken = ev.clean_correct & ~ev.robust;
    std::string by;
    std::map<std::string, int64_t> count;
    for (const auto& b : ev.broken_by)
      if (!b.empty() && b != "clean") ++count[b];
    for (const auto& [attack, n] : count) by += fmt::format("{}{} {}", by.empty() ? "" : ", ", attack, n);
    const double drop = clean > 0 ? std::max(0.0, (clean - robust) / clean) : 1.0;
    res.observations.push_back(
        {"robust-accuracy-drop",
         round6(drop),
         fmt::format("AutoAttack protocol ({}) at {} eps {} lowers accuracy from {:.3f} to {:.3f} on {} samples{}",
                     ev.protocol, norm_name(norm_), eps_str(eps_), clean, robust, ev.samples,
                     by.empty() ? "" : " (broken by " + by + ")"),
         {{"clean_accuracy", round6(clean)},
          {"robust_accuracy", round6(robust)},
          {"eps", eps_},
          {"norm", norm_name(norm_)},
          {"stages", stages},
          {"broken_sample_ids", first_ids(broken, ctx.indices, 20)}}});
    if (sanity_checks_)
      res.observations.push_back(
          {"evaluation-suspect",
           double(failed),
           failed == 0 ? fmt::format("all {} sanity checks of the evaluation passed", ev.sanity.size())
                       : fmt::format("{} of {} sanity checks failed: {}", failed, ev.sanity.size(),
                                     ev.warnings.empty() ? std::string("see metrics") : ev.warnings.front()),
           {{"sanity_checks", sanity}}});

    nlohmann::json names = {"clean"}, values = {round6(clean)};
    for (const auto& s : ev.stages) {
      names.push_back("after " + s.attack);
      values.push_back(round6(s.robust_accuracy_after));
    }
    res.artefacts["bars"] =
        nlohmann::json::array({{{"title", fmt::format("Accuracy after each attack of the ensemble ({} eps {})",
                                                      norm_name(norm_), eps_str(eps_))},
                                {"categories", names},
                                {"series", nlohmann::json::array({{{"name", "accuracy"}, {"values", values}}})}}});
    SampleAttack a;
    a.success = ~ev.robust;
    a.x_adv = ev.x_adv;
    a.adv_pred = predict_all(ctx.model, ev.x_adv, ctx.batch_size);
    torch::Tensor d = (ev.x_adv - ctx.data.x).flatten(1);
    a.l2 = d.norm(2, 1);
    a.linf = d.abs().amax(1);
    res.artefacts["examples"] = adversarial_examples(ctx.model, ctx.data, ctx.indices, ev.clean_correct, a, examples_);
    return res;
  }

 private:
  std::string context() const { return "check robust-accuracy"; }

  Norm norm_ = Norm::Linf;
  double eps_ = 0.1;
  std::string budget_ = "standard";
  bool sanity_checks_ = true;
  int64_t sanity_samples_ = 200;
  int64_t examples_ = 8;
};

}  // namespace

std::unique_ptr<Check> make_robust_accuracy_check(const nlohmann::json& params) {
  return std::make_unique<RobustAccuracyCheck>(params);
}

}  // namespace aegis
