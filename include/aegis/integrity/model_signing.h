#pragma once
/// Model signing and verification in the OpenSSF model-signing v1 format
/// (the `model_signing` tool's "key" method): every file of a model (one file
/// or a directory) is hashed with SHA-256, the digests are listed in an in-toto
/// statement, and the statement is signed with an ECDSA key (P-256 by default;
/// P-384 and P-521 verify too) inside a DSSE envelope in a Sigstore bundle.
/// `model_signing verify key` accepts what this signs, and this verifies what
/// it signs. Crypto is OpenSSL's. See docs/model-signing.md.
///
///   generate_signing_key("key.pem");                        // + key.pem.pub
///   sign_model("models/resnet", SignOptions("key.pem"));   // writes models/resnet/model.sig
///   VerifyResult r = verify_model("models/resnet", VerifyOptions("key.pem.pub"));
///   if (!r.ok) std::cerr << r.reason;
///   require_verified_model("model.pt", VerifyOptions("key.pem.pub"));  // throws if not
///
/// What a valid signature says: these exact bytes were signed by the holder of
/// the private key. It says nothing about whether the model is safe to load
/// (see `scan`) or whether the key holder is trustworthy.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "aegis/integrity/signature_bundle.h"

namespace aegis {

/// Writes a new ECDSA P-256 key pair: the private key as PKCS#8 PEM at
/// `private_path` (mode 0600, refuses to overwrite) and the public key as
/// SubjectPublicKeyInfo PEM at `private_path + ".pub"`. Returns the public path.
std::string generate_signing_key(const std::string& private_path);

/// The key hint the reference tool puts in bundles: SHA-256 (hex) of the
/// public key's PEM text. Throws NotFound / CorruptData.
std::string public_key_hint(const std::string& public_key_path);

/// Where a model's signature lives by default: `<dir>/model.sig` for a
/// directory, `<file>.sig` for a file.
std::string default_signature_path(const std::string& model_path);

/// Hashing a model into its resources (shared by sign and verify).
struct ManifestOptions {
  /// Paths relative to the model root (files or folders) left out; the
  /// signature file, the attestation file (model.att.sig) and .git,
  /// .gitattributes, .gitignore, .github always are.
  std::vector<std::string> ignore_paths_;
  /// Threads hashing files in parallel (0: AEGIS_THREADS or the cores).
  int threads_ = 0;

  ManifestOptions& ignore_paths(std::vector<std::string> v) { ignore_paths_ = std::move(v); return *this; }
  ManifestOptions& threads(int v) { threads_ = v; return *this; }
};

/// Hashes every regular file of the model (streamed in 1 MiB chunks, files in
/// parallel). Symlinks anywhere are refused (InvalidArgument naming the link);
/// so are special files. `signature_path` (if inside the model) is ignored.
/// Returns the statement (sorted, subject digest set) and the serialization
/// with the full ignore list.
ModelStatement hash_model(const std::string& model_path, const std::string& signature_path,
                          const ManifestOptions& options = {});

struct SignOptions {
  std::string private_key_;     ///< PEM private key (EC P-256/P-384/P-521); required
  std::string signature_path_;  ///< default: default_signature_path(model)
  std::string model_name_;      ///< default: the model's file or directory name
  ManifestOptions manifest_;

  explicit SignOptions(std::string private_key) : private_key_(std::move(private_key)) {}
  SignOptions& signature_path(std::string v) { signature_path_ = std::move(v); return *this; }
  SignOptions& model_name(std::string v) { model_name_ = std::move(v); return *this; }
  SignOptions& manifest(ManifestOptions v) { manifest_ = std::move(v); return *this; }
};

struct SignResult {
  std::string signature_path;
  ModelStatement statement;
  std::string public_key_hint;
  nlohmann::json to_json() const;
};

/// Signs the model and writes the bundle (atomically). Throws NotFound,
/// InvalidArgument (symlinks, bad key type), Io.
SignResult sign_model(const std::string& model_path, const SignOptions& options);

struct VerifyOptions {
  std::string public_key_;      ///< PEM public key; required
  std::string signature_path_;  ///< default: default_signature_path(model)
  ManifestOptions manifest_;    ///< extra ignore paths (the signed ones always apply)

  explicit VerifyOptions(std::string public_key) : public_key_(std::move(public_key)) {}
  VerifyOptions& signature_path(std::string v) { signature_path_ = std::move(v); return *this; }
  VerifyOptions& manifest(ManifestOptions v) { manifest_ = std::move(v); return *this; }
};

struct VerifyResult {
  bool ok = false;
  std::string reason;                 ///< why not, one line ("" when ok)
  std::string model_name;             ///< the signed subject name
  std::string subject_digest;
  std::vector<std::string> changed;   ///< files whose bytes differ
  std::vector<std::string> missing;   ///< signed but absent
  std::vector<std::string> added;     ///< present but not signed
  std::vector<std::pair<std::string, std::string>> renamed;  ///< signed name -> present name (same bytes)
  size_t files = 0;                   ///< files checked
  std::vector<std::string> ignore_paths;  ///< the signed ignore list (what the signer left out)
  nlohmann::json to_json() const;
};

/// Verifies the model against its signature and a public key. A signature
/// that does not verify, or a model that differs from what was signed (any
/// changed byte, added, renamed or missing file, a symlink) gives ok=false
/// and a reason naming the difference. Throws only for the caller's mistakes
/// (missing key or signature file: NotFound; unreadable key: CorruptData).
VerifyResult verify_model(const std::string& model_path, const VerifyOptions& options);

/// verify_model, throwing PermissionDenied with the reason when it fails:
/// what a loader calls before trusting a model.
VerifyResult require_verified_model(const std::string& model_path, const VerifyOptions& options);

/// Lower level, shared with attestations: signs a statement payload with a
/// PEM private key into a bundle (DSSE over the PAE, key hint set).
SignatureBundle sign_payload(const std::string& payload, const std::string& private_key_path);
/// True when any DSSE signature of the bundle verifies with the PEM public
/// key; otherwise false with `why` naming the failure (different key or altered).
bool verify_bundle_signature(const SignatureBundle& bundle, const std::string& public_key_path, std::string* why);

}  // namespace aegis
