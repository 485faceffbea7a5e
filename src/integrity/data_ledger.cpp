// Hash-chained dataset provenance ledger in SQLite (see data_ledger.h).

#include "aegis/integrity/data_ledger.h"

#include <sqlite3.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"

namespace aegis {

namespace {

constexpr const char* kGenesis = "0000000000000000000000000000000000000000000000000000000000000000";

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  AEGIS_CHECK(rc == SQLITE_OK, Io, "ledger database: " << msg);
}

struct Q {
  Q(sqlite3* db, const char* sql) : db(db) {
    AEGIS_CHECK(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK, Internal, "ledger: " << sqlite3_errmsg(db));
  }
  ~Q() { sqlite3_finalize(s); }
  Q& bind(int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.c_str(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Q& bind(int i, int64_t v) {
    sqlite3_bind_int64(s, i, v);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(s);
    AEGIS_CHECK(rc == SQLITE_ROW || rc == SQLITE_DONE, Io, "ledger database: " << sqlite3_errmsg(db));
    return rc == SQLITE_ROW;
  }
  std::string text(int c) const {
    auto* p = sqlite3_column_text(s, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t integer(int c) const { return sqlite3_column_int64(s, c); }
  sqlite3* db;
  sqlite3_stmt* s = nullptr;
};

constexpr const char* kColumns =
    "seq, name, version, at, who, source, fingerprint, samples, transformation, parent_version, prev_hash, hash";

LedgerEntry read_entry(const Q& q) {
  LedgerEntry e;
  e.seq = q.integer(0);
  e.name = q.text(1);
  e.version = q.integer(2);
  e.at = q.text(3);
  e.who = q.text(4);
  e.source = q.text(5);
  e.fingerprint = q.text(6);
  e.samples = q.integer(7);
  e.transformation = q.text(8);
  e.parent_version = q.integer(9);
  e.prev_hash = q.text(10);
  e.hash = q.text(11);
  return e;
}

}  // namespace

nlohmann::json LedgerEntry::to_json() const {
  return {{"seq", seq},
          {"name", name},
          {"version", version},
          {"at", at},
          {"who", who},
          {"source", source},
          {"fingerprint", fingerprint},
          {"samples", samples},
          {"transformation", transformation},
          {"parent_version", parent_version},
          {"prev_hash", prev_hash},
          {"hash", hash}};
}

nlohmann::json LedgerVerification::to_json() const {
  return {{"ok", ok}, {"entries", entries}, {"head", head}, {"reason", reason}};
}

std::string DataLedger::entry_hash(const LedgerEntry& e) {
  // Canonical JSON (keys sorted) of every field but the hash itself.
  nlohmann::json j = e.to_json();
  j.erase("hash");
  return sha256_hex("aegis-ledger-v1\n" + j.dump());
}

DataLedger::DataLedger(const std::string& path) {
  AEGIS_CHECK(!path.empty(), InvalidArgument, "ledger path is empty");
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    AEGIS_FAIL(Io, "cannot open ledger " << path << ": " << msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  exec(
      db_,
      "CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL,"
      " at TEXT NOT NULL, who TEXT NOT NULL, source TEXT NOT NULL, fingerprint TEXT NOT NULL, samples INTEGER NOT NULL,"
      " transformation TEXT NOT NULL, parent_version INTEGER NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
      " UNIQUE (name, version))");
}

DataLedger::~DataLedger() { sqlite3_close(db_); }

LedgerEntry DataLedger::record(const std::string& name, const DataRecord& r) {
  AEGIS_CHECK(!name.empty(), InvalidArgument, "dataset name is empty");
  AEGIS_CHECK(r.fingerprint_.size() == 64, InvalidArgument,
              "fingerprint must be a hex SHA-256, got " << r.fingerprint_);
  exec(db_, "BEGIN IMMEDIATE");
  try {
    LedgerEntry e;
    e.name = name;
    {
      Q q(db_, "SELECT hash, seq FROM ledger ORDER BY seq DESC LIMIT 1");
      e.prev_hash = q.step() ? q.text(0) : kGenesis;
      e.seq = q.integer(1) + 1;
    }
    {
      Q q(db_, "SELECT COALESCE(MAX(version), 0) FROM ledger WHERE name = ?");
      q.bind(1, name).step();
      e.version = q.integer(0) + 1;
    }
    e.parent_version = r.parent_version_ ? r.parent_version_ : e.version - 1;
    AEGIS_CHECK(e.parent_version >= 0 && e.parent_version < e.version, NotFound,
                "dataset " << name << " has no version " << r.parent_version_);
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    e.at = buf;
    const char* user = std::getenv("USER");
    e.who = !r.who_.empty() ? r.who_ : (user && *user ? user : "unknown");
    e.source = r.source_;
    e.fingerprint = r.fingerprint_;
    e.samples = r.samples_;
    e.transformation = r.transformation_;
    e.hash = entry_hash(e);
    Q ins(db_,
          "INSERT INTO ledger (seq, name, version, at, who, source, fingerprint, samples, transformation,"
          " parent_version, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
    ins.bind(1, e.seq)
        .bind(2, e.name)
        .bind(3, e.version)
        .bind(4, e.at)
        .bind(5, e.who)
        .bind(6, e.source)
        .bind(7, e.fingerprint)
        .bind(8, e.samples)
        .bind(9, e.transformation)
        .bind(10, e.parent_version)
        .bind(11, e.prev_hash)
        .bind(12, e.hash)
        .step();
    exec(db_, "COMMIT");
    return e;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<LedgerEntry> DataLedger::log(const std::string& name) const {
  std::string sql =
      std::string("SELECT ") + kColumns + " FROM ledger" + (name.empty() ? "" : " WHERE name = ?") + " ORDER BY seq";
  Q q(db_, sql.c_str());
  if (!name.empty()) q.bind(1, name);
  std::vector<LedgerEntry> out;
  while (q.step()) out.push_back(read_entry(q));
  return out;
}

LedgerEntry DataLedger::latest(const std::string& name) const {
  std::string sql = std::string("SELECT ") + kColumns + " FROM ledger WHERE name = ? ORDER BY version DESC LIMIT 1";
  Q q(db_, sql.c_str());
  AEGIS_CHECK(q.bind(1, name).step(), NotFound, "no dataset named " << name << " in the ledger");
  return read_entry(q);
}

LedgerVerification DataLedger::verify(const std::string& expect_head) const {
  LedgerVerification v;
  std::string prev = kGenesis;
  int64_t expected_seq = 1;
  for (const LedgerEntry& e : log()) {
    std::string where = "entry " + std::to_string(e.seq) + " (" + e.name + " v" + std::to_string(e.version) + ")";
    if (e.seq != expected_seq) {
      v.reason = "entry " + std::to_string(expected_seq) + " is missing (next is " + std::to_string(e.seq) + ")";
      return v;
    }
    if (e.prev_hash != prev) {
      v.reason = where + " does not link to the entry before it (an earlier entry was changed or removed)";
      return v;
    }
    if (entry_hash(e) != e.hash) {
      v.reason = where + " was altered: its contents no longer match its hash";
      return v;
    }
    prev = e.hash;
    ++expected_seq;
    ++v.entries;
  }
  v.head = v.entries ? prev : "";
  if (!expect_head.empty() && expect_head != v.head) {
    v.reason = "head is " + (v.head.empty() ? std::string("empty") : v.head.substr(0, 16) + "...") + ", expected " +
               expect_head.substr(0, 16) + "... (entries were dropped or rewritten)";
    return v;
  }
  v.ok = true;
  return v;
}

}  // namespace aegis
