#include "aegis/serve/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "aegis/core/error.h"
#include "aegis/explain/registry.h"
#include "aegis/integrity/model_signing.h"

namespace aegis::serve {

DetectionPolicy parse_detection_policy(const std::string& s) {
  if (s == "off") return DetectionPolicy::Off;
  if (s == "log") return DetectionPolicy::Log;
  if (s == "flag") return DetectionPolicy::Flag;
  if (s == "reject") return DetectionPolicy::Reject;
  AEGIS_FAIL(InvalidArgument, "unknown detection policy '" << s << "' (off, log, flag, reject)");
}

const char* detection_policy_name(DetectionPolicy p) {
  switch (p) {
    case DetectionPolicy::Off:
      return "off";
    case DetectionPolicy::Log:
      return "log";
    case DetectionPolicy::Flag:
      return "flag";
    case DetectionPolicy::Reject:
      return "reject";
  }
  return "?";
}

ResponseAction parse_response_action(const std::string& s) {
  if (s == "throttle") return ResponseAction::Throttle;
  if (s == "quarantine") return ResponseAction::Quarantine;
  if (s == "fallback") return ResponseAction::Fallback;
  AEGIS_FAIL(InvalidArgument, "unknown response action '" << s << "' (throttle, quarantine, fallback)");
}

const char* response_action_name(ResponseAction a) {
  switch (a) {
    case ResponseAction::Throttle:
      return "throttle";
    case ResponseAction::Quarantine:
      return "quarantine";
    case ResponseAction::Fallback:
      return "fallback";
  }
  return "?";
}

nlohmann::json ResponseRule::to_json() const {
  return {{"source", source},
          {"window", window},
          {"max_alert_rate", max_alert_rate},
          {"action", response_action_name(action)},
          {"throttle_factor", throttle_factor}};
}

nlohmann::json ExplainConfig::to_json() const {
  return {{"enabled", enabled},
          {"methods", methods},
          {"max_queries", max_queries},
          {"review_method", review_method},
          {"review_samples", review_samples}};
}

void ModelConfig::validate() const {
  AEGIS_CHECK(!name.empty() && name.find_first_of("/?#% ") == std::string::npos, InvalidArgument,
              "model name '" << name << "' must be non-empty without '/', '?', '#', '%' or spaces");
  AEGIS_CHECK(!path.empty(), InvalidArgument, "model '" << name << "' has no path");
  AEGIS_CHECK(max_batch >= 1, InvalidArgument, "model '" << name << "': max_batch must be >= 1");
  AEGIS_CHECK(batching.max_batch >= 1 && batching.max_delay_ms >= 0, InvalidArgument,
              "model '" << name << "': batching needs max_batch >= 1 and max_delay_ms >= 0");
  for (const RateLimit* r : {&rate.requests, &rate.samples})
    AEGIS_CHECK(r->unlimited() || r->burst >= 1, InvalidArgument, "model '" << name << "': a rate burst must be >= 1");
  AEGIS_CHECK(rate.daily_samples >= 0, InvalidArgument, "model '" << name << "': daily_samples must be >= 0");
  output.validate();
  monitor_options.validate();
  const auto known = explainer_names();
  auto check_method = [&](const std::string& m, const char* what) {
    AEGIS_CHECK(std::find(known.begin(), known.end(), m) != known.end() && m != "eg", InvalidArgument,
                "model '" << name << "': explain." << what << " '" << m
                          << "' is not a method the gateway offers (eg needs a background set)");
  };
  for (const auto& m : explain.methods) check_method(m, "methods");
  if (!explain.review_method.empty()) check_method(explain.review_method, "review_method");
  AEGIS_CHECK(explain.max_queries >= 1 && explain.review_samples >= 0, InvalidArgument,
              "model '" << name << "': explain needs max_queries >= 1 and review_samples >= 0");
  for (const auto& r : rules) {
    AEGIS_CHECK(r.source == "any" || r.source == "detector" || r.source == "monitor" || r.source == "policy", InvalidArgument,
                "model '" << name << "': rule source must be any, detector, monitor or policy");
    AEGIS_CHECK(r.window >= 1 && r.max_alert_rate >= 0 && r.max_alert_rate < 1, InvalidArgument,
                "model '" << name << "': a rule needs window >= 1 and max_alert_rate in [0, 1)");
    AEGIS_CHECK(r.action != ResponseAction::Fallback || !fallback_path.empty(), InvalidArgument,
                "model '" << name << "': a fallback rule needs a fallback model");
    AEGIS_CHECK(r.throttle_factor > 0 && r.throttle_factor <= 1, InvalidArgument,
                "model '" << name << "': throttle_factor must be in (0, 1]");
  }
}

namespace {

nlohmann::json meta_overrides_json(const ModelOverrides& o) {
  nlohmann::json j = nlohmann::json::object();
  if (o.input_shape_) j["input_shape"] = *o.input_shape_;
  if (o.num_classes_) j["classes"] = *o.num_classes_;
  if (o.clip_min_) j["clip"] = {*o.clip_min_, *o.clip_max_};
  if (o.mean_) j["mean"] = *o.mean_;
  if (o.std_) j["std"] = *o.std_;
  if (o.class_names_) j["class_names"] = *o.class_names_;
  return j;
}

}  // namespace

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json rules_j = nlohmann::json::array();
  for (const auto& r : rules) rules_j.push_back(r.to_json());
  return {{"name", name},
          {"path", path},
          {"fallback", fallback_path},
          {"max_batch", max_batch},
          {"batching",
           {{"enabled", batching.enabled}, {"max_batch", batching.max_batch}, {"max_delay_ms", batching.max_delay_ms}}},
          {"rate",
           {{"requests_per_s", rate.requests.rate},
            {"request_burst", rate.requests.burst},
            {"samples_per_s", rate.samples.rate},
            {"sample_burst", rate.samples.burst},
            {"daily_samples", rate.daily_samples}}},
          {"output", output.to_json()},
          {"detector", detector_path},
          {"detection_policy", detection_policy_name(detection_policy)},
          {"monitor", monitor ? monitor_options.to_json() : nlohmann::json(false)},
          {"rules", rules_j},
          {"explain", explain.to_json()},
          {"policy", policy.to_json()},
          {"verify_key", verify_key},
          {"meta", meta_overrides_json(meta)}};
}

