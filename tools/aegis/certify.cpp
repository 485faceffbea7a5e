// aegis certify: randomized smoothing (Cohen et al. 2019) certificates: per
// sample the smoothed prediction (or abstention) and a certified L2 radius,
// and the certified accuracy at the radii asked for.

#include <fmt/format.h>

#include <iostream>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/sha256.h"
#include "aegis/defenses/certification/randomized_smoothing.h"
#include "aegis/defenses/certification/smoothed_attack.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct CertifyFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  RandomizedSmoothingOptions options{0.25};
  std::vector<double> radii = {0.25, 0.5, 0.75, 1.0};
  bool per_sample = false;
  std::string result_out;
  std::vector<double> attack_eps;
  SmoothedAttackOptions attack;
};

void run(CertifyFlags& f) {
  f.out.apply();
  f.options.seed(f.out.seed);
  Dataset data = load_dataset(f.data.spec("test"));
  auto model = f.model.load(&data);
  check_compatible(model->meta(), data);
  SmoothingCertificate c = certify_smoothed(*model, data.x, data.y, f.options);
  nlohmann::json j = {
      {"model", {{"path", f.model.path}, {"sha256", sha256_file(f.model.path)}}},
      {"data", {{"source", data.source}, {"samples", data.size()}, {"fingerprint", data.fingerprint()}}},
      {"certificate", c.to_json(f.radii, f.per_sample)}};
  // The empirical side: attack the smoothed model at each L2 eps; its robust
  // accuracy bounds the certified accuracy at that radius from above.
  std::vector<SmoothedAttackResult> attacks;
  j["empirical"] = nlohmann::json::array();
  for (double eps : f.attack_eps) {
    attacks.push_back(attack_smoothed(model, data.x, data.y, f.options, SmoothedAttackOptions(f.attack).eps(eps)));
    nlohmann::json a = attacks.back().to_json();
    a["certified_accuracy"] = c.certified_accuracy(eps);
    j["empirical"].push_back(a);
  }
  if (!f.result_out.empty()) write_json_file(f.result_out, j);
  emit(f.out, j, [&] {
    const auto& cj = j["certificate"];
    std::cout << fmt::format(
        "randomized smoothing, sigma {} (n0 {}, n {}, "
        "alpha {}) on {} samples in {:.1f}s\n",
        f.options.sigma_, f.options.n0_, f.options.n_, f.options.alpha_, c.samples(), c.seconds);
    std::cout << fmt::format("smoothed accuracy {:.4f}, abstained {:.4f}, median radius {:.4f}\n",
                             cj["smoothed_accuracy"].get<double>(), c.abstain_rate(),
                             cj["median_radius"].get<double>());
    std::cout << fmt::format("correct samples with a non-zero certified radius: {:.4f}\n",
                             c.certified_fraction_of_correct(1e-12));
    std::cout << "certified accuracy (L2):\n";
    for (double r : f.radii) std::cout << fmt::format("  r = {:<6} {:.4f}\n", r, c.certified_accuracy(r));
    std::cout << "(guaranteed with probability >= 1 - alpha per sample, for "
                 "the smoothed model, not the base model)\n";
    if (!attacks.empty())
      std::cout << fmt::format("attacked (L2 PGD on the soft smoothed model, {} steps, {} noise draws per step; smoothed class by majority of {}):\n",
                               f.attack.steps_, f.attack.eot_samples_, f.options.n_);
    for (const auto& a : attacks) {
      double cert = c.certified_accuracy(a.options.eps_);
      std::cout << fmt::format("  eps = {:<6} empirical robust accuracy {:.4f} >= certified {:.4f}{}\n", a.options.eps_,
                               a.robust_accuracy, cert,
                               cert > a.robust_accuracy ? "  VIOLATED: the certificate does not hold" : "");
    }
    if (!f.result_out.empty()) std::cout << "result saved to " << f.result_out << "\n";
  });
}

}  // namespace

void add_certify_command(CLI::App& app, Context&) {
  auto f = std::make_shared<CertifyFlags>();
  auto* sub = app.add_subcommand("certify",
                                 "Randomized smoothing: certified L2 radius "
                                 "per sample and certified accuracy");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model);
  add_data_flags(sub, f->data, "test");
  sub->add_option("--sigma", f->options.sigma_, "Gaussian noise standard deviation")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--n0", f->options.n0_, "Noisy samples to select the class")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--n", f->options.n_, "Noisy samples to bound its probability")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--alpha", f->options.alpha_, "Failure probability of each certificate")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 0.5));
  sub->add_option("--batch-size", f->options.batch_size_, "Noisy samples per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--radius", f->radii, "Radii to report certified accuracy at (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--attack-eps", f->attack_eps,
                  "Also attack the smoothed model at these L2 budgets (comma-separated): the empirical robust "
                  "accuracy beside the certified one")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  sub->add_option("--attack-steps", f->attack.steps_, "Smoothed attack: PGD steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--attack-eot", f->attack.eot_samples_, "Smoothed attack: noise draws averaged per gradient")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--per-sample", f->per_sample, "Include per-sample predictions and radii in the JSON");
  sub->add_option("--result", f->result_out, "Also write the result as JSON to this file");
  sub->callback([f] { run(*f); });
}

}  // namespace aegis::cli
