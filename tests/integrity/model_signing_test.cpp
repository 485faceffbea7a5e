// Model signing: interoperability with the OpenSSF model-signing v1.1.0
// fixture (verify its bundle, produce the same structure) and every failure
// mode verification must catch.

#include "aegis/integrity/model_signing.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"
#include "aegis/integrity/attestation.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace aegis;
using aegis::testing::TempDir;

namespace {

// The reference tool's vectors; $AEGIS_SHARED_DIR overrides the location
// (a git worktree outside /work/main has no ../shared next to it).
fs::path fixture_dir() {
  const char* env = std::getenv("AEGIS_SHARED_DIR");
  return fs::path(env && *env ? env : AEGIS_SHARED_DIR) / "fixtures" / "model-signing-v1.1.0";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

// A writable copy of the fixture's model directory.
fs::path copy_fixture_model(const TempDir& dir) {
  fs::path dst = dir.path() / "v1.1.0-elliptic-key";
  fs::copy(fixture_dir() / "model", dst, fs::copy_options::recursive);
  fs::permissions(dst, fs::perms::owner_write, fs::perm_options::add);
  for (auto& e : fs::recursive_directory_iterator(dst))
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  return dst;
}

std::string fixture_pub() { return (fixture_dir() / "keys" / "signing-key-pub.pem").string(); }
std::string fixture_priv() { return (fixture_dir() / "keys" / "signing-key.pem").string(); }

// A small model directory with nested files.
fs::path make_model_dir(const TempDir& dir, const std::string& name = "mymodel") {
  fs::path m = dir.path() / name;
  fs::create_directories(m / "weights");
  spit(m / "config.json", "{\"layers\": 3}\n");
  spit(m / "weights" / "a.bin", std::string(3000, '\x01'));
  spit(m / "weights" / "b.bin", "bbbb");
  return m;
}

}  // namespace

// Skips the test (from its body) when the fixture is absent.
#define REQUIRE_FIXTURE()                                 \
  if (!fs::exists(fixture_dir() / "model" / "model.sig")) \
  GTEST_SKIP() << "model-signing fixture " << fixture_dir() << " is absent"

TEST(ModelSigningFixture, VerifiesTheReferenceBundle) {
  REQUIRE_FIXTURE();
  VerifyResult r = verify_model((fixture_dir() / "model").string(), VerifyOptions(fixture_pub()));
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.model_name, "v1.1.0-elliptic-key");
  EXPECT_EQ(r.files, 2u);  // ignore-me and model.sig are excluded by the signed ignore list
  EXPECT_EQ(r.subject_digest, "92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4");
}

TEST(ModelSigningFixture, RejectsAnyChangedByte) {
  REQUIRE_FIXTURE();
  TempDir dir;
  for (const std::string file : {"signme-1", "signme-2"}) {
    fs::path m = copy_fixture_model(dir);
    std::string bytes = slurp(m / file);
    for (size_t pos : {size_t(0), bytes.size() - 1}) {
      std::string t = bytes;
      t[pos] = char(t[pos] ^ 0x01);
      spit(m / file, t);
      VerifyResult r = verify_model(m.string(), VerifyOptions(fixture_pub()));
      EXPECT_FALSE(r.ok);
      EXPECT_NE(r.reason.find("changed " + file), std::string::npos) << r.reason;
      ASSERT_EQ(r.changed.size(), 1u);
      EXPECT_EQ(r.changed[0], file);
    }
    fs::remove_all(m);
  }
}

TEST(ModelSigningFixture, AppendedByteAndEmptiedFileAreRefused) {
  REQUIRE_FIXTURE();
  TempDir dir;
  fs::path m = copy_fixture_model(dir);
  spit(m / "signme-2", slurp(m / "signme-2") + "\n");
  EXPECT_FALSE(verify_model(m.string(), VerifyOptions(fixture_pub())).ok);
  spit(m / "signme-2", "");
  EXPECT_FALSE(verify_model(m.string(), VerifyOptions(fixture_pub())).ok);
}

