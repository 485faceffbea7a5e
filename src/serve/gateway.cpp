#include "aegis/serve/gateway.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "aegis/core/error.h"
#include "aegis/serve/filters/auth_filter.h"
#include "aegis/serve/filters/detection_filter.h"
#include "aegis/serve/filters/explain_filter.h"
#include "aegis/serve/filters/inference_filter.h"
#include "aegis/serve/filters/output_policy_filter.h"
#include "aegis/serve/filters/rate_limit_filter.h"
#include "aegis/serve/filters/validation_filter.h"
#include "aegis/serve/monitor_sync.h"
#include "aegis/serve/redis_state.h"
#include "aegis/serve/review_page.h"

namespace aegis::serve {

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path.substr(0, path.find('?'))) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

HttpResponse json_response(int status, const nlohmann::json& j) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump();
  return r;
}

/// A browser navigating asks for text/html first; API clients ask for JSON
/// or nothing.
bool wants_html(const HttpRequest& r) {
  const std::string accept = r.header("accept");
  const size_t html = accept.find("text/html");
  const size_t json = accept.find("application/json");
  return html != std::string::npos && (json == std::string::npos || html < json);
}

uint64_t random_seed() {
  uint64_t s = 0;
  if (sodium_init() >= 0) randombytes_buf(&s, sizeof s);
  return s;
}

}  // namespace

int http_status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidArgument:
      return 400;
    case ErrorKind::ShapeMismatch:
      return 400;
    case ErrorKind::NotFound:
      return 404;
    case ErrorKind::CorruptData:
      return 422;
    case ErrorKind::PermissionDenied:
      return 403;
    case ErrorKind::Unauthenticated:
      return 401;
    case ErrorKind::RateLimited:
      return 429;
    case ErrorKind::Unsupported:
      return 501;
    case ErrorKind::Io:
      return 503;  // storage or shared state unreachable: try again (fail closed)
    default:
      return 500;
  }
}

