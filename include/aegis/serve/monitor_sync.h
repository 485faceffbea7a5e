#pragma once
/// The query monitor's history shared by gateway replicas. Each replica's
/// QueryMonitor keeps the per-key history it scores queries against; with
/// replicas, an attacker who spreads a Square attack's queries over them
/// would leave each with a fraction. MonitorSync publishes every query a
/// replica monitors to one Redis stream per model and, before scoring a
/// request, feeds the queries the other replicas published since into the
/// local monitor, so each replica scores against the whole history (the k-NN
/// and PRADA statistics see what one replica would have seen, up to the
/// order of near-simultaneous requests). One round trip per request: the
/// read of new entries and the append are pipelined.
///
/// A replica joins at the stream's end when it starts: what others saw before
/// is not replayed (the stream is trimmed to `max_entries`). Redis down: throws
/// Error(Io) like the other shared state.
///
///   MonitorSync sync(redis, "aegis:", "m");
///   for (auto& [key, x] : sync.exchange(key_id, x)) monitor.observe(key, x);   // others' queries
///   MonitorVerdict v = monitor.observe(key_id, x);                            // then this one

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "aegis/serve/redis_client.h"

namespace aegis::serve {

class MonitorSync {
 public:
  MonitorSync(std::shared_ptr<RedisClient> redis, const std::string& prefix, const std::string& model,
              int64_t max_entries = 100000);
  /// Appends this request's samples (under `key`) and returns the samples the
  /// other replicas appended since the last call, oldest first, as
  /// (key, [n, features]) pairs. Throws Io when Redis is unreachable.
  std::vector<std::pair<std::string, torch::Tensor>> exchange(const std::string& key, const torch::Tensor& x);
  const std::string& replica() const { return replica_; }

 private:
  void join();  // last_id_ = the stream's newest entry (caller holds mu_ or is the constructor)
  std::shared_ptr<RedisClient> redis_;
  std::string stream_;
  std::string replica_;  // random id: this replica's own entries are skipped
  int64_t max_entries_;
  std::mutex mu_;
  std::string last_id_;  // "" until joined
};

}  // namespace aegis::serve
