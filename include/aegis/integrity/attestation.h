#pragma once
/// Attestations: signed statements about a model (its training recipe, its
/// training data's fingerprint, an audit report's hash) bound to the same
/// subject as its model-signing signature: an in-toto Statement v1 with the
/// model's name and subject digest (SHA-256 over its files' digests, exactly
/// as in model_signing.h) and predicate type `https://aegis.dev/attestation/v1`,
/// in a DSSE envelope inside a Sigstore bundle, signed with the same kind of
/// key. Stored next to the signature (`model.att.sig` in a model directory,
/// `FILE.att.sig` beside a file). Tools that only know model-signing ignore it.
///
///   attest_model("model.pt", {Attachment::of_file("audit-report", "audit.json"),
///                             Attachment("data-fingerprint", {{"fingerprint", fp}})},
///                SignOptions("key.pem"));
///   AttestationResult a = verify_attestation("model.pt", VerifyOptions("key.pem.pub"));  // throws if not bound
///   a.attachments[0].content ...

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "aegis/integrity/model_signing.h"

namespace aegis {

inline constexpr const char* kAegisAttestationPredicate = "https://aegis.dev/attestation/v1";

/// One attached statement: a kind ("training-recipe", "data-fingerprint",
/// "audit-report", ...) and JSON content.
struct Attachment {
  std::string kind;
  nlohmann::json content;
  Attachment(std::string k, nlohmann::json c) : kind(std::move(k)), content(std::move(c)) {}
  /// A file's SHA-256 (and name, size) as content: for reports too large to inline.
  static Attachment of_file(const std::string& kind, const std::string& path);
};

struct AttestationResult {
  std::string path;            ///< the attestation file
  std::string model_name;
  std::string subject_digest;  ///< equal to the model's current digest
  std::vector<Attachment> attachments;
  nlohmann::json to_json() const;
};

/// The default attestation path: DIR/model.att.sig or FILE.att.sig.
std::string default_attestation_path(const std::string& model_path);

/// Hashes the model, builds the statement with the attachments and writes
/// the signed bundle. `options.signature_path_` overrides the output path.
AttestationResult attest_model(const std::string& model_path, const std::vector<Attachment>& attachments,
                               const SignOptions& options);

/// Checks the attestation's signature with the public key and that its
/// subject digest is the model's digest now; returns the attachments.
/// Throws PermissionDenied naming the failure (bad signature, model changed
/// since attested), NotFound for missing files, CorruptData for a malformed file.
AttestationResult verify_attestation(const std::string& model_path, const VerifyOptions& options);

}  // namespace aegis
