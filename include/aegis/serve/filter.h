#pragma once
/// The gateway's request pipeline, as in Envoy's HTTP filters: each stage
/// (auth, validation, rate limit, detection, monitor, inference, output
/// hardening, audit) is one Filter built once with an immutable config and
/// references to the shared services; everything about one request lives in
/// its RequestContext. A filter either lets the request continue or stops it
/// with a response (ctx.reject); on the way back every filter that saw the
/// request gets on_response in reverse order (the audit filter writes there).
///
///   class MyFilter : public Filter {
///     const char* name() const override { return "mine"; }
///     FilterStatus on_request(RequestContext& ctx) override {
///       if (bad(ctx)) return ctx.reject(400, "bad_thing", "why it is bad");
///       return FilterStatus::Continue;
///     }
///   };

#include <torch/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>

#include "aegis/serve/api_keys.h"
#include "aegis/serve/audit_log.h"
#include "aegis/serve/config.h"
#include "aegis/serve/infer_request.h"
#include "aegis/serve/metrics.h"
#include "aegis/serve/model_slot.h"
#include "aegis/serve/monitor_sync.h"
#include "aegis/serve/output_policy.h"
#include "aegis/serve/query_monitor.h"
#include "aegis/serve/rate_limit.h"
#include "aegis/serve/response_engine.h"

namespace aegis {
class Explainer;
}

namespace aegis::serve {

/// Transport-independent request and response (the HTTP server adapts).
struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  ///< names lower-case
  std::string body;
  std::string remote_addr;
  std::string header(const std::string& lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
};

/// What every filter shares: built once by the Gateway, outliving requests.
struct GatewayServices {
  const ServerConfig* server = nullptr;
  KeyStore* keys = nullptr;
  RateLimitStore* rates = nullptr;
  const Clock* clock = nullptr;
  AuditLog* audit = nullptr;  ///< may be null (no audit log configured)
  Metrics* metrics = nullptr;
  ResponseEngine* responses = nullptr;
};

/// Per-model state that lives as long as the gateway.
struct ModelRuntime {
  std::unique_ptr<ModelSlot> slot;
  std::unique_ptr<QueryMonitor> monitor;  ///< null when monitoring is off
  std::unique_ptr<MonitorSync> sync;      ///< the monitor's history shared through Redis (null: not shared)
  std::unique_ptr<OutputPolicy> policy;   ///< null when no output policy is set
  std::mutex rng_mu;
  std::mt19937_64 rng;  ///< output noise
  const ModelConfig& config() const { return slot->config(); }
};

enum class FilterStatus { Continue, Stop };

struct RequestContext {
  explicit RequestContext(const HttpRequest& r) : http(r) {}
  const HttpRequest& http;
  std::string model_name;
  ModelRuntime* runtime = nullptr;  ///< the model asked for (null for admin routes)
  double start_time = 0;

  // Built by the filters.
  std::optional<KeyRecord> key;
  InferRequest request;
  torch::Tensor x;                     ///< validated batch [b, input_shape...]
  /// Samples the request costs against the key's sample rate and daily quota
  /// (0 = its batch size; an explanation costs the model evaluations it plans).
  int64_t cost = 0;
  std::shared_ptr<Explainer> explainer;  ///< explain requests: the method asked for
  torch::Tensor target;                  ///< explain requests: classes to explain (undefined = predicted)
  torch::Tensor probs;                 ///< model output [b, classes]
  std::shared_ptr<LoadedModel> model;  ///< the version that answered
  bool detector_alert = false;
  bool monitor_alert = false;
  bool flagged = false;
  bool reviewed = false;               ///< a review item was added for this request
  torch::Tensor abstain;               ///< [b] bool: samples answered "uncertain" (undefined = none)
  nlohmann::json details = nlohmann::json::object();  ///< goes to the audit log

  // The answer.
  HttpResponse response;
  std::string decision = "allow";
  std::string reason;  ///< short code of a rejection, e.g. "rate_limited"

  /// Sets an error response {"error": message, "reason": code} and returns
  /// Stop.
  FilterStatus reject(int status, const std::string& code, const std::string& message);
  std::string key_id() const { return key ? key->id : ""; }
};

/// Puts a flagged request in the review queue (with the evidence the explain
/// config asks for) and notes its id in the audit details; once per request.
void queue_for_review(RequestContext& ctx, const GatewayServices& services);

class Filter {
 public:
  virtual ~Filter() = default;
  virtual const char* name() const = 0;
  virtual FilterStatus on_request(RequestContext& ctx) = 0;
  virtual void on_response(RequestContext&) {}
};

}  // namespace aegis::serve
