// Check "gradient-masking": the sanity checks of Athalye et al. (2018) and
// Carlini et al. (2019) that expose robustness which is only an artefact of
// useless gradients: iterative attacks must beat one-step attacks, robust
// accuracy must not grow with eps, an unbounded attack must succeed, random
// noise and gradient-free attacks must not beat the gradient attack.

#include <fmt/format.h>

#include <cmath>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class GradientMaskingCheck : public Check {
 public:
  explicit GradientMaskingCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    std::string norm = "linf";
    r.get("norm", norm);
    norm_ = parse_norm(norm);
    AEGIS_CHECK(norm_ != Norm::L1, InvalidArgument, context() << ": 'norm' must be linf or l2");
    eps_ = norm_ == Norm::Linf ? 0.1 : 1.5;
    r.get("eps", eps_);
    r.get("steps", steps_);
    r.get("tolerance", tolerance_);
    r.get("black_box", black_box_);
    r.get("black_box_params", black_box_params_);
    r.finish();
    AEGIS_CHECK(black_box_params_.is_object(), InvalidArgument,
                context() << ": 'black_box_params' must be a table of the black-box attack's parameters");
    AEGIS_CHECK(eps_ > 0, InvalidArgument, context() << ": 'eps' must be > 0, got " << eps_);
    AEGIS_CHECK(steps_ >= 1, InvalidArgument, context() << ": 'steps' must be >= 1, got " << steps_);
    AEGIS_CHECK(tolerance_ >= 0 && tolerance_ < 1, InvalidArgument, context() << ": 'tolerance' must be in [0, 1)");
  }

  std::string name() const override { return "gradient-masking"; }

  std::vector<FindingRule> rules() const override {
    return {{"masking-suspected", "Robustness may be an artefact of gradient masking",
             "number of failed gradient-masking sanity checks", Thresholds().higher_is_worse(true).high(2).medium(1),
             "AML.T0043", "ML01",
             "aegis audit --budget thorough (adds black-box and more restarts; "
             "judge robustness by the strongest attack)"}};
  }

  nlohmann::json options_json() const override {
    return {{"norm", norm_name(norm_)},
            {"eps", eps_},
            {"steps", steps_},
            {"tolerance", tolerance_},
            {"black_box", black_box_},
            {"black_box_params", black_box_params_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const Dataset& data = ctx.data;
    const auto& meta = ctx.model.meta();
    torch::Tensor clean_correct = predict_all(ctx.model, data.x, ctx.batch_size).eq(data.y);
    double clean = mean_of(clean_correct);
    std::string bb_name = black_box_ ? pick_attack("black-box", "") : "";
    int64_t batches = (data.size() + ctx.batch_size - 1) / ctx.batch_size;
    Progress bar(ctx.label, batches * (5 + (bb_name.empty() ? 0 : 1)));

    auto robust_acc = [&](Classifier& m, const std::string& attack, double eps, nlohmann::json extra) {
      auto a = make_attack(attack, attack_params(extra, norm_, eps, ctx.seed, context()));
      return 1.0 - mean_of(attack_all(m, data, *a, ctx.batch_size, &bar).success);
    };
    nlohmann::json pgd_params = {{"steps", steps_}};
    double pgd = robust_acc(ctx.model, "pgd", eps_, pgd_params);
    double pgd_half = robust_acc(ctx.model, "pgd", eps_ / 2, pgd_params);
    double pgd_double = robust_acc(ctx.model, "pgd", eps_ * 2, pgd_params);
    double fgsm = robust_acc(ctx.model, "fgsm", eps_, nlohmann::json::object());
    double range = meta.clip_max - meta.clip_min;
    int64_t dims = data.size() > 0 ? data.x[0].numel() : 1;
    double unbounded_eps = norm_ == Norm::Linf ? range : range * std::sqrt(double(dims));
    double unbounded = robust_acc(ctx.model, "pgd", unbounded_eps, {{"steps", 2 * steps_}});
    double noise = random_noise_accuracy(ctx, bar);

    struct Test {
      std::string name;
      bool passed;
      std::string detail;
    };
    std::vector<Test> tests;
    tests.push_back({"iterative-beats-single-step", pgd <= fgsm + tolerance_,
                     fmt::format("robust accuracy PGD-{} {:.3f}, FGSM {:.3f}", steps_, pgd, fgsm)});
    tests.push_back({"monotone-in-eps", pgd <= pgd_half + tolerance_ && pgd_double <= pgd + tolerance_,
                     fmt::format("robust accuracy at eps {}, {}, {}: {:.3f}, {:.3f}, {:.3f}", eps_str(eps_ / 2),
                                 eps_str(eps_), eps_str(eps_ * 2), pgd_half, pgd, pgd_double)});
    tests.push_back(
        {"unbounded-attack-succeeds", unbounded <= tolerance_,
         fmt::format("robust accuracy {:.3f} at eps {} (the whole input range)", unbounded, eps_str(unbounded_eps))});
    tests.push_back({"noise-weaker-than-gradient", pgd <= noise + tolerance_,
                     fmt::format("robust accuracy under random noise {:.3f}, under PGD {:.3f}", noise, pgd)});
    nlohmann::json accs = {{"clean", round6(clean)},
                           {"pgd", round6(pgd)},
                           {"pgd_half_eps", round6(pgd_half)},
                           {"pgd_double_eps", round6(pgd_double)},
                           {"fgsm", round6(fgsm)},
                           {"unbounded_pgd", round6(unbounded)},
                           {"random_noise", round6(noise)}};
    if (!bb_name.empty()) {
      BlackBoxView view(ctx.model);
      double bb = robust_acc(view, bb_name, eps_, black_box_params_);
      accs[bb_name] = round6(bb);
      tests.push_back({"gradient-beats-black-box", pgd <= bb + tolerance_,
                       fmt::format("robust accuracy under {} {:.3f}, under PGD {:.3f}", bb_name, bb, pgd)});
    }
    int64_t failed = 0;
    nlohmann::json jt = nlohmann::json::array();
    for (const auto& t : tests) {
      failed += t.passed ? 0 : 1;
      jt.push_back({{"name", t.name}, {"passed", t.passed}, {"detail", t.detail}});
    }
    bar.finish(fmt::format("{} of {} sanity checks failed", failed, tests.size()));
    res.metrics = {{"norm", norm_name(norm_)}, {"eps", eps_}, {"samples", data.size()}, {"tolerance", tolerance_},
                   {"robust_accuracy", accs},  {"tests", jt}, {"failed", failed}};
    res.headline.push_back({"sanity_checks_failed", double(failed), false});
    std::string failed_names;
    for (const auto& t : tests)
      if (!t.passed) failed_names += (failed_names.empty() ? "" : ", ") + t.name;
    res.observations.push_back({"masking-suspected",
                                double(failed),
                                failed == 0 ? fmt::format("all {} sanity checks passed at {} eps {}", tests.size(),
                                                          norm_name(norm_), eps_str(eps_))
                                            : fmt::format("{} of {} sanity checks failed ({}): robust "
                                                          "accuracy from gradient attacks is "
                                                          "suspect",
                                                          failed, tests.size(), failed_names),
                                {{"tests", jt}, {"robust_accuracy", accs}}});
    return res;
  }

 private:
  std::string context() const { return "check gradient-masking"; }

  /// Accuracy under one draw of random noise on the eps sphere (Linf: random
  /// signs at eps; L2: a Gaussian direction scaled to eps), clipped to range.
  double random_noise_accuracy(CheckContext& ctx, Progress& bar) {
    const auto& meta = ctx.model.meta();
    auto gen = make_generator(ctx.seed, "gradient-masking/noise");
    torch::Tensor noise = torch::randn(ctx.data.x.sizes(), gen);
    if (norm_ == Norm::Linf) {
      noise = noise.sign() * eps_;
    } else {
      torch::Tensor n = noise.flatten(1).norm(2, 1).clamp_min(1e-12);
      std::vector<int64_t> shape(noise.dim(), 1);
      shape[0] = -1;
      noise = noise / n.view(shape) * eps_;
    }
    torch::Tensor x = (ctx.data.x + noise).clamp(meta.clip_min, meta.clip_max);
    double acc = mean_of(predict_all(ctx.model, x, ctx.batch_size).eq(ctx.data.y));
    bar.advance((ctx.data.size() + ctx.batch_size - 1) / ctx.batch_size);
    return acc;
  }

  Norm norm_ = Norm::Linf;
  double eps_ = 0.1;
  int64_t steps_ = 20;
  double tolerance_ = 0.05;
  bool black_box_ = true;
  nlohmann::json black_box_params_ = nlohmann::json::object();
};

}  // namespace

std::unique_ptr<Check> make_gradient_masking_check(const nlohmann::json& params) {
  return std::make_unique<GradientMaskingCheck>(params);
}

}  // namespace aegis
