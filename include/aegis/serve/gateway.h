#pragma once
/// Gateway: the secure inference service of `aegis serve`, transport-free.
/// It routes the Open Inference Protocol v2 endpoints and aegis's admin API
/// through the filter chain (filter.h) and returns responses; GatewayServer
/// (server.h) puts it on HTTP.
///
///   Open Inference Protocol v2       GET  /v2, /v2/health/live,
///   /v2/health/ready
///                                    GET  /v2/models/{m}, /v2/models/{m}/ready
///                                    POST /v2/models/{m}/infer
///   explanations (explain, admin)    POST /v2/models/{m}/explain
///   metrics (auditor, admin)         GET  /metrics
///   admin                            GET  /v1/review (JSON; a browser asking
///                                    for HTML gets the review page, review_page.h)
///                                    POST /v1/review/{id} {"decision": "confirm"|"dismiss"}
///                                    POST /v1/models/{m}/swap {"path": ...},
///                                    /rollback, /fallback {"on": bool} POST
///                                    /v1/keys/{id}/release
///   auditor, admin                   GET  /v1/audit/head
///
///   Gateway gw(load_serve_config("serve.toml"));
///   HttpResponse r = gw.handle(request);

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aegis/core/error.h"
#include "aegis/serve/filter.h"

namespace aegis::serve {

/// Services a caller may supply instead of the defaults (tests inject a
/// ManualClock; several replicas would share a RateLimitStore).
struct GatewayOptions {
  std::shared_ptr<Clock> clock;           ///< default SystemClock
  std::shared_ptr<RateLimitStore> rates;  ///< default InProcessRateLimitStore
  std::shared_ptr<KeyStore> keys;         ///< default KeyStore(server.keys_path)
};

class Gateway {
 public:
  /// Validates the config, opens keys and audit log, loads every model
  /// (verification hooks first). Throws what those throw.
  explicit Gateway(ServeConfig config, GatewayOptions options = {});
  ~Gateway();

  /// Answers one request; never throws.
  HttpResponse handle(const HttpRequest& request);

  const ServeConfig& config() const { return config_; }
  Metrics& metrics() { return metrics_; }
  KeyStore& keys() { return *keys_; }
  AuditLog* audit() { return audit_.get(); }
  ResponseEngine& responses() { return *responses_; }
  /// Throws NotFound.
  ModelSlot& model(const std::string& name);

 private:
  HttpResponse route(RequestContext& ctx);
  HttpResponse run_chain(RequestContext& ctx, const std::vector<Filter*>& chain,
                         const std::function<void(RequestContext&)>& handler = {});
  HttpResponse admin(RequestContext& ctx, const std::vector<std::string>& parts);
  GatewayServices services();

  ServeConfig config_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<RateLimitStore> rates_;
  std::shared_ptr<KeyStore> keys_;
  std::unique_ptr<AuditLog> audit_;
  Metrics metrics_;
  std::unique_ptr<ResponseEngine> responses_;
  std::map<std::string, std::unique_ptr<ModelRuntime>> models_;
  std::vector<std::unique_ptr<Filter>> filters_;  // owns every filter
  std::vector<Filter*> infer_chain_, explain_chain_, predict_auth_chain_, admin_chain_, auditor_chain_;
};

/// HTTP status for an aegis::Error kind.
int http_status_for(ErrorKind kind);

}  // namespace aegis::serve
