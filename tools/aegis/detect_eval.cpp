// aegis detect-eval: fit/calibrate an adversarial-input detector for a model
// and measure it against FGSM, PGD and (where the registry has it) C&W: ROC
// AUC and true-positive rate at the calibrated false-positive rate. The
// detector can be saved next to the model for the gateway.

#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "aegis/attacks/registry.h"
#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/defenses/detectors/detection_evaluation.h"
#include "aegis/defenses/detectors/feature_squeezing_detector.h"
#include "aegis/defenses/detectors/lid_detector.h"
#include "aegis/defenses/detectors/mahalanobis_detector.h"
#include "aegis/defenses/detectors/strip_detector.h"
#include "aegis/attacks/poisoning/poison.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct DetectEvalFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  std::string detector = "feature-squeezing";
  std::string load;
  int64_t bits = 1, median = 3;
  int64_t fit_samples = 5000;
  std::vector<int64_t> layers;
  double noise = 0;
  int64_t lid_k = 20, lid_reference = 200;
  std::string tune = "fgsm";
  int64_t tune_samples = 1000;
  int64_t calibration_samples = 500;
  double eps = 0.1;
  std::vector<std::string> attacks = {"fgsm", "pgd", "cw"};
  double fpr = 0.05;
  std::string save;
  std::string result_out;
  bool adaptive = false;
  int64_t adaptive_steps = 100;
  int64_t adaptive_restarts = 1;
  std::string adaptive_method = "combined";
  int64_t adaptive_eot = 1;
  std::string adaptive_step = "sign";
  STRIPOptions strip;
  std::string backdoor;
};


bool have_attack(const std::string& name) {
  for (const auto& a : attack_catalog())
    if (a.name == name) return true;
  return false;
}

