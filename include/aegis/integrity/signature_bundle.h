#pragma once
/// The OpenSSF model-signing v1 signature format, as data: a Sigstore bundle
/// v0.3 (JSON) holding a DSSE envelope whose payload is an in-toto Statement v1
/// with predicate type `https://model_signing/signature/v1.0`. This header
/// builds and parses those documents; it does no I/O and no cryptography
/// (model_signing.h signs and verifies), so it can be fuzzed on its own.
/// The format, with a worked example, is in docs/model-signing.md.
///
///   ModelStatement st;
///   st.model_name = "resnet"; st.resources = {{"model.pt", "sha256", "ab12..."}};
///   std::string payload = statement_to_payload(st);            // what gets signed
///   std::string pae = dsse_pae(kInTotoPayloadType, payload);   // the signed bytes
///   SignatureBundle b = parse_signature_bundle(bytes);         // untrusted input

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aegis {

inline constexpr const char* kBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";
inline constexpr const char* kInTotoPayloadType = "application/vnd.in-toto+json";
inline constexpr const char* kInTotoStatementType = "https://in-toto.io/Statement/v1";
inline constexpr const char* kModelSigningPredicate = "https://model_signing/signature/v1.0";

/// One signed file of the model: its path relative to the model root (POSIX
/// separators) and its digest (lowercase hex).
struct ResourceDigest {
  std::string name;
  std::string algorithm = "sha256";
  std::string digest;
  bool operator==(const ResourceDigest& o) const {
    return name == o.name && algorithm == o.algorithm && digest == o.digest;
  }
};

/// How the model was turned into resources ("files": one SHA-256 per file).
struct Serialization {
  std::string method = "files";
  std::string hash_type = "sha256";
  bool allow_symlinks = false;
  std::vector<std::string> ignore_paths;
};

/// The in-toto statement a model signature carries.
struct ModelStatement {
  std::string model_name;        ///< subject name (the model directory's or file's name)
  std::string subject_digest;    ///< SHA-256 over the resources' raw digests in name order
  std::vector<ResourceDigest> resources;  ///< sorted by name
  Serialization serialization;
};

/// One DSSE signature: raw signature bytes (DER ECDSA) and the optional key id.
struct DsseSignature {
  std::string sig;
  std::string keyid;
};

/// A parsed Sigstore bundle carrying a DSSE envelope.
struct SignatureBundle {
  std::string media_type;
  std::string public_key_hint;  ///< "" when absent
  std::string payload_type;
  std::string payload;          ///< decoded payload bytes (the statement JSON)
  std::vector<DsseSignature> signatures;
};

/// Sorts the resources by name and sets subject_digest from them. Throws
/// InvalidArgument on duplicate names or digests that are not 64 hex chars.
void finalize_statement(ModelStatement& st);
/// SHA-256 (hex) over the concatenated raw digests of `resources` in the given order.
std::string subject_digest_of(const std::vector<ResourceDigest>& resources);

/// The statement as the JSON payload (2-space indent, the reference tool's key order).
std::string statement_to_payload(const ModelStatement& st);
/// Parses and checks a payload: statement type, predicate type, one subject
/// with a sha256 digest, resources, serialization. Throws CorruptData naming
/// the first problem; Unsupported for serialization methods other than "files".
ModelStatement parse_statement_payload(std::string_view payload);

/// DSSE pre-authentication encoding: "DSSEv1 <len> <type> <len> <payload>".
std::string dsse_pae(std::string_view payload_type, std::string_view payload);

/// The bundle as compact JSON.
std::string bundle_to_json(const SignatureBundle& b);
/// Parses a bundle (untrusted bytes). Throws CorruptData naming the problem.
SignatureBundle parse_signature_bundle(std::string_view bytes);

/// Standard base64 (with padding), through libsodium.
std::string base64_encode(std::string_view bytes);
/// Strict standard base64 decoding; throws CorruptData on bad input.
std::string base64_decode(std::string_view text, const std::string& what);

}  // namespace aegis