std::string ServerConfig::resolved_state_path() const {
  if (state_path == "memory" || state_is_redis()) return "";
  if (!state_path.empty()) return state_path;
  if (audit_path.empty()) return "";
  return (std::filesystem::path(audit_path).parent_path() / "gateway-state.db").string();
}

nlohmann::json ServerConfig::to_json() const {
  return {{"host", host},
          {"port", port},
          {"keys", keys_path},
          {"audit_log", audit_path},
          {"state", state_is_redis() ? state_path : resolved_state_path().empty() ? "memory" : resolved_state_path()},
          {"state_fail", state_fail_open ? "open" : "closed"},
          {"max_body_bytes", max_body_bytes},
          {"read_timeout_s", read_timeout_s},
          {"threads", threads},
          {"metrics_public", metrics_public},
          {"verify_key", verify_key},
          {"tls", !tls_cert.empty()},
          {"tls_cert", tls_cert}};
}

ModelVerifier signature_verifier(std::string public_key_path) {
  AEGIS_CHECK(std::filesystem::is_regular_file(public_key_path), NotFound,
              "verify_key: public key " << public_key_path << " not found");
  return [key = std::move(public_key_path)](const std::string& model_path) {
    AEGIS_CHECK(std::filesystem::exists(model_path), NotFound, "model " << model_path << " not found");
    const std::string sig = default_signature_path(model_path);
    AEGIS_CHECK(std::filesystem::exists(sig), PermissionDenied,
                "model " << model_path << " is not signed (no " << sig << "); sign it with aegis sign");
    require_verified_model(model_path, VerifyOptions(key));
  };
}

