// aegis dp account | noise: the privacy accountants from the command line.
// `account` says what (epsilon, delta) a DP-SGD run with a given noise
// multiplier, sampling rate and number of steps spends, by RDP and PRV side
// by side; `noise` finds the smallest noise multiplier that spends at most a
// target epsilon. Both take the sampling rate directly (--sample-rate) or as
// batch size over dataset size, and steps directly or as epochs.

#include <fmt/format.h>

#include <cmath>
#include <iostream>

#include "aegis/core/error.h"
#include "aegis/privacy/accountant.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct Schedule {
  double sample_rate = 0;
  int64_t batch_size = 0;
  int64_t dataset_size = 0;
  int64_t steps = 0;
  double epochs = 0;
  double delta = 0;
  std::string accountant = "both";

  /// q from --sample-rate or --batch-size / --dataset-size.
  double rate() const {
    if (sample_rate > 0) {
      AEGIS_CHECK(batch_size == 0, InvalidArgument, "give --sample-rate or --batch-size with --dataset-size, not both");
      return sample_rate;
    }
    AEGIS_CHECK(batch_size > 0 && dataset_size > 0, InvalidArgument,
                "give the sampling rate: --sample-rate Q, or --batch-size B with --dataset-size N (Q = B / N)");
    AEGIS_CHECK(batch_size <= dataset_size, InvalidArgument,
                "--batch-size " << batch_size << " exceeds --dataset-size " << dataset_size);
    return double(batch_size) / double(dataset_size);
  }
  /// Steps from --steps or --epochs (epochs / q steps, rounded up, as a
  /// Poisson-sampled epoch takes 1/q steps on average).
  int64_t step_count(double q) const {
    AEGIS_CHECK((steps > 0) != (epochs > 0), InvalidArgument, "give the length of training: --steps T or --epochs E");
    if (steps > 0) return steps;
    return int64_t(std::ceil(epochs / q - 1e-9));
  }
  std::vector<std::string> accountants() const {
    if (accountant == "both") return {"rdp", "prv"};
    AEGIS_CHECK(accountant == "rdp" || accountant == "prv", InvalidArgument,
                "--accountant is rdp, prv or both, got '" << accountant << "'");
    return {accountant};
  }
};

void add_schedule_flags(CLI::App* sub, Schedule& s) {
  sub->add_option("--sample-rate", s.sample_rate, "Poisson sampling rate q in (0, 1]");
  sub->add_option("--batch-size", s.batch_size, "Expected (logical) batch size B: q = B / N");
  sub->add_option("--dataset-size", s.dataset_size, "Training set size N");
  sub->add_option("--steps", s.steps, "Number of noisy steps T");
  sub->add_option("--epochs", s.epochs, "Epochs E: T = ceil(E / q)");
  sub->add_option("--delta", s.delta, "delta in (0, 1); usually below 1 / N")->required();
  sub->add_option("--accountant", s.accountant, "rdp, prv or both")->capture_default_str();
}

struct AccountFlags {
  OutputFlags out;
  Schedule schedule;
  double noise_multiplier = 0;
};

nlohmann::json account_one(const std::string& name, double sigma, double q, int64_t steps, double delta) {
  nlohmann::json j = {{"accountant", name}};
  if (name == "rdp") {
    RdpAccountant acc;
    acc.step(sigma, q, steps);
    RdpEpsilon e = acc.epsilon_and_order(delta);
    j["epsilon"] = e.epsilon;
    j["order"] = e.order;
  } else {
    PrvAccountant acc;
    acc.step(sigma, q, steps);
    PrvEpsilon e = acc.epsilon_bounds(delta);
    j["epsilon"] = e.upper;
    j["lower"] = e.lower;
    j["estimate"] = e.estimate;
  }
  return j;
}