Gateway::Gateway(ServeConfig config, GatewayOptions options) : config_(std::move(config)) {
  config_.validate();
  clock_ = options.clock ? options.clock : std::make_shared<SystemClock>();
  keys_ = options.keys ? options.keys : std::make_shared<KeyStore>(config_.server.keys_path);
  if (!config_.server.audit_path.empty()) audit_ = std::make_unique<AuditLog>(config_.server.audit_path);
  std::shared_ptr<ResponseState> state;
  std::shared_ptr<RedisClient> redis;
  if (config_.server.state_is_redis()) {
    // One Redis for every replica: limits, quotas, quarantines, rule windows,
    // reviews, and the query monitors' history.
    redis = std::make_shared<RedisClient>(
        RedisOptions(config_.server.state_path).timeout(config_.server.state_timeout_s));
    if (!redis->ping()) spdlog::warn("{} does not answer yet; failing {} until it does", redis->describe(),
                                     config_.server.state_fail_open ? "open" : "closed");
    rates_ = options.rates ? options.rates
                           : std::make_shared<RedisRateLimitStore>(redis, config_.server.state_prefix);
    state = std::make_shared<RedisResponseState>(redis, config_.server.state_prefix);
    if (config_.server.state_fail_open) {
      auto loud = [this](const std::string& why) {
        spdlog::warn("fail open (state_fail = \"open\"): a request passed unchecked: {}", why);
        metrics_.count_action("fail_open");
      };
      rates_ = std::make_shared<FailOpenRateLimitStore>(rates_, loud);
      state = std::make_shared<FailOpenResponseState>(state, loud);
    }
  } else {
    rates_ = options.rates ? options.rates : std::make_shared<InProcessRateLimitStore>();
    if (const std::string sp = config_.server.resolved_state_path(); !sp.empty())
      state = std::make_shared<SqliteResponseState>(sp);
  }
  responses_ = std::make_unique<ResponseEngine>(audit_.get(), &metrics_, std::move(state));
  for (const auto& mc : config_.models) {
    auto rt = std::make_unique<ModelRuntime>();
    rt->slot = std::make_unique<ModelSlot>(mc, config_.server.verify_model, &metrics_);
    if (mc.monitor) rt->monitor = std::make_unique<QueryMonitor>(mc.monitor_options);
    if (mc.monitor && redis) rt->sync = std::make_unique<MonitorSync>(redis, config_.server.state_prefix, mc.name);
    if (mc.policy.enabled())
      rt->policy = std::make_unique<OutputPolicy>(mc.policy, rt->slot->current()->classifier->meta(),
                                                  mc.noise_seed ? mc.noise_seed + 1 : random_seed());
    rt->rng.seed(mc.noise_seed ? mc.noise_seed : random_seed());
    if (audit_) audit_->append(AuditEntry{"admin", "", mc.name, "load", 0, "", rt->slot->to_json()});
    models_[mc.name] = std::move(rt);
  }
  GatewayServices s = services();
  auto add = [&](std::unique_ptr<Filter> f) {
    filters_.push_back(std::move(f));
    return filters_.back().get();
  };
  Filter* audit = add(std::make_unique<AuditFilter>(s));
  Filter* auth_predict = add(std::make_unique<AuthFilter>(s, std::set<Role>{Role::Predict, Role::Admin}, true));
  Filter* auth_meta =
      add(std::make_unique<AuthFilter>(s, std::set<Role>{Role::Predict, Role::Explain, Role::Admin, Role::Auditor}, true));
  Filter* auth_admin = add(std::make_unique<AuthFilter>(s, std::set<Role>{Role::Admin}, false));
  Filter* auth_auditor = add(std::make_unique<AuthFilter>(s, std::set<Role>{Role::Admin, Role::Auditor}, false));
  Filter* rate = add(std::make_unique<RateLimitFilter>(s));
  Filter* detection = add(std::make_unique<DetectionFilter>(s));
  Filter* monitor = add(std::make_unique<MonitorFilter>(s));
  infer_chain_ = {audit,
                  auth_predict,
                  add(std::make_unique<ValidationFilter>(config_.server.parse_limits)),
                  rate,
                  detection,
                  monitor,
                  add(std::make_unique<InferenceFilter>()),
                  add(std::make_unique<OutputPolicyFilter>(s)),
                  add(std::make_unique<OutputFilter>())};
  // Explanations: their own role, charged what they cost, watched like predictions.
  explain_chain_ = {audit,
                    add(std::make_unique<AuthFilter>(s, std::set<Role>{Role::Explain, Role::Admin}, true)),
                    add(std::make_unique<ValidationFilter>(
                        config_.server.parse_limits,
                        std::vector<std::string>{"attributions", "target", "completeness_gap", "local_fidelity"})),
                    add(std::make_unique<ExplainPlanFilter>()),
                    rate,
                    detection,
                    monitor,
                    add(std::make_unique<ExplainFilter>())};
  predict_auth_chain_ = {auth_meta};
  admin_chain_ = {audit, auth_admin};
  auditor_chain_ = {auth_auditor};
}

Gateway::~Gateway() = default;

GatewayServices Gateway::services() {
  return GatewayServices{&config_.server, keys_.get(), rates_.get(),    clock_.get(),
                         audit_.get(),    &metrics_,   responses_.get()};
}

ModelSlot& Gateway::model(const std::string& name) {
  auto it = models_.find(name);
  AEGIS_CHECK(it != models_.end(), NotFound, "no model '" << name << "'");
  return *it->second->slot;
}

HttpResponse Gateway::run_chain(RequestContext& ctx, const std::vector<Filter*>& chain,
                                const std::function<void(RequestContext&)>& handler) {
  size_t ran = 0;
  bool stopped = false;
  try {
    for (; ran < chain.size(); ++ran) {
      if (chain[ran]->on_request(ctx) == FilterStatus::Stop) {
        ++ran;
        stopped = true;
        break;
      }
    }
    if (!stopped && handler) handler(ctx);
  } catch (const Error& e) {
    ctx.reject(http_status_for(e.kind()), error_kind_name(e.kind()), one_line_message(e));
  } catch (const std::exception& e) {
    ctx.reject(500, "internal", "internal error: " + one_line_message(e));
  }
  for (size_t i = ran; i-- > 0;) {
    try {
      chain[i]->on_response(ctx);
    } catch (const std::exception& e) {
      // A failing audit write must not be silent: the request fails.
      ctx.reject(500, "internal", std::string(chain[i]->name()) + " failed: " + one_line_message(e));
    }
  }
  return ctx.response;
}