void run(DetectEvalFlags& f) {
  f.out.apply();
  Dataset data = load_dataset(f.data.spec("test"));
  auto model = f.model.load(&data);
  check_compatible(model->meta(), data);
  AEGIS_CHECK(data.size() > f.calibration_samples, InvalidArgument,
              "need more than --calibration-samples (" << f.calibration_samples << ") samples, got " << data.size());
  // Calibrate on the first samples, evaluate on the rest (disjoint).
  Dataset calib = data.head(f.calibration_samples);
  Dataset eval = data.subset(torch::arange(f.calibration_samples, data.size()));

  std::optional<std::pair<Trigger, int64_t>> backdoor;
  if (!f.backdoor.empty()) {
    backdoor = trigger_from_record(read_json_file(f.backdoor));
    backdoor->first.validate(model->meta().input_shape);
  }
  std::unique_ptr<Detector> det;
  nlohmann::json fit_info;
  if (!f.load.empty()) {
    det = load_detector_file(f.load, model);
  } else if (f.detector == "strip") {
    // The overlay pool: clean training images, held out from the evaluation.
    Dataset train = load_dataset(DataSpec(f.data.data).split("train").limit(f.strip.pool_).labels(f.data.labels));
    check_compatible(model->meta(), train);
    det = STRIPDetector::fit(model, train.x, f.strip);
    fit_info = {{"source", train.source},
                {"pool", f.strip.pool_},
                {"overlays", f.strip.overlays_},
                {"blend", f.strip.blend_}};
  } else if (f.detector == "feature-squeezing") {
    det = std::make_unique<FeatureSqueezingDetector>(model,
                                                     FeatureSqueezingDetectorOptions().bits(f.bits).median(f.median));
  } else {
    const int64_t tune_n = f.tune == "none" ? 0 : f.tune_samples;
    Dataset train =
        load_dataset(DataSpec(f.data.data).split("train").limit(f.fit_samples + tune_n).labels(f.data.labels));
    check_compatible(model->meta(), train);
    AEGIS_CHECK(train.size() > f.fit_samples || tune_n == 0, InvalidArgument,
                "--fit-samples " << f.fit_samples << " plus --tune-samples " << tune_n << " need more than the "
                                 << train.size() << " training samples there are");
    Dataset fit = train.head(std::min(f.fit_samples, train.size()));
    std::unique_ptr<MahalanobisDetector> maha;
    std::unique_ptr<LIDDetector> lid;
    fit_info = {{"source", fit.source}, {"samples", fit.size()}, {"layers", nlohmann::json::array()}};
    if (f.detector == "mahalanobis") {
      maha = MahalanobisDetector::fit(model, fit, MahalanobisOptions().layers(f.layers).noise(f.noise));
      for (const auto& l : maha->layers()) fit_info["layers"].push_back(l.index);
    } else {
      lid = LIDDetector::fit(model, fit, LIDOptions().k(f.lid_k).reference(f.lid_reference).layers(f.layers));
      for (int64_t l : lid->layers()) fit_info["layers"].push_back(l);
      fit_info["layers"].push_back("logits");
      fit_info["k"] = f.lid_k;
      fit_info["reference"] = f.lid_reference;
    }
    if (tune_n > 0) {
      // The papers' validation step: layer weights by logistic regression,
      // clean training samples (not the fit ones) against their FGSM examples.
      Dataset tune = train.subset(torch::arange(fit.size(), train.size()));
      auto fgsm = make_attack("fgsm", {{"eps", f.eps}});
      AttackResult r = fgsm->run(*model, tune.x, tune.y);
      torch::Tensor ok = r.success.nonzero().flatten();
      AEGIS_CHECK(ok.numel() > 0, InvalidArgument,
                  "FGSM at eps " << f.eps << " fooled none of the " << tune.size()
                                 << " tuning samples; use --tune none");
      if (maha) maha->fit_weights(tune.x, r.x_adv.index_select(0, ok));
      if (lid) lid->fit_weights(tune.x, r.x_adv.index_select(0, ok));
      fit_info["tuning"] = {{"attack", "fgsm"}, {"eps", f.eps}, {"clean", tune.size()}, {"adversarial", ok.numel()}};
    }
    torch::Tensor w = (maha ? maha->weights() : lid->weights()).to(torch::kDouble).contiguous();
    fit_info["weights"] = std::vector<double>(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
    if (maha)
      det = std::move(maha);
    else
      det = std::move(lid);
  }

  std::vector<std::pair<std::string, nlohmann::json>> attacks;
  std::vector<std::string> skipped;
  for (const auto& a : f.attacks) {
    if (a == "none") continue;
    if (!have_attack(a)) {
      skipped.push_back(a);
      continue;
    }
    nlohmann::json p = nlohmann::json::object();
    if (a == "fgsm") p = {{"eps", f.eps}};
    if (a == "pgd") p = {{"eps", f.eps}, {"steps", 20}};
    attacks.emplace_back(a, p);
  }
  DetectionEvaluationOptions options = DetectionEvaluationOptions().target_fpr(f.fpr);
  if (f.adaptive)
    options.adaptive(AdaptiveDetectorAttackOptions(f.eps)
                         .steps(f.adaptive_steps)
                         .restarts(f.adaptive_restarts)
                         .method(f.adaptive_method)
                         .eot_samples(f.adaptive_eot)
                         .linf_step(f.adaptive_step));
  if (backdoor) options.backdoor(backdoor->first, backdoor->second);
  DetectionEvaluation e = evaluate_detector(*det, *model, calib.x, eval, attacks, options);
  if (!f.save.empty()) save_detector(*det, f.save);
  nlohmann::json j = {{"model", f.model.path}, {"evaluation", e.to_json()}, {"skipped_attacks", skipped}};
  if (backdoor) j["backdoor_record"] = f.backdoor;
  if (!fit_info.is_null()) j["fit_data"] = fit_info;
  if (!f.result_out.empty()) write_json_file(f.result_out, j);
  std::vector<std::string> bounded;
  for (const auto& a : e.attacks)
    if (a.bounded && !a.adaptive) bounded.push_back(a.attack);
  emit(f.out, j, [&] {
    std::cout << fmt::format(
        "{} detector: threshold {:.4g} calibrated for "
        "{:.1f}% FPR on {} clean samples; "
        "measured FPR {:.1f}% on {} others\n",
        e.detector, e.threshold, 100 * e.target_fpr, calib.size(), 100 * e.clean_fpr, e.clean_samples);
    if (fit_info.contains("weights"))
      std::cout << fmt::format("layers {} weighted {:.3f}{}\n", fit_info["layers"].dump(),
                               fmt::join(fit_info["weights"].get<std::vector<double>>(), ", "),
                               fit_info.contains("tuning") ? " (tuned on FGSM examples)" : " (equal)");
    std::cout << fmt::format("{:<9} {:>9} {:>11} {:>7} {:>8} {:>8} {:>12} {:>15}\n", "attack", "attacked", "successful",
                             "evaded", "ROC AUC", "TPR", "robust acc", "with detector");
    for (const auto& a : e.attacks)
      std::cout << fmt::format("{:<9} {:>9} {:>11} {:>7} {:>8.4f} {:>8.4f} {:>12.4f} {:>15.4f}\n", a.attack, a.attacked,
                               a.successful, a.evaded, a.auc, a.tpr, a.model_robust_accuracy, a.robust_accuracy);
    const bool any_attack =
        std::any_of(e.attacks.begin(), e.attacks.end(), [](const AttackDetection& a) { return a.attack != "trigger"; });
    if (any_attack) std::cout << fmt::format(
        "robust accuracy of {} samples (clean {:.4f}), worst case over {}: model alone {:.4f}, model + detector "
        "{:.4f}",
        e.clean_samples, e.clean_accuracy, bounded.empty() ? "the attacks" : fmt::format("{}", fmt::join(bounded, ", ")),
        e.robust_accuracy_model, e.robust_accuracy_detector);
    if (f.adaptive)
      std::cout << fmt::format(", model + detector against the adaptive attack too {:.4f}", e.robust_accuracy_adaptive);
    if (any_attack) std::cout << "\n";
    for (const auto& a : e.attacks)
      if (a.attack == "trigger" && a.successful > 0)
        std::cout << fmt::format(
            "triggered inputs: {} of {} reach the target class {}; the detector lets {} through: false acceptance "
            "{:.4f} at false rejection {:.4f} of clean inputs\n",
            a.successful, a.attacked, backdoor->second, a.evaded, double(a.evaded) / double(a.successful), e.clean_fpr);
    for (const auto& a : e.attacks)
      for (const auto& w : a.warnings) std::cout << "warning (" << a.attack << "): " << w << "\n";
    if (f.adaptive && e.robust_accuracy_detector - e.robust_accuracy_model > 0.01) {
      const double kept = (e.robust_accuracy_adaptive - e.robust_accuracy_model) /
                          (e.robust_accuracy_detector - e.robust_accuracy_model);
      std::cout << fmt::format(
          "share of the protection the detector adds against those attacks that is left under adaptation: {:.2f}\n",
          std::clamp(kept, 0.0, 1.0));
    }
    for (const auto& s : skipped) std::cout << "skipped " << s << ": not in this build's attack registry\n";
    if (!f.save.empty()) std::cout << "detector saved to " << f.save << "\n";
  });
}

}  // namespace

