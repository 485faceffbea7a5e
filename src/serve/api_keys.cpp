#include "aegis/serve/api_keys.h"

#include <sodium.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"

namespace aegis::serve {

namespace {

constexpr const char* kPrefix = "aegis_";
constexpr size_t kIdHex = 12, kSecretHex = 64;

std::string random_hex(size_t bytes) {
  AEGIS_CHECK(sodium_init() >= 0, Internal, "libsodium failed to initialise");
  std::vector<uint8_t> buf(bytes);
  randombytes_buf(buf.data(), buf.size());
  std::string hex = to_hex(buf.data(), buf.size());
  sodium_memzero(buf.data(), buf.size());
  return hex;
}

bool is_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

const char* role_name(Role r) {
  switch (r) {
    case Role::Predict:
      return "predict";
    case Role::Admin:
      return "admin";
    case Role::Auditor:
      return "auditor";
    case Role::Explain:
      return "explain";
  }
  return "?";
}

Role parse_role(const std::string& s) {
  if (s == "predict") return Role::Predict;
  if (s == "admin") return Role::Admin;
  if (s == "auditor") return Role::Auditor;
  if (s == "explain") return Role::Explain;
  AEGIS_FAIL(InvalidArgument, "unknown role '" << s << "' (predict, explain, admin, auditor)");
}

bool KeyRecord::may_use(const std::string& model) const {
  return std::find(models.begin(), models.end(), "*") != models.end() ||
         std::find(models.begin(), models.end(), model) != models.end();
}

nlohmann::json KeyRecord::to_json(bool with_hash) const {
  nlohmann::json j = {
      {"id", id},          {"name", name}, {"role", role_name(role)}, {"models", models}, {"created_at", created_at},
      {"revoked", revoked}};
  if (with_hash) j["sha256"] = hash;
  return j;
}

KeyRecord KeyRecord::from_json(const nlohmann::json& j) {
  try {
    KeyRecord r;
    r.id = j.at("id").get<std::string>();
    r.name = j.value("name", "");
    r.role = parse_role(j.at("role").get<std::string>());
    r.models = j.value("models", std::vector<std::string>{"*"});
    r.hash = j.at("sha256").get<std::string>();
    r.created_at = j.value("created_at", "");
    r.revoked = j.value("revoked", false);
    AEGIS_CHECK(r.id.size() == kIdHex && is_hex(r.id) && r.hash.size() == 64 && is_hex(r.hash), CorruptData,
                "malformed key record '" << r.id << "'");
    return r;
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "malformed key record: " << e.what());
  }
}

std::string key_id_of(const std::string& key) {
  const size_t p = std::string(kPrefix).size();
  if (key.size() != p + kIdHex + 1 + kSecretHex || key.compare(0, p, kPrefix) != 0 || key[p + kIdHex] != '_') return "";
  std::string id = key.substr(p, kIdHex);
  return is_hex(id) && is_hex(key.substr(p + kIdHex + 1)) ? id : "";
}

KeyStore::KeyStore(std::string path) : path_(std::move(path)) { reload(); }

KeyStore::Stamp KeyStore::stamp() const {
  struct stat st {};
  if (path_.empty() || ::stat(path_.c_str(), &st) != 0) return Stamp{};
  return Stamp{static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
               static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

void KeyStore::load_locked() const {
  const Stamp before = stamp();
  std::vector<KeyRecord> records;
  if (!path_.empty() && std::filesystem::exists(path_)) {
    std::ifstream in(path_);
    AEGIS_CHECK(in, Io, "cannot read keys file " << path_);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      AEGIS_FAIL(CorruptData, "keys file " << path_ << " is not JSON: " << e.what());
    }
    AEGIS_CHECK(j.is_object() && j.contains("keys") && j["keys"].is_array(), CorruptData,
                "keys file " << path_ << " has no \"keys\" array");
    for (const auto& k : j["keys"]) records.push_back(KeyRecord::from_json(k));
  }
  records_ = std::move(records);
  loaded_ = before;
  last_error_.clear();
}

void KeyStore::reload() {
  std::lock_guard<std::mutex> lock(mu_);
  load_locked();
}

void KeyStore::refresh_locked() const {
  if (path_.empty()) return;
  const Stamp now = stamp();
  if (now == loaded_) return;
  try {
    load_locked();
  } catch (const std::exception& e) {
    loaded_ = now;  // do not retry the same broken file on every request
    last_error_ = one_line_message(e);
  }
}

std::string KeyStore::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

void KeyStore::save_locked() const {
  if (path_.empty()) return;
  nlohmann::json j = {{"format", "aegis-keys-v1"}, {"keys", nlohmann::json::array()}};
  for (const auto& r : records_) j["keys"].push_back(r.to_json(true));
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    AEGIS_CHECK(out, Io, "cannot write keys file " << tmp);
    out << j.dump(2) << "\n";
    AEGIS_CHECK(out.flush(), Io, "cannot write keys file " << tmp);
  }
  ::chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, path_);
  loaded_ = stamp();
}

