#pragma once
/// Configuration of `aegis serve`: one TOML file (docs/serve.md) parsed into
/// immutable structs, one ModelConfig per served model with every protection
/// configurable per model. Code may set what TOML cannot say: the model
/// verification hook (signature checks), a detector factory, a clock.
///
///   ServeConfig cfg = load_serve_config("serve.toml");
///   cfg.server.verify_model = signature_verifier("release.pub");  // or verify_key in TOML

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/core/classifier.h"
#include "aegis/core/script_classifier.h"
#include "aegis/serve/infer_request.h"
#include "aegis/serve/output_hardening.h"
#include "aegis/serve/output_policy.h"
#include "aegis/serve/query_monitor.h"
#include "aegis/serve/rate_limit.h"

namespace aegis {
class Detector;
}

namespace aegis::serve {

/// Called with a model file's path before it is loaded or swapped in; throws
/// (e.g. Error(PermissionDenied)) to refuse the model. The integrity area's
/// signature verification plugs in here.
using ModelVerifier = std::function<void(const std::string& model_path)>;
/// The integrity area's check as a ModelVerifier: the model must carry a
/// signature (model.sig beside it) that verifies with this PEM public key,
/// and its bytes must be what was signed; otherwise PermissionDenied naming
/// the difference. What `verify_key` in serve.toml installs.
ModelVerifier signature_verifier(std::string public_key_path);
/// Builds the runtime detector of a model (overrides `detector` paths).
using DetectorFactory = std::function<std::unique_ptr<Detector>(ClassifierPtr model)>;

struct BatchingOptions {
  bool enabled = false;     ///< coalesce concurrent requests into one forward
  int64_t max_batch = 64;   ///< samples per forward
  double max_delay_ms = 2;  ///< longest a request waits for others
};

struct RateOptions {
  RateLimit requests;         ///< requests/s per key (rate 0 = unlimited)
  RateLimit samples;          ///< samples/s per key
  int64_t daily_samples = 0;  ///< samples per key per UTC day (0 = unlimited)
};

enum class DetectionPolicy { Off, Log, Flag, Reject };
DetectionPolicy parse_detection_policy(const std::string& s);
const char* detection_policy_name(DetectionPolicy p);

enum class ResponseAction { Throttle, Quarantine, Fallback };
ResponseAction parse_response_action(const std::string& s);
const char* response_action_name(ResponseAction a);

/// "When the alert rate of a key's last `window` requests exceeds
/// `max_alert_rate`, do `action`."
struct ResponseRule {
  std::string source = "any";  ///< "detector", "monitor", "policy" (output policies) or "any"
  int64_t window = 20;
  double max_alert_rate = 0.5;
  ResponseAction action = ResponseAction::Quarantine;
  double throttle_factor = 0.1;  ///< Throttle: the key's rates are multiplied by this
  nlohmann::json to_json() const;
};

/// The explanation endpoint (`POST /v2/models/{m}/explain`, keys with role
/// explain or admin) and the attribution maps that review items carry.
/// Explanations cost many model evaluations and leak more than a label, so a
/// request is charged its planned model evaluations against the key's sample
/// rate and daily quota, and refused over `max_queries`.
struct ExplainConfig {
  bool enabled = true;
  /// Methods the endpoint offers (make_explainer's names).
  std::vector<std::string> methods = {"saliency", "gradient-x-input", "ig", "smoothgrad",
                                      "occlusion", "ablation", "kernelshap", "lime"};
  int64_t max_queries = 100000;    ///< model evaluations one request may cost
  std::string review_method = "ig";  ///< map attached to review items ("" = none)
  int64_t review_samples = 4;      ///< flagged samples per review item that carry their input and map
  nlohmann::json to_json() const;
};

struct ModelConfig {
  std::string name;
  std::string path;
  std::string fallback_path;  ///< model the Fallback action switches to ("" = none)
  int64_t max_batch = 256;    ///< samples in one request
  BatchingOptions batching;
  RateOptions rate;
  OutputOptions output;
  std::string detector_path;  ///< Detector JSON; "" = none (or
                              ///< model.pt.detector.json when "auto")
  DetectionPolicy detection_policy = DetectionPolicy::Log;
  DetectorFactory detector_factory;  ///< set by code; wins over detector_path
  bool monitor = true;
  MonitorOptions monitor_options;
  std::vector<ResponseRule> rules;
  ExplainConfig explain;
  OutputPolicyOptions policy;  ///< runtime verification of each answer ([models.policy])
  uint64_t noise_seed = 0;  ///< 0 = seeded from libsodium's random bytes
  ModelVerifier verify;     ///< per-model hook; ServerConfig::verify_model also runs
  std::string verify_key;   ///< public key the model's signature must verify with ("" = none; installs `verify`)
  /// Metadata for archives that carry none or must stay unmodified (signed
  /// ones): input_shape, classes, clip, mean, std, class_names in serve.toml,
  /// the same fields as `aegis model meta`. Applied to the model, its
  /// fallback and every swapped-in version.
  ModelOverrides meta;
  void validate() const;
  nlohmann::json to_json() const;
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;  ///< 0 = any free port
  std::string keys_path = "keys.json";
  std::string audit_path = "audit.db";  ///< "" = no audit log (tests only)
  /// Quarantines, throttles and the review queue (response_state.h): an
  /// SQLite file; "" = gateway-state.db beside the audit log (in memory when
  /// there is no audit log); "memory" = in memory, lost on restart;
  /// "redis://host:port[/db]" = shared with every replica using the same
  /// Redis, rate limits and quotas included (redis_state.h).
  std::string state_path;
  /// The state file to open, or "" for in memory or Redis.
  std::string resolved_state_path() const;
  bool state_is_redis() const { return state_path.rfind("redis://", 0) == 0; }
  std::string state_prefix = "aegis:";  ///< Redis key prefix (several gateways on one Redis)
  double state_timeout_s = 0.25;        ///< Redis connect and command timeout
  /// Redis unreachable: false (default) = fail closed, 503 for what cannot be
  /// checked; true = rate limits, quotas and quarantine checks let requests
  /// through, each logged as a warning and counted.
  bool state_fail_open = false;
  int64_t max_body_bytes = 8 << 20;
  int read_timeout_s = 10;  ///< slow clients are cut off
  int write_timeout_s = 10;
  int threads = 8;
  /// TLS on the listener (PEM certificate chain and private key; both or
  /// neither). Without them the gateway speaks plain HTTP: keep it on
  /// loopback or behind a TLS-terminating proxy.
  std::string tls_cert, tls_key;
  bool metrics_public = false;  ///< /metrics without a key
  ParseLimits parse_limits;
  ModelVerifier verify_model;  ///< runs before every model load and swap
  std::string verify_key;      ///< every model must be signed with this key ("" = none; installs verify_model)
  nlohmann::json to_json() const;
};

struct ServeConfig {
  ServerConfig server;
  std::vector<ModelConfig> models;
  void validate() const;
  const ModelConfig* find(const std::string& name) const;
};

/// Parses TOML text; relative paths are resolved against `base_dir`.
/// Throws InvalidArgument naming the key for bad values.
ServeConfig parse_serve_config(const std::string& toml_text, const std::string& base_dir = ".");
ServeConfig load_serve_config(const std::string& path);

}  // namespace aegis::serve
