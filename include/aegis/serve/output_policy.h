#pragma once
/// Runtime verification of the gateway's answers: per-model output policies
/// evaluated on every answer before it leaves, each with its action:
///  - confidence: the top probability below `min_confidence` (abstain);
///  - vote: a randomised-smoothing-style vote over `samples` noisy copies
///    (Gaussian, sigma a fraction of the input range) in which fewer than
///    `agreement` of the copies give the plain prediction (abstain);
///  - invariance: the answer flips under a benign transform the model should
///    be stable to: shifts of `shift` pixels (images), brightness +-`brightness`
///    of the range (flag);
///  - class_rate: a class returned to one key above `max_rate` of its last
///    `window` answers (flag).
/// Actions: abstain (that sample's answer is "uncertain": label -1, no
/// scores), flag (answered, flagged for review) or reject (the request gets
/// 422). Adversarial inputs sit near decision boundaries, where votes split
/// and small transforms flip the answer; a stream of one target class is
/// what a poisoning or evasion campaign looks like from the answers.
///
///   OutputPolicy policy(options, model->meta(), seed);
///   PolicyVerdict v = policy.check(x, probs, key_id, [&](const torch::Tensor& q) { return probs_of(q); });
///   v.abstain;   // [b] bool
///   v.flag; v.reject; v.reasons;

#include <torch/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "aegis/core/model_meta.h"

namespace aegis::serve {

enum class PolicyAction { Abstain, Flag, Reject };
PolicyAction parse_policy_action(const std::string& s);  ///< "abstain", "flag", "reject"; throws InvalidArgument
const char* policy_action_name(PolicyAction a);

struct ClassRateRule {
  int64_t cls = 0;
  double max_rate = 0.5;  ///< share of the key's last `window` answers
  int64_t window = 100;
  PolicyAction action = PolicyAction::Flag;
};

struct OutputPolicyOptions {
  double min_confidence = 0;  ///< 0 = off
  PolicyAction confidence_action = PolicyAction::Abstain;
  int64_t vote_samples = 0;   ///< 0 = off
  double vote_sigma = 0.1;    ///< noise sd as a fraction of the input range
  double vote_agreement = 0.5;
  PolicyAction vote_action = PolicyAction::Abstain;
  std::vector<std::string> invariance;  ///< "shift", "brightness"; empty = off
  int64_t shift = 1;                    ///< pixels
  double brightness = 0.05;             ///< fraction of the input range
  PolicyAction invariance_action = PolicyAction::Flag;
  std::vector<ClassRateRule> class_rates;

  bool enabled() const { return min_confidence > 0 || vote_samples > 0 || !invariance.empty() || !class_rates.empty(); }
  /// Throws InvalidArgument for a setting out of range (a shift on inputs
  /// that are not images is caught by OutputPolicy, which knows the shape).
  void validate(const std::string& where) const;
  /// Model evaluations one answered sample costs beyond the plain one.
  int64_t extra_queries_per_sample() const;
  nlohmann::json to_json() const;
};

struct PolicyVerdict {
  torch::Tensor abstain;             ///< [b] bool: answered "uncertain"
  bool flag = false, reject = false;
  std::vector<std::string> reasons;  ///< the policies that tripped, e.g. "policy-vote"
  std::vector<std::string> flagged_by;  ///< those of them whose action is flag
  nlohmann::json details = nlohmann::json::object();  ///< per policy: its figures per sample
  std::string reason() const;        ///< reasons joined with '+'
  std::string flag_reason() const;   ///< flagged_by joined with '+'
};

class OutputPolicy {
 public:
  using ProbsFn = std::function<torch::Tensor(const torch::Tensor&)>;
  /// Throws InvalidArgument when a policy does not fit the model (a shift on
  /// inputs that are not [C, H, W] images, a class_rate class out of range).
  OutputPolicy(OutputPolicyOptions options, ModelMeta meta, uint64_t seed);

  /// Checks the answer `probs` [b, classes] for `x` [b, ...] of key `key`.
  /// `probs_of` answers the extra queries (one batched call for the vote and
  /// the transforms). Records the answers for the class-rate windows.
  PolicyVerdict check(const torch::Tensor& x, const torch::Tensor& probs, const std::string& key,
                      const ProbsFn& probs_of);

  const OutputPolicyOptions& options() const { return o_; }

 private:
  torch::Tensor transformed(const torch::Tensor& x) const;  ///< [t * b, ...] in transform order
  std::vector<std::string> transform_names() const;

  OutputPolicyOptions o_;
  ModelMeta meta_;
  std::mutex mu_;
  std::mt19937_64 rng_;
  std::map<std::string, std::deque<int64_t>> recent_;  ///< key -> its last answers (labels)
};

}  // namespace aegis::serve
