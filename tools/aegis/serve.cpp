// aegis serve: the secure inference gateway. With --config it serves what the
// TOML file says; without, it serves one model (default model.pt) on
// 127.0.0.1 with a freshly generated admin key printed once.

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/serve/gateway.h"
#include "aegis/serve/server.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct ServeFlags {
  OutputFlags out;
  std::string config;
  std::string model = "model.pt";
  std::string name;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string keys = "keys.json";
  std::string audit = "audit.db";
  std::string port_file;
  std::string detector;
  std::string policy = "log";
  std::string output_mode = "full";
  double knn_threshold = 0;
  bool batching = false;
  bool port_given = false, host_given = false;
  std::string knn_calibrate;
  std::string verify_key;
  std::string tls_cert, tls_key;
  int64_t knn_samples = 2000;
  double knn_fpr = 0.01;
};

serve::ServeConfig build_config(const ServeFlags& f) {
  if (!f.config.empty()) {
    serve::ServeConfig c = serve::load_serve_config(f.config);
    if (f.port_given) c.server.port = f.port;  // flags given explicitly win over the file
    if (f.host_given) c.server.host = f.host;
    if (!f.verify_key.empty()) {
      c.server.verify_key = f.verify_key;
      c.server.verify_model = serve::signature_verifier(f.verify_key);
    }
    if (!f.tls_cert.empty()) c.server.tls_cert = f.tls_cert;
    if (!f.tls_key.empty()) c.server.tls_key = f.tls_key;
    return c;
  }
  serve::ServeConfig c;
  c.server.host = f.host;
  c.server.port = f.port;
  c.server.keys_path = f.keys;
  c.server.audit_path = f.audit;
  c.server.tls_cert = f.tls_cert;
  c.server.tls_key = f.tls_key;
  if (!f.verify_key.empty()) {
    c.server.verify_key = f.verify_key;
    c.server.verify_model = serve::signature_verifier(f.verify_key);
  }
  serve::ModelConfig m;
  m.name = f.name.empty() ? std::filesystem::path(f.model).stem().string() : f.name;
  m.path = f.model;
  m.detector_path = f.detector == "auto" ? f.model + ".detector.json" : f.detector;
  m.detection_policy = serve::parse_detection_policy(f.policy);
  m.output.mode(serve::parse_output_mode(f.output_mode));
  m.monitor_options.knn_threshold(f.knn_threshold);
  m.batching.enabled = f.batching;
  c.models.push_back(m);
  return c;
}

void run(ServeFlags& f, Context&) {
  f.out.apply();
  serve::ServeConfig config = build_config(f);
  // Signals go to one waiting thread (blocked everywhere else, set before any
  // thread starts).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  // A shell starts background jobs with SIGINT ignored; an ignored signal never reaches sigwait.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  if (!f.knn_calibrate.empty()) {
    // The k-NN threshold flagging knn_fpr of benign traffic (training images in
    // random order).
    Dataset d = load_dataset(DataSpec(f.knn_calibrate).split("train").limit(f.knn_samples)).shuffled(f.out.seed);
    for (auto& m : config.models) {
      if (!m.monitor || m.monitor_options.knn_threshold_ > 0) continue;
      const double t = serve::calibrate_knn_threshold(d.x, m.monitor_options, f.knn_fpr);
      m.monitor_options.knn_threshold(t);
      log_info("model " + m.name + ": query monitor k-NN threshold " + std::to_string(t) + " (" +
               std::to_string(f.knn_fpr) + " of " + std::to_string(d.size()) + " benign queries flagged)");
    }
  }
  std::optional<serve::CreatedKey> admin;
  auto keys = std::make_shared<serve::KeyStore>(config.server.keys_path);
  if (f.config.empty()) admin = keys->create(serve::KeyOptions(serve::Role::Admin).name("serve-admin"));
  serve::Gateway gateway(config, serve::GatewayOptions{nullptr, nullptr, keys});
  serve::GatewayServer server(gateway);
  const int port = server.bind(config.server.host, config.server.port);
  if (!f.port_file.empty()) {
    std::ofstream(f.port_file + ".tmp") << port << "\n";
    std::filesystem::rename(f.port_file + ".tmp", f.port_file);
  }
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : config.models) models.push_back(gateway.model(m.name).to_json());
  nlohmann::json j = {{"url", (config.server.tls_cert.empty() ? "http://" : "https://") + config.server.host + ":" + std::to_string(port)},
                      {"port", port},
                      {"models", models},
                      {"keys", config.server.keys_path},
                      {"audit_log", config.server.audit_path}};
  if (admin) j["admin_key"] = admin->key, j["admin_key_id"] = admin->record.id;
  emit(f.out, j, [&] {
    std::cout << "aegis serve: listening on " << j["url"].get<std::string>() << "\n";
    for (const auto& m : models)
      std::cout << "  model " << m["name"].get<std::string>() << " version " << m["version"].get<std::string>() << " ("
                << m["path"].get<std::string>() << ")\n";
    if (admin) std::cout << "  admin key (shown once, stored only as a hash): " << admin->key << "\n";
    std::cout << "  audit log " << config.server.audit_path << "; stop with Ctrl-C\n";
  });
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    server.stop();
  });
  server.listen();
  server.stop();
  kill(getpid(), SIGTERM);  // wakes the waiter if the server stopped on its own
  waiter.join();
  if (!f.out.json)
    std::cout << "aegis serve: stopped; audit head " << (gateway.audit() ? gateway.audit()->head() : "") << "\n";
}

}  // namespace