TEST(ModelSigningFixture, RejectsAddedMissingAndRenamedFiles) {
  REQUIRE_FIXTURE();
  TempDir dir;
  fs::path m = copy_fixture_model(dir);
  spit(m / "extra.bin", "x");
  VerifyResult added = verify_model(m.string(), VerifyOptions(fixture_pub()));
  EXPECT_FALSE(added.ok);
  EXPECT_EQ(added.added, std::vector<std::string>{"extra.bin"});
  EXPECT_NE(added.reason.find("added (not signed) extra.bin"), std::string::npos) << added.reason;
  fs::remove(m / "extra.bin");

  fs::remove(m / "signme-1");
  VerifyResult missing = verify_model(m.string(), VerifyOptions(fixture_pub()));
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.missing, std::vector<std::string>{"signme-1"});
  EXPECT_NE(missing.reason.find("missing signme-1"), std::string::npos) << missing.reason;

  fs::copy(fixture_dir() / "model" / "signme-1", m / "renamed-1");
  VerifyResult renamed = verify_model(m.string(), VerifyOptions(fixture_pub()));
  EXPECT_FALSE(renamed.ok);
  ASSERT_EQ(renamed.renamed.size(), 1u);
  EXPECT_EQ(renamed.renamed[0].first, "signme-1");
  EXPECT_EQ(renamed.renamed[0].second, "renamed-1");
  EXPECT_NE(renamed.reason.find("renamed signme-1 -> renamed-1"), std::string::npos) << renamed.reason;
}

TEST(ModelSigningFixture, RejectsSymlinks) {
  REQUIRE_FIXTURE();
  TempDir dir;
  fs::path m = copy_fixture_model(dir);
  fs::path outside = dir.path() / "outside";
  spit(outside, "signme-1\n");
  fs::remove(m / "signme-1");
  fs::create_symlink(outside, m / "signme-1");  // same bytes, through a link
  VerifyResult r = verify_model(m.string(), VerifyOptions(fixture_pub()));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("symlink: signme-1"), std::string::npos) << r.reason;
}

TEST(ModelSigningFixture, RejectsWrongKeyNamingIt) {
  REQUIRE_FIXTURE();
  TempDir dir;
  std::string pub = generate_signing_key(dir.file("other.pem"));
  VerifyResult r = verify_model((fixture_dir() / "model").string(), VerifyOptions(pub));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("does not verify"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("different key"), std::string::npos) << r.reason;
}

TEST(ModelSigningFixture, RejectsAlteredPayloadOrSignature) {
  REQUIRE_FIXTURE();
  TempDir dir;
  fs::path m = copy_fixture_model(dir);
  auto bundle = nlohmann::ordered_json::parse(slurp(m / "model.sig"));
  // A statement listing different digests, keeping the original signature.
  std::string payload = base64_decode(bundle["dsseEnvelope"]["payload"].get<std::string>(), "payload");
  size_t at = payload.find("bc9a717d");
  ASSERT_NE(at, std::string::npos);
  payload[at] = 'c';
  auto forged = bundle;
  forged["dsseEnvelope"]["payload"] = base64_encode(payload);
  spit(m / "model.sig", forged.dump());
  VerifyResult r = verify_model(m.string(), VerifyOptions(fixture_pub()));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("altered"), std::string::npos) << r.reason;

  auto flipped = bundle;
  std::string sig = base64_decode(bundle["dsseEnvelope"]["signatures"][0]["sig"].get<std::string>(), "sig");
  sig[sig.size() - 1] = char(sig[sig.size() - 1] ^ 0x01);
  flipped["dsseEnvelope"]["signatures"][0]["sig"] = base64_encode(sig);
  spit(m / "model.sig", flipped.dump());
  EXPECT_FALSE(verify_model(m.string(), VerifyOptions(fixture_pub())).ok);

  spit(m / "model.sig", "{\"mediaType\": 3}");
  VerifyResult bad = verify_model(m.string(), VerifyOptions(fixture_pub()));
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.reason.find("malformed signature file"), std::string::npos) << bad.reason;
}

