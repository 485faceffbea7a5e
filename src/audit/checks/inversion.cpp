// Check "model-inversion": can an attacker rebuild what a class looks like
// from the model alone? MI-Face (Fredrikson et al. 2015) reconstructs one
// image per class (white-box when the model gives gradients, else from
// queries with estimated gradients) and the check counts the reconstructions
// that are closer (MSE) to their own class's mean image than to any other
// class's, with the class means taken from the audit sample. How much that
// matters depends on whether a class's typical appearance is sensitive (a
// person's face in face recognition: yes; a kind of shoe: no), so the
// declared severities stop at medium.

#include <fmt/format.h>

#include <cmath>

#include "aegis/attacks/inference/model_inversion.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class InversionCheck : public Check {
 public:
  explicit InversionCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    r.get("steps", steps_);
    r.get("gradient", gradient_);
    r.get("samples", samples_);
    r.finish();
    AEGIS_CHECK(gradient_ == "auto" || gradient_ == "white-box" || gradient_ == "estimated", InvalidArgument,
                context() << ": 'gradient' must be auto, white-box or estimated, got '" << gradient_ << "'");
    options("white-box").validate();
  }

  std::string name() const override { return "model-inversion"; }

  std::vector<FindingRule> rules() const override {
    return {{"class-reconstruction", "The model lets an attacker reconstruct what each class looks like",
             "share of MI-Face reconstructions closest to their own class's mean image",
             Thresholds().higher_is_worse(true).medium(0.5).low(0.3), "AML.T0024.001", "ML03",
             "aegis serve with --output label (no scores to climb) and rate limits; see docs/serve.md"}};
  }

  nlohmann::json options_json() const override {
    return {{"steps", steps_}, {"gradient", gradient_}, {"samples", samples_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const ModelMeta& meta = ctx.model.meta();
    if (meta.input_shape.size() != 3) {
      res.status = "skipped";
      res.note = "MI-Face inverts image models; for tabular models use `aegis attack --attack inversion --feature N`";
      return res;
    }
    const std::string gradient =
        gradient_ == "auto" ? (ctx.model.has_gradients() ? "white-box" : "estimated") : gradient_;
    InversionResult r = mi_face(ctx.model, options(gradient).seed(ctx.seed), &ctx.data);
    const int64_t k = r.classes.numel();
    int64_t own = int64_t(std::llround(r.closest_to_own_fraction * double(k)));
    res.metrics = r.to_json();
    res.metrics["reference"] = "class means of the audit sample";
    res.headline.push_back({"inversion_closest_to_own_fraction", round6(r.closest_to_own_fraction), false});
    double mean_ssim = 0;
    for (double v : r.ssim_own) mean_ssim += v / double(r.ssim_own.size());
    res.observations.push_back(
        {"class-reconstruction",
         round6(r.closest_to_own_fraction),
         fmt::format("{} of {} MI-Face reconstructions ({}, {} steps, {} queries) are closest to their own class's "
                     "mean image (chance: 1 in {}); mean SSIM to it {:.3f}",
                     own, k, gradient, steps_, r.queries, meta.num_classes, mean_ssim),
         {{"closest_to_own_fraction", round6(r.closest_to_own_fraction)},
          {"nearest_class_mean", r.nearest_class},
          {"mean_ssim_to_own_class_mean", round6(mean_ssim)},
          {"queries", r.queries}}});
    return res;
  }

 private:
  std::string context() const { return "check model-inversion"; }
  InversionOptions options(const std::string& gradient) const {
    return InversionOptions().gradient(gradient).steps(steps_).samples(samples_);
  }

  int64_t steps_ = 300;
  std::string gradient_ = "auto";
  int64_t samples_ = 20;
};

}  // namespace

std::unique_ptr<Check> make_inversion_check(const nlohmann::json& params) {
  return std::make_unique<InversionCheck>(params);
}

}  // namespace aegis
