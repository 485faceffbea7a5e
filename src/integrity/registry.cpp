// Model registry: content-addressed blobs + SQLite metadata (see registry.h).

#include "aegis/integrity/registry.h"

#include <pwd.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"
#include "integrity/zip_reader.h"

namespace fs = std::filesystem;

namespace aegis {

namespace {

// Fault injection for the crash tests: the process kills itself at a named
// point in the middle of a write. Never set outside tests.
void crash_point(const char* name) {
  const char* p = std::getenv("AEGIS_REGISTRY_CRASH_POINT");
  if (p && std::string(p) == name) std::raise(SIGKILL);
}

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// user.name from a git config file: the `name =` line of a [user] section
/// (quotes removed); "" when absent.
std::string git_config_user_name(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::string line, section, found;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      const auto close = line.find(']');
      section = lower(trim(line.substr(1, close == std::string::npos ? std::string::npos : close - 1)));
      continue;
    }
    const auto eq = line.find('=');
    if (section != "user" || eq == std::string::npos) continue;
    if (lower(trim(line.substr(0, eq))) != "name") continue;
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    found = value;  // the last one wins, as in git
  }
  return found;
}

std::string default_who(const std::string& who) { return who.empty() ? current_identity().name : who; }

}  // namespace

Identity current_identity() {
  for (const char* var : {"AEGIS_USER", "GIT_AUTHOR_NAME"})
    if (std::string v = trim(env_or_empty(var)); !v.empty()) return {v, "$" + std::string(var)};
  std::vector<fs::path> configs;
  if (std::string x = env_or_empty("XDG_CONFIG_HOME"); !x.empty()) configs.push_back(fs::path(x) / "git" / "config");
  if (std::string h = env_or_empty("HOME"); !h.empty()) {
    configs.push_back(fs::path(h) / ".config" / "git" / "config");
    configs.push_back(fs::path(h) / ".gitconfig");
  }
  std::string from_git, git_file;
  for (const auto& p : configs)  // later files override earlier ones, as in git
    if (std::string v = git_config_user_name(p); !v.empty()) {
      from_git = v;
      git_file = p.string();
    }
  if (!from_git.empty()) return {from_git, "user.name in " + git_file};
  if (const passwd* pw = getpwuid(getuid()); pw) {
    std::string gecos =
        pw->pw_gecos ? trim(std::string(pw->pw_gecos).substr(0, std::string(pw->pw_gecos).find(','))) : std::string();
    if (!gecos.empty()) return {gecos, "the account's full name (GECOS)"};
    if (pw->pw_name && *pw->pw_name) return {pw->pw_name, "the login name"};
  }
  if (std::string u = trim(env_or_empty("USER")); !u.empty()) return {u, "$USER"};
  return {"unknown", "nothing (set $AEGIS_USER or git's user.name, or pass --by)"};
}

namespace {

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    AEGIS_CHECK(sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) == SQLITE_OK, Internal,
                "registry: bad SQL (" << sqlite3_errmsg(db) << ")");
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  /// true: a row is ready.
  bool step() {
    int rc = sqlite3_step(s_);
    AEGIS_CHECK(rc == SQLITE_ROW || rc == SQLITE_DONE, Io, "registry database: " << sqlite3_errmsg(db_));
    return rc == SQLITE_ROW;
  }
  std::string text(int c) const {
    auto* p = sqlite3_column_text(s_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t integer(int c) const { return sqlite3_column_int64(s_, c); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  AEGIS_CHECK(rc == SQLITE_OK, Io, "registry database: " << msg);
}

// One transaction: BEGIN IMMEDIATE (takes the write lock), rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { exec(db, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, "COMMIT");
    done_ = true;
  }

 private:
  sqlite3* db_;
  bool done_ = false;
};

void check_name(const std::string& what, const std::string& v) {
  AEGIS_CHECK(!v.empty() && v.size() <= 128, InvalidArgument, what << " must be 1-128 characters");
  for (char c : v)
    AEGIS_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.', InvalidArgument,
                what << " \"" << v << "\" may hold only letters, digits, '-', '_' and '.'");
}