/// Read-modify-write under the in-process mutex and, for a file, an
/// exclusive lock on `<path>.lock` shared with every other process.
template <class F>
void KeyStore::modify(F&& change) {
  std::lock_guard<std::mutex> lock(mu_);
  int fd = -1;
  if (!path_.empty()) {
    auto parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    fd = ::open((path_ + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    AEGIS_CHECK(fd >= 0, Io, "cannot open lock file " << path_ << ".lock");
    ::flock(fd, LOCK_EX);
  }
  try {
    if (!path_.empty()) load_locked();  // what other processes wrote
    change();
    save_locked();
  } catch (...) {
    if (fd >= 0) ::close(fd);
    throw;
  }
  if (fd >= 0) ::close(fd);  // releases the lock
}

CreatedKey KeyStore::create(const KeyOptions& o) {
  AEGIS_CHECK(!o.models_.empty(), InvalidArgument, "a key needs at least one model (or \"*\")");
  CreatedKey c;
  c.record.id = random_hex(kIdHex / 2);
  c.key = std::string(kPrefix) + c.record.id + "_" + random_hex(kSecretHex / 2);
  c.record.name = o.name_;
  c.record.role = o.role_;
  c.record.models = o.models_;
  c.record.hash = sha256_hex(c.key);
  c.record.created_at = now_iso();
  modify([&] { records_.push_back(c.record); });
  return c;
}

void KeyStore::revoke(const std::string& id) {
  modify([&] {
    auto it = std::find_if(records_.begin(), records_.end(), [&](const KeyRecord& r) { return r.id == id; });
    AEGIS_CHECK(it != records_.end(), NotFound, "no key with id '" << id << "'");
    it->revoked = true;
  });
}

void KeyStore::set_role(const std::string& id, Role role) {
  modify([&] {
    auto it = std::find_if(records_.begin(), records_.end(), [&](const KeyRecord& r) { return r.id == id; });
    AEGIS_CHECK(it != records_.end(), NotFound, "no key with id '" << id << "'");
    it->role = role;
  });
}

std::optional<KeyRecord> KeyStore::lookup(const std::string& key) const {
  const std::string id = key_id_of(key);
  if (id.empty()) return std::nullopt;
  Sha256 h;
  h.update(key);
  const auto digest = h.digest();
  std::lock_guard<std::mutex> lock(mu_);
  refresh_locked();
  for (const auto& r : records_) {
    if (r.id != id) continue;
    std::array<uint8_t, 32> stored{};
    for (size_t i = 0; i < 32; ++i) stored[i] = static_cast<uint8_t>(std::stoi(r.hash.substr(2 * i, 2), nullptr, 16));
    if (sodium_memcmp(stored.data(), digest.data(), 32) == 0) return r;
  }
  return std::nullopt;
}

std::optional<KeyRecord> KeyStore::authenticate(const std::string& key) const {
  auto r = lookup(key);
  if (r && r->revoked) return std::nullopt;
  return r;
}

std::vector<KeyRecord> KeyStore::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  refresh_locked();
  return records_;
}

}  // namespace aegis::serve
