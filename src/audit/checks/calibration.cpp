// Check "calibration": how well the model's confidence matches its accuracy,
// on clean data and on adversarial data (expected calibration error and
// reliability diagrams). A model that is confidently wrong under attack
// cannot be protected by rejecting low-confidence answers.

#include <fmt/format.h>

#include <cmath>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

struct Reliability {
  double ece = 0;
  nlohmann::json bins = nlohmann::json::array();    ///< [{lo, hi, count, confidence, accuracy}]
  nlohmann::json points = nlohmann::json::array();  ///< [[confidence, accuracy]] of non-empty bins
};

/// Expected calibration error over `bins` equal-width confidence bins (Guo et
/// al. 2017).
Reliability reliability(const torch::Tensor& probs, const torch::Tensor& y, int64_t bins) {
  Reliability r;
  auto [conf, pred] = probs.to(torch::kDouble).max(1);
  torch::Tensor correct = pred.eq(y).to(torch::kDouble);
  const int64_t n = conf.size(0);
  for (int64_t b = 0; b < bins; ++b) {
    double lo = double(b) / bins, hi = double(b + 1) / bins;
    torch::Tensor in = b == 0 ? conf.le(hi) : (conf.gt(lo) & conf.le(hi));
    int64_t count = in.sum().item<int64_t>();
    double c = count ? conf.index({in}).mean().item<double>() : 0.0;
    double a = count ? correct.index({in}).mean().item<double>() : 0.0;
    if (count) {
      r.ece += double(count) / double(n) * std::abs(a - c);
      r.points.push_back({round6(c), round6(a)});
    }
    r.bins.push_back(
        {{"lo", round6(lo)}, {"hi", round6(hi)}, {"count", count}, {"confidence", round6(c)}, {"accuracy", round6(a)}});
  }
  r.ece = round6(r.ece);
  return r;
}

class CalibrationCheck : public Check {
 public:
  explicit CalibrationCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    r.get("bins", bins_);
    std::string norm = "linf";
    r.get("norm", norm);
    norm_ = parse_norm(norm);
    eps_ = norm_ == Norm::Linf ? 0.05 : 1.0;
    r.get("eps", eps_);
    r.get("attack", attack_);
    r.get("attack_params", attack_params_);
    r.finish();
    AEGIS_CHECK(bins_ >= 2 && bins_ <= 100, InvalidArgument, context() << ": 'bins' must be in [2, 100]");
    AEGIS_CHECK(eps_ > 0, InvalidArgument, context() << ": 'eps' must be > 0, got " << eps_);
    resolved_ = pick_attack("white-box", attack_);
    make_attack(resolved_, attack_params(attack_params_, norm_, eps_, 0, context()));
  }

  std::string name() const override { return "calibration"; }

  std::vector<FindingRule> rules() const override {
    return {{"clean-calibration-error", "Confidence does not match accuracy on clean data",
             "expected calibration error on clean data",
             Thresholds().higher_is_worse(true).high(0.25).medium(0.1).low(0.05), "AML.T0031", "ML09",
             "aegis train --defense trades --eps 0.1"},
            {"adversarial-overconfidence", "The model is confidently wrong on adversarial inputs",
             fmt::format("mean confidence of wrong answers on adversarial inputs "
                         "({} eps {})",
                         norm_name(norm_), eps_str(eps_)),
             Thresholds().higher_is_worse(true).high(0.9).medium(0.75).low(0.5), "AML.T0015", "ML01",
             fmt::format("aegis train --defense pgd-at --norm {} --eps {}", norm_name(norm_), eps_str(eps_))}};
  }

  nlohmann::json options_json() const override {
    return {{"bins", bins_},
            {"norm", norm_name(norm_)},
            {"eps", eps_},
            {"attack", attack_},
            {"attack_params", attack_params_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const Dataset& data = ctx.data;
    Progress bar(ctx.label, (data.size() + ctx.batch_size - 1) / ctx.batch_size + 1);
    torch::Tensor p_clean = probabilities_all(ctx.model, data.x, ctx.batch_size);
    bar.advance(1);
    auto attack = make_attack(resolved_, attack_params(attack_params_, norm_, eps_, ctx.seed, context()));
    SampleAttack a = attack_all(ctx.model, data, *attack, ctx.batch_size, &bar);
    torch::Tensor p_adv = probabilities_all(ctx.model, a.x_adv, ctx.batch_size);
    Reliability clean = reliability(p_clean, data.y, bins_), adv = reliability(p_adv, data.y, bins_);
    auto [conf_adv, pred_adv] = p_adv.to(torch::kDouble).max(1);
    torch::Tensor wrong = pred_adv.ne(data.y);
    double wrong_conf = wrong.any().item<bool>() ? round6(conf_adv.index({wrong}).mean().item<double>()) : 0.0;
    double clean_conf = round6(std::get<0>(p_clean.to(torch::kDouble).max(1)).mean().item<double>());
    bar.finish(fmt::format("ECE clean {:.3f}, adversarial {:.3f}", clean.ece, adv.ece));
    res.metrics = {{"bins", bins_},
                   {"norm", norm_name(norm_)},
                   {"eps", eps_},
                   {"attack", resolved_},
                   {"samples", data.size()},
                   {"clean", {{"ece", clean.ece}, {"mean_confidence", clean_conf}, {"reliability", clean.bins}}},
                   {"adversarial",
                    {{"ece", adv.ece},
                     {"mean_confidence_of_wrong", wrong_conf},
                     {"wrong", wrong.sum().item<int64_t>()},
                     {"reliability", adv.bins}}}};
    res.headline.push_back({"ece_clean", clean.ece, false});
    res.headline.push_back({"ece_adversarial", adv.ece, false});
    res.headline.push_back({"confidence_of_wrong_adversarial", wrong_conf, false});
    res.observations.push_back(
        {"clean-calibration-error",
         clean.ece,
         fmt::format("expected calibration error {:.4f} on {} clean samples ({} bins)", clean.ece, data.size(), bins_),
         {{"ece", clean.ece}, {"mean_confidence", clean_conf}, {"bins", bins_}}});
    res.observations.push_back(
        {"adversarial-overconfidence",
         wrong_conf,
         fmt::format("on {} adversarial inputs ({} at {} eps {}) the model is "
                     "wrong on {} with mean confidence {:.3f}",
                     data.size(), resolved_, norm_name(norm_), eps_str(eps_), wrong.sum().item<int64_t>(), wrong_conf),
         {{"mean_confidence_of_wrong", wrong_conf},
          {"ece_adversarial", adv.ece},
          {"confident_wrong_sample_ids", first_ids(wrong & conf_adv.gt(0.9), ctx.indices, 20)}}});
    res.artefacts["curves"] = nlohmann::json::array(
        {{{"title", "Reliability: accuracy against confidence (diagonal = calibrated)"},
          {"x_label", "confidence"},
          {"y_label", "accuracy"},
          {"diagonal", true},
          {"series", nlohmann::json::array({{{"name", "clean"}, {"points", clean.points}},
                                            {{"name", "adversarial"}, {"points", adv.points}}})}}});
    return res;
  }

 private:
  std::string context() const { return "check calibration"; }

  int64_t bins_ = 10;
  Norm norm_ = Norm::Linf;
  double eps_ = 0.05;
  std::string attack_, resolved_;
  nlohmann::json attack_params_ = nlohmann::json::object();
};

}  // namespace

std::unique_ptr<Check> make_calibration_check(const nlohmann::json& params) {
  return std::make_unique<CalibrationCheck>(params);
}

}  // namespace aegis