HttpResponse Gateway::handle(const HttpRequest& request) {
  const auto t0 = std::chrono::steady_clock::now();
  RequestContext ctx(request);
  HttpResponse r;
  try {
    r = route(ctx);
  } catch (const Error& e) {
    ctx.reject(http_status_for(e.kind()), error_kind_name(e.kind()), one_line_message(e));
    r = ctx.response;
  } catch (const std::exception& e) {
    ctx.reject(500, "internal", "internal error");
    r = ctx.response;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  metrics_.observe_request(ctx.model_name.empty() ? "-" : ctx.model_name, r.status, secs);
  if (r.status >= 400) metrics_.count_rejection(ctx.reason.empty() ? std::to_string(r.status) : ctx.reason);
  return r;
}

HttpResponse Gateway::route(RequestContext& ctx) {
  const auto parts = split_path(ctx.http.path);
  const std::string& m = ctx.http.method;
  const size_t n = parts.size();
  if (ctx.http.body.size() > static_cast<size_t>(config_.server.max_body_bytes)) {
    ctx.reject(413, "body_too_large", "request body over " + std::to_string(config_.server.max_body_bytes) + " bytes");
    return ctx.response;
  }
  if (n >= 1 && parts[0] == "v2") {
    if (n == 1 && m == "GET")
      return json_response(200,
                           {{"name", "aegis"}, {"version", AEGIS_VERSION}, {"extensions", nlohmann::json::array()}});
    if (n == 3 && parts[1] == "health" && m == "GET") {
      if (parts[2] == "live") return json_response(200, {{"live", true}});
      if (parts[2] == "ready") return json_response(200, {{"ready", true}});
    }
    if (n >= 3 && parts[1] == "models") {
      ctx.model_name = parts[2];
      auto it = models_.find(parts[2]);
      // Authenticate before saying whether the model exists.
      if (n == 4 && (parts[3] == "infer" || parts[3] == "explain") && m == "POST") {
        if (it == models_.end()) {
          if (run_chain(ctx, predict_auth_chain_).status != 200) return ctx.response;
          ctx.reject(404, "unknown_model", "no model '" + parts[2].substr(0, 64) + "'");
          return ctx.response;
        }
        ctx.runtime = it->second.get();
        return run_chain(ctx, parts[3] == "infer" ? infer_chain_ : explain_chain_);
      }
      if ((n == 3 || (n == 4 && parts[3] == "ready")) && m == "GET") {
        return run_chain(ctx, predict_auth_chain_, [&](RequestContext& c) {
          if (it == models_.end()) {
            c.reject(404, "unknown_model", "no model '" + parts[2].substr(0, 64) + "'");
            return;
          }
          auto lm = it->second->slot->current();
          const ModelMeta& meta = lm->classifier->meta();
          nlohmann::json body;
          if (n == 4) {
            body = {{"name", parts[2]}, {"ready", true}};
          } else {
            std::vector<int64_t> shape = {-1};
            shape.insert(shape.end(), meta.input_shape.begin(), meta.input_shape.end());
            body = {{"name", parts[2]},
                    {"versions", {lm->version}},
                    {"platform", "pytorch_torchscript"},
                    {"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", shape}}}},
                    {"outputs",
                     {{{"name", "label"}, {"datatype", "INT64"}, {"shape", {-1}}},
                      {{"name", "scores"}, {"datatype", "FP32"}, {"shape", {-1, meta.num_classes}}}}},
                    {"parameters",
                     {{"num_classes", meta.num_classes},
                      {"clip_min", meta.clip_min},
                      {"clip_max", meta.clip_max},
                      {"class_names", meta.class_names},
                      {"max_batch", it->second->config().max_batch},
                      {"output", it->second->config().output.to_json()}}}};
          }
          c.response.status = 200;
          c.response.body = body.dump();
        });
      }
    }
  }
  if (n == 1 && parts[0] == "metrics" && m == "GET") {
    auto render = [&](RequestContext& c) {
      c.response.status = 200;
      c.response.content_type = "text/plain; version=0.0.4";
      c.response.body = metrics_.render();
    };
    if (config_.server.metrics_public) {
      render(ctx);
      return ctx.response;
    }
    return run_chain(ctx, auditor_chain_, render);
  }
  if (n >= 2 && parts[0] == "v1") {
    if (parts[1] == "audit" && n == 3 && parts[2] == "head" && m == "GET") {
      return run_chain(ctx, auditor_chain_, [&](RequestContext& c) {
        c.response.status = 200;
        c.response.body =
            nlohmann::json{{"head", audit_ ? audit_->head() : ""}, {"entries", audit_ ? audit_->size() : 0}}.dump();
      });
    }
    // The review page and its script are static and hold no data; the page
    // asks for an admin key and calls the JSON API below with it.
    if (parts[1] == "review" && m == "GET" &&
        ((n == 2 && wants_html(ctx.http)) || (n == 3 && parts[2] == "app.js"))) {
      HttpResponse r;
      r.status = 200;
      r.content_type = n == 2 ? "text/html; charset=utf-8" : "text/javascript; charset=utf-8";
      r.body = n == 2 ? review_page_html() : review_page_script();
      r.headers = review_page_headers();
      return r;
    }
    return admin(ctx, parts);
  }
  ctx.reject(404, "not_found", "no route " + m + " " + ctx.http.path.substr(0, 128));
  return ctx.response;
}

