// Encryption at rest: round trips at chunk boundaries, and every way a stored
// file can be attacked (wrong key, flipped byte, truncation, reordered,
// dropped or appended chunks, altered header) refused with its reason.

#include "aegis/integrity/encryption.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace aegis;
using aegis::testing::TempDir;

namespace {

constexpr uint32_t kChunk = 1024;
constexpr size_t kHead = 16 + 24;        // prefix + secretstream header
constexpr size_t kSealed = kChunk + 17;  // one full chunk on disk

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) c = char((x = x * 1103515245u + 12345u) >> 16);
  return s;
}

// Expects decryption to fail with a message containing `part`.
void expect_refused(const std::string& cipher, const EncryptionKey& key, const std::string& part) {
  try {
    decrypt_bytes(cipher, key);
    FAIL() << "decrypted; expected a failure mentioning: " << part;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::CorruptData);
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Encryption, RoundTripsAtChunkBoundaries) {
  EncryptionKey key = EncryptionKey::generate();
  for (size_t n :
       {size_t(0), size_t(1), size_t(kChunk - 1), size_t(kChunk), size_t(kChunk + 1), size_t(3 * kChunk + 5)}) {
    std::string plain = pattern(n, uint32_t(n));
    std::string c = encrypt_bytes(plain, key, EncryptOptions().chunk_size(kChunk));
    size_t chunks = n / kChunk + 1;  // a final (possibly empty) chunk always closes the stream
    if (n % kChunk == 0 && n > 0) chunks = n / kChunk;
    EXPECT_EQ(c.size(), kHead + n + 17 * chunks) << n;
    EXPECT_TRUE(is_encrypted(c));
    EXPECT_EQ(decrypt_bytes(c, key), plain) << n;
  }
  // Two encryptions of the same bytes differ (random stream header).
  EXPECT_NE(encrypt_bytes("same", key), encrypt_bytes("same", key));
}

TEST(Encryption, EveryTamperingIsRefused) {
  EncryptionKey key = EncryptionKey::generate();
  std::string plain = pattern(3 * kChunk + 100, 7);  // 4 chunks
  std::string c = encrypt_bytes(plain, key, EncryptOptions().chunk_size(kChunk));
  ASSERT_EQ(c.size(), kHead + 3 * kSealed + 100 + 17);

  expect_refused(c, EncryptionKey::generate(), "chunk 0 does not authenticate (wrong key");

  std::string flipped = c;
  flipped[kHead + kSealed + 10] ^= 0x20;  // inside chunk 1
  expect_refused(flipped, key, "chunk 1 does not authenticate");

  expect_refused(c.substr(0, kHead + 3 * kSealed), key, "truncated");     // final chunk dropped
  expect_refused(c.substr(0, kHead + 2 * kSealed + 50), key, "chunk 2");  // cut mid-chunk

  std::string swapped = c.substr(0, kHead) + c.substr(kHead + kSealed, kSealed) + c.substr(kHead, kSealed) +
                        c.substr(kHead + 2 * kSealed);
  expect_refused(swapped, key, "chunk 0 does not authenticate");

  std::string dropped = c.substr(0, kHead + kSealed) + c.substr(kHead + 2 * kSealed);
  expect_refused(dropped, key, "chunk 1 does not authenticate");

  // Bytes appended after a short final chunk make that chunk fail; after a
  // full-size final chunk they are named as trailing data.
  expect_refused(c + "extra", key, "chunk 3 does not authenticate");
  std::string two = encrypt_bytes(pattern(2 * kChunk, 8), key, EncryptOptions().chunk_size(kChunk));
  expect_refused(two + "x", key, "data follows the final chunk");

  std::string header = c;
  header[13] = char(header[13] ^ 0x01);  // chunk size field: authenticated as associated data
  EXPECT_THROW(decrypt_bytes(header, key), Error);

  expect_refused("AEGISENX" + c.substr(8), key, "not an aegis encrypted file");
}

