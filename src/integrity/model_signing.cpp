// Model signing (OpenSSF model-signing v1, "key" method): hashing a model into
// resources, ECDSA signatures through OpenSSL over the DSSE PAE, verification
// naming what differs.

#include "aegis/integrity/model_signing.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"

namespace fs = std::filesystem;

namespace aegis {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string read_small_file(const std::string& path, const std::string& what) {
  AEGIS_CHECK(fs::exists(path), NotFound, what << " not found: " << path);
  AEGIS_CHECK(fs::is_regular_file(path), InvalidArgument, what << " is not a regular file: " << path);
  AEGIS_CHECK(fs::file_size(path) <= (64u << 20), CorruptData, what << " is larger than 64 MiB: " << path);
  std::ifstream in(path, std::ios::binary);
  AEGIS_CHECK(in.good(), Io, "cannot open " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file_atomic(const std::string& path, const std::string& bytes, bool private_mode = false) {
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    AEGIS_CHECK(out.good(), Io, "cannot write " << tmp);
    if (private_mode) fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.flush();
    AEGIS_CHECK(out.good(), Io, "error writing " << tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  AEGIS_CHECK(!ec, Io, "cannot rename " << tmp << " to " << path << ": " << ec.message());
}

Pkey load_private_key(const std::string& path) {
  std::string pem = read_small_file(path, "private key");
  Bio bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  AEGIS_CHECK(key, CorruptData, path << " is not a PEM private key (" << openssl_error() << ")");
  return key;
}

Pkey load_public_key(const std::string& path, std::string* pem_out = nullptr) {
  std::string pem = read_small_file(path, "public key");
  Bio bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  AEGIS_CHECK(key, CorruptData, path << " is not a PEM public key (" << openssl_error() << ")");
  if (pem_out) {
    Bio out(BIO_new(BIO_s_mem()));
    AEGIS_CHECK(PEM_write_bio_PUBKEY(out.get(), key.get()) == 1, Internal, "cannot encode public key");
    char* data = nullptr;
    long n = BIO_get_mem_data(out.get(), &data);
    pem_out->assign(data, size_t(n));
  }
  return key;
}

// The reference tool hashes with the digest matching the curve size.
const EVP_MD* digest_for(EVP_PKEY* key, const std::string& what) {
  AEGIS_CHECK(EVP_PKEY_get_base_id(key) == EVP_PKEY_EC, InvalidArgument,
              what << " is not an elliptic-curve key (model-signing keys are ECDSA P-256/P-384/P-521)");
  char group[64] = {0};
  size_t len = 0;
  AEGIS_CHECK(EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1, CorruptData,
              what << ": cannot read the curve");
  std::string g(group, len);
  if (g == "prime256v1" || g == "P-256") return EVP_sha256();
  if (g == "secp384r1" || g == "P-384") return EVP_sha384();
  if (g == "secp521r1" || g == "P-521") return EVP_sha512();
  AEGIS_FAIL(InvalidArgument, what << " uses curve " << g << "; model signing supports P-256, P-384 and P-521");
}

std::string public_pem_of(EVP_PKEY* key) {
  Bio out(BIO_new(BIO_s_mem()));
  AEGIS_CHECK(PEM_write_bio_PUBKEY(out.get(), key) == 1, Internal, "cannot encode public key");
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, size_t(n));
}

int hashing_threads(int requested) {
  if (requested > 0) return requested;
  int t = int(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("AEGIS_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) t = v;
  }
  return std::max(1, t);
}

bool is_ignored(const std::string& rel, const std::vector<std::string>& ignore) {
  for (const auto& ig : ignore) {
    if (ig.empty()) continue;
    if (rel == ig || (rel.size() > ig.size() && rel.compare(0, ig.size(), ig) == 0 && rel[ig.size()] == '/'))
      return true;
  }
  return false;
}

// An ignore path as given (relative to the model root, or a path that points
// inside the model) as a path relative to the model root.
std::string relative_ignore(const fs::path& root, const std::string& p) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(p), ec);
  fs::path croot = fs::weakly_canonical(fs::absolute(root), ec);
  if (!ec) {
    fs::path rel = abs.lexically_relative(croot);
    if (!rel.empty() && *rel.begin() != ".." && rel != ".") return rel.generic_string();
  }
  std::string s = fs::path(p).lexically_normal().generic_string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string sign_bytes(EVP_PKEY* key, const std::string& data) {
  const EVP_MD* md = digest_for(key, "signing key");
  MdCtx ctx(EVP_MD_CTX_new());
  AEGIS_CHECK(EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) == 1, Internal,
              "cannot start signing: " << openssl_error());
  size_t len = 0;
  AEGIS_CHECK(
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1,
      Internal, "cannot size signature: " << openssl_error());
  std::string sig(len, '\0');
  AEGIS_CHECK(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1,
              Internal, "signing failed: " << openssl_error());
  sig.resize(len);
  return sig;
}

bool verify_bytes(EVP_PKEY* key, const EVP_MD* md, const std::string& data, const std::string& sig) {
  MdCtx ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) != 1) return false;
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ERR_clear_error();
  return rc == 1;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

}  // namespace