void ServeConfig::validate() const {
  AEGIS_CHECK(!models.empty(), InvalidArgument, "the configuration serves no model");
  AEGIS_CHECK(server.port >= 0 && server.port <= 65535, InvalidArgument, "port must be in [0, 65535]");
  AEGIS_CHECK(server.max_body_bytes >= 1024, InvalidArgument, "max_body_bytes must be >= 1024");
  AEGIS_CHECK(server.read_timeout_s >= 1 && server.write_timeout_s >= 1, InvalidArgument, "timeouts must be >= 1 s");
  AEGIS_CHECK(server.threads >= 1 && server.threads <= 1024, InvalidArgument, "threads must be in [1, 1024]");
  AEGIS_CHECK(server.tls_cert.empty() == server.tls_key.empty(), InvalidArgument,
              "TLS needs both tls_cert and tls_key");
  AEGIS_CHECK(server.state_timeout_s > 0 && server.state_timeout_s <= 60, InvalidArgument,
              "state_timeout_s must be in (0, 60]");
  AEGIS_CHECK(!server.state_fail_open || server.state_is_redis(), InvalidArgument,
              "state_fail = \"open\" applies only to a redis:// state");
  for (const std::string* f : {&server.tls_cert, &server.tls_key})
    AEGIS_CHECK(f->empty() || std::filesystem::exists(*f), NotFound, "TLS file " << *f << " does not exist");
  std::set<std::string> names;
  for (const auto& m : models) {
    m.validate();
    AEGIS_CHECK(names.insert(m.name).second, InvalidArgument, "model '" << m.name << "' is configured twice");
  }
}

const ModelConfig* ServeConfig::find(const std::string& name) const {
  for (const auto& m : models)
    if (m.name == name) return &m;
  return nullptr;
}

namespace {

// Typed reads that name the key when the value has the wrong type.
template <typename T>
T get(const toml::table& t, const std::string& key, T def, const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return def;
  if constexpr (std::is_same_v<T, bool>) {
    auto v = n->value<bool>();
    AEGIS_CHECK(v, InvalidArgument, where << key << " must be true or false");
    return *v;
  } else if constexpr (std::is_same_v<T, std::string>) {
    auto v = n->value<std::string>();
    AEGIS_CHECK(v, InvalidArgument, where << key << " must be a string");
    return *v;
  } else if constexpr (std::is_integral_v<T>) {
    auto v = n->value<int64_t>();
    AEGIS_CHECK(v && n->is_integer(), InvalidArgument, where << key << " must be an integer");
    return static_cast<T>(*v);
  } else {
    auto v = n->value<double>();
    AEGIS_CHECK(v, InvalidArgument, where << key << " must be a number");
    return static_cast<T>(*v);
  }
}

const toml::table* sub(const toml::table& t, const std::string& key, const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return nullptr;
  AEGIS_CHECK(n->is_table(), InvalidArgument, where << key << " must be a table");
  return n->as_table();
}

void check_keys(const toml::table& t, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [k, v] : t)
    AEGIS_CHECK(known.count(std::string(k.str())), InvalidArgument, "unknown setting " << where << k.str());
}

std::string resolve(const std::string& p, const std::string& base) {
  if (p.empty() || std::filesystem::path(p).is_absolute()) return p;
  return (std::filesystem::path(base) / p).lexically_normal().string();
}

/// A TOML array of T (integers, numbers or strings), naming the key when an
/// element has another type.
template <typename T>
std::optional<std::vector<T>> get_array(const toml::table& t, const std::string& key, const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return std::nullopt;
  AEGIS_CHECK(n->is_array(), InvalidArgument, where << key << " must be an array");
  std::vector<T> v;
  for (const auto& e : *n->as_array()) {
    if constexpr (std::is_same_v<T, std::string>) {
      auto x = e.value<std::string>();
      AEGIS_CHECK(x, InvalidArgument, where << key << " must be an array of strings");
      v.push_back(*x);
    } else if constexpr (std::is_integral_v<T>) {
      auto x = e.value<int64_t>();
      AEGIS_CHECK(x && e.is_integer(), InvalidArgument, where << key << " must be an array of integers");
      v.push_back(static_cast<T>(*x));
    } else {
      auto x = e.value<double>();
      AEGIS_CHECK(x, InvalidArgument, where << key << " must be an array of numbers");
      v.push_back(*x);
    }
  }
  return v;
}

