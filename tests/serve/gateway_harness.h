#pragma once
// The gateway test harness: a real GatewayServer on an ephemeral port with a
// ManualClock, a key of each role and a linear model (4 features, 3 classes),
// shared by the gateway and review-page tests.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aegis/defenses/detectors/detector.h"
#include "aegis/serve/gateway.h"
#include "aegis/serve/internal/httplib.h"
#include "aegis/serve/server.h"
#include "support/test_support.h"

namespace aegis::serve::testing_gateway {

using nlohmann::json;

// A test detector: the score of a sample is its largest value.
class MaxValueDetector : public Detector {
 public:
  explicit MaxValueDetector(double threshold) { threshold_ = threshold; }
  std::string name() const override { return "max-value"; }
  torch::Tensor score(const torch::Tensor& x) override { return std::get<0>(x.flatten(1).max(1)); }

 protected:
  json state_json() const override { return json::object(); }
};

inline torch::Tensor weights(double s) {
  return torch::tensor({{1.0, 0.0, 0.0, 0.5}, {0.0, 1.0, 0.0, 0.5}, {0.0, 0.0, 1.0, 0.5}}) * s;
}

struct Harness {
  testing::TempDir dir;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(1.7e9);
  std::shared_ptr<KeyStore> keys = std::make_shared<KeyStore>();
  std::string predict, explain, admin, auditor, other_model, revoked;
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<GatewayServer> server;
  std::unique_ptr<httplib::Client> client;

  Harness() {
    testing::make_linear(weights(3.0), torch::zeros({3}))->save(dir.file("m.pt"));
    testing::make_linear(weights(-3.0), torch::zeros({3}))->save(dir.file("m2.pt"));
    testing::make_linear(weights(1.0), torch::ones({3}))->save(dir.file("fallback.pt"));
    explain = keys->create(KeyOptions(Role::Explain).models({"m"}).name("e")).key;
    predict = keys->create(KeyOptions(Role::Predict).models({"m"}).name("p")).key;
    admin = keys->create(KeyOptions(Role::Admin)).key;
    auditor = keys->create(KeyOptions(Role::Auditor)).key;
    other_model = keys->create(KeyOptions(Role::Predict).models({"other"})).key;
    auto r = keys->create(KeyOptions(Role::Predict));
    keys->revoke(r.record.id);
    revoked = r.key;
  }

  ServeConfig config(const std::function<void(ModelConfig&)>& edit = {}) {
    ServeConfig c;
    c.server.port = 0;
    c.server.audit_path = dir.file("audit.db");
    c.server.max_body_bytes = 64 * 1024;
    c.server.threads = 16;
    ModelConfig m;
    m.name = "m";
    m.path = dir.file("m.pt");
    m.fallback_path = dir.file("fallback.pt");
    m.max_batch = 16;
    m.monitor = false;
    m.noise_seed = 1;
    if (edit) edit(m);
    c.models.push_back(m);
    return c;
  }

  void start(ServeConfig c) {
    gateway = std::make_unique<Gateway>(std::move(c), GatewayOptions{clock, nullptr, keys});
    server = std::make_unique<GatewayServer>(*gateway);
    int port = server->bind("127.0.0.1", 0);
    server->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_read_timeout(60, 0);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }

  static httplib::Headers auth(const std::string& key) { return {{"Authorization", "Bearer " + key}}; }

  static std::string body(const std::vector<std::vector<float>>& rows, const std::string& dtype = "FP32") {
    json data = rows;
    return json{{"id", "t"},
                {"inputs",
                 {{{"name", "x"},
                   {"shape", {rows.size(), rows.empty() ? 0 : rows[0].size()}},
                   {"datatype", dtype},
                   {"data", data}}}}}
        .dump();
  }

  /// An explain request: the rows as input, `params` as its parameters.
  httplib::Result explain_request(const std::string& key, const std::vector<std::vector<float>>& rows,
                                  const json& params) {
    json b = json::parse(body(rows));
    b["parameters"] = params;
    return client->Post("/v2/models/m/explain", auth(key), b.dump(), "application/json");
  }

  httplib::Result infer(const std::string& key, const std::string& b, const std::string& model = "m") {
    return client->Post(("/v2/models/" + model + "/infer").c_str(), auth(key), b, "application/json");
  }
};

/// Rows of the audit log at `path` matching an SQL condition, as JSON
/// {kind, key_id, decision, status, reason, details}, oldest first.
inline std::vector<json> audit_rows(const std::string& path, const std::string& where) {
  sqlite3* db = nullptr;
  std::vector<json> rows;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return rows;
  sqlite3_stmt* s = nullptr;
  const std::string sql =
      "SELECT kind, key_id, decision, status, reason, details FROM audit WHERE " + where + " ORDER BY seq";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK) {
    auto text = [&](int i) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, i))); };
    while (sqlite3_step(s) == SQLITE_ROW)
      rows.push_back({{"kind", text(0)},
                      {"key_id", text(1)},
                      {"decision", text(2)},
                      {"status", sqlite3_column_int(s, 3)},
                      {"reason", text(4)},
                      {"details", json::parse(text(5))}});
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

inline std::string reason(const httplib::Result& r) { return json::parse(r->body).value("reason", ""); }

}  // namespace aegis::serve::testing_gateway
