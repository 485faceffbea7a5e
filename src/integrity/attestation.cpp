// Attestations bound to a model's model-signing subject (see attestation.h).

#include "aegis/integrity/attestation.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"

namespace fs = std::filesystem;

namespace aegis {

namespace {

using ojson = nlohmann::ordered_json;

std::string attestation_payload(const std::string& name, const std::string& digest,
                                const std::vector<Attachment>& attachments) {
  ojson items = ojson::array();
  for (const auto& a : attachments)
    items.push_back(ojson{{"kind", a.kind}, {"sha256", sha256_hex(a.content.dump())}, {"content", a.content}});
  ojson j = {{"_type", kInTotoStatementType},
             {"subject", ojson::array({ojson{{"name", name}, {"digest", ojson{{"sha256", digest}}}}})},
             {"predicateType", kAegisAttestationPredicate},
             {"predicate", ojson{{"attachments", items}}}};
  return j.dump(2);
}

// Both the signature and the attestation are left out of the model's digest.
ManifestOptions with_signature_files(const std::string& model_path, ManifestOptions m) {
  if (fs::is_directory(model_path)) m.ignore_paths_.push_back("model.sig");
  return m;
}

}  // namespace

Attachment Attachment::of_file(const std::string& kind, const std::string& path) {
  AEGIS_CHECK(fs::is_regular_file(path), NotFound, "file not found: " << path);
  return Attachment(
      kind,
      {{"file", fs::path(path).filename().string()}, {"size", fs::file_size(path)}, {"sha256", sha256_file(path)}});
}

nlohmann::json AttestationResult::to_json() const {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& a : attachments) items.push_back({{"kind", a.kind}, {"content", a.content}});
  return {{"path", path}, {"model_name", model_name}, {"subject_digest", subject_digest}, {"attachments", items}};
}

std::string default_attestation_path(const std::string& model_path) {
  if (fs::is_directory(model_path)) return (fs::path(model_path) / "model.att.sig").string();
  return model_path + ".att.sig";
}

AttestationResult attest_model(const std::string& model_path, const std::vector<Attachment>& attachments,
                               const SignOptions& options) {
  AEGIS_CHECK(!attachments.empty(), InvalidArgument, "nothing to attest: give at least one attachment");
  for (const auto& a : attachments) AEGIS_CHECK(!a.kind.empty(), InvalidArgument, "an attachment has no kind");
  AttestationResult r;
  r.path = options.signature_path_.empty() ? default_attestation_path(model_path) : options.signature_path_;
  ModelStatement st = hash_model(model_path, r.path, with_signature_files(model_path, options.manifest_));
  r.model_name = options.model_name_.empty() ? st.model_name : options.model_name_;
  r.subject_digest = st.subject_digest;
  r.attachments = attachments;
  SignatureBundle b =
      sign_payload(attestation_payload(r.model_name, r.subject_digest, attachments), options.private_key_);
  std::string tmp = r.path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    AEGIS_CHECK(out.good(), Io, "cannot write " << tmp);
    out << bundle_to_json(b);
  }
  fs::rename(tmp, r.path);
  return r;
}

AttestationResult verify_attestation(const std::string& model_path, const VerifyOptions& options) {
  AttestationResult r;
  r.path = options.signature_path_.empty() ? default_attestation_path(model_path) : options.signature_path_;
  AEGIS_CHECK(fs::is_regular_file(r.path), NotFound, "attestation not found: " << r.path);
  std::ifstream in(r.path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  SignatureBundle b = parse_signature_bundle(ss.str());
  std::string why;
  AEGIS_CHECK(verify_bundle_signature(b, options.public_key_, &why), PermissionDenied, "attestation: " << why);
  nlohmann::json st = nlohmann::json::parse(b.payload, nullptr, false);
  AEGIS_CHECK(st.is_object() && st.value("predicateType", "") == kAegisAttestationPredicate && st.contains("subject") &&
                  st["subject"].is_array() && st["subject"].size() == 1 && st["subject"][0].is_object() &&
                  st.contains("predicate") && st["predicate"].is_object() && st["predicate"].contains("attachments") &&
                  st["predicate"]["attachments"].is_array(),
              CorruptData, r.path << " is not an aegis attestation");
  const auto& subject = st["subject"][0];
  r.model_name = subject.value("name", "");
  r.subject_digest =
      subject.contains("digest") && subject["digest"].is_object() ? subject["digest"].value("sha256", "") : "";
  ModelStatement now = hash_model(model_path, r.path, with_signature_files(model_path, options.manifest_));
  AEGIS_CHECK(now.subject_digest == r.subject_digest, PermissionDenied,
              "attestation is for other bytes: the model changed since it was attested (digest "
                  << now.subject_digest.substr(0, 16) << "..., attested " << r.subject_digest.substr(0, 16) << "...)");
  for (const auto& a : st["predicate"]["attachments"]) {
    AEGIS_CHECK(a.is_object() && a.contains("kind") && a["kind"].is_string() && a.contains("content"), CorruptData,
                r.path << ": malformed attachment");
    r.attachments.emplace_back(a["kind"].get<std::string>(), a["content"]);
  }
  return r;
}

}  // namespace aegis