void add_detect_eval_command(CLI::App& app, Context&) {
  auto f = std::make_shared<DetectEvalFlags>();
  auto* sub = app.add_subcommand("detect-eval",
                                 "Fit and calibrate an adversarial-input "
                                 "detector; ROC AUC and TPR vs FGSM, PGD, C&W");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model);
  add_data_flags(sub, f->data, "test");
  sub->add_option("--detector", f->detector,
                  "feature-squeezing, mahalanobis, lid (adversarial inputs) or strip (backdoor-triggered inputs)")
      ->check(CLI::IsMember({"feature-squeezing", "mahalanobis", "lid", "strip"}))
      ->capture_default_str();
  sub->add_option("--load", f->load, "Use a saved detector (JSON) instead of building one");
  sub->add_option("--bits", f->bits, "feature-squeezing: bit depth (0 = off)")->capture_default_str();
  sub->add_option("--median", f->median, "feature-squeezing: median window (1 = off)")->capture_default_str();
  sub->add_option("--fit-samples", f->fit_samples,
                  "mahalanobis, lid: training samples to fit on (the class Gaussians; lid: the reference set, then "
                  "the samples that standardise each layer)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--layers", f->layers,
                  "mahalanobis, lid: feature maps to use, 0-based, negative from the end (default: all; lid adds "
                  "the logits)")
      ->delimiter(',');
  sub->add_option("--noise", f->noise, "mahalanobis: input preprocessing step (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--lid-k", f->lid_k, "lid: nearest neighbours")->capture_default_str()->check(CLI::Range(2, 100000));
  sub->add_option("--lid-reference", f->lid_reference, "lid: clean reference inputs the neighbours come from")
      ->capture_default_str()
      ->check(CLI::Range(3, 100000));
  sub->add_option("--strip-overlays", f->strip.overlays_, "strip: clean images blended with each input (N)")
      ->capture_default_str()
      ->check(CLI::Range(2, 100000));
  sub->add_option("--strip-pool", f->strip.pool_,
                  "strip: clean training images kept as overlays (more than N: N drawn at random per input)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000000));
  sub->add_option("--strip-blend", f->strip.blend_,
                  "strip: add (input + overlay, clipped; Gao et al.) or mix ((1 - alpha) input + alpha overlay)")
      ->check(CLI::IsMember({"add", "mix"}))
      ->capture_default_str();
  sub->add_option("--strip-alpha", f->strip.alpha_, "strip: overlay weight for --strip-blend mix")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 0.999));
  sub->add_option("--backdoor", f->backdoor,
                  "poison.json of a backdoor attack (aegis poison): also measure the detector on inputs with its "
                  "trigger (false acceptance at the calibrated false rejection)")
      ->check(CLI::ExistingFile);
  sub->add_option("--tune", f->tune,
                  "mahalanobis, lid: learn the layer weights on FGSM examples of training samples (fgsm) or weigh "
                  "layers equally (none)")
      ->check(CLI::IsMember({"fgsm", "none"}))
      ->capture_default_str();
  sub->add_option("--tune-samples", f->tune_samples, "mahalanobis, lid: training samples (after the fit ones) to tune on")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--calibration-samples", f->calibration_samples,
                  "First N samples of --data calibrate the threshold; the rest evaluate")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--eps", f->eps, "Linf budget of FGSM and PGD")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--attacks", f->attacks, "Attacks (registry names), comma-separated; none for only --backdoor")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--fpr", f->fpr, "Target false-positive rate of the threshold")
      ->capture_default_str()
      ->check(CLI::Range(1e-6, 0.999));
  sub->add_flag("--adaptive", f->adaptive,
                "Also attack the model and detector together (an attacker who knows the detector and its threshold): "
                "the robust accuracy of the pair against it is the figure to trust");
  sub->add_option("--adaptive-steps", f->adaptive_steps, "adaptive attack: steps per restart")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--adaptive-restarts", f->adaptive_restarts, "adaptive attack: restarts")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--adaptive-method", f->adaptive_method,
                  "adaptive attack: combined (both violated constraints per step), orthogonal or selective "
                  "(Bryniarski et al. 2022)")
      ->check(CLI::IsMember({"combined", "orthogonal", "selective"}))
      ->capture_default_str();
  sub->add_option("--adaptive-eot", f->adaptive_eot, "adaptive attack: gradient draws per step (randomised detectors)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--adaptive-step", f->adaptive_step,
                  "adaptive attack: sign (PGD's steps) or scaled (the gradient at a sign step's L2 length)")
      ->check(CLI::IsMember({"sign", "scaled"}))
      ->capture_default_str();
  sub->add_option("--save", f->save, "Save the calibrated detector as JSON (e.g. model.pt.detector.json)");
  sub->add_option("--result", f->result_out, "Also write the result as JSON to this file");
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