TEST(ModelSigningFixture, PayloadEncodingMatchesTheReferenceByteForByte) {
  REQUIRE_FIXTURE();
  auto bundle = nlohmann::ordered_json::parse(slurp(fixture_dir() / "model" / "model.sig"));
  std::string reference = base64_decode(bundle["dsseEnvelope"]["payload"].get<std::string>(), "payload");
  ModelStatement st = parse_statement_payload(reference);
  // Rebuild it from our own hashing of the files, with the reference's name and ignore list.
  ModelStatement ours = hash_model((fixture_dir() / "model").string(), (fixture_dir() / "model" / "model.sig").string(),
                                   ManifestOptions().ignore_paths(st.serialization.ignore_paths));
  EXPECT_EQ(ours.resources, st.resources);
  EXPECT_EQ(ours.subject_digest, st.subject_digest);
  ours.model_name = st.model_name;
  ours.serialization.ignore_paths = st.serialization.ignore_paths;
  EXPECT_EQ(statement_to_payload(ours), reference);
}

// The JSON skeleton of a document: keys in order, value types, recursively
// (strings' values are not compared; arrays by their first element).
nlohmann::ordered_json skeleton(const nlohmann::ordered_json& j) {
  if (j.is_object()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (auto it = j.begin(); it != j.end(); ++it) out.push_back({it.key(), skeleton(it.value())});
    return out;
  }
  if (j.is_array()) return j.empty() ? nlohmann::ordered_json("[]") : nlohmann::ordered_json::array({skeleton(j[0])});
  return j.type_name();
}

TEST(ModelSigningFormat, AegisBundleHasTheReferenceStructure) {
  REQUIRE_FIXTURE();
  TempDir dir;
  fs::path m = make_model_dir(dir);
  std::string pub = generate_signing_key(dir.file("key.pem"));
  SignResult s = sign_model(m.string(), SignOptions(dir.file("key.pem")));
  EXPECT_EQ(s.signature_path, (m / "model.sig").string());

  auto ref = nlohmann::ordered_json::parse(slurp(fixture_dir() / "model" / "model.sig"));
  auto ours = nlohmann::ordered_json::parse(slurp(m / "model.sig"));
  EXPECT_EQ(skeleton(ours), skeleton(ref));
  EXPECT_EQ(ours["mediaType"], ref["mediaType"]);
  EXPECT_EQ(ours["dsseEnvelope"]["payloadType"], ref["dsseEnvelope"]["payloadType"]);
  // The hint is SHA-256 of the public key's PEM, as the reference computes it.
  EXPECT_EQ(ours["verificationMaterial"]["publicKey"]["hint"].get<std::string>(), sha256_hex(slurp(pub)));

  auto ref_st =
      nlohmann::ordered_json::parse(base64_decode(ref["dsseEnvelope"]["payload"].get<std::string>(), "payload"));
  auto our_st =
      nlohmann::ordered_json::parse(base64_decode(ours["dsseEnvelope"]["payload"].get<std::string>(), "payload"));
  EXPECT_EQ(skeleton(our_st), skeleton(ref_st));
  EXPECT_EQ(our_st["predicateType"], ref_st["predicateType"]);
  EXPECT_EQ(our_st["subject"][0]["name"], "mymodel");
  // Canonical order: resources sorted by name; subject digest over their raw digests in that order.
  std::vector<std::string> names;
  std::string raw;
  for (const auto& r : our_st["predicate"]["resources"]) {
    names.push_back(r["name"].get<std::string>());
    EXPECT_EQ(r["digest"].get<std::string>(), sha256_file((m / r["name"].get<std::string>()).string()));
    for (size_t i = 0; i < 64; i += 2) raw += char(std::stoi(r["digest"].get<std::string>().substr(i, 2), nullptr, 16));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"config.json", "weights/a.bin", "weights/b.bin"}));
  EXPECT_EQ(our_st["subject"][0]["digest"]["sha256"].get<std::string>(), sha256_hex(raw));
  EXPECT_TRUE(verify_model(m.string(), VerifyOptions(pub)).ok);
}