/// input_shape, classes, clip, mean, std, class_names: a model's metadata
/// given in serve.toml (checked again when the model loads).
void parse_meta_overrides(const toml::table& t, const std::string& w, ModelOverrides& o) {
  if (auto v = get_array<int64_t>(t, "input_shape", w)) {
    AEGIS_CHECK(!v->empty(), InvalidArgument, w << "input_shape must not be empty");
    for (int64_t d : *v) AEGIS_CHECK(d > 0, InvalidArgument, w << "input_shape dimensions must be >= 1");
    o.input_shape(*v);
  }
  if (t.get("classes")) {
    const int64_t c = get<int64_t>(t, "classes", 0, w);
    AEGIS_CHECK(c >= 2, InvalidArgument, w << "classes must be >= 2");
    o.num_classes(c);
  }
  if (auto v = get_array<double>(t, "clip", w)) {
    AEGIS_CHECK(v->size() == 2 && (*v)[0] < (*v)[1], InvalidArgument, w << "clip must be [min, max] with min < max");
    o.clip((*v)[0], (*v)[1]);
  }
  auto mean = get_array<double>(t, "mean", w);
  auto stdv = get_array<double>(t, "std", w);
  AEGIS_CHECK(bool(mean) == bool(stdv), InvalidArgument, w << "mean and std go together");
  if (mean) o.normalization(*mean, *stdv);
  if (auto v = get_array<std::string>(t, "class_names", w)) o.class_names(*v);
}

