#pragma once
/// What the gateway's automated response must not forget when the process
/// restarts: quarantined keys, throttle factors and the review queue. A
/// restart that released every quarantined attacker and dropped every flagged
/// request waiting for a person would undo the response. Two backends:
/// in memory (tests, `state = ""`) and SQLite (the default for one replica:
/// `gateway-state.db` beside the audit log, or `[server] state`). A shared
/// backend for several replicas (Redis) implements the same interface.
///
///   auto state = std::make_shared<SqliteResponseState>("gateway-state.db");
///   ResponseEngine engine(&audit, &metrics, state);   // reloads what was there

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

struct sqlite3;

namespace aegis::serve {

class ResponseState {
 public:
  virtual ~ResponseState() = default;
  virtual bool quarantined(const std::string& key) const = 0;
  virtual void set_quarantined(const std::string& key, bool on) = 0;
  /// Product of the throttle factors of key|model (1 = none).
  virtual double throttle(const std::string& key_model) const = 0;
  virtual void set_throttle(const std::string& key_model, double factor) = 0;
  /// Stores a new item under the next id (ids are never reused) and returns it.
  virtual int64_t add_review(nlohmann::json item) = 0;
  virtual void put_review(int64_t id, const nlohmann::json& item) = 0;
  /// Every item by id, oldest first.
  virtual std::map<int64_t, nlohmann::json> reviews() const = 0;
  /// A response rule's sliding window of the last `size` outcomes: appends
  /// `alert` and returns the number of alerts in it once it holds `size`
  /// outcomes, -1 before. Shared by replicas in the Redis backend (an
  /// attacker spread over replicas fills one window); kept in memory, not on
  /// disk, in the others.
  virtual int64_t push_window(const std::string& name, bool alert, int64_t size) = 0;
  /// Empties every window whose name starts with `prefix` (after a rule
  /// fired: its own name; after a release: the key's).
  virtual void clear_windows(const std::string& prefix) = 0;
};

class InMemoryResponseState : public ResponseState {
 public:
  bool quarantined(const std::string& key) const override;
  void set_quarantined(const std::string& key, bool on) override;
  double throttle(const std::string& key_model) const override;
  void set_throttle(const std::string& key_model, double factor) override;
  int64_t add_review(nlohmann::json item) override;
  void put_review(int64_t id, const nlohmann::json& item) override;
  std::map<int64_t, nlohmann::json> reviews() const override;
  int64_t push_window(const std::string& name, bool alert, int64_t size) override;
  void clear_windows(const std::string& prefix) override;

 protected:
  mutable std::mutex mu_;
  std::map<std::string, std::deque<bool>> windows_;
  std::set<std::string> quarantined_;
  std::map<std::string, double> throttle_;
  std::map<int64_t, nlohmann::json> reviews_;
  int64_t next_review_ = 1;
};

/// The in-memory state, written through to an SQLite file (one writer: the
/// gateway process) and read back when opened. Throws Io / CorruptData when
/// the file cannot be opened or is not a state file.
class SqliteResponseState : public InMemoryResponseState {
 public:
  explicit SqliteResponseState(const std::string& path);
  ~SqliteResponseState() override;
  SqliteResponseState(const SqliteResponseState&) = delete;
  SqliteResponseState& operator=(const SqliteResponseState&) = delete;

  void set_quarantined(const std::string& key, bool on) override;
  void set_throttle(const std::string& key_model, double factor) override;
  int64_t add_review(nlohmann::json item) override;
  void put_review(int64_t id, const nlohmann::json& item) override;

 private:
  void write(const std::string& sql, std::initializer_list<std::string> args);
  sqlite3* db_ = nullptr;
  std::mutex write_mu_;
};

}  // namespace aegis::serve
