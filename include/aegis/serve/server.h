#pragma once
/// GatewayServer: puts a Gateway on HTTP/1.1 (cpp-httplib) with the
/// server's limits: body size (413 before the body is read), read and write
/// timeouts (slow clients are cut off), a fixed thread pool.
///
///   Gateway gw(config);
///   GatewayServer server(gw);
///   int port = server.bind("127.0.0.1", 0);   // 0: any free port
///   server.start();                           // serves on a background thread
///   ...
///   server.stop();

#include <memory>
#include <string>
#include <thread>

#include "aegis/serve/gateway.h"

namespace aegis::serve {

class GatewayServer {
 public:
  explicit GatewayServer(Gateway& gateway);
  ~GatewayServer();
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  /// Binds; returns the port (the one chosen when `port` is 0). Throws Io.
  int bind(const std::string& host, int port);
  /// Serves on a background thread until stop().
  void start();
  /// Serves on this thread until stop() is called from elsewhere.
  void listen();
  /// Stops accepting and returns when the listener has finished.
  void stop();
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace aegis::serve
