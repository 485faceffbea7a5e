// Check "adversarial-detection": how much an adversarial-input detector
// protects the model, measured the way an attacker who knows it would beat
// it. The detector (feature squeezing, Mahalanobis, LID, or a saved one) is
// calibrated on part of the audit sample for a target false-positive rate;
// on the rest, PGD ignores it and the adaptive attack optimises against it
// (adaptive_attack.h). The headline is the robust accuracy of the model and
// detector together under both, beside the model's alone; the finding fires
// when the protection the detector adds against PGD disappears under
// adaptation (Carlini and Wagner 2017, Tramer et al. 2020).

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/detectors/detection_evaluation.h"
#include "aegis/defenses/detectors/feature_squeezing_detector.h"
#include "aegis/defenses/detectors/lid_detector.h"
#include "aegis/defenses/detectors/mahalanobis_detector.h"
#include "audit/checks/check_util.h"

namespace aegis {

namespace {

using namespace audit_internal;

class AdversarialDetectionCheck : public Check {
 public:
  explicit AdversarialDetectionCheck(const nlohmann::json& params) {
    ParamReader r(params, context());
    std::string norm = "linf";
    r.get("detector", detector_);
    r.get("norm", norm);
    norm_ = parse_norm(norm);
    AEGIS_CHECK(norm_ != Norm::L1, InvalidArgument, context() << ": 'norm' must be linf or l2");
    eps_ = norm_ == Norm::Linf ? 0.1 : 1.5;
    r.get("eps", eps_);
    r.get("fpr", fpr_);
    r.get("pgd_steps", pgd_steps_);
    r.get("adaptive_steps", adaptive_steps_);
    r.get("adaptive_method", adaptive_method_);
    r.finish();
    AEGIS_CHECK(eps_ > 0, InvalidArgument, context() << ": 'eps' must be > 0, got " << eps_);
    AEGIS_CHECK(fpr_ > 0 && fpr_ < 1, InvalidArgument, context() << ": 'fpr' must be in (0, 1), got " << fpr_);
    AEGIS_CHECK(pgd_steps_ >= 1 && adaptive_steps_ >= 1, InvalidArgument, context() << ": steps must be >= 1");
    AEGIS_CHECK(adaptive_method_ == "combined" || adaptive_method_ == "orthogonal" || adaptive_method_ == "selective",
                InvalidArgument, context() << ": 'adaptive_method' must be combined, orthogonal or selective");
    AEGIS_CHECK(detector_ == "feature-squeezing" || detector_ == "mahalanobis" || detector_ == "lid" ||
                    detector_.ends_with(".json"),
                InvalidArgument,
                context() << ": 'detector' must be feature-squeezing, mahalanobis, lid or a saved detector (.json), "
                             "got '"
                          << detector_ << "'");
  }

  std::string name() const override { return "adversarial-detection"; }

  std::vector<FindingRule> rules() const override {
    return {{"detector-bypassed", "An attacker who knows the adversarial-input detector gets past it",
             fmt::format("share of the robust accuracy the detector adds against PGD ({} eps {}) that an adaptive "
                         "attack takes away: (with detector vs PGD - with detector vs adaptive) / (with detector vs "
                         "PGD - model alone)",
                         norm_name(norm_), eps_str(eps_)),
             Thresholds().higher_is_worse(true).high(0.5).medium(0.2).low(0.05), "AML.T0015", "ML01",
             fmt::format("aegis train --defense pgd-at --norm {} --eps {} (do not count the detector as a defence "
                         "on its own: harden the model and keep the detector as one signal among the gateway's)",
                         norm_name(norm_), eps_str(eps_))}};
  }

  nlohmann::json options_json() const override {
    return {{"detector", detector_},         {"norm", norm_name(norm_)},          {"eps", eps_},
            {"fpr", fpr_},                   {"pgd_steps", pgd_steps_},           {"adaptive_steps", adaptive_steps_},
            {"adaptive_method", adaptive_method_}};
  }

