#include "aegis/privacy/accountant.h"

#include <cmath>
#include <limits>

#include "aegis/core/error.h"

namespace aegis {
namespace {

void check_segment(double sigma, double q, int64_t steps) {
  AEGIS_CHECK(sigma > 0 && std::isfinite(sigma), InvalidArgument, "noise multiplier must be > 0, got " << sigma);
  AEGIS_CHECK(q > 0 && q <= 1, InvalidArgument, "sample rate must be in (0, 1], got " << q);
  AEGIS_CHECK(steps >= 1, InvalidArgument, "step count must be >= 1, got " << steps);
}

// Opacus's MAX_SIGMA: past this no target is worth reaching.
constexpr double kMaxSigma = 1e6;
constexpr int kMaxBisections = 200;

}  // namespace

void Accountant::step(double noise_multiplier, double sample_rate, int64_t steps) {
  check_segment(noise_multiplier, sample_rate, steps);
  if (!history_.empty() && history_.back().noise_multiplier == noise_multiplier &&
      history_.back().sample_rate == sample_rate) {
    history_.back().steps += steps;
  } else {
    history_.push_back({noise_multiplier, sample_rate, steps});
  }
}

void Accountant::set_history(std::vector<DpSegment> history) {
  for (const DpSegment& s : history) check_segment(s.noise_multiplier, s.sample_rate, s.steps);
  history_ = std::move(history);
}

int64_t Accountant::total_steps() const {
  int64_t n = 0;
  for (const DpSegment& s : history_) n += s.steps;
  return n;
}

nlohmann::json Accountant::to_json() const {
  nlohmann::json segments = nlohmann::json::array();
  for (const DpSegment& s : history_) {
    segments.push_back({{"noise_multiplier", s.noise_multiplier}, {"sample_rate", s.sample_rate}, {"steps", s.steps}});
  }
  return {{"accountant", name()}, {"history", segments}};
}

RdpAccountant::RdpAccountant(std::vector<double> orders) : orders_(std::move(orders)) {
  AEGIS_CHECK(!orders_.empty(), InvalidArgument, "RDP accountant needs at least one order");
  for (double a : orders_) AEGIS_CHECK(a > 1, InvalidArgument, "RDP orders must be > 1, got " << a);
}

RdpEpsilon RdpAccountant::epsilon_and_order(double delta) const {
  AEGIS_CHECK(delta > 0 && delta < 1, InvalidArgument, "delta must be in (0, 1), got " << delta);
  if (history_.empty()) return {0, std::numeric_limits<double>::quiet_NaN()};
  return rdp_epsilon(history_, delta, orders_);
}

PrvAccountant::PrvAccountant(PrvOptions options) : options_(options) {
  AEGIS_CHECK(options_.eps_error_ > 0, InvalidArgument, "eps_error must be > 0, got " << options_.eps_error_);
  AEGIS_CHECK(options_.max_grid_points_ > 0, InvalidArgument, "max_grid_points must be > 0");
}

PrvEpsilon PrvAccountant::epsilon_bounds(double delta) const { return prv_epsilon(history_, delta, options_); }

std::unique_ptr<Accountant> make_accountant(const std::string& name) {
  if (name == "rdp") return std::make_unique<RdpAccountant>();
  if (name == "prv") return std::make_unique<PrvAccountant>();
  AEGIS_FAIL(InvalidArgument, "unknown privacy accountant '" << name << "' (expected rdp or prv)");
}

std::unique_ptr<Accountant> accountant_from_json(const nlohmann::json& j) {
  AEGIS_CHECK(j.is_object() && j.contains("accountant") && j["accountant"].is_string() && j.contains("history") &&
                  j["history"].is_array(),
              CorruptData, "accountant state needs an \"accountant\" name and a \"history\" array");
  const std::string name = j["accountant"].get<std::string>();
  AEGIS_CHECK(name == "rdp" || name == "prv", CorruptData, "unknown privacy accountant '" << name << "' in state");
  std::vector<DpSegment> history;
  for (const nlohmann::json& e : j["history"]) {
    AEGIS_CHECK(e.is_object() && e.contains("noise_multiplier") && e["noise_multiplier"].is_number() &&
                    e.contains("sample_rate") && e["sample_rate"].is_number() && e.contains("steps") &&
                    e["steps"].is_number_integer(),
                CorruptData, "accountant history entry needs numeric noise_multiplier, sample_rate and integer steps");
    DpSegment s{e["noise_multiplier"].get<double>(), e["sample_rate"].get<double>(), e["steps"].get<int64_t>()};
    AEGIS_CHECK(s.noise_multiplier > 0 && std::isfinite(s.noise_multiplier) && s.sample_rate > 0 &&
                    s.sample_rate <= 1 && s.steps >= 1,
                CorruptData,
                "accountant history entry out of range: noise_multiplier " << s.noise_multiplier << ", sample_rate "
                                                                           << s.sample_rate << ", steps " << s.steps);
    history.push_back(s);
  }
  std::unique_ptr<Accountant> acc = make_accountant(name);
  acc->set_history(std::move(history));
  return acc;
}

NoiseMultiplier find_noise_multiplier(double target_epsilon, double delta, double sample_rate, int64_t steps,
                                      const std::string& accountant, double tolerance) {
  AEGIS_CHECK(target_epsilon > 0 && std::isfinite(target_epsilon), InvalidArgument,
              "target epsilon must be > 0, got " << target_epsilon);
  AEGIS_CHECK(delta > 0 && delta < 1, InvalidArgument, "delta must be in (0, 1), got " << delta);
  AEGIS_CHECK(sample_rate > 0 && sample_rate <= 1, InvalidArgument,
              "sample rate must be in (0, 1], got " << sample_rate);
  AEGIS_CHECK(steps >= 1, InvalidArgument, "step count must be >= 1, got " << steps);
  AEGIS_CHECK(tolerance > 0, InvalidArgument, "tolerance must be > 0, got " << tolerance);
  std::unique_ptr<Accountant> acc = make_accountant(accountant);
  auto epsilon_at = [&](double sigma) {
    acc->set_history({{sigma, sample_rate, steps}});
    return acc->epsilon(delta);
  };
  // Too little noise for the PRV grid to hold its epsilon counts as overspending.
  auto epsilon_or_inf = [&](double sigma) {
    try {
      return epsilon_at(sigma);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Unsupported) throw;
      return std::numeric_limits<double>::infinity();
    }
  };