std::string generate_signing_key(const std::string& private_path) {
  AEGIS_CHECK(!private_path.empty(), InvalidArgument, "key path is empty");
  std::string pub_path = private_path + ".pub";
  AEGIS_CHECK(!fs::exists(private_path), InvalidArgument, "refusing to overwrite existing key " << private_path);
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  AEGIS_CHECK(key, Internal, "key generation failed: " << openssl_error());
  Bio out(BIO_new(BIO_s_mem()));
  AEGIS_CHECK(PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1, Internal,
              "cannot encode private key: " << openssl_error());
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  write_file_atomic(private_path, std::string(data, size_t(n)), /*private_mode=*/true);
  write_file_atomic(pub_path, public_pem_of(key.get()));
  return pub_path;
}

std::string public_key_hint(const std::string& public_key_path) {
  std::string pem;
  load_public_key(public_key_path, &pem);
  return sha256_hex(pem);
}

std::string default_signature_path(const std::string& model_path) {
  fs::path p(model_path);
  if (fs::is_directory(p)) return (p / "model.sig").string();
  return model_path + ".sig";
}

ModelStatement hash_model(const std::string& model_path, const std::string& signature_path,
                          const ManifestOptions& options) {
  fs::path root(model_path);
  std::error_code ec;
  auto st = fs::symlink_status(root, ec);
  AEGIS_CHECK(!ec && fs::exists(st), NotFound, "model not found: " << model_path);
  AEGIS_CHECK(!fs::is_symlink(st), CorruptData, "model path is a symlink: " << model_path);
  while (root.has_filename() == false && root.has_parent_path() && root != root.root_path()) root = root.parent_path();

  ModelStatement out;
  out.model_name = fs::absolute(root).lexically_normal().filename().string();
  if (out.model_name.empty()) out.model_name = fs::absolute(root).lexically_normal().parent_path().filename().string();

  std::vector<std::string> ignore;
  std::vector<std::pair<std::string, fs::path>> files;  // name, path
  if (fs::is_regular_file(st)) {
    files.emplace_back(root.filename().string(), root);
  } else {
    AEGIS_CHECK(fs::is_directory(st), CorruptData, "model is neither a file nor a directory: " << model_path);
    if (!signature_path.empty()) {
      std::string sig_rel = relative_ignore(root, signature_path);
      if (fs::path(sig_rel).is_relative() && sig_rel.rfind("..", 0) != 0) ignore.push_back(sig_rel);
    }
    for (const auto& p : options.ignore_paths_) ignore.push_back(relative_ignore(root, p));
    for (const char* d : {".git", ".gitattributes", ".gitignore", ".github", "model.att.sig"})
      if (std::find(ignore.begin(), ignore.end(), d) == ignore.end()) ignore.push_back(d);
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      std::string rel = it->path().lexically_relative(root).generic_string();
      if (is_ignored(rel, ignore)) {
        if (it->is_directory() && !it->is_symlink()) it.disable_recursion_pending();
        continue;
      }
      auto est = it->symlink_status();
      AEGIS_CHECK(!fs::is_symlink(est), CorruptData, "model contains a symlink: " << rel);
      if (fs::is_directory(est)) continue;
      AEGIS_CHECK(fs::is_regular_file(est), CorruptData, "model contains a special file: " << rel);
      files.emplace_back(rel, it->path());
    }
    AEGIS_CHECK(!ec, Io, "cannot list " << model_path << ": " << ec.message());
  }

  // Hash in parallel: each worker takes the next file; each file streams.
  std::vector<std::string> digests(files.size());
  std::vector<std::string> errors(files.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < files.size(); i = next++) {
      try {
        digests[i] = sha256_file(files[i].second.string());
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  };
  int n_threads = std::min<int>(hashing_threads(options.threads_), int(std::max<size_t>(1, files.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < n_threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (size_t i = 0; i < files.size(); ++i)
    AEGIS_CHECK(errors[i].empty(), Io, "cannot hash " << files[i].first << ": " << errors[i]);

  for (size_t i = 0; i < files.size(); ++i) out.resources.push_back({files[i].first, "sha256", digests[i]});
  out.serialization.ignore_paths = ignore;
  finalize_statement(out);
  return out;
}

nlohmann::json SignResult::to_json() const {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& r : statement.resources) files.push_back({{"name", r.name}, {"sha256", r.digest}});
  return {{"signature", signature_path},
          {"model_name", statement.model_name},
          {"subject_digest", statement.subject_digest},
          {"public_key_hint", public_key_hint},
          {"files", files}};
}

SignResult sign_model(const std::string& model_path, const SignOptions& options) {
  AEGIS_CHECK(!options.private_key_.empty(), InvalidArgument, "a private key is required (--key)");
  Pkey key = load_private_key(options.private_key_);
  digest_for(key.get(), options.private_key_);  // checks the key type before hashing a large model
  SignResult r;
  r.signature_path = options.signature_path_.empty() ? default_signature_path(model_path) : options.signature_path_;
  r.statement = hash_model(model_path, r.signature_path, options.manifest_);
  if (!options.model_name_.empty()) r.statement.model_name = options.model_name_;
  SignatureBundle b = sign_payload(statement_to_payload(r.statement), options.private_key_);
  r.public_key_hint = b.public_key_hint;
  write_file_atomic(r.signature_path, bundle_to_json(b));
  return r;
}

nlohmann::json VerifyResult::to_json() const {
  nlohmann::json ren = nlohmann::json::array();
  for (const auto& [a, b] : renamed) ren.push_back({{"from", a}, {"to", b}});
  return {{"ok", ok},       {"reason", reason},   {"model_name", model_name}, {"subject_digest", subject_digest},
          {"files", files}, {"changed", changed}, {"missing", missing},       {"added", added},
          {"renamed", ren}};
}

VerifyResult verify_model(const std::string& model_path, const VerifyOptions& options) {
  AEGIS_CHECK(!options.public_key_.empty(), InvalidArgument, "a public key is required (--pub)");
  std::error_code ec;
  AEGIS_CHECK(fs::exists(fs::symlink_status(model_path, ec)), NotFound, "model not found: " << model_path);
  std::string sig_path = options.signature_path_.empty() ? default_signature_path(model_path) : options.signature_path_;
  digest_for(load_public_key(options.public_key_).get(), options.public_key_);  // key errors before anything else
  std::string bundle_bytes = read_small_file(sig_path, "signature");

  VerifyResult r;
  auto fail = [&](std::string reason) {
    r.ok = false;
    r.reason = std::move(reason);
    return r;
  };
  SignatureBundle bundle;
  try {
    bundle = parse_signature_bundle(bundle_bytes);
  } catch (const Error& e) {
    return fail(std::string("malformed signature file ") + sig_path + ": " + e.what());
  }
  std::string bad_signature;
  if (!verify_bundle_signature(bundle, options.public_key_, &bad_signature)) return fail(bad_signature);
  // Only signed bytes are parsed from here on.
  ModelStatement signed_st;
  try {
    signed_st = parse_statement_payload(bundle.payload);
  } catch (const Error& e) {
    return fail(std::string("signed statement is not a model-signing v1 statement: ") + e.what());
  }
  r.model_name = signed_st.model_name;
  r.ignore_paths = signed_st.serialization.ignore_paths;
  r.subject_digest = signed_st.subject_digest;
  if (signed_st.serialization.allow_symlinks)
    return fail("signature allows symlinks, which aegis refuses to verify (a link can point anywhere)");

  ManifestOptions mo = options.manifest_;
  for (const auto& p : signed_st.serialization.ignore_paths) mo.ignore_paths_.push_back(p);
  ModelStatement actual;
  try {
    actual = hash_model(model_path, sig_path, mo);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::CorruptData) throw;
    return fail(e.what());
  }
  r.files = actual.resources.size();

  std::map<std::string, std::string> want, have;
  for (const auto& x : signed_st.resources) want[x.name] = x.digest;
  for (const auto& x : actual.resources) have[x.name] = x.digest;
  for (const auto& [name, d] : want) {
    auto it = have.find(name);
    if (it == have.end())
      r.missing.push_back(name);
    else if (it->second != d)
      r.changed.push_back(name);
  }
  for (const auto& [name, d] : have)
    if (!want.count(name)) r.added.push_back(name);
  // A missing file whose bytes reappear under a new name was renamed.
  for (auto m = r.missing.begin(); m != r.missing.end();) {
    auto a = std::find_if(r.added.begin(), r.added.end(), [&](const std::string& n) { return have[n] == want[*m]; });
    if (a != r.added.end()) {
      r.renamed.emplace_back(*m, *a);
      r.added.erase(a);
      m = r.missing.erase(m);
    } else {
      ++m;
    }
  }
  if (r.changed.empty() && r.missing.empty() && r.added.empty() && r.renamed.empty()) {
    // Same files and digests imply the same subject digest; check it anyway.
    if (actual.subject_digest != signed_st.subject_digest) return fail("model digest differs from the signed digest");
    r.ok = true;
    return r;
  }
  std::string why = "model differs from the signature for \"" + signed_st.model_name + "\":";
  if (!r.changed.empty()) why += " changed " + join(r.changed) + ";";
  if (!r.missing.empty()) why += " missing " + join(r.missing) + ";";
  if (!r.added.empty()) why += " added (not signed) " + join(r.added) + ";";
  for (const auto& [a, b] : r.renamed) why += " renamed " + a + " -> " + b + ";";
  why.pop_back();
  return fail(why);
}

SignatureBundle sign_payload(const std::string& payload, const std::string& private_key_path) {
  Pkey key = load_private_key(private_key_path);
  SignatureBundle b;
  b.media_type = kBundleMediaType;
  b.public_key_hint = sha256_hex(public_pem_of(key.get()));
  b.payload_type = kInTotoPayloadType;
  b.payload = payload;
  b.signatures.push_back({sign_bytes(key.get(), dsse_pae(b.payload_type, payload)), ""});
  return b;
}

bool verify_bundle_signature(const SignatureBundle& bundle, const std::string& public_key_path, std::string* why) {
  std::string pem;
  Pkey key = load_public_key(public_key_path, &pem);
  const EVP_MD* md = digest_for(key.get(), public_key_path);
  std::string pae = dsse_pae(bundle.payload_type, bundle.payload);
  for (const auto& s : bundle.signatures)
    if (verify_bytes(key.get(), md, pae, s.sig)) return true;
  if (why) {
    std::string hint = sha256_hex(pem);
    *why = "signature does not verify with public key " + public_key_path;
    if (!bundle.public_key_hint.empty() && bundle.public_key_hint != hint)
      *why += " (the bundle names key " + bundle.public_key_hint.substr(0, 16) + "..., this key is " +
              hint.substr(0, 16) + "...: signed with a different key)";
    else
      *why += " (the signed statement or the signature bytes were altered)";
  }
  return false;
}

VerifyResult require_verified_model(const std::string& model_path, const VerifyOptions& options) {
  VerifyResult r = verify_model(model_path, options);
  AEGIS_CHECK(r.ok, PermissionDenied, "model " << model_path << " failed verification: " << r.reason);
  return r;
}

}  // namespace aegis