  CheckResult run(CheckContext& ctx) override {
    CheckResult res;
    const Dataset& data = ctx.data;
    const bool builds_fit = (detector_ == "mahalanobis" || detector_ == "lid") && ctx.training == nullptr;
    // The audit sample is split: [fit] (when the detector is fitted and no
    // training data was given), calibration, evaluation.
    const int64_t N = data.size();
    const int64_t n_fit = builds_fit ? N * 2 / 5 : 0;
    const int64_t n_cal = builds_fit ? N / 5 : N * 3 / 10;
    if (N - n_fit - n_cal < 20 || n_cal < 20) {
      res.status = "skipped";
      res.note = fmt::format("the audit sample ({} samples) is too small to fit, calibrate and evaluate a detector", N);
      return res;
    }
    std::unique_ptr<Detector> det;
    try {
      det = make_detector(ctx, n_fit);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Unsupported) throw;
      res.status = "skipped";
      res.note = e.what();
      return res;
    }
    Dataset calib = data.subset(torch::arange(n_fit, n_fit + n_cal));
    Dataset eval = data.subset(torch::arange(n_fit + n_cal, N));
    DetectionEvaluation e = evaluate_detector(
        *det, ctx.model, calib.x, eval,
        {{"pgd", {{"eps", eps_}, {"norm", norm_name(norm_)}, {"steps", pgd_steps_}, {"seed", ctx.seed}}}},
        DetectionEvaluationOptions()
            .target_fpr(fpr_)
            .batch_size(ctx.batch_size)
            .adaptive(AdaptiveDetectorAttackOptions(eps_)
                          .norm(norm_)
                          .steps(adaptive_steps_)
                          .method(adaptive_method_)
                          .seed(ctx.seed)));
    const double alone = e.robust_accuracy_model, pgd = e.robust_accuracy_detector,
                 adaptive = e.robust_accuracy_adaptive;
    const double added = pgd - alone;
    const double lost = added > 0.01 ? std::clamp((pgd - adaptive) / added, 0.0, 1.0) : 1.0;
    res.metrics = e.to_json();
    res.metrics["fit_samples"] = builds_fit ? n_fit : (ctx.training ? std::min<int64_t>(ctx.training->size(), 2000) : 0);
    res.metrics["calibration_samples"] = n_cal;
    res.metrics["protection_lost"] = round6(lost);
    res.headline.push_back({"detector_clean_flagged", round6(e.clean_fpr), false});
    res.headline.push_back({"robust_accuracy_model_alone", round6(alone), true});
    res.headline.push_back({"robust_accuracy_with_detector_pgd", round6(pgd), true});
    res.headline.push_back({"robust_accuracy_with_detector_adaptive", round6(adaptive), true});
    const AttackDetection &p = e.attacks[0], &a = e.attacks[1];
    std::string summary =
        added <= 0.01
            ? fmt::format("the {} detector adds nothing even against PGD: robust accuracy {:.3f} alone, {:.3f} with "
                          "it ({} of {} PGD examples flagged)",
                          e.detector, alone, pgd, p.successful - p.evaded, p.successful)
            : fmt::format("the {} detector raises robust accuracy against PGD from {:.3f} to {:.3f} (ROC AUC {:.3f}), "
                          "but an adaptive attack that knows it leaves {:.3f}: {:.0f}% of its protection is lost "
                          "({} adaptive examples evade it, {} flagged)",
                          e.detector, alone, pgd, p.auc, adaptive, 100 * lost, a.evaded, a.successful - a.evaded);
    res.observations.push_back({"detector-bypassed",
                                round6(lost),
                                summary,
                                {{"detector", e.detector},
                                 {"threshold", e.threshold},
                                 {"clean_flagged", round6(e.clean_fpr)},
                                 {"robust_accuracy_model_alone", round6(alone)},
                                 {"robust_accuracy_with_detector_pgd", round6(pgd)},
                                 {"robust_accuracy_with_detector_adaptive", round6(adaptive)},
                                 {"pgd_auc", std::isfinite(p.auc) ? nlohmann::json(round6(p.auc)) : nlohmann::json()},
                                 {"adaptive_auc", std::isfinite(a.auc) ? nlohmann::json(round6(a.auc)) : nlohmann::json()},
                                 {"surrogate", det->surrogate()}}});
    res.artefacts["bars"] = nlohmann::json::array(
        {{{"title", fmt::format("Robust accuracy with the {} detector ({} eps {}, threshold for {:.0f}% FPR)",
                                e.detector, norm_name(norm_), eps_str(eps_), 100 * fpr_)},
          {"categories", {"clean", "model alone (PGD)", "model + detector (PGD)", "model + detector (adaptive)"}},
          {"series", nlohmann::json::array({{{"name", "accuracy"},
                                             {"values", {round6(e.clean_accuracy), round6(alone), round6(pgd),
                                                         round6(adaptive)}}}})}}});
    return res;
  }

 private:
  std::string context() const { return "check 'adversarial-detection'"; }

  /// The detector to measure; a fitted one fits on the training data when
  /// the audit has it, else on the first `n_fit` audit samples.
  std::unique_ptr<Detector> make_detector(CheckContext& ctx, int64_t n_fit) {
    // The check borrows the audit's model: a non-owning pointer for the detector.
    ClassifierPtr model(std::shared_ptr<Classifier>(), &ctx.model);
    if (detector_ == "feature-squeezing")
      return std::make_unique<FeatureSqueezingDetector>(
          model, FeatureSqueezingDetectorOptions().bits(1).median(ctx.model.meta().input_shape.size() == 3 ? 3 : 1));
    if (detector_.ends_with(".json")) {
      AEGIS_CHECK(std::filesystem::exists(detector_), NotFound, context() << ": detector file not found: " << detector_);
      return load_detector_file(detector_, model);
    }
    auto* script = dynamic_cast<ScriptClassifier*>(&ctx.model);
    AEGIS_CHECK(script != nullptr, Unsupported,
                "the " << detector_ << " detector needs a TorchScript model's feature maps");
    std::shared_ptr<ScriptClassifier> sm(std::shared_ptr<ScriptClassifier>(), script);
    const Dataset fit =
        ctx.training ? ctx.training->head(std::min<int64_t>(ctx.training->size(), 2000)) : ctx.data.head(n_fit);
    if (detector_ == "mahalanobis") return MahalanobisDetector::fit(sm, fit);
    return LIDDetector::fit(sm, fit, LIDOptions().reference(std::min<int64_t>(200, fit.size() * 2 / 3)));
  }

  std::string detector_ = "feature-squeezing";
  Norm norm_ = Norm::Linf;
  double eps_ = 0.1;
  double fpr_ = 0.05;
  int64_t pgd_steps_ = 20;
  int64_t adaptive_steps_ = 100;
  std::string adaptive_method_ = "combined";
};

}  // namespace

std::unique_ptr<Check> make_adversarial_detection_check(const nlohmann::json& params) {
  return std::make_unique<AdversarialDetectionCheck>(params);
}

}  // namespace aegis
