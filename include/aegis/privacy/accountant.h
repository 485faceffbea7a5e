#pragma once
/// Privacy accountants for DP-SGD: they record the steps of the Poisson-sampled
/// Gaussian mechanism a training run took (noise multiplier, sampling rate,
/// count) and say what (epsilon, delta) the trained model's parameters satisfy
/// with respect to its training data. Two implementations behind one small
/// interface: "rdp" (Renyi DP, the Opacus and TF Privacy default) and "prv"
/// (numerical composition, tighter). The history is plain data, serialised to
/// JSON so a checkpoint can carry it and a resumed run keeps counting.
///
///   std::unique_ptr<Accountant> acc = make_accountant("rdp");
///   acc->step(1.1, 256.0 / 60000, 14063);
///   double eps = acc->epsilon(1e-5);                        // 2.597
///   nlohmann::json state = acc->to_json();                  // into the checkpoint
///   auto resumed = accountant_from_json(state);             // same history, same epsilon
///
///   NoiseMultiplier n = find_noise_multiplier(3.0, 1e-5, 256.0 / 60000, 14063, "rdp");

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/privacy/prv.h"
#include "aegis/privacy/rdp.h"

namespace aegis {

class Accountant {
 public:
  virtual ~Accountant() = default;

  /// "rdp" or "prv": what make_accountant takes and to_json records.
  virtual std::string name() const = 0;
  /// The epsilon the history spends at `delta` in (0, 1): the guarantee (for
  /// PRV its upper bound). 0 for an empty history.
  virtual double epsilon(double delta) const = 0;

  /// Records `steps` (>= 1) steps with noise multiplier sigma > 0 and Poisson
  /// sampling rate q in (0, 1]; merged into the last segment when sigma and q
  /// are the same. Throws InvalidArgument otherwise.
  void step(double noise_multiplier, double sample_rate, int64_t steps = 1);
  const std::vector<DpSegment>& history() const { return history_; }
  /// Replaces the history (each segment checked as step() checks it).
  void set_history(std::vector<DpSegment> history);
  /// Steps recorded over all segments.
  int64_t total_steps() const;

  /// {"accountant": name(), "history": [{"noise_multiplier", "sample_rate", "steps"}, ...]}
  nlohmann::json to_json() const;

 protected:
  std::vector<DpSegment> history_;
};

/// Renyi DP over `orders` (Opacus's by default), Balle et al. 2020 conversion.
class RdpAccountant final : public Accountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = default_rdp_orders());
  std::string name() const override { return "rdp"; }
  double epsilon(double delta) const override { return epsilon_and_order(delta).epsilon; }
  /// Epsilon and the order that gave it (an optimum at the first or last order
  /// means a wider order list could give a smaller epsilon).
  RdpEpsilon epsilon_and_order(double delta) const;
  const std::vector<double>& orders() const { return orders_; }

 private:
  std::vector<double> orders_;
};

/// The PRV accountant (Gopi et al. 2021, as Opacus's "prv").
class PrvAccountant final : public Accountant {
 public:
  explicit PrvAccountant(PrvOptions options = {});
  std::string name() const override { return "prv"; }
  double epsilon(double delta) const override { return epsilon_bounds(delta).upper; }
  /// Lower bound, estimate and upper bound on the true epsilon.
  PrvEpsilon epsilon_bounds(double delta) const;

 private:
  PrvOptions options_;
};

/// "rdp" or "prv" with default settings; InvalidArgument for any other name.
std::unique_ptr<Accountant> make_accountant(const std::string& name);

/// The accountant to_json() described, history included. CorruptData for
/// anything malformed (checkpoints are untrusted bytes): unknown accountant,
/// missing fields, sigma <= 0, q outside (0, 1], steps < 1.
std::unique_ptr<Accountant> accountant_from_json(const nlohmann::json& j);

struct NoiseMultiplier {
  double noise_multiplier = 0;  ///< sigma
  double epsilon = 0;           ///< what it spends: <= the target, within the tolerance of it
};

/// The noise multiplier that spends at most `target_epsilon` at `delta` over
/// `steps` steps at sampling rate q: bracketing by doubling from 20, then
/// bisection until target - epsilon(sigma) <= tolerance (Opacus's
/// get_noise_multiplier, which this reproduces at tolerance 0.01). The result
/// is the upper end of the final bracket, so epsilon(result) <= target always.
/// InvalidArgument for q outside (0, 1], delta outside (0, 1), target or
/// tolerance <= 0, steps < 1, an unknown accountant, or a target no sigma up
/// to 1e6 reaches (PRV's upper bound never goes below its eps_error).
NoiseMultiplier find_noise_multiplier(double target_epsilon, double delta, double sample_rate, int64_t steps,
                                      const std::string& accountant = "rdp", double tolerance = 0.01);

}  // namespace aegis