ModelConfig parse_model(const toml::table& t, const std::string& base) {
  ModelConfig m;
  m.name = get<std::string>(t, "name", "", "models.");
  const std::string w = "models[" + m.name + "].";
  check_keys(
      t,
      {"name", "path", "fallback", "max_batch", "detector", "detection_policy", "noise_seed", "batching", "rate",
       "output", "monitor", "rules", "explain", "policy", "verify_key", "input_shape", "classes", "clip", "mean", "std", "class_names"},
      w);
  parse_meta_overrides(t, w, m.meta);
  m.verify_key = resolve(get<std::string>(t, "verify_key", "", w), base);
  if (!m.verify_key.empty()) m.verify = signature_verifier(m.verify_key);
  m.path = resolve(get<std::string>(t, "path", "", w), base);
  m.fallback_path = resolve(get<std::string>(t, "fallback", "", w), base);
  m.max_batch = get<int64_t>(t, "max_batch", m.max_batch, w);
  std::string det = get<std::string>(t, "detector", "", w);
  m.detector_path = det == "auto" ? m.path + ".detector.json" : resolve(det, base);
  m.detection_policy = parse_detection_policy(get<std::string>(t, "detection_policy", "log", w));
  m.noise_seed = get<uint64_t>(t, "noise_seed", 0, w);
  if (auto* b = sub(t, "batching", w)) {
    check_keys(*b, {"enabled", "max_batch", "max_delay_ms"}, w + "batching.");
    m.batching.enabled = get<bool>(*b, "enabled", true, w + "batching.");
    m.batching.max_batch = get<int64_t>(*b, "max_batch", m.batching.max_batch, w + "batching.");
    m.batching.max_delay_ms = get<double>(*b, "max_delay_ms", m.batching.max_delay_ms, w + "batching.");
  }
  if (auto* r = sub(t, "rate", w)) {
    const std::string rw = w + "rate.";
    check_keys(*r, {"requests_per_s", "request_burst", "samples_per_s", "sample_burst", "daily_samples"}, rw);
    m.rate.requests.rate = get<double>(*r, "requests_per_s", 0, rw);
    m.rate.requests.burst = get<double>(*r, "request_burst", std::max(1.0, m.rate.requests.rate), rw);
    m.rate.samples.rate = get<double>(*r, "samples_per_s", 0, rw);
    m.rate.samples.burst = get<double>(*r, "sample_burst", std::max(1.0, m.rate.samples.rate), rw);
    m.rate.daily_samples = get<int64_t>(*r, "daily_samples", 0, rw);
  }
  if (auto* o = sub(t, "output", w)) {
    const std::string ow = w + "output.";
    check_keys(*o, {"mode", "top_k", "decimals", "noise", "epsilon", "delta"}, ow);
    m.output.mode(parse_output_mode(get<std::string>(*o, "mode", "full", ow)));
    m.output.top_k(get<int64_t>(*o, "top_k", 3, ow)).decimals(get<int>(*o, "decimals", 2, ow));
    m.output.noise(parse_noise(get<std::string>(*o, "noise", "none", ow)), get<double>(*o, "epsilon", 1.0, ow),
                   get<double>(*o, "delta", 1e-5, ow));
  }
  if (auto* mo = sub(t, "monitor", w)) {
    const std::string mw = w + "monitor.";
    check_keys(
        *mo, {"enabled", "k", "history", "knn_threshold", "prada", "prada_min_queries", "prada_window", "prada_delta"},
        mw);
    m.monitor = get<bool>(*mo, "enabled", true, mw);
    auto& o = m.monitor_options;
    o.k(get<int64_t>(*mo, "k", o.k_, mw)).history(get<int64_t>(*mo, "history", o.history_, mw));
    o.knn_threshold(get<double>(*mo, "knn_threshold", o.knn_threshold_, mw))
        .prada(get<bool>(*mo, "prada", o.prada_, mw));
    o.prada_min_queries(get<int64_t>(*mo, "prada_min_queries", o.prada_min_queries_, mw));
    o.prada_window(get<int64_t>(*mo, "prada_window", o.prada_window_, mw));
    o.prada_delta(get<double>(*mo, "prada_delta", o.prada_delta_, mw));
  }
  if (auto* e = sub(t, "explain", w)) {
    const std::string ew = w + "explain.";
    check_keys(*e, {"enabled", "methods", "max_queries", "review_method", "review_samples"}, ew);
    auto& x = m.explain;
    x.enabled = get<bool>(*e, "enabled", x.enabled, ew);
    if (auto v = get_array<std::string>(*e, "methods", ew)) x.methods = *v;
    x.max_queries = get<int64_t>(*e, "max_queries", x.max_queries, ew);
    x.review_method = get<std::string>(*e, "review_method", x.review_method, ew);
    x.review_samples = get<int64_t>(*e, "review_samples", x.review_samples, ew);
  }
  if (auto* p = sub(t, "policy", w)) {
    const std::string pw = w + "policy.";
    check_keys(*p, {"min_confidence", "confidence_action", "vote", "invariance", "class_rate"}, pw);
    auto& o = m.policy;
    o.min_confidence = get<double>(*p, "min_confidence", o.min_confidence, pw);
    o.confidence_action = parse_policy_action(get<std::string>(*p, "confidence_action", "abstain", pw));
    if (auto* v = sub(*p, "vote", pw)) {
      const std::string vw = pw + "vote.";
      check_keys(*v, {"samples", "sigma", "agreement", "action"}, vw);
      o.vote_samples = get<int64_t>(*v, "samples", 8, vw);
      o.vote_sigma = get<double>(*v, "sigma", o.vote_sigma, vw);
      o.vote_agreement = get<double>(*v, "agreement", o.vote_agreement, vw);
      o.vote_action = parse_policy_action(get<std::string>(*v, "action", "abstain", vw));
    }
    if (auto* i = sub(*p, "invariance", pw)) {
      const std::string iw = pw + "invariance.";
      check_keys(*i, {"transforms", "shift", "brightness", "action"}, iw);
      o.invariance = get_array<std::string>(*i, "transforms", iw).value_or(std::vector<std::string>{"shift", "brightness"});
      o.shift = get<int64_t>(*i, "shift", o.shift, iw);
      o.brightness = get<double>(*i, "brightness", o.brightness, iw);
      o.invariance_action = parse_policy_action(get<std::string>(*i, "action", "flag", iw));
    }
    if (const toml::node* cn = p->get("class_rate")) {
      AEGIS_CHECK(cn->is_array_of_tables(), InvalidArgument,
                  pw << "class_rate must be an array of tables ([[models.policy.class_rate]])");
      for (const auto& e : *cn->as_array()) {
        const auto& ct = *e.as_table();
        const std::string cw = pw + "class_rate.";
        check_keys(ct, {"class", "max_rate", "window", "action"}, cw);
        AEGIS_CHECK(ct.get("class"), InvalidArgument, cw << "class is required");
        ClassRateRule r;
        r.cls = get<int64_t>(ct, "class", 0, cw);
        r.max_rate = get<double>(ct, "max_rate", r.max_rate, cw);
        r.window = get<int64_t>(ct, "window", r.window, cw);
        r.action = parse_policy_action(get<std::string>(ct, "action", "flag", cw));
        o.class_rates.push_back(r);
      }
    }
    o.validate(pw);
  }
  if (const toml::node* rn = t.get("rules")) {
    AEGIS_CHECK(rn->is_array_of_tables(), InvalidArgument, w << "rules must be an array of tables ([[models.rules]])");
    for (const auto& e : *rn->as_array()) {
      const auto& rt = *e.as_table();
      const std::string rw = w + "rules.";
      check_keys(rt, {"source", "window", "max_alert_rate", "action", "throttle_factor"}, rw);
      ResponseRule r;
      r.source = get<std::string>(rt, "source", r.source, rw);
      r.window = get<int64_t>(rt, "window", r.window, rw);
      r.max_alert_rate = get<double>(rt, "max_alert_rate", r.max_alert_rate, rw);
      r.action = parse_response_action(get<std::string>(rt, "action", "quarantine", rw));
      r.throttle_factor = get<double>(rt, "throttle_factor", r.throttle_factor, rw);
      m.rules.push_back(r);
    }
  }
  return m;
}

}  // namespace

