#include "aegis/serve/response_state.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "aegis/core/error.h"

namespace aegis::serve {

bool InMemoryResponseState::quarantined(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return quarantined_.count(key) > 0;
}

void InMemoryResponseState::set_quarantined(const std::string& key, bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  if (on)
    quarantined_.insert(key);
  else
    quarantined_.erase(key);
}

double InMemoryResponseState::throttle(const std::string& key_model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = throttle_.find(key_model);
  return it == throttle_.end() ? 1.0 : it->second;
}

void InMemoryResponseState::set_throttle(const std::string& key_model, double factor) {
  std::lock_guard<std::mutex> lock(mu_);
  throttle_[key_model] = factor;
}

int64_t InMemoryResponseState::add_review(nlohmann::json item) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t id = next_review_++;
  item["id"] = id;
  reviews_[id] = std::move(item);
  return id;
}

void InMemoryResponseState::put_review(int64_t id, const nlohmann::json& item) {
  std::lock_guard<std::mutex> lock(mu_);
  reviews_[id] = item;
  next_review_ = std::max(next_review_, id + 1);
}

std::map<int64_t, nlohmann::json> InMemoryResponseState::reviews() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reviews_;
}

int64_t InMemoryResponseState::push_window(const std::string& name, bool alert, int64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& w = windows_[name];
  w.push_back(alert);
  while (static_cast<int64_t>(w.size()) > size) w.pop_front();
  if (static_cast<int64_t>(w.size()) < size) return -1;
  int64_t alerts = 0;
  for (bool a : w) alerts += a;
  return alerts;
}

void InMemoryResponseState::clear_windows(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = windows_.lower_bound(prefix); it != windows_.end() && it->first.rfind(prefix, 0) == 0;)
    it = windows_.erase(it);
}

namespace {

void exec(sqlite3* db, const char* sql, const std::string& path) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    AEGIS_FAIL(Io, "gateway state " << path << ": " << msg);
  }
}

std::string text(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

}  // namespace

SqliteResponseState::SqliteResponseState(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    AEGIS_FAIL(Io, "cannot open gateway state " << path << ": " << msg);
  }
  try {
    exec(db_,
         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
         "CREATE TABLE IF NOT EXISTS quarantine (key_id TEXT PRIMARY KEY);"
         "CREATE TABLE IF NOT EXISTS throttle (key_model TEXT PRIMARY KEY, factor REAL NOT NULL);"
         "CREATE TABLE IF NOT EXISTS review (id INTEGER PRIMARY KEY, item TEXT NOT NULL);",
         path);
    auto each = [&](const char* sql, const std::function<void(sqlite3_stmt*)>& row) {
      sqlite3_stmt* s = nullptr;
      AEGIS_CHECK(sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) == SQLITE_OK, CorruptData,
                  "gateway state " << path << " is not a state file: " << sqlite3_errmsg(db_));
      while (sqlite3_step(s) == SQLITE_ROW) row(s);
      sqlite3_finalize(s);
    };
    each("SELECT key_id FROM quarantine", [&](sqlite3_stmt* s) { quarantined_.insert(text(s, 0)); });
    each("SELECT key_model, factor FROM throttle",
         [&](sqlite3_stmt* s) { throttle_[text(s, 0)] = sqlite3_column_double(s, 1); });
    each("SELECT id, item FROM review ORDER BY id", [&](sqlite3_stmt* s) {
      const int64_t id = sqlite3_column_int64(s, 0);
      try {
        reviews_[id] = nlohmann::json::parse(text(s, 1));
      } catch (const nlohmann::json::exception&) {
        AEGIS_FAIL(CorruptData, "gateway state " << path << ": review item " << id << " is not JSON");
      }
      next_review_ = std::max(next_review_, id + 1);
    });
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteResponseState::~SqliteResponseState() {
  if (db_) sqlite3_close(db_);
}

void SqliteResponseState::write(const std::string& sql, std::initializer_list<std::string> args) {
  std::lock_guard<std::mutex> lock(write_mu_);
  sqlite3_stmt* s = nullptr;
  AEGIS_CHECK(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK, Io,
              "gateway state: " << sqlite3_errmsg(db_));
  int i = 0;
  for (const std::string& a : args) sqlite3_bind_text(s, ++i, a.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  AEGIS_CHECK(rc == SQLITE_DONE, Io, "gateway state: " << sqlite3_errmsg(db_));
}

// Written to the file first: a change the file did not take is not made.
void SqliteResponseState::set_quarantined(const std::string& key, bool on) {
  write(on ? "INSERT OR IGNORE INTO quarantine (key_id) VALUES (?1)" : "DELETE FROM quarantine WHERE key_id = ?1", {key});
  InMemoryResponseState::set_quarantined(key, on);
}

void SqliteResponseState::set_throttle(const std::string& key_model, double factor) {
  write("INSERT OR REPLACE INTO throttle (key_model, factor) VALUES (?1, CAST(?2 AS REAL))",
        {key_model, nlohmann::json(factor).dump()});
  InMemoryResponseState::set_throttle(key_model, factor);
}

int64_t SqliteResponseState::add_review(nlohmann::json item) {
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_review_++;
  }
  item["id"] = id;
  put_review(id, item);
  return id;
}

void SqliteResponseState::put_review(int64_t id, const nlohmann::json& item) {
  write("INSERT OR REPLACE INTO review (id, item) VALUES (CAST(?1 AS INTEGER), ?2)",
        {std::to_string(id), item.dump()});
  InMemoryResponseState::put_review(id, item);
}

}  // namespace aegis::serve
