#pragma once
/// Automated response of the gateway and its review queue. Rules watch the
/// alert rate (detector and/or query monitor) of each key's last `window`
/// requests to a model; above `max_alert_rate` they throttle the key
/// (its rates multiplied by a factor), quarantine it (every request 403 until
/// an admin releases it) or switch the model to its fallback. Every action is
/// written to the audit log. Flagged requests wait in the review queue for a
/// person to confirm or dismiss (`GET /v1/review`, `POST /v1/review/{id}`).
///
///   ResponseEngine engine(&audit, &metrics);
///   auto actions = engine.record(slot, "key-id", /*detector*/ false,
///   /*monitor*/ true); if (engine.quarantined("key-id")) ...;

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "aegis/serve/audit_log.h"
#include "aegis/serve/metrics.h"
#include "aegis/serve/model_slot.h"
#include "aegis/serve/response_state.h"

namespace aegis::serve {

class ResponseEngine {
 public:
  /// `state` keeps quarantines, throttles and the review queue (default: in
  /// memory; the gateway gives it an SqliteResponseState so they survive a
  /// restart). The alert windows are kept in memory.
  ResponseEngine(AuditLog* audit, Metrics* metrics, std::shared_ptr<ResponseState> state = nullptr)
      : audit_(audit),
        metrics_(metrics),
        state_(state ? std::move(state) : std::make_shared<InMemoryResponseState>()) {}

  /// Records one request of `key` to `slot`'s model and applies its rules;
  /// returns the actions taken ("quarantine", "throttle", "fallback").
  /// `policy_alert`: an output policy tripped on the answer (output_policy.h).
  std::vector<std::string> record(ModelSlot& slot, const std::string& key, bool detector_alert, bool monitor_alert,
                                  bool policy_alert = false);

  bool quarantined(const std::string& key) const;
  /// Admin release; throws NotFound when the key is not quarantined.
  void release(const std::string& key, const std::string& admin);
  /// Product of the throttle factors applied to the key for the model (1 =
  /// none).
  double throttle_factor(const std::string& key, const std::string& model) const;

  /// Adds a flagged request to the review queue; returns its id.
  int64_t add_review(nlohmann::json item);
  /// Items with status "pending" (or all).
  nlohmann::json reviews(bool pending_only) const;
  /// decision: "confirm" or "dismiss". Throws NotFound / InvalidArgument.
  void resolve_review(int64_t id, const std::string& decision, const std::string& admin);

 private:
  void log_action(const std::string& action, const std::string& key, const std::string& model,
                  const std::string& reason, nlohmann::json details);

  AuditLog* audit_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  std::shared_ptr<ResponseState> state_;             // quarantines, throttles (key|model -> factor), reviews
};

}  // namespace aegis::serve
