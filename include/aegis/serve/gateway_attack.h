#pragma once
/// An adaptive black-box attack on a model behind the gateway, through its
/// API with an ordinary key: what an attacker who cannot see the model, its
/// detector or its output policies, only the gateway's replies, can do
/// against the whole runtime chain (detection filter, output policies,
/// response rules).
///
/// A score-based random search in the eps ball (Square-attack proposals:
/// a random window of the perturbation set to +-step per channel, kept when
/// the margin the gateway's scores give improves; label-only endpoints give
/// a flat margin, so there it only finds what a random walk finds). It adapts
/// to refusals: a proposal the gateway refuses (422: detector or policy) is
/// dropped and the sample's step shrinks by `shrink`; an accepted one lets
/// it grow by `grow` again, up to eps. So the search keeps its perturbation
/// at the size the gateway tolerates. `adaptive(false)` keeps the step at
/// eps (the same search that ignores refusals), the baseline to compare.
/// A sample is evaded when the gateway answers it with a wrong class; a key
/// the gateway cuts off (403/429) ends the attack, which is the chain
/// working.
///
///   auto remote = RemoteClassifier::connect(RemoteOptions(url, "fmnist").api_key(key));
///   GatewayAttackResult r = gateway_attack(*remote, x, y, GatewayAttackOptions(0.1).max_queries(300));

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/serve/remote_classifier.h"

namespace aegis::serve {

struct GatewayAttackOptions {
  explicit GatewayAttackOptions(double eps) : eps_(eps) {}
  double eps_;                 ///< Linf budget, > 0
  int64_t max_queries_ = 300;  ///< per sample, >= 1
  double p_init_ = 0.1;        ///< share of the input a proposal changes, in (0, 1]
  bool adaptive_ = true;       ///< shrink the step after refusals
  double shrink_ = 0.6;        ///< step factor after a refusal, in (0, 1)
  double grow_ = 1.1;          ///< step factor after an accepted query, >= 1
  uint64_t seed_ = 0;

  GatewayAttackOptions& eps(double v) { eps_ = v; return *this; }
  GatewayAttackOptions& max_queries(int64_t v) { max_queries_ = v; return *this; }
  GatewayAttackOptions& p_init(double v) { p_init_ = v; return *this; }
  GatewayAttackOptions& adaptive(bool v) { adaptive_ = v; return *this; }
  GatewayAttackOptions& shrink(double v) { shrink_ = v; return *this; }
  GatewayAttackOptions& grow(double v) { grow_ = v; return *this; }
  GatewayAttackOptions& seed(uint64_t v) { seed_ = v; return *this; }
  nlohmann::json to_json() const;
};

struct GatewayAttackResult {
  torch::Tensor x_adv;    ///< [B, ...] the evading input, or the best accepted one
  /// [B] bool: the gateway answered the clean input with its true class (the
  /// samples the attack had to move; the others count as neither).
  torch::Tensor attacked;
  torch::Tensor evaded;   ///< [B] bool: attacked, and the gateway answered a wrong class
  torch::Tensor queries;  ///< [B] int64: requests sent per sample
  torch::Tensor refused;  ///< [B] int64: of those, refused by the gateway
  bool blocked = false;   ///< the gateway cut the key off
  std::string blocked_reason;
  nlohmann::json to_json() const;  ///< counts and rates, not the tensors
};

/// Throws InvalidArgument for bad options; what the gateway refuses is part of the result.
GatewayAttackResult gateway_attack(RemoteClassifier& remote, const torch::Tensor& x, const torch::Tensor& y,
                                   const GatewayAttackOptions& options);

}  // namespace aegis::serve