void run_account(AccountFlags& f) {
  f.out.apply();
  const double q = f.schedule.rate();
  const int64_t steps = f.schedule.step_count(q);
  nlohmann::json results = nlohmann::json::array();
  for (const auto& name : f.schedule.accountants())
    results.push_back(account_one(name, f.noise_multiplier, q, steps, f.schedule.delta));
  nlohmann::json j = {{"noise_multiplier", f.noise_multiplier},
                      {"sample_rate", q},
                      {"steps", steps},
                      {"delta", f.schedule.delta},
                      {"results", results}};
  emit(f.out, j, [&] {
    std::cout << fmt::format("sigma {}, q {:.6g}, {} steps, delta {:g}\n", f.noise_multiplier, q, steps,
                             f.schedule.delta);
    for (const auto& r : results) {
      if (r["accountant"] == "rdp")
        std::cout << fmt::format("  rdp  epsilon {:.4f}  (order {:g}; Balle et al. 2020 conversion)\n",
                                 r["epsilon"].get<double>(), r["order"].get<double>());
      else
        std::cout << fmt::format("  prv  epsilon {:.4f}  (estimate {:.4f}, true value at least {:.4f})\n",
                                 r["epsilon"].get<double>(), r["estimate"].get<double>(), r["lower"].get<double>());
    }
  });
}

struct NoiseFlags {
  OutputFlags out;
  Schedule schedule;
  double epsilon = 0;
  double tolerance = 0.01;
};

void run_noise(NoiseFlags& f) {
  f.out.apply();
  const double q = f.schedule.rate();
  const int64_t steps = f.schedule.step_count(q);
  nlohmann::json results = nlohmann::json::array();
  for (const auto& name : f.schedule.accountants()) {
    NoiseMultiplier n = find_noise_multiplier(f.epsilon, f.schedule.delta, q, steps, name, f.tolerance);
    results.push_back({{"accountant", name}, {"noise_multiplier", n.noise_multiplier}, {"epsilon", n.epsilon}});
  }
  nlohmann::json j = {{"target_epsilon", f.epsilon},
                      {"sample_rate", q},
                      {"steps", steps},
                      {"delta", f.schedule.delta},
                      {"results", results}};
  emit(f.out, j, [&] {
    std::cout << fmt::format("epsilon {} at delta {:g}, q {:.6g}, {} steps\n", f.epsilon, f.schedule.delta, q, steps);
    for (const auto& r : results)
      std::cout << fmt::format("  {}  noise multiplier {:.4f}  (spends epsilon {:.4f})\n",
                               r["accountant"].get<std::string>(), r["noise_multiplier"].get<double>(),
                               r["epsilon"].get<double>());
  });
}

}  // namespace

void add_dp_command(CLI::App& app, Context&) {
  CLI::App* group = subcommand_group(app, "dp", "Differential privacy: accountants");

  auto a = std::make_shared<AccountFlags>();
  auto* account = group->add_subcommand(
      "account", "The (epsilon, delta) a DP-SGD run spends, by the RDP and PRV accountants side by side");
  account->footer(
      "Example (Abadi et al. 2016 on MNIST):\n"
      "  aegis dp account --noise-multiplier 1.1 --batch-size 256 --dataset-size 60000 --epochs 60 --delta 1e-5\n"
      "PRV prints an upper bound (the guarantee), its estimate and a lower bound on the true epsilon.");
  add_output_flags(account, a->out);
  account->add_option("--noise-multiplier,--sigma", a->noise_multiplier, "Noise multiplier sigma > 0")->required();
  add_schedule_flags(account, a->schedule);
  account->callback([a] { run_account(*a); });

  auto n = std::make_shared<NoiseFlags>();
  auto* noise = group->add_subcommand("noise", "The smallest noise multiplier that spends at most a target epsilon");
  noise->footer(
      "Example:\n"
      "  aegis dp noise --epsilon 3 --delta 1e-5 --batch-size 256 --dataset-size 60000 --epochs 30\n"
      "The answer is the upper end of a bisection: it never spends more than the target.");
  add_output_flags(noise, n->out);
  noise->add_option("--epsilon", n->epsilon, "Target epsilon > 0")->required();
  noise->add_option("--tolerance", n->tolerance, "How far below the target the answer may spend")
      ->capture_default_str();
  add_schedule_flags(noise, n->schedule);
  noise->callback([n] { run_noise(*n); });
}

}  // namespace aegis::cli