TEST(ModelSigningFormat, IndependentPythonCheckOfAegisSignature) {
  // Python's `cryptography` (Debian python3-cryptography) checks the ECDSA
  // signature over the DSSE PAE: an implementation that shares no code with ours.
  auto probe = aegis::testing::run_command("/usr/bin/python3 -c 'import cryptography'");
  if (probe.exit_code != 0) GTEST_SKIP() << "python3-cryptography is absent";
  TempDir dir;
  fs::path m = make_model_dir(dir);
  std::string pub = generate_signing_key(dir.file("key.pem"));
  sign_model(m.string(), SignOptions(dir.file("key.pem")));
  spit(dir.path() / "check.py", R"(import base64, hashlib, json, sys
from cryptography.hazmat.primitives import serialization, hashes
from cryptography.hazmat.primitives.asymmetric import ec
b = json.load(open(sys.argv[1]))
env = b['dsseEnvelope']
p = base64.b64decode(env['payload']); t = env['payloadType'].encode()
pae = b'DSSEv1 %d %s %d %s' % (len(t), t, len(p), p)
key = serialization.load_pem_public_key(open(sys.argv[2], 'rb').read())
key.verify(base64.b64decode(env['signatures'][0]['sig']), pae, ec.ECDSA(hashes.SHA256()))
st = json.loads(p)
res = sorted(st['predicate']['resources'], key=lambda r: r['name'])
assert st['subject'][0]['digest']['sha256'] == hashlib.sha256(b''.join(bytes.fromhex(r['digest']) for r in res)).hexdigest()
print('python-ok')
)");
  auto r = aegis::testing::run_command("/usr/bin/python3 " + dir.file("check.py") + " " + (m / "model.sig").string() +
                                       " " + pub);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("python-ok"), std::string::npos);
}

TEST(ModelSigning, SignsWithTheReferenceP384KeyAndVerifies) {
  REQUIRE_FIXTURE();
  TempDir dir;
  fs::path m = make_model_dir(dir);
  sign_model(m.string(), SignOptions(fixture_priv()));
  EXPECT_TRUE(verify_model(m.string(), VerifyOptions(fixture_pub())).ok);
}

TEST(ModelSigning, SingleFileModel) {
  TempDir dir;
  std::string model = dir.file("model.pt");
  spit(model, std::string(5000, 'w'));
  std::string pub = generate_signing_key(dir.file("k.pem"));
  SignResult s = sign_model(model, SignOptions(dir.file("k.pem")));
  EXPECT_EQ(s.signature_path, model + ".sig");
  ASSERT_EQ(s.statement.resources.size(), 1u);
  EXPECT_EQ(s.statement.resources[0].name, "model.pt");
  EXPECT_TRUE(verify_model(model, VerifyOptions(pub)).ok);
  std::string b = slurp(model);
  b[2500] = 'x';
  spit(model, b);
  VerifyResult r = verify_model(model, VerifyOptions(pub));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("changed model.pt"), std::string::npos) << r.reason;
  EXPECT_THROW(require_verified_model(model, VerifyOptions(pub)), Error);
}

TEST(ModelSigning, ManifestForAnotherModelIsRefused) {
  TempDir dir;
  fs::path a = make_model_dir(dir, "model-a");
  fs::path b = make_model_dir(dir, "model-b");
  spit(b / "weights" / "a.bin", std::string(3000, '\x02'));
  std::string pub = generate_signing_key(dir.file("k.pem"));
  sign_model(a.string(), SignOptions(dir.file("k.pem")));
  fs::copy(a / "model.sig", b / "model.sig");
  VerifyResult r = verify_model(b.string(), VerifyOptions(pub));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("for \"model-a\""), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("changed weights/a.bin"), std::string::npos) << r.reason;
}

TEST(ModelSigning, SymlinkInsideModelRefusedAtSigning) {
  TempDir dir;
  fs::path m = make_model_dir(dir);
  fs::create_directory_symlink(dir.path(), m / "loop");
  generate_signing_key(dir.file("k.pem"));
  try {
    sign_model(m.string(), SignOptions(dir.file("k.pem")));
    FAIL() << "signed a model containing a symlink";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("symlink: loop"), std::string::npos) << e.what();
  }
}

TEST(ModelSigning, IgnorePathsAndParallelHashingAgree) {
  TempDir dir;
  fs::path m = make_model_dir(dir);
  for (int i = 0; i < 20; ++i)
    spit(m / (std::string("f") += std::to_string(i)), std::string(size_t(1000 + i), char('a' + i)));
  ModelStatement one = hash_model(m.string(), "", ManifestOptions().threads(1));
  ModelStatement many = hash_model(m.string(), "", ManifestOptions().threads(4));
  EXPECT_EQ(one.resources, many.resources);
  EXPECT_EQ(one.subject_digest, many.subject_digest);
  ModelStatement ig = hash_model(m.string(), "", ManifestOptions().ignore_paths({"weights"}));
  EXPECT_EQ(ig.resources.size(), one.resources.size() - 2);
  for (const auto& r : ig.resources) EXPECT_NE(r.name.rfind("weights/", 0), 0u) << r.name;
}

