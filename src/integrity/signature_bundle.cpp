// The model-signing v1 documents (Sigstore bundle, DSSE envelope, in-toto
// statement): building and strict parsing. No I/O, no cryptography.

#include "aegis/integrity/signature_bundle.h"

#include <sodium.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"

namespace aegis {

namespace {

using ojson = nlohmann::ordered_json;

bool is_hex_digest(const std::string& s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void hex_to_raw(const std::string& hex, uint8_t out[32]) {
  for (size_t i = 0; i < 32; ++i) out[i] = uint8_t(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
}

// Field access on untrusted JSON: every lookup says what was missing.
const ojson& field(const ojson& j, const char* key, const std::string& where) {
  AEGIS_CHECK(j.is_object(), CorruptData, where << " is not a JSON object");
  auto it = j.find(key);
  AEGIS_CHECK(it != j.end(), CorruptData, where << " has no \"" << key << "\"");
  return *it;
}

std::string string_field(const ojson& j, const char* key, const std::string& where) {
  const ojson& v = field(j, key, where);
  AEGIS_CHECK(v.is_string(), CorruptData, where << "." << key << " is not a string");
  return v.get<std::string>();
}

ojson parse_json(std::string_view bytes, const std::string& what) {
  ojson j = ojson::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  AEGIS_CHECK(!j.is_discarded(), CorruptData, what << " is not valid JSON");
  return j;
}

}  // namespace

std::string subject_digest_of(const std::vector<ResourceDigest>& resources) {
  Sha256 h;
  for (const auto& r : resources) {
    AEGIS_CHECK(is_hex_digest(r.digest), InvalidArgument, "resource " << r.name << " has a malformed digest");
    uint8_t raw[32];
    hex_to_raw(r.digest, raw);
    h.update(raw, sizeof raw);
  }
  return h.hex();
}

void finalize_statement(ModelStatement& st) {
  std::sort(st.resources.begin(), st.resources.end(),
            [](const ResourceDigest& a, const ResourceDigest& b) { return a.name < b.name; });
  for (size_t i = 1; i < st.resources.size(); ++i)
    AEGIS_CHECK(st.resources[i].name != st.resources[i - 1].name, InvalidArgument,
                "duplicate resource name " << st.resources[i].name);
  st.subject_digest = subject_digest_of(st.resources);
}

std::string statement_to_payload(const ModelStatement& st) {
  ojson resources = ojson::array();
  for (const auto& r : st.resources)
    resources.push_back(ojson{{"algorithm", r.algorithm}, {"name", r.name}, {"digest", r.digest}});
  ojson j = {
      {"_type", kInTotoStatementType},
      {"subject", ojson::array({ojson{{"name", st.model_name}, {"digest", ojson{{"sha256", st.subject_digest}}}}})},
      {"predicateType", kModelSigningPredicate},
      {"predicate", ojson{{"resources", resources},
                          {"serialization", ojson{{"allow_symlinks", st.serialization.allow_symlinks},
                                                  {"method", st.serialization.method},
                                                  {"hash_type", st.serialization.hash_type},
                                                  {"ignore_paths", st.serialization.ignore_paths}}}}}};
  return j.dump(2);
}

ModelStatement parse_statement_payload(std::string_view payload) {
  const std::string w = "statement";
  ojson j = parse_json(payload, "the signed statement");
  std::string type = string_field(j, "_type", w);
  AEGIS_CHECK(type == kInTotoStatementType, CorruptData,
              "statement type is " << type << ", expected " << kInTotoStatementType);
  std::string pred_type = string_field(j, "predicateType", w);
  AEGIS_CHECK(pred_type == kModelSigningPredicate, CorruptData,
              "predicate type is " << pred_type << ", expected " << kModelSigningPredicate);
  const ojson& subjects = field(j, "subject", w);
  AEGIS_CHECK(subjects.is_array() && subjects.size() == 1, CorruptData, "statement must have exactly one subject");
  ModelStatement st;
  st.model_name = string_field(subjects[0], "name", "subject");
  const ojson& sd = field(subjects[0], "digest", "subject");
  st.subject_digest = string_field(sd, "sha256", "subject.digest");
  AEGIS_CHECK(is_hex_digest(st.subject_digest), CorruptData, "subject digest is not a SHA-256 hex digest");

  const ojson& pred = field(j, "predicate", w);
  const ojson& ser = field(pred, "serialization", "predicate");
  st.serialization.method = string_field(ser, "method", "serialization");
  AEGIS_CHECK(st.serialization.method == "files", Unsupported,
              "serialization method \"" << st.serialization.method << "\" is not supported (only \"files\")");
  st.serialization.hash_type = string_field(ser, "hash_type", "serialization");
  AEGIS_CHECK(st.serialization.hash_type == "sha256", Unsupported,
              "hash type \"" << st.serialization.hash_type << "\" is not supported (only sha256)");
  const ojson& sym = field(ser, "allow_symlinks", "serialization");
  AEGIS_CHECK(sym.is_boolean(), CorruptData, "serialization.allow_symlinks is not a boolean");
  st.serialization.allow_symlinks = sym.get<bool>();
  if (auto it = ser.find("ignore_paths"); it != ser.end()) {
    AEGIS_CHECK(it->is_array(), CorruptData, "serialization.ignore_paths is not an array");
    for (const auto& p : *it) {
      AEGIS_CHECK(p.is_string(), CorruptData, "serialization.ignore_paths holds a non-string");
      st.serialization.ignore_paths.push_back(p.get<std::string>());
    }
  }

  const ojson& res = field(pred, "resources", "predicate");
  AEGIS_CHECK(res.is_array(), CorruptData, "predicate.resources is not an array");
  std::set<std::string> seen;
  for (const auto& r : res) {
    ResourceDigest d;
    d.name = string_field(r, "name", "resource");
    d.algorithm = string_field(r, "algorithm", "resource " + d.name);
    d.digest = string_field(r, "digest", "resource " + d.name);
    AEGIS_CHECK(d.algorithm == "sha256", Unsupported, "resource " << d.name << " uses algorithm " << d.algorithm);
    AEGIS_CHECK(is_hex_digest(d.digest), CorruptData, "resource " << d.name << " has a malformed digest");
    AEGIS_CHECK(seen.insert(d.name).second, CorruptData, "resource " << d.name << " is listed twice");
    st.resources.push_back(std::move(d));
  }
  // The subject digest must be the one the resources imply: a statement whose
  // parts disagree was not produced by a conforming signer.
  std::vector<ResourceDigest> sorted = st.resources;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  AEGIS_CHECK(subject_digest_of(sorted) == st.subject_digest, CorruptData,
              "subject digest does not match the listed resources");
  st.resources = std::move(sorted);
  return st;
}

std::string dsse_pae(std::string_view payload_type, std::string_view payload) {
  std::string out = "DSSEv1 ";
  out += std::to_string(payload_type.size());
  out += ' ';
  out += payload_type;
  out += ' ';
  out += std::to_string(payload.size());
  out += ' ';
  out += payload;
  return out;
}

std::string bundle_to_json(const SignatureBundle& b) {
  ojson sigs = ojson::array();
  for (const auto& s : b.signatures) sigs.push_back(ojson{{"sig", base64_encode(s.sig)}, {"keyid", s.keyid}});
  ojson j = {{"mediaType", b.media_type},
             {"verificationMaterial",
              ojson{{"publicKey", ojson{{"hint", b.public_key_hint}}}, {"tlogEntries", ojson::array()}}},
             {"dsseEnvelope",
              ojson{{"payload", base64_encode(b.payload)}, {"payloadType", b.payload_type}, {"signatures", sigs}}}};
  return j.dump();
}

SignatureBundle parse_signature_bundle(std::string_view bytes) {
  ojson j = parse_json(bytes, "the signature bundle");
  SignatureBundle b;
  b.media_type = string_field(j, "mediaType", "bundle");
  AEGIS_CHECK(b.media_type.rfind("application/vnd.dev.sigstore.bundle", 0) == 0, CorruptData,
              "bundle media type " << b.media_type << " is not a Sigstore bundle");
  if (auto vm = j.find("verificationMaterial"); vm != j.end() && vm->is_object()) {
    if (auto pk = vm->find("publicKey"); pk != vm->end() && pk->is_object()) {
      if (auto h = pk->find("hint"); h != pk->end() && h->is_string()) b.public_key_hint = h->get<std::string>();
    }
  }
  const ojson& env = field(j, "dsseEnvelope", "bundle");
  b.payload_type = string_field(env, "payloadType", "dsseEnvelope");
  AEGIS_CHECK(b.payload_type == kInTotoPayloadType, CorruptData,
              "DSSE payload type is " << b.payload_type << ", expected " << kInTotoPayloadType);
  b.payload = base64_decode(string_field(env, "payload", "dsseEnvelope"), "DSSE payload");
  const ojson& sigs = field(env, "signatures", "dsseEnvelope");
  AEGIS_CHECK(sigs.is_array() && !sigs.empty(), CorruptData, "DSSE envelope has no signatures");
  for (const auto& s : sigs) {
    DsseSignature d;
    d.sig = base64_decode(string_field(s, "sig", "signature"), "DSSE signature");
    if (auto k = s.find("keyid"); k != s.end() && k->is_string()) d.keyid = k->get<std::string>();
    b.signatures.push_back(std::move(d));
  }
  return b;
}

std::string base64_encode(std::string_view bytes) {
  AEGIS_CHECK(sodium_init() >= 0, Internal, "libsodium failed to initialise");
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string base64_decode(std::string_view text, const std::string& what) {
  AEGIS_CHECK(sodium_init() >= 0, Internal, "libsodium failed to initialise");
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  int rc = sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(),
                             nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL);
  AEGIS_CHECK(rc == 0 && end == text.data() + text.size(), CorruptData, what << " is not valid base64");
  out.resize(len);
  return out;
}

}  // namespace aegis
