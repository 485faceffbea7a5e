#pragma once
/// Provenance ledger for datasets: an append-only, hash-chained record (in
/// SQLite) of every dataset version: its source, fingerprint (Merkle root
/// over samples and labels), the transformation that produced it, its parent
/// version and who registered it. Each entry's hash covers its fields and the
/// previous entry's hash, so editing or deleting any entry breaks the chain
/// from there on; `verify` walks it. Dropping the newest entries is only
/// detectable against a head hash kept elsewhere (`expect_head`).
///
///   DataLedger ledger("provenance.db");
///   LedgerEntry e = ledger.record("fmnist", DataRecord(ds.fingerprint()).source("fashion-mnist")
///                                     .samples(ds.size()).transformation("dedup + relabel fix"));
///   LedgerVerification v = ledger.verify();   // v.ok, v.head
///   bool same = ledger.latest("fmnist").fingerprint == load_dataset(...).fingerprint();

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace aegis {

struct DataRecord {
  std::string fingerprint_;     ///< required: Dataset::fingerprint()
  std::string source_;          ///< where the data came from (path, URL, package)
  int64_t samples_ = 0;
  std::string transformation_;  ///< what produced this version from its parent
  int64_t parent_version_ = 0;  ///< 0: the previous version of the same name (if any)
  std::string who_;             ///< default: $USER

  explicit DataRecord(std::string fingerprint) : fingerprint_(std::move(fingerprint)) {}
  DataRecord& source(std::string v) { source_ = std::move(v); return *this; }
  DataRecord& samples(int64_t v) { samples_ = v; return *this; }
  DataRecord& transformation(std::string v) { transformation_ = std::move(v); return *this; }
  DataRecord& parent_version(int64_t v) { parent_version_ = v; return *this; }
  DataRecord& who(std::string v) { who_ = std::move(v); return *this; }
};

struct LedgerEntry {
  int64_t seq = 0;  ///< position in the chain (1, 2, ...)
  std::string name;
  int64_t version = 0;
  std::string at, who, source, fingerprint, transformation;
  int64_t samples = 0, parent_version = 0;
  std::string prev_hash, hash;
  nlohmann::json to_json() const;
};

struct LedgerVerification {
  bool ok = false;
  int64_t entries = 0;
  std::string head;    ///< hash of the last entry (publish it to detect truncation)
  std::string reason;  ///< first break, naming the entry
  nlohmann::json to_json() const;
};

class DataLedger {
 public:
  explicit DataLedger(const std::string& path);
  ~DataLedger();
  DataLedger(const DataLedger&) = delete;
  DataLedger& operator=(const DataLedger&) = delete;

  /// Appends a new version of dataset `name` (atomically).
  LedgerEntry record(const std::string& name, const DataRecord& r);
  /// Entries, oldest first ("" name: all).
  std::vector<LedgerEntry> log(const std::string& name = "") const;
  /// The newest version of `name`. Throws NotFound.
  LedgerEntry latest(const std::string& name) const;
  /// Recomputes every hash and link; `expect_head` (optional) must equal the last hash.
  LedgerVerification verify(const std::string& expect_head = "") const;

  /// The hash of an entry given its fields and prev_hash (hex SHA-256).
  static std::string entry_hash(const LedgerEntry& e);

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace aegis