  double sigma_low = 0, sigma_high = 10, eps_high = std::numeric_limits<double>::infinity();
  if (accountant != "rdp") {
    // A numerical accountant costs up to seconds per sigma, most at small
    // sigma. Start from RDP's answer (cheap; the numerical epsilon is at most
    // about RDP's) and step down by 20% until the target is overspent, so the
    // bisection below starts from a tight bracket.
    double guess = 0;
    try {
      guess = find_noise_multiplier(target_epsilon, delta, sample_rate, steps, "rdp", tolerance).noise_multiplier;
    } catch (const Error&) {
      // Out of RDP's reach (it cannot go below about 0.1): bracket from scratch.
    }
    if (guess > 0) {
      eps_high = epsilon_at(guess);
      sigma_high = guess;
      if (eps_high <= target_epsilon) {
        for (;;) {
          const double lower = 0.8 * sigma_high, eps = epsilon_or_inf(lower);
          if (eps > target_epsilon) {
            sigma_low = lower;
            break;
          }
          sigma_high = lower;
          eps_high = eps;
        }
      } else {
        sigma_low = guess;
      }
    }
  }
  // Bracket: double sigma until the target is met (from 10, as Opacus).
  while (eps_high > target_epsilon) {
    sigma_high *= 2;
    eps_high = epsilon_at(sigma_high);
    AEGIS_CHECK(sigma_high <= kMaxSigma, InvalidArgument,
                "epsilon " << target_epsilon << " at delta " << delta << " is out of reach of the " << accountant
                           << " accountant (noise multiplier " << sigma_high << " still spends " << eps_high << ")");
  }
  // Bisect, keeping epsilon(sigma_high) <= target.
  for (int i = 0; i < kMaxBisections && target_epsilon - eps_high > tolerance; ++i) {
    const double sigma = 0.5 * (sigma_low + sigma_high);
    const double eps = epsilon_or_inf(sigma);
    if (eps < target_epsilon) {
      sigma_high = sigma;
      eps_high = eps;
    } else {
      sigma_low = sigma;
    }
  }
  return {sigma_high, eps_high};
}

}  // namespace aegis
