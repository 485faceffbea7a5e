#pragma once
/// API keys for the gateway: 256 random bits from libsodium, shown to the
/// user once and stored only as a SHA-256 hash, compared in constant time.
/// A key reads `aegis_<id>_<64 hex>`; the id (public, 12 hex) finds the record
/// and appears in logs, the secret part never does. Each key has a role
/// (predict, explain, admin, auditor) and a list of models it may use ("*" = all).
///
///   KeyStore store("keys.json");                       // created when absent
///   CreatedKey k =
///   store.create(KeyOptions(Role::Predict).models({"fmnist"}).name("alice"));
///   std::cout << k.key;                                // the only time it is
///   visible const KeyRecord* r = store.authenticate(k.key);    // nullptr:
///   unknown / revoked store.revoke(k.record.id);

#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace aegis::serve {

/// predict: inference; explain: the explanation endpoint (explanations leak
/// more than labels, so predict keys may not ask for them); admin: everything;
/// auditor: metrics and the audit log's head.
enum class Role { Predict, Admin, Auditor, Explain };
const char* role_name(Role r);
/// Throws InvalidArgument for anything but predict, explain, admin, auditor.
Role parse_role(const std::string& s);

struct KeyRecord {
  std::string id;    ///< public identifier, 12 hex characters
  std::string name;  ///< a human label
  Role role = Role::Predict;
  std::vector<std::string> models = {"*"};  ///< models this key may use; "*" = all
  std::string hash;                         ///< hex SHA-256 of the full key
  std::string created_at;                   ///< ISO 8601 UTC
  bool revoked = false;

  bool may_use(const std::string& model) const;
  /// Without the hash unless asked (listings never need it).
  nlohmann::json to_json(bool with_hash = false) const;
  static KeyRecord from_json(const nlohmann::json& j);
};

struct KeyOptions {
  explicit KeyOptions(Role role = Role::Predict) : role_(role) {}
  Role role_;
  std::vector<std::string> models_ = {"*"};
  std::string name_;
  KeyOptions& role(Role v) {
    role_ = v;
    return *this;
  }
  KeyOptions& models(std::vector<std::string> v) {
    models_ = std::move(v);
    return *this;
  }
  KeyOptions& name(std::string v) {
    name_ = std::move(v);
    return *this;
  }
};

struct CreatedKey {
  std::string key;  ///< the secret: print once, never store
  KeyRecord record;
};

/// The keys file (JSON, written atomically, mode 0600). Thread-safe, and
/// safe across processes: every lookup first checks whether the file changed
/// (its inode, size and modification time; one stat) and re-reads it, so a
/// key created, revoked or given another role by `aegis keys` takes effect on
/// a running gateway's next request. Writers hold an exclusive lock on
/// `<path>.lock` and re-read the file before changing it, so two processes
/// never lose each other's changes. A file that cannot be read on such a
/// check leaves the last good keys in force and is reported by last_error().
/// An empty path keeps the keys in memory only.
class KeyStore {
 public:
  explicit KeyStore(std::string path = {});

  CreatedKey create(const KeyOptions& options);
  /// Marks the key revoked (kept for the audit trail). Throws NotFound.
  void revoke(const std::string& id);
  /// Gives the key another role. Throws NotFound.
  void set_role(const std::string& id, Role role);
  /// The record of a valid, unrevoked key; nullopt for a malformed, unknown
  /// or revoked key. The hash comparison is constant-time.
  std::optional<KeyRecord> authenticate(const std::string& key) const;
  /// Like authenticate but also returns revoked records (so the gateway can
  /// say "revoked" rather than "unknown").
  std::optional<KeyRecord> lookup(const std::string& key) const;
  std::vector<KeyRecord> list() const;
  /// Re-reads the file now. Throws Io / CorruptData.
  void reload();
  const std::string& path() const { return path_; }
  /// Why the last automatic re-read failed ("" when it did not).
  std::string last_error() const;

 private:
  struct Stamp {
    uint64_t inode = 0, size = 0;
    int64_t mtime_ns = -1;
    bool operator==(const Stamp&) const = default;
  };
  Stamp stamp() const;
  void load_locked() const;     // throws
  void refresh_locked() const;  // re-reads when the file changed; keeps the old keys on failure
  void save_locked() const;
  template <class F>
  void modify(F&& change);

  std::string path_;
  mutable std::mutex mu_;
  mutable std::vector<KeyRecord> records_;
  mutable Stamp loaded_;
  mutable std::string last_error_;
};

/// The public id inside a key string, or "" when it is not one.
std::string key_id_of(const std::string& key);

}  // namespace aegis::serve
