#pragma once
/// Model registry with version control: a content-addressed blob store (files
/// named by their SHA-256) and SQLite metadata in one directory. Versions are
/// immutable and numbered per model; stages ("staging", "production", any
/// name) point at versions; promote and rollback are single SQLite
/// transactions, so a crash at any point leaves the previous state valid.
/// Every change is recorded with who and why. Each version carries lineage:
/// parent version, training-data fingerprint, training recipe, audit results,
/// and optionally its signature (model-signing bundle), so a consumer can
/// verify what it loads.
///
///   Registry reg("registry/");
///   ModelVersion v = reg.add("fmnist-cnn", "model.pt", AddOptions().signature("model.pt.sig").reason("nightly"));
///   reg.promote("fmnist-cnn", v.version, "production", ChangeInfo("alice", "passed audit"));
///   ModelVersion prod = reg.production("fmnist-cnn");
///   std::string path = reg.checkout(prod, "/srv/models/fmnist");  // model + .sig, blob hash re-checked
///   require_verified_model(path, VerifyOptions("key.pub"));       // model_signing.h

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace aegis {

/// The person at the keyboard, found as git finds an author: $AEGIS_USER,
/// $GIT_AUTHOR_NAME, user.name in ~/.gitconfig (or $XDG_CONFIG_HOME/git/config),
/// the account's full name (GECOS), its login name, $USER; "unknown" only
/// when all of them are missing. `source` says which one answered.
struct Identity {
  std::string name;
  std::string source;
};
Identity current_identity();

/// Who makes a change and why (recorded in the history).
struct ChangeInfo {
  std::string who_;     ///< default: current_identity().name
  std::string reason_;  ///< free text
  ChangeInfo() = default;
  ChangeInfo(std::string who, std::string reason) : who_(std::move(who)), reason_(std::move(reason)) {}
  ChangeInfo& who(std::string v) { who_ = std::move(v); return *this; }
  ChangeInfo& reason(std::string v) { reason_ = std::move(v); return *this; }
};

struct AddOptions {
  std::optional<int64_t> parent_version_;  ///< lineage: the version this one derives from (same model)
  std::string parent_;                     ///< lineage: "name:version" of a parent in another model
  std::string data_fingerprint_;           ///< training data Merkle root (default: from the model's aegis.json)
  nlohmann::json recipe_;                  ///< training recipe (default: from the model's aegis.json)
  nlohmann::json audit_;                   ///< attached audit results
  std::string signature_;                  ///< model-signing bundle to store with the version
  ChangeInfo change_;

  AddOptions& parent_version(int64_t v) { parent_version_ = v; return *this; }
  AddOptions& parent(std::string v) { parent_ = std::move(v); return *this; }
  AddOptions& data_fingerprint(std::string v) { data_fingerprint_ = std::move(v); return *this; }
  AddOptions& recipe(nlohmann::json v) { recipe_ = std::move(v); return *this; }
  AddOptions& audit(nlohmann::json v) { audit_ = std::move(v); return *this; }
  AddOptions& signature(std::string v) { signature_ = std::move(v); return *this; }
  AddOptions& change(ChangeInfo v) { change_ = std::move(v); return *this; }
  AddOptions& reason(std::string v) { change_.reason_ = std::move(v); return *this; }
};

struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string sha256;       ///< the model blob
  uint64_t size = 0;
  std::string filename;     ///< the file name it was added under
  std::string signature_sha256;  ///< "" when unsigned
  std::string parent;       ///< "name:version" or ""
  std::string data_fingerprint;
  nlohmann::json recipe, audit;
  std::string created_at, created_by, reason;
  std::vector<std::string> stages;  ///< stages pointing at it now
  nlohmann::json to_json() const;
};

struct HistoryEvent {
  int64_t id = 0;
  std::string at, who, action, name, stage, reason;
  int64_t version = 0, from_version = 0;  ///< 0: none
  nlohmann::json to_json() const;
};

struct GcResult {
  std::vector<std::string> removed;  ///< blob hashes and stray temp files
  uint64_t bytes = 0;
  nlohmann::json to_json() const;
};

class Registry {
 public:
  /// Opens (creating if needed) the registry in `root`.
  explicit Registry(const std::string& root);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Stores the model file as a new immutable version (1, 2, ...).
  ModelVersion add(const std::string& name, const std::string& model_path, const AddOptions& options = {});
  /// Every model's latest version, sorted by name.
  std::vector<ModelVersion> list() const;
  /// One version (0: the latest). Throws NotFound.
  ModelVersion show(const std::string& name, int64_t version = 0) const;
  /// The version a stage points at. Throws NotFound when the stage is empty.
  ModelVersion stage(const std::string& name, const std::string& stage) const;
  /// What a server loads: stage(name, "production").
  ModelVersion production(const std::string& name) const { return stage(name, "production"); }
  /// Points `stage` at `version`, atomically, recording who and why.
  void promote(const std::string& name, int64_t version, const std::string& stage, const ChangeInfo& change = {});
  /// Points `stage` back at the version promoted to it before the current
  /// one. Returns that version. Throws NotFound when there is none.
  ModelVersion rollback(const std::string& name, const std::string& stage, const ChangeInfo& change = {});
  /// Changes, newest first ("" name: all models).
  std::vector<HistoryEvent> history(const std::string& name = "") const;
  /// Removes blobs no version references, and temporary files left by crashes.
  GcResult gc(bool dry_run = false);

  /// Path of a stored blob (model or signature) by hash.
  std::string blob_path(const std::string& sha256) const;
  /// Copies a version's model into `dir` under its original file name (and its
  /// signature as NAME.sig when it has one), re-hashing the blob on the way:
  /// a blob altered on disk throws CorruptData. Returns the model's path.
  std::string checkout(const ModelVersion& v, const std::string& dir) const;

  const std::string& root() const { return root_; }

 private:
  std::string put_blob(const std::string& path, uint64_t* size);
  ModelVersion read_version(const std::string& name, int64_t version) const;
  std::string root_;
  sqlite3* db_ = nullptr;
};

}  // namespace aegis
