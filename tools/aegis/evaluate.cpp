// aegis evaluate: robust accuracy by the AutoAttack protocol (APGD-CE,
// APGD-T, Square in sequence), per-stage table, sanity checks as warnings.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "aegis/attacks/evasion/robust_evaluation.h"
#include "aegis/attacks/evasion/robustbench.h"
#include "aegis/core/error.h"
#include "aegis/core/sha256.h"
#include "aegis/defenses/detectors/detection_evaluation.h"
#include "commands.h"
#include "preflight_report.h"

namespace aegis::cli {

namespace {

struct EvaluateFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  std::string norm = "linf";
  double eps = 0;
  int64_t n = 0;
  std::string budget = "standard";
  int64_t batch_size = 256;
  std::string attacks;  // JSON list
  bool no_sanity = false;
  int64_t sanity_samples = 200;
  int64_t eot = 1;
  bool per_sample = false;
  bool force = false;
  std::string result_out;
  std::string robustbench_out;
  std::string detector;
  int64_t adaptive_steps = 100;
  std::string adaptive_method = "combined";
};

/// --attacks '[{"attack": "apgd", "steps": 50}, {"attack": "square"}]' (or "name" strings).
std::vector<std::pair<std::string, nlohmann::json>> parse_attacks(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(InvalidArgument, "--attacks is not valid JSON: " << e.what());
  }
  AEGIS_CHECK(j.is_array() && !j.empty(), InvalidArgument, "--attacks must be a non-empty JSON list");
  std::vector<std::pair<std::string, nlohmann::json>> v;
  for (const auto& e : j) {
    if (e.is_string()) {
      v.push_back({e.get<std::string>(), nlohmann::json::object()});
      continue;
    }
    AEGIS_CHECK(e.is_object() && e.contains("attack") && e["attack"].is_string(), InvalidArgument,
                "--attacks: each entry is a name or an object with \"attack\": name, got " << e.dump());
    nlohmann::json p = e;
    std::string name = p["attack"];
    p.erase("attack");
    v.push_back({name, p});
  }
  return v;
}

void print_table(const RobustEvaluation& r, const std::string& source) {
  std::cout << fmt::format("robust accuracy ({}), {} eps {:g}, {} samples of {}\n\n", r.protocol, norm_name(r.norm),
                           r.eps, r.samples, source);
  size_t w = 12;  // the stage column fits the longest attack name
  for (const auto& s : r.stages) w = std::max(w, s.attack.size());
  std::cout << fmt::format("{:<{}} {:>9} {:>8} {:>12} {:>12} {:>9}\n", "stage", w, "attacked", "broken", "accuracy",
                           "queries", "seconds");
  const int64_t clean_wrong = r.samples - int64_t(std::llround(r.clean_accuracy * double(r.samples)));
  std::cout << fmt::format("{:<{}} {:>9} {:>8} {:>12.4f} {:>12} {:>9}\n", "clean", w, r.samples, clean_wrong,
                           r.clean_accuracy, r.samples, "");
  for (const auto& s : r.stages)
    std::cout << fmt::format("{:<{}} {:>9} {:>8} {:>12.4f} {:>12} {:>9.1f}\n", s.attack, w, s.attacked, s.broken,
                             s.robust_accuracy_after, s.queries, s.seconds);
  std::cout << fmt::format("\nrobust accuracy {:.4f} (clean {:.4f}) in {:.1f}s\n", r.robust_accuracy, r.clean_accuracy,
                           r.seconds);
  print_preflight(r.preflight);
  if (!r.sanity.empty()) {
    std::cout << "\nsanity checks\n";
    for (const auto& c : r.sanity)
      std::cout << fmt::format("  [{}] {}: {}\n", c.passed ? " ok " : "FAIL", c.name, c.detail);
  }
  for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
  for (const auto& w : r.warnings) std::cout << "WARNING: " << w << "\n";
}

