#include "aegis/serve/server.h"

#include <algorithm>
#include <cctype>

#include "aegis/core/error.h"
#include "aegis/serve/internal/httplib.h"

namespace aegis::serve {

struct GatewayServer::Impl {
  Gateway& gateway;
  std::unique_ptr<httplib::Server> owned;
  httplib::Server& server;
  explicit Impl(Gateway& g, std::unique_ptr<httplib::Server> s) : gateway(g), owned(std::move(s)), server(*owned) {}
};

namespace {

std::unique_ptr<httplib::Server> make_server(const ServerConfig& sc) {
  if (sc.tls_cert.empty()) return std::make_unique<httplib::Server>();
  auto s = std::make_unique<httplib::SSLServer>(sc.tls_cert.c_str(), sc.tls_key.c_str());
  AEGIS_CHECK(s->is_valid(), InvalidArgument,
              "cannot use TLS certificate " << sc.tls_cert << " with key " << sc.tls_key
                                            << " (PEM files, the key matching the certificate)");
  return s;
}

}  // namespace

GatewayServer::GatewayServer(Gateway& gateway)
    : impl_(std::make_unique<Impl>(gateway, make_server(gateway.config().server))) {
  const ServerConfig& sc = gateway.config().server;
  auto& s = impl_->server;
  s.set_payload_max_length(static_cast<size_t>(sc.max_body_bytes));
  s.set_read_timeout(sc.read_timeout_s, 0);
  s.set_write_timeout(sc.write_timeout_s, 0);
  s.set_keep_alive_max_count(1000);
  // Responses go out as headers then body: without TCP_NODELAY, Nagle holds
  // the body until the client's delayed ACK (~40 ms per request).
  s.set_tcp_nodelay(true);
  const int threads = sc.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    r.remote_addr = req.remote_addr;
    for (const auto& [k, v] : req.headers) {
      std::string lower = k;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      r.headers[lower] = v;
    }
    HttpResponse out = impl_->gateway.handle(r);
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    res.set_content(out.body, out.content_type.c_str());
  };
  s.Get(R"(/.*)", handler);
  s.Post(R"(/.*)", handler);
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    // httplib's own refusals (e.g. 413 for an oversized body) get a JSON body
    // too.
    if (res.body.empty()) {
      const std::string reason = res.status == 413 ? "body_too_large" : "http_" + std::to_string(res.status);
      res.set_content(nlohmann::json{{"error", res.status == 413 ? "request body too large"
                                                                 : "HTTP error " + std::to_string(res.status)},
                                     {"reason", reason}}
                          .dump(),
                      "application/json");
    }
  });
}

GatewayServer::~GatewayServer() { stop(); }

int GatewayServer::bind(const std::string& host, int port) {
  auto& s = impl_->server;
  if (port == 0) {
    port_ = s.bind_to_any_port(host.c_str());
    AEGIS_CHECK(port_ > 0, Io, "cannot bind " << host);
  } else {
    AEGIS_CHECK(s.bind_to_port(host.c_str(), port), Io, "cannot bind " << host << ":" << port);
    port_ = port;
  }
  return port_;
}

void GatewayServer::start() {
  auto done = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([this, done] {
    impl_->server.listen_after_bind();
    done->store(true);
  });
  // bind() already listens (connections wait in the backlog); wait until the
  // accept loop runs so that stop() cannot come before it and be missed.
  while (!impl_->server.is_running() && !done->load()) std::this_thread::yield();
}

void GatewayServer::listen() { impl_->server.listen_after_bind(); }

void GatewayServer::stop() {
  impl_->server.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace aegis::serve
