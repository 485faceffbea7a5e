#pragma once
/// The gateway's append-only audit log: every request decision and admin
/// action (key id, model, decision, reason, detector scores; never a raw API
/// key) as one row of a SQLite table, each row carrying the SHA-256 of the
/// previous row's hash and its own content. verify_audit_log() recomputes
/// the chain and reports the first edited, removed or reordered row. SQLite
/// triggers also refuse UPDATE and DELETE, but someone with the file can drop
/// them: the chain is what detects it. Truncating the newest rows leaves a
/// valid shorter chain, so keep the head hash elsewhere and pass it to
/// verify (`aegis log verify --expect-head`).
///
///   AuditLog log("audit.db");
///   log.append(AuditEntry{"request", "k1", "fmnist", "allow", 200, "",
///   {{"batch", 4}}}); AuditVerification v = verify_audit_log("audit.db"); if
///   (!v.ok) std::cerr << v.problem;

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

struct sqlite3;

namespace aegis::serve {

struct AuditEntry {
  std::string kind;    ///< "request", "admin", "response-rule", ...
  std::string key_id;  ///< the API key's public id ("" when none was given)
  std::string model;
  std::string decision;  ///< "allow", "flag", "reject", or the admin action
  int status = 0;        ///< HTTP status sent
  std::string reason;
  nlohmann::json details = nlohmann::json::object();  ///< detector scores, batch size, ...
};

class AuditLog {
 public:
  /// Opens or creates the database. Throws Io / CorruptData.
  explicit AuditLog(const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Appends one entry (thread-safe); returns its hash.
  std::string append(const AuditEntry& e);
  /// Hash of the newest entry (64 zeros when empty).
  std::string head() const;
  int64_t size() const;

 private:
  sqlite3* db_ = nullptr;
  mutable std::mutex mu_;
  int64_t seq_ = 0;
  std::string head_;
};

struct AuditVerification {
  bool ok = true;
  int64_t entries = 0;
  std::string head;     ///< hash of the last entry
  int64_t bad_seq = 0;  ///< first row that fails (0 when ok)
  std::string problem;  ///< what failed there
  nlohmann::json to_json() const;
};

/// Recomputes the chain. `expect_head` (optional) must equal the last hash.
AuditVerification verify_audit_log(const std::string& path, const std::string& expect_head = {});

/// The hash of one row: SHA-256 over the previous hash and the row's fields.
std::string audit_entry_hash(const std::string& prev_hash, int64_t seq, const std::string& time, const AuditEntry& e);

}  // namespace aegis::serve
