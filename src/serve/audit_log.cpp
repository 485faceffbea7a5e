#include "aegis/serve/audit_log.h"

#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <filesystem>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"

namespace aegis::serve {

namespace {

const std::string kGenesis(64, '0');

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    AEGIS_FAIL(Io, "audit log: " << msg);
  }
}

std::string now_iso_ms() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  int ms = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, ms);
  return out;
}

std::string column(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

sqlite3* open_db(const std::string& path, bool create) {
  sqlite3* db = nullptr;
  int flags = create ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX) : SQLITE_OPEN_READONLY;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    AEGIS_FAIL(Io, "cannot open audit log " << path << ": " << msg);
  }
  return db;
}

}  // namespace

std::string audit_entry_hash(const std::string& prev_hash, int64_t seq, const std::string& time, const AuditEntry& e) {
  // A JSON array is an unambiguous encoding of the fields (no separator games).
  nlohmann::json fields = {prev_hash, seq,        time,     e.kind,   e.key_id,
                           e.model,   e.decision, e.status, e.reason, e.details.dump()};
  return sha256_hex(fields.dump());
}

AuditLog::AuditLog(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  db_ = open_db(path, true);
  exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  exec(db_,
       "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL, key_id TEXT "
       "NOT NULL, model TEXT NOT NULL, decision TEXT NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL, details "
       "TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);CREATE TRIGGER IF NOT EXISTS audit_no_update "
       "BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;CREATE TRIGGER IF NOT EXISTS "
       "audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;");
  head_ = kGenesis;
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", -1, &s, nullptr);
  if (sqlite3_step(s) == SQLITE_ROW) {
    seq_ = sqlite3_column_int64(s, 0);
    head_ = column(s, 1);
  }
  sqlite3_finalize(s);
}

AuditLog::~AuditLog() { sqlite3_close(db_); }

std::string AuditLog::append(const AuditEntry& e) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t seq = seq_ + 1;
  const std::string time = now_iso_ms();
  const std::string hash = audit_entry_hash(head_, seq, time, e);
  const std::string details = e.details.dump();
  sqlite3_stmt* s = nullptr;
  AEGIS_CHECK(sqlite3_prepare_v2(db_,
                                 "INSERT INTO audit (seq, time, kind, key_id, model, decision, status, reason, "
                                 "details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                 -1, &s, nullptr) == SQLITE_OK,
              Io, "audit log: " << sqlite3_errmsg(db_));
  sqlite3_bind_int64(s, 1, seq);
  sqlite3_bind_text(s, 2, time.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 3, e.kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 4, e.key_id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 5, e.model.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 6, e.decision.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(s, 7, e.status);
  sqlite3_bind_text(s, 8, e.reason.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 9, details.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 10, head_.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 11, hash.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  AEGIS_CHECK(rc == SQLITE_DONE, Io, "audit log insert failed: " << sqlite3_errmsg(db_));
  seq_ = seq;
  head_ = hash;
  return hash;
}

std::string AuditLog::head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return head_;
}

int64_t AuditLog::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seq_;
}

nlohmann::json AuditVerification::to_json() const {
  nlohmann::json j = {{"ok", ok}, {"entries", entries}, {"head", head}};
  if (!ok) j["bad_seq"] = bad_seq, j["problem"] = problem;
  return j;
}

AuditVerification verify_audit_log(const std::string& path, const std::string& expect_head) {
  AEGIS_CHECK(std::filesystem::exists(path), NotFound, "no audit log at " << path);
  sqlite3* db = open_db(path, false);
  AuditVerification v;
  v.head = kGenesis;
  sqlite3_stmt* s = nullptr;
  // rowid order is insertion order; seq must follow it without gaps.
  if (sqlite3_prepare_v2(db,
                         "SELECT seq, time, kind, key_id, model, decision, status, reason, details, prev_hash, hash "
                         "FROM audit ORDER BY rowid",
                         -1, &s, nullptr) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db);
    sqlite3_close(db);
    AEGIS_FAIL(CorruptData, "audit log " << path << " has no readable audit table: " << msg);
  }
  auto fail = [&](int64_t seq, std::string why) {
    if (v.ok) v.ok = false, v.bad_seq = seq, v.problem = std::move(why);
  };
  int64_t expected_seq = 1;
  while (v.ok && sqlite3_step(s) == SQLITE_ROW) {
    const int64_t seq = sqlite3_column_int64(s, 0);
    AuditEntry e{column(s, 2), column(s, 3), column(s, 4), column(s, 5), sqlite3_column_int(s, 6), column(s, 7), {}};
    const std::string time = column(s, 1), details = column(s, 8), prev = column(s, 9), hash = column(s, 10);
    try {
      e.details = nlohmann::json::parse(details);
    } catch (const nlohmann::json::exception&) {
      fail(seq, "entry " + std::to_string(seq) + ": details are not JSON (edited)");
      break;
    }
    if (seq != expected_seq) {
      fail(seq, seq > expected_seq ? "entries " + std::to_string(expected_seq) + ".." + std::to_string(seq - 1) +
                                         " are missing (removed)"
                                   : "entry " + std::to_string(seq) + " is out of order (reordered)");
    } else if (prev != v.head) {
      fail(seq, "entry " + std::to_string(seq) + " does not chain to the entry before it (removed or reordered)");
    } else if (audit_entry_hash(prev, seq, time, e) != hash || e.details.dump() != details) {
      fail(seq, "entry " + std::to_string(seq) + " does not match its hash (edited)");
    } else {
      v.head = hash;
      ++v.entries;
      ++expected_seq;
    }
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  if (v.ok && !expect_head.empty() && expect_head != v.head)
    fail(v.entries, "the last entry's hash is not the expected head (entries removed from the end, or another log)");
  return v;
}

}  // namespace aegis::serve