// The aegis.json of a TorchScript archive, read with the zip reader (no LibTorch).
nlohmann::json model_meta_of(const std::string& path) {
  try {
    zip::FileSource src(path);
    if (!zip::looks_like_zip(src.read(0, size_t(std::min<uint64_t>(src.size(), 4))))) return {};
    for (const auto& e : zip::read_directory(src)) {
      const std::string suffix = "/extra/aegis.json";
      if (e.name.size() > suffix.size() && e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0)
        return nlohmann::json::parse(zip::read_entry(src, e, 16u << 20));
    }
  } catch (const std::exception&) {
  }
  return {};
}

const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS versions (
  name TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  filename TEXT NOT NULL, signature_sha256 TEXT NOT NULL DEFAULT '', parent TEXT NOT NULL DEFAULT '',
  data_fingerprint TEXT NOT NULL DEFAULT '', recipe TEXT NOT NULL DEFAULT 'null', audit TEXT NOT NULL DEFAULT 'null',
  created_at TEXT NOT NULL, created_by TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS stages (
  name TEXT NOT NULL, stage TEXT NOT NULL, version INTEGER NOT NULL,
  PRIMARY KEY (name, stage), FOREIGN KEY (name, version) REFERENCES versions(name, version));
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
  name TEXT NOT NULL, stage TEXT NOT NULL DEFAULT '', version INTEGER NOT NULL DEFAULT 0,
  from_version INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');
CREATE TRIGGER IF NOT EXISTS versions_immutable BEFORE UPDATE ON versions
  BEGIN SELECT RAISE(ABORT, 'versions are immutable'); END;
)";

void record(sqlite3* db, const std::string& who, const std::string& action, const std::string& name,
            const std::string& stage, int64_t version, int64_t from, const std::string& reason) {
  Stmt s(db,
         "INSERT INTO events (at, who, action, name, stage, version, from_version, reason) VALUES (?,?,?,?,?,?,?,?)");
  s.bind(1, now_utc())
      .bind(2, default_who(who))
      .bind(3, action)
      .bind(4, name)
      .bind(5, stage)
      .bind(6, version)
      .bind(7, from)
      .bind(8, reason)
      .step();
}

}  // namespace

nlohmann::json ModelVersion::to_json() const {
  return {{"name", name},
          {"version", version},
          {"sha256", sha256},
          {"size", size},
          {"filename", filename},
          {"signature_sha256", signature_sha256},
          {"parent", parent},
          {"data_fingerprint", data_fingerprint},
          {"recipe", recipe},
          {"audit", audit},
          {"created_at", created_at},
          {"created_by", created_by},
          {"reason", reason},
          {"stages", stages}};
}

nlohmann::json HistoryEvent::to_json() const {
  return {{"id", id},        {"at", at},       {"who", who},         {"action", action},
          {"name", name},    {"stage", stage}, {"version", version}, {"from_version", from_version},
          {"reason", reason}};
}

nlohmann::json GcResult::to_json() const { return {{"removed", removed}, {"bytes", bytes}}; }