void add_serve_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<ServeFlags>();
  auto* sub =
      app.add_subcommand("serve", "Serve models behind the secure inference gateway (Open Inference Protocol v2)");
  add_output_flags(sub, f->out);
  sub->add_option("--config", f->config, "TOML configuration (docs/serve.md); the flags below apply without it");
  sub->add_option("--model", f->model, "Model to serve without --config")->capture_default_str();
  sub->add_option("--name", f->name, "Name to serve it under (default: the file's stem)");
  auto* host = sub->add_option("--host", f->host, "Address to bind")->capture_default_str();
  auto* port = sub->add_option("--port", f->port, "Port (0 = any free port)")
                   ->capture_default_str()
                   ->check(CLI::Range(0, 65535));
  sub->add_option("--port-file", f->port_file, "Write the bound port to this file once listening");
  sub->add_option("--keys", f->keys, "API keys file")->capture_default_str();
  sub->add_option("--audit", f->audit, "Audit log (SQLite)")->capture_default_str();
  sub->add_option("--tls-cert", f->tls_cert, "TLS certificate chain (PEM): serve https (with --tls-key)");
  sub->add_option("--tls-key", f->tls_key, "TLS private key (PEM) of --tls-cert");
  sub->add_option("--detector", f->detector, "Runtime detector JSON, or 'auto' for MODEL.detector.json");
  sub->add_option("--detection-policy", f->policy, "off, log, flag or reject")
      ->check(CLI::IsMember({"off", "log", "flag", "reject"}))
      ->capture_default_str();
  sub->add_option("--output", f->output_mode, "Output hardening: full, topk, rounded, label")
      ->check(CLI::IsMember({"full", "topk", "rounded", "label"}))
      ->capture_default_str();
  sub->add_option("--knn-threshold", f->knn_threshold, "Query monitor k-NN alert threshold (0 = k-NN off)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--knn-calibrate", f->knn_calibrate,
                  "Calibrate the monitor's k-NN threshold on this data's training split (e.g. fashion-mnist)");
  sub->add_option("--knn-samples", f->knn_samples, "Samples used for that calibration")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--knn-fpr", f->knn_fpr, "False-positive rate the calibration aims at")
      ->capture_default_str()
      ->check(CLI::Range(0.0001, 0.5));
  sub->add_option("--verify-key", f->verify_key,
                  "Public key (aegis keygen) every served model's signature must verify with, at start and at "
                  "every swap; an unsigned or altered model is refused");
  sub->add_flag("--batching", f->batching, "Coalesce concurrent requests (dynamic batching)");
  sub->callback([f, &ctx, host, port] {
    f->host_given = host->count() > 0;
    f->port_given = port->count() > 0;
    run(*f, ctx);
  });
}

}  // namespace aegis::cli
