// Check "per-class-robustness": clean and robust accuracy of every class at
// one budget, to find the classes an attacker can flip most easily.

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class PerClassCheck : public Check {
 public:
  explicit PerClassCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    std::string norm = "linf";
    r.get("norm", norm);
    norm_ = parse_norm(norm);
    eps_ = norm_ == Norm::Linf ? 0.1 : norm_ == Norm::L2 ? 1.5 : 10.0;
    r.get("eps", eps_);
    r.get("attack", attack_);
    r.get("attack_params", attack_params_);
    r.finish();
    AEGIS_CHECK(eps_ > 0, InvalidArgument, context() << ": 'eps' must be > 0, got " << eps_);
    resolved_ = pick_attack("white-box", attack_);
    make_attack(resolved_, attack_params(attack_params_, norm_, eps_, 0, context()));
  }

  std::string name() const override { return "per-class-robustness"; }

  std::vector<FindingRule> rules() const override {
    return {
        {"class-disparity", "Some classes are much easier to attack than others",
         fmt::format("largest minus smallest per-class robust accuracy at {} eps {}", norm_name(norm_), eps_str(eps_)),
         Thresholds().higher_is_worse(true).high(0.6).medium(0.35).low(0.15), "AML.T0043", "ML01",
         fmt::format("aegis train --defense trades --norm {} --eps {}", norm_name(norm_), eps_str(eps_))},
        {"weakest-class-robust-accuracy", "The most vulnerable class is flipped under attack",
         fmt::format("lowest per-class robust accuracy at {} eps {}", norm_name(norm_), eps_str(eps_)),
         Thresholds().higher_is_worse(false).critical(0.05).high(0.2).medium(0.4).low(0.6), "AML.T0015", "ML01",
         fmt::format("aegis train --defense pgd-at --norm {} --eps {}", norm_name(norm_), eps_str(eps_))}};
  }

  nlohmann::json options_json() const override {
    return {{"norm", norm_name(norm_)}, {"eps", eps_}, {"attack", attack_}, {"attack_params", attack_params_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const Dataset& data = ctx.data;
    const auto& meta = ctx.model.meta();
    int64_t k = meta.num_classes;
    torch::Tensor clean_correct = predict_all(ctx.model, data.x, ctx.batch_size).eq(data.y);
    Progress bar(ctx.label, (data.size() + ctx.batch_size - 1) / ctx.batch_size);
    auto attack = make_attack(resolved_, attack_params(attack_params_, norm_, eps_, ctx.seed, context()));
    SampleAttack a = attack_all(ctx.model, data, *attack, ctx.batch_size, &bar);
    torch::Tensor robust = a.success.logical_not();

    nlohmann::json classes = nlohmann::json::array();
    nlohmann::json names = nlohmann::json::array(), clean_v = nlohmann::json::array(),
                   robust_v = nlohmann::json::array();
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    int64_t weakest = -1;
    for (int64_t c = 0; c < k; ++c) {
      torch::Tensor in = data.y.eq(c);
      int64_t n = in.sum().item<int64_t>();
      if (n == 0) continue;
      double ca = mean_of(clean_correct.index({in})), ra = mean_of(robust.index({in}));
      classes.push_back({{"class", c},
                         {"name", meta.class_name(c)},
                         {"samples", n},
                         {"clean_accuracy", round6(ca)},
                         {"robust_accuracy", round6(ra)}});
      names.push_back(meta.class_name(c));
      clean_v.push_back(round6(ca));
      robust_v.push_back(round6(ra));
      if (ra < lo) {
        lo = ra;
        weakest = c;
      }
      hi = std::max(hi, ra);
    }
    bar.finish(fmt::format("weakest class {} ({:.3f})", weakest >= 0 ? meta.class_name(weakest) : "-", lo));
    if (weakest < 0) {
      res.status = "skipped";
      res.note = "no samples";
      return res;
    }
    res.metrics = {{"norm", norm_name(norm_)},    {"eps", eps_},        {"attack", resolved_},
                   {"samples", data.size()},      {"classes", classes}, {"weakest_class", meta.class_name(weakest)},
                   {"disparity", round6(hi - lo)}};
    res.headline.push_back({"weakest_class_robust_accuracy", round6(lo), true});
    res.headline.push_back({"class_disparity", round6(hi - lo), false});
    std::string where =
        fmt::format("{} at {} eps {} on {} samples", resolved_, norm_name(norm_), eps_str(eps_), data.size());
    res.observations.push_back(
        {"class-disparity",
         round6(hi - lo),
         fmt::format("per-class robust accuracy ranges from {:.3f} to {:.3f} under {}", lo, hi, where),
         {{"per_class", classes}, {"eps", eps_}, {"norm", norm_name(norm_)}, {"attack", resolved_}}});
    res.observations.push_back(
        {"weakest-class-robust-accuracy",
         round6(lo),
         fmt::format("class '{}' keeps {:.3f} accuracy under {}", meta.class_name(weakest), lo, where),
         {{"class", weakest},
          {"name", meta.class_name(weakest)},
          {"robust_accuracy", round6(lo)},
          {"broken_sample_ids", first_ids(a.success & clean_correct & data.y.eq(weakest), ctx.indices, 20)}}});
    res.artefacts["bars"] =
        nlohmann::json::array({{{"title", fmt::format("Per-class accuracy, clean and under {} ({} eps {})", resolved_,
                                                      norm_name(norm_), eps_str(eps_))},
                                {"categories", names},
                                {"series", nlohmann::json::array({{{"name", "clean"}, {"values", clean_v}},
                                                                  {{"name", "robust"}, {"values", robust_v}}})}}});
    return res;
  }

 private:
  std::string context() const { return "check per-class-robustness"; }

  Norm norm_ = Norm::Linf;
  double eps_ = 0.1;
  std::string attack_, resolved_;
  nlohmann::json attack_params_ = nlohmann::json::object();
};

}  // namespace

std::unique_ptr<Check> make_per_class_check(const nlohmann::json& params) {
  return std::make_unique<PerClassCheck>(params);
}

}  // namespace aegis