void run(EvaluateFlags& f) {
  f.out.apply();
  if (f.n > 0) f.data.limit = f.n;
  Dataset data = load_dataset(f.data.spec("test"));
  auto model = f.model.load_classifier(&data);
  RobustEvaluationOptions o(parse_norm(f.norm), f.eps);
  o.budget(f.budget)
      .batch_size(f.batch_size)
      .seed(f.out.seed)
      .sanity_checks(!f.no_sanity)
      .eot_samples(f.eot)
      .sanity_samples(f.sanity_samples)
      .force(f.force);
  if (!f.attacks.empty()) o.attacks(parse_attacks(f.attacks));
  // Load the detector first: a bad file fails before the long evaluation.
  std::unique_ptr<Detector> detector;
  if (!f.detector.empty()) detector = load_detector_file(f.detector, model);
  RobustEvaluation r = evaluate_robustness(*model, data, o);
  nlohmann::json j = {
      {"model", f.model.describe()},
      {"data", {{"source", data.source}, {"samples", data.size()}, {"fingerprint", data.fingerprint()}}},
      {"evaluation", r.to_json(f.per_sample)}};
  std::optional<DetectorRobustness> dr;
  if (detector) {
    AEGIS_CHECK(r.x_adv.defined() && r.robust.defined(), Internal, "the evaluation kept no adversarial examples");
    dr = evaluate_with_detector(*detector, *model, data, r.x_adv, r.robust,
                                AdaptiveDetectorAttackOptions(f.eps)
                                    .norm(parse_norm(f.norm))
                                    .steps(f.adaptive_steps)
                                    .method(f.adaptive_method)
                                    .seed(f.out.seed),
                                f.batch_size);
    j["detector"] = dr->to_json();
    j["detector"]["path"] = f.detector;
  }
  if (!f.result_out.empty()) write_json_file(f.result_out, j);
  if (!f.robustbench_out.empty()) {
    // The model file's stem names the entry; the data's source, less its
    // split ("fashion-mnist:test"), is the dataset.
    const std::string stem = std::filesystem::path(f.model.path).stem().string();
    const std::string source = data.source.substr(0, data.source.find(':'));
    nlohmann::ordered_json rb = robustbench_model_info(
        r, model->meta(), RobustBenchInfo().name(stem).dataset(std::filesystem::path(source).stem().string()));
    std::filesystem::path out(f.robustbench_out);
    if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
    std::ofstream os(out);
    AEGIS_CHECK(os << rb.dump(4) << "\n", Io, "cannot write " << f.robustbench_out);
    j["robustbench"] = {{"path", f.robustbench_out}, {"unreliable", rb.value("unreliable", false)}};
  }
  emit(f.out, j, [&] {
    print_table(r, data.source);
    if (dr) {
      std::cout << fmt::format(
          "\nwith the {} detector ({}; threshold {:.4g}, flags {:.1f}% of these clean samples)\n"
          "  robust accuracy, model alone                          {:.4f}\n"
          "  model + detector, the attacks above                   {:.4f}\n"
          "  model + detector, with an adaptive attack ({} steps)  {:.4f}   <- the figure to trust\n",
          dr->detector, f.detector, dr->threshold, 100 * dr->clean_flagged, dr->robust_accuracy_model,
          dr->robust_accuracy_detector, f.adaptive_steps, dr->robust_accuracy_adaptive);
      for (const auto& w : dr->adaptive.warnings) std::cout << "WARNING: " << w << "\n";
    }
    if (!f.result_out.empty()) std::cout << "\nresult saved to " << f.result_out << "\n";
    if (!f.robustbench_out.empty())
      std::cout << "RobustBench model info saved to " << f.robustbench_out
                << (j["robustbench"]["unreliable"].get<bool>() ? " (marked unreliable: see its footnote)" : "")
                << "; fill in link, authors and venue before submitting it\n";
  });
}

}  // namespace

void add_evaluate_command(CLI::App& app, Context&) {
  auto f = std::make_shared<EvaluateFlags>();
  auto* sub = app.add_subcommand(
      "evaluate",
      "Robust accuracy by the AutoAttack protocol: APGD-CE, targeted APGD-DLR and Square in sequence, each on the "
      "samples still correct, with sanity checks that flag gradient masking");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model);
  add_data_flags(sub, f->data, "test");
  sub->add_option("--norm", f->norm, "Threat model: linf or l2")
      ->check(CLI::IsMember({"linf", "l2"}))
      ->capture_default_str();
  sub->add_option("--eps", f->eps, "Perturbation budget in that norm")->required()->check(CLI::PositiveNumber);
  sub->add_option("-n,--n", f->n, "Evaluate the first N samples (0 = all; same as --limit)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--budget", f->budget,
                  "quick (20 steps, 3 targets, 300 queries) or standard (AutoAttack's 100, 9, 5000)")
      ->check(CLI::IsMember({"quick", "standard"}))
      ->capture_default_str();
  sub->add_option("--batch-size", f->batch_size, "Samples attacked at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option(
      "--attacks", f->attacks,
      "Custom ensemble as JSON, e.g. '[{\"attack\":\"apgd\",\"steps\":50},\"square\"]' (eps, norm, seed filled in)");
  sub->add_flag("--no-sanity", f->no_sanity,
                "Skip the sanity checks (they re-attack a subset at eps/2, 2 eps and unbounded)");
  sub->add_option("--sanity-samples", f->sanity_samples, "Samples the sanity checks re-attack")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--eot", f->eot, "Expectation over transformation: gradient samples per step for randomised models")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--force", f->force,
                "Run even when a preflight check refuses (data outside the model's range, eps that covers the "
                "input box, no gradients for a gradient-only ensemble); the refusal becomes a warning");
  sub->add_flag("--per-sample", f->per_sample, "Include per-sample verdicts (which attack broke each) in the JSON");
  sub->add_option("--result", f->result_out, "Also write the result as JSON to this file");
  sub->add_option("--detector", f->detector,
                  "A saved detector (aegis detect-eval --save): also report the robust accuracy of model and detector "
                  "together, against these attacks and an adaptive attack that knows the detector");
  sub->add_option("--adaptive-steps", f->adaptive_steps, "With --detector: steps of the adaptive attack")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--adaptive-method", f->adaptive_method, "With --detector: combined, orthogonal or selective")
      ->check(CLI::IsMember({"combined", "orthogonal", "selective"}))
      ->capture_default_str();
  sub->add_option("--robustbench-json", f->robustbench_out,
                  "Also write RobustBench's model-info JSON (clean and AutoAttack accuracy, eps, forward passes); "
                  "marked unreliable with a footnote where the run departs from the leaderboard's protocol");
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