TEST(ModelSigning, CallerMistakesThrow) {
  TempDir dir;
  fs::path m = make_model_dir(dir);
  std::string pub = generate_signing_key(dir.file("k.pem"));
  EXPECT_THROW(generate_signing_key(dir.file("k.pem")), Error);  // refuses to overwrite
  EXPECT_EQ(fs::status(dir.file("k.pem")).permissions() & fs::perms::group_read, fs::perms::none);
  EXPECT_THROW(sign_model(m.string(), SignOptions(dir.file("nokey.pem"))), Error);
  EXPECT_THROW(sign_model(m.string(), SignOptions(pub)), Error);      // a public key is not a private key
  EXPECT_THROW(verify_model(m.string(), VerifyOptions(pub)), Error);  // no signature yet
  EXPECT_THROW(verify_model((dir.path() / "nothing").string(), VerifyOptions(pub)), Error);
}

TEST(ModelSigningCli, KeygenSignVerifyAndRefuse) {
  TempDir dir;
  fs::path m = make_model_dir(dir);
  auto k = aegis::testing::run_aegis("keygen --out " + dir.file("k.pem"));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  auto s = aegis::testing::run_aegis("sign " + m.string() + " --key " + dir.file("k.pem") + " --json");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(nlohmann::json::parse(s.out)["files"].size(), 3u);
  auto v = aegis::testing::run_aegis("verify " + m.string() + " --pub " + dir.file("k.pem.pub"));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("verified"), std::string::npos);
  spit(m / "config.json", "{\"layers\": 4}\n");
  auto bad = aegis::testing::run_aegis("verify " + m.string() + " --pub " + dir.file("k.pem.pub"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("REFUSED"), std::string::npos);
  EXPECT_NE(bad.out.find("changed config.json"), std::string::npos) << bad.out;
  auto nokey = aegis::testing::run_aegis("verify " + m.string() + " --pub " + dir.file("missing.pub"));
  EXPECT_EQ(nokey.exit_code, 1);
  EXPECT_NE(nokey.err.find("public key not found"), std::string::npos) << nokey.err;
}

TEST(Attestation, BoundToTheSignedDigestAndRefusedAfterAChange) {
  TempDir dir;
  fs::path m = make_model_dir(dir);
  std::string pub = generate_signing_key(dir.file("k.pem"));
  SignResult s = sign_model(m.string(), SignOptions(dir.file("k.pem")));
  spit(dir.path() / "audit.bin", "report bytes");
  AttestationResult a = attest_model(m.string(),
                                     {Attachment("training-recipe", {{"objective", "trades"}, {"epochs", 5}}),
                                      Attachment("data-fingerprint", {{"fingerprint", std::string(64, 'f')}}),
                                      Attachment::of_file("audit-report", (dir.path() / "audit.bin").string())},
                                     SignOptions(dir.file("k.pem")));
  EXPECT_EQ(a.path, (m / "model.att.sig").string());
  EXPECT_EQ(a.subject_digest, s.statement.subject_digest);  // the same subject as the signature
  // The attestation file inside the model does not disturb its signature.
  EXPECT_TRUE(verify_model(m.string(), VerifyOptions(pub)).ok);
  AttestationResult v = verify_attestation(m.string(), VerifyOptions(pub));
  ASSERT_EQ(v.attachments.size(), 3u);
  EXPECT_EQ(v.attachments[0].content["objective"], "trades");
  EXPECT_EQ(v.attachments[2].content["sha256"], sha256_hex("report bytes"));

  std::string other = generate_signing_key(dir.file("other.pem"));
  EXPECT_THROW(verify_attestation(m.string(), VerifyOptions(other)), Error);
  spit(m / "weights" / "b.bin", "changed");
  try {
    verify_attestation(m.string(), VerifyOptions(pub));
    FAIL() << "attestation accepted for changed bytes";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::PermissionDenied);
    EXPECT_NE(std::string(e.what()).find("model changed since it was attested"), std::string::npos) << e.what();
  }
  EXPECT_THROW(attest_model(m.string(), {}, SignOptions(dir.file("k.pem"))), Error);
}