Registry::Registry(const std::string& root) : root_(root) {
  AEGIS_CHECK(!root.empty(), InvalidArgument, "registry directory is empty");
  std::error_code ec;
  fs::create_directories(fs::path(root) / "blobs" / "sha256", ec);
  AEGIS_CHECK(!ec, Io, "cannot create registry " << root << ": " << ec.message());
  std::string db = (fs::path(root) / "registry.db").string();
  if (sqlite3_open(db.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    AEGIS_FAIL(Io, "cannot open " << db << ": " << msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  exec(db_, kSchema);
}

Registry::~Registry() { sqlite3_close(db_); }

std::string Registry::blob_path(const std::string& sha256) const {
  return (fs::path(root_) / "blobs" / "sha256" / sha256).string();
}

std::string Registry::put_blob(const std::string& path, uint64_t* size) {
  AEGIS_CHECK(fs::is_regular_file(path), NotFound, "file not found: " << path);
  // Copy to a temporary name while hashing, then rename to the hash: a crash
  // leaves at most a temporary file (gc removes it), never a wrong blob.
  fs::path tmp = fs::path(root_) / "blobs" /
                 ("tmp-" + std::to_string(::getpid()) + "-" +
                  std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  Sha256 h;
  uint64_t n = 0;
  {
    std::ifstream in(path, std::ios::binary);
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    AEGIS_CHECK(in.good() && out.good(), Io, "cannot copy " << path << " into the registry");
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), std::streamsize(buf.size()));
      std::streamsize got = in.gcount();
      if (got <= 0) break;
      h.update(buf.data(), size_t(got));
      out.write(buf.data(), got);
      n += uint64_t(got);
      crash_point("blob");  // part of the copy written, not yet renamed
    }
    out.flush();
    AEGIS_CHECK(out.good() && in.eof(), Io, "error copying " << path << " into the registry");
  }
  std::string hex = h.hex();
  std::string dst = blob_path(hex);
  if (fs::exists(dst))
    fs::remove(tmp);
  else
    fs::rename(tmp, dst);
  if (size) *size = n;
  return hex;
}

ModelVersion Registry::add(const std::string& name, const std::string& model_path, const AddOptions& o) {
  check_name("model name", name);
  AEGIS_CHECK(fs::is_regular_file(model_path), NotFound, "model file not found: " << model_path);
  ModelVersion v;
  v.name = name;
  v.filename = fs::path(model_path).filename().string();
  v.sha256 = put_blob(model_path, &v.size);
  if (!o.signature_.empty()) v.signature_sha256 = put_blob(o.signature_, nullptr);
  nlohmann::json meta = model_meta_of(model_path);
  nlohmann::json training = meta.is_object() && meta.contains("provenance") && meta["provenance"].is_object()
                                ? meta["provenance"].value("training", nlohmann::json())
                                : nlohmann::json();
  v.data_fingerprint = o.data_fingerprint_;
  if (v.data_fingerprint.empty() && training.is_object() && training.contains("data") && training["data"].is_object())
    v.data_fingerprint = training["data"].value("fingerprint", "");
  v.recipe = o.recipe_.is_null() ? training : o.recipe_;
  v.audit = o.audit_;
  v.created_at = now_utc();
  v.created_by = default_who(o.change_.who_);
  v.reason = o.change_.reason_;

  Transaction tx(db_);
  {
    Stmt s(db_, "SELECT COALESCE(MAX(version), 0) FROM versions WHERE name = ?");
    s.bind(1, name).step();
    v.version = s.integer(0) + 1;
  }
  if (o.parent_version_) {
    AEGIS_CHECK(*o.parent_version_ >= 1 && *o.parent_version_ < v.version, NotFound,
                "parent version " << *o.parent_version_ << " of " << name << " does not exist");
    v.parent = name + ":" + std::to_string(*o.parent_version_);
  } else if (!o.parent_.empty()) {
    auto colon = o.parent_.rfind(':');
    AEGIS_CHECK(colon != std::string::npos, InvalidArgument, "parent must be name:version, got " << o.parent_);
    Stmt s(db_, "SELECT 1 FROM versions WHERE name = ? AND version = ?");
    int64_t pv = std::atoll(o.parent_.c_str() + colon + 1);
    AEGIS_CHECK(s.bind(1, o.parent_.substr(0, colon)).bind(2, pv).step(), NotFound,
                "parent " << o.parent_ << " is not in the registry");
    v.parent = o.parent_;
  }
  Stmt ins(db_,
           "INSERT INTO versions (name, version, sha256, size, filename, signature_sha256, parent, data_fingerprint,"
           " recipe, audit, created_at, created_by, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  ins.bind(1, name)
      .bind(2, v.version)
      .bind(3, v.sha256)
      .bind(4, int64_t(v.size))
      .bind(5, v.filename)
      .bind(6, v.signature_sha256)
      .bind(7, v.parent)
      .bind(8, v.data_fingerprint)
      .bind(9, v.recipe.dump())
      .bind(10, v.audit.dump())
      .bind(11, v.created_at)
      .bind(12, v.created_by)
      .bind(13, v.reason)
      .step();
  record(db_, o.change_.who_, "add", name, "", v.version, 0, o.change_.reason_);
  tx.commit();
  return v;
}

ModelVersion Registry::read_version(const std::string& name, int64_t version) const {
  Stmt s(db_,
         "SELECT version, sha256, size, filename, signature_sha256, parent, data_fingerprint, recipe, audit,"
         " created_at, created_by, reason FROM versions WHERE name = ? AND version = ?");
  AEGIS_CHECK(s.bind(1, name).bind(2, version).step(), NotFound, "model " << name << " has no version " << version);
  ModelVersion v;
  v.name = name;
  v.version = s.integer(0);
  v.sha256 = s.text(1);
  v.size = uint64_t(s.integer(2));
  v.filename = s.text(3);
  v.signature_sha256 = s.text(4);
  v.parent = s.text(5);
  v.data_fingerprint = s.text(6);
  v.recipe = nlohmann::json::parse(s.text(7), nullptr, false);
  v.audit = nlohmann::json::parse(s.text(8), nullptr, false);
  v.created_at = s.text(9);
  v.created_by = s.text(10);
  v.reason = s.text(11);
  Stmt st(db_, "SELECT stage FROM stages WHERE name = ? AND version = ? ORDER BY stage");
  st.bind(1, name).bind(2, version);
  while (st.step()) v.stages.push_back(st.text(0));
  return v;
}

ModelVersion Registry::show(const std::string& name, int64_t version) const {
  if (version == 0) {
    Stmt s(db_, "SELECT MAX(version) FROM versions WHERE name = ?");
    s.bind(1, name).step();
    version = s.integer(0);
    AEGIS_CHECK(version > 0, NotFound, "no model named " << name << " in the registry");
  }
  return read_version(name, version);
}

std::vector<ModelVersion> Registry::list() const {
  std::vector<ModelVersion> out;
  Stmt s(db_, "SELECT name, MAX(version) FROM versions GROUP BY name ORDER BY name");
  while (s.step()) out.push_back(read_version(s.text(0), s.integer(1)));
  return out;
}

ModelVersion Registry::stage(const std::string& name, const std::string& stage) const {
  Stmt s(db_, "SELECT version FROM stages WHERE name = ? AND stage = ?");
  AEGIS_CHECK(s.bind(1, name).bind(2, stage).step(), NotFound, "model " << name << " has no " << stage << " version");
  return read_version(name, s.integer(0));
}

void Registry::promote(const std::string& name, int64_t version, const std::string& stage, const ChangeInfo& change) {
  check_name("stage", stage);
  Transaction tx(db_);
  read_version(name, version);  // NotFound
  int64_t from = 0;
  {
    Stmt s(db_, "SELECT version FROM stages WHERE name = ? AND stage = ?");
    if (s.bind(1, name).bind(2, stage).step()) from = s.integer(0);
  }
  Stmt up(db_,
          "INSERT INTO stages (name, stage, version) VALUES (?,?,?)"
          " ON CONFLICT(name, stage) DO UPDATE SET version = excluded.version");
  up.bind(1, name).bind(2, stage).bind(3, version).step();
  crash_point("promote");  // stage row changed, history not yet written, not committed
  record(db_, change.who_, "promote", name, stage, version, from, change.reason_);
  tx.commit();
}

ModelVersion Registry::rollback(const std::string& name, const std::string& stage, const ChangeInfo& change) {
  Transaction tx(db_);
  int64_t current = 0;
  {
    Stmt s(db_, "SELECT version FROM stages WHERE name = ? AND stage = ?");
    AEGIS_CHECK(s.bind(1, name).bind(2, stage).step(), NotFound, "model " << name << " has no " << stage << " version");
    current = s.integer(0);
  }
  // The promotions of this stage, oldest first; go to the one before the
  // latest promotion of the current version.
  std::vector<int64_t> promoted;
  {
    Stmt s(db_, "SELECT version FROM events WHERE name = ? AND stage = ? AND action = 'promote' ORDER BY id");
    s.bind(1, name).bind(2, stage);
    while (s.step()) promoted.push_back(s.integer(0));
  }
  int64_t target = 0;
  for (size_t i = promoted.size(); i-- > 0;) {
    if (promoted[i] != current) continue;
    for (size_t j = i; j-- > 0;)
      if (promoted[j] != current) {
        target = promoted[j];
        break;
      }
    break;
  }
  AEGIS_CHECK(target > 0, NotFound, "nothing to roll back to: " << name << " " << stage << " has had no other version");
  Stmt up(db_, "UPDATE stages SET version = ? WHERE name = ? AND stage = ?");
  up.bind(1, target).bind(2, name).bind(3, stage).step();
  crash_point("rollback");
  record(db_, change.who_, "rollback", name, stage, target, current, change.reason_);
  // Rollbacks are not promotions: a second rollback walks one promotion further back.
  tx.commit();
  return read_version(name, target);
}

std::vector<HistoryEvent> Registry::history(const std::string& name) const {
  std::vector<HistoryEvent> out;
  Stmt s(db_, name.empty() ? "SELECT id, at, who, action, name, stage, version, from_version, reason FROM events"
                             " ORDER BY id DESC"
                           : "SELECT id, at, who, action, name, stage, version, from_version, reason FROM events"
                             " WHERE name = ? ORDER BY id DESC");
  if (!name.empty()) s.bind(1, name);
  while (s.step()) {
    HistoryEvent e;
    e.id = s.integer(0);
    e.at = s.text(1);
    e.who = s.text(2);
    e.action = s.text(3);
    e.name = s.text(4);
    e.stage = s.text(5);
    e.version = s.integer(6);
    e.from_version = s.integer(7);
    e.reason = s.text(8);
    out.push_back(std::move(e));
  }
  return out;
}

GcResult Registry::gc(bool dry_run) {
  GcResult r;
  std::set<std::string> live;
  {
    Stmt s(db_, "SELECT sha256, signature_sha256 FROM versions");
    while (s.step()) {
      live.insert(s.text(0));
      if (!s.text(1).empty()) live.insert(s.text(1));
    }
  }
  auto consider = [&](const fs::path& p, const std::string& label) {
    r.removed.push_back(label);
    r.bytes += fs::file_size(p);
    if (!dry_run) fs::remove(p);
  };
  for (const auto& e : fs::directory_iterator(fs::path(root_) / "blobs" / "sha256"))
    if (!live.count(e.path().filename().string())) consider(e.path(), e.path().filename().string());
  for (const auto& e : fs::directory_iterator(fs::path(root_) / "blobs"))
    if (e.is_regular_file() && e.path().filename().string().rfind("tmp-", 0) == 0)
      consider(e.path(), e.path().filename().string());
  return r;
}

std::string Registry::checkout(const ModelVersion& v, const std::string& dir) const {
  fs::create_directories(dir);
  auto copy_checked = [&](const std::string& sha, const fs::path& dst) {
    std::string src = blob_path(sha);
    AEGIS_CHECK(fs::exists(src), CorruptData, "registry blob " << sha << " is missing");
    AEGIS_CHECK(sha256_file(src) == sha, CorruptData, "registry blob " << sha << " was altered on disk");
    fs::path tmp = dst.string() + ".tmp" + std::to_string(::getpid());
    fs::copy_file(src, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, dst);
  };
  fs::path model = fs::path(dir) / v.filename;
  copy_checked(v.sha256, model);
  if (!v.signature_sha256.empty()) copy_checked(v.signature_sha256, model.string() + ".sig");
  AEGIS_CHECK(sha256_file(model.string()) == v.sha256, CorruptData, "checked-out model differs from its blob");
  return model.string();
}

}  // namespace aegis