TEST(Encryption, KeysFromFileAndEnvironment) {
  TempDir dir;
  EncryptionKey key = EncryptionKey::generate();
  key.save(dir.file("k.key"));
  EXPECT_EQ(fs::status(dir.file("k.key")).permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
  EXPECT_THROW(key.save(dir.file("k.key")), Error);  // never overwrites a key
  EncryptionKey back = EncryptionKey::from_file(dir.file("k.key"));
  EXPECT_EQ(back.id(), key.id());
  std::string c = encrypt_bytes("secret weights", key);
  EXPECT_EQ(decrypt_bytes(c, back), "secret weights");

  std::string hex = slurp(dir.file("k.key"));
  hex.pop_back();
  ::setenv("AEGIS_TEST_KEY", hex.c_str(), 1);
  EXPECT_EQ(EncryptionKey::from_env("AEGIS_TEST_KEY").id(), key.id());
  ::setenv("AEGIS_TEST_KEY", "abcd", 1);
  EXPECT_THROW(EncryptionKey::from_env("AEGIS_TEST_KEY"), Error);
  ::unsetenv("AEGIS_TEST_KEY");
  EXPECT_THROW(EncryptionKey::from_env("AEGIS_TEST_KEY"), Error);

  std::ofstream(dir.file("bad.key")) << "not a key";
  EXPECT_THROW(EncryptionKey::from_file(dir.file("bad.key")), Error);
  try {
    EncryptionKey::resolve("", "data.idx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::PermissionDenied);
    EXPECT_NE(std::string(e.what()).find("data.idx is encrypted"), std::string::npos);
  }
}

TEST(Encryption, FilesStreamAndFailedDecryptLeavesNothing) {
  TempDir dir;
  EncryptionKey key = EncryptionKey::generate();
  std::string plain = pattern(5 * kChunk + 3, 3);
  std::ofstream(dir.file("plain.bin"), std::ios::binary) << plain;
  EXPECT_EQ(encrypt_file(dir.file("plain.bin"), dir.file("c.enc"), key, EncryptOptions().chunk_size(kChunk)), 6u);
  EXPECT_TRUE(is_encrypted_file(dir.file("c.enc")));
  EXPECT_FALSE(is_encrypted_file(dir.file("plain.bin")));
  EXPECT_EQ(decrypt_file(dir.file("c.enc"), dir.file("out.bin"), key), 6u);
  EXPECT_EQ(slurp(dir.file("out.bin")), plain);
  std::string c = slurp(dir.file("c.enc"));
  std::ofstream(dir.file("cut.enc"), std::ios::binary) << c.substr(0, c.size() - 20);
  EXPECT_THROW(decrypt_file(dir.file("cut.enc"), dir.file("out2.bin"), key), Error);
  EXPECT_FALSE(fs::exists(dir.file("out2.bin")));
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(Encryption, LoadersReadEncryptedModelsAndData) {
  TempDir dir;
  EncryptionKey key = EncryptionKey::generate();
  key.save(dir.file("k.key"));
  auto model = aegis::testing::make_linear(torch::randn({3, 4}), torch::randn({3}));
  model->save(dir.file("m.pt"));
  encrypt_file(dir.file("m.pt"), dir.file("m.pt.enc"), key);
  auto back = ScriptClassifier::load(dir.file("m.pt.enc"), ModelOverrides().key_file(dir.file("k.key")));
  torch::Tensor x = torch::rand({5, 4});
  EXPECT_TRUE(torch::equal(back->logits(x), model->logits(x)));
  try {
    ScriptClassifier::load(dir.file("m.pt.enc"));
    FAIL() << "loaded an encrypted model without a key";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::PermissionDenied) << e.what();
  }

  // A gzipped data file, encrypted: read_file_bytes decrypts then gunzips.
  std::string raw = pattern(5000, 9);
  gzFile gz = gzopen(dir.file("d.gz").c_str(), "wb");
  gzwrite(gz, raw.data(), unsigned(raw.size()));
  gzclose(gz);
  encrypt_file(dir.file("d.gz"), dir.file("d.gz.enc"), key);
  EXPECT_EQ(read_file_bytes(dir.file("d.gz.enc"), uint64_t{1} << 20, dir.file("k.key")), raw);
  ::setenv("AEGIS_KEY_FILE", dir.file("k.key").c_str(), 1);
  EXPECT_EQ(read_file_bytes(dir.file("d.gz.enc")), raw);
  ::unsetenv("AEGIS_KEY_FILE");
  EXPECT_THROW(read_file_bytes(dir.file("d.gz.enc")), Error);
}

TEST(EncryptionCli, EncryptDecryptAndRefuse) {
  TempDir dir;
  std::ofstream(dir.file("w.bin"), std::ios::binary) << pattern(3000, 1);
  auto e =
      aegis::testing::run_aegis("encrypt " + dir.file("w.bin") + " --key-file " + dir.file("k.key") + " --new-key");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto d = aegis::testing::run_aegis("decrypt " + dir.file("w.bin.enc") + " -o " + dir.file("w2.bin") + " --key-file " +
                                     dir.file("k.key"));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(slurp(dir.file("w2.bin")), slurp(dir.file("w.bin")));
  EncryptionKey::generate().save(dir.file("other.key"));
  auto wrong = aegis::testing::run_aegis("decrypt " + dir.file("w.bin.enc") + " -o " + dir.file("w3.bin") +
                                         " --key-file " + dir.file("other.key"));
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("wrong key"), std::string::npos) << wrong.err;
  auto none = aegis::testing::run_aegis("decrypt " + dir.file("w.bin.enc") + " -o " + dir.file("w3.bin"));
  EXPECT_EQ(none.exit_code, 2) << none.err;
}