ServeConfig parse_serve_config(const std::string& text, const std::string& base) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << e.description() << " at line " << e.source().begin.line;
    AEGIS_FAIL(InvalidArgument, "serve config is not valid TOML: " << os.str());
  }
  check_keys(root, {"server", "models"}, "");
  ServeConfig c;
  if (auto* s = sub(root, "server", "")) {
    const std::string w = "server.";
    check_keys(*s,
               {"host", "port", "keys", "audit_log", "max_body_bytes", "read_timeout_s", "write_timeout_s", "threads",
                "metrics_public", "max_elements", "verify_key", "state", "state_prefix", "state_timeout_s", "state_fail",
                "tls_cert", "tls_key"},
               w);
    c.server.verify_key = resolve(get<std::string>(*s, "verify_key", "", w), base);
    if (!c.server.verify_key.empty()) c.server.verify_model = signature_verifier(c.server.verify_key);
    c.server.host = get<std::string>(*s, "host", c.server.host, w);
    c.server.port = get<int>(*s, "port", c.server.port, w);
    c.server.keys_path = resolve(get<std::string>(*s, "keys", c.server.keys_path, w), base);
    c.server.audit_path = resolve(get<std::string>(*s, "audit_log", c.server.audit_path, w), base);
    const std::string state = get<std::string>(*s, "state", "", w);
    c.server.state_path =
        state == "memory" || state.empty() || state.rfind("redis://", 0) == 0 ? state : resolve(state, base);
    c.server.state_prefix = get<std::string>(*s, "state_prefix", c.server.state_prefix, w);
    c.server.state_timeout_s = get<double>(*s, "state_timeout_s", c.server.state_timeout_s, w);
    const std::string fail = get<std::string>(*s, "state_fail", "closed", w);
    AEGIS_CHECK(fail == "closed" || fail == "open", InvalidArgument,
                "server.state_fail must be closed or open, got '" << fail << "'");
    c.server.state_fail_open = fail == "open";
    c.server.tls_cert = resolve(get<std::string>(*s, "tls_cert", "", w), base);
    c.server.tls_key = resolve(get<std::string>(*s, "tls_key", "", w), base);
    c.server.max_body_bytes = get<int64_t>(*s, "max_body_bytes", c.server.max_body_bytes, w);
    c.server.read_timeout_s = get<int>(*s, "read_timeout_s", c.server.read_timeout_s, w);
    c.server.write_timeout_s = get<int>(*s, "write_timeout_s", c.server.write_timeout_s, w);
    c.server.threads = get<int>(*s, "threads", c.server.threads, w);
    c.server.metrics_public = get<bool>(*s, "metrics_public", false, w);
    c.server.parse_limits.max_elements(get<int64_t>(*s, "max_elements", c.server.parse_limits.max_elements_, w));
  } else {
    c.server.keys_path = resolve(c.server.keys_path, base);
    c.server.audit_path = resolve(c.server.audit_path, base);
  }
  if (const toml::node* mn = root.get("models")) {
    AEGIS_CHECK(mn->is_array_of_tables(), InvalidArgument, "models must be an array of tables ([[models]])");
    for (const auto& e : *mn->as_array()) c.models.push_back(parse_model(*e.as_table(), base));
  }
  c.validate();
  return c;
}

ServeConfig load_serve_config(const std::string& path) {
  std::ifstream in(path);
  AEGIS_CHECK(in, NotFound, "cannot read serve config " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto base = std::filesystem::path(path).parent_path().string();
  return parse_serve_config(ss.str(), base.empty() ? "." : base);
}

}  // namespace aegis::serve