HttpResponse Gateway::admin(RequestContext& ctx, const std::vector<std::string>& parts) {
  const std::string& m = ctx.http.method;
  const size_t n = parts.size();
  auto body_json = [&]() {
    if (ctx.http.body.empty()) return nlohmann::json::object();
    try {
      return nlohmann::json::parse(ctx.http.body);
    } catch (const nlohmann::json::exception&) {
      AEGIS_FAIL(InvalidArgument, "request body is not valid JSON");
    }
  };
  std::function<void(RequestContext&)> handler;
  if (parts[1] == "review" && n == 2 && m == "GET") {
    handler = [&](RequestContext& c) {
      c.decision = "review-list";
      c.response.body = nlohmann::json{{"items", responses_->reviews(true)}}.dump();
    };
  } else if (parts[1] == "review" && n == 3 && m == "POST") {
    handler = [&](RequestContext& c) {
      int64_t id = 0;
      try {
        id = std::stoll(parts[2]);
      } catch (const std::exception&) {
        AEGIS_FAIL(InvalidArgument, "review id must be a number");
      }
      const auto j = body_json();
      AEGIS_CHECK(j.contains("decision") && j["decision"].is_string(), InvalidArgument, "body needs \"decision\"");
      responses_->resolve_review(id, j["decision"], c.key_id());
      c.decision = "review-" + j["decision"].get<std::string>();
      c.response.body = nlohmann::json{{"id", id}, {"status", j["decision"]}}.dump();
    };
  } else if (parts[1] == "models" && n == 4 && m == "POST") {
    ctx.model_name = parts[2];
    handler = [&](RequestContext& c) {
      ModelSlot& slot = model(parts[2]);
      const auto j = body_json();
      if (parts[3] == "swap") {
        AEGIS_CHECK(j.contains("path") && j["path"].is_string(), InvalidArgument, "body needs \"path\"");
        std::string v = slot.swap(j["path"]);
        c.decision = "swap";
        c.details["path"] = j["path"];
        c.response.body = nlohmann::json{{"model", parts[2]}, {"version", v}}.dump();
      } else if (parts[3] == "rollback") {
        std::string v = slot.rollback();
        c.decision = "rollback";
        c.response.body = nlohmann::json{{"model", parts[2]}, {"version", v}}.dump();
      } else if (parts[3] == "fallback") {
        AEGIS_CHECK(j.contains("on") && j["on"].is_boolean(), InvalidArgument, "body needs \"on\": true|false");
        slot.use_fallback(j["on"]);
        c.decision = j["on"].get<bool>() ? "fallback-on" : "fallback-off";
        c.response.body = slot.to_json().dump();
      } else {
        AEGIS_FAIL(NotFound, "no admin action '" << parts[3].substr(0, 32) << "'");
      }
    };
  } else if (parts[1] == "keys" && n == 4 && parts[3] == "release" && m == "POST") {
    handler = [&](RequestContext& c) {
      responses_->release(parts[2], c.key_id());
      c.decision = "release";
      c.details["released_key"] = parts[2];
      c.response.body = nlohmann::json{{"released", parts[2]}}.dump();
    };
  } else {
    ctx.reject(404, "not_found", "no route " + m + " " + ctx.http.path.substr(0, 128));
    return ctx.response;
  }
  return run_chain(ctx, admin_chain_, [&](RequestContext& c) {
    c.response.status = 200;
    handler(c);
  });
}

}  // namespace aegis::serve
