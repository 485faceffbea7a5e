#include "aegis/serve/api_keys.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"
#include "support/test_support.h"

namespace aegis::serve {
namespace {

std::string read_file(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ErrorKind error_kind_of_role_change(KeyStore& s, const std::string& id) {
  try {
    s.set_role(id, Role::Admin);
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::Internal;
}

TEST(KeyStore, KeysAre256RandomBitsStoredOnlyAsHashes) {
  testing::TempDir dir;
  KeyStore store(dir.file("keys.json"));
  std::set<std::string> seen;
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    CreatedKey k = store.create(KeyOptions(Role::Predict).name("k" + std::to_string(i)));
    ASSERT_EQ(k.key.size(), 6 + 12 + 1 + 64u);
    EXPECT_EQ(key_id_of(k.key), k.record.id);
    EXPECT_EQ(k.record.hash, sha256_hex(k.key));
    EXPECT_TRUE(seen.insert(k.key.substr(19)).second);
    keys.push_back(k.key);
  }
  const std::string file = read_file(dir.file("keys.json"));
  for (const auto& k : keys) {
    EXPECT_EQ(file.find(k.substr(19)), std::string::npos) << "a secret reached the keys file";
  }
  // A second store reading the file authenticates the same keys.
  KeyStore again(dir.file("keys.json"));
  for (const auto& k : keys) EXPECT_TRUE(again.authenticate(k).has_value());
}

TEST(KeyStore, WrongMalformedAndRevokedKeysFail) {
  KeyStore store;
  CreatedKey k = store.create(KeyOptions(Role::Admin));
  ASSERT_TRUE(store.authenticate(k.key));
  std::string wrong = k.key;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_FALSE(store.authenticate(wrong));
  EXPECT_FALSE(store.authenticate(""));
  EXPECT_FALSE(store.authenticate(k.key + "0"));
  EXPECT_FALSE(store.authenticate("aegis_" + std::string(12, 'z') + "_" + std::string(64, '0')));
  store.revoke(k.record.id);
  EXPECT_FALSE(store.authenticate(k.key));
  ASSERT_TRUE(store.lookup(k.key));
  EXPECT_TRUE(store.lookup(k.key)->revoked);
  try {
    store.revoke("000000000000");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
  }
}

TEST(KeyStore, ModelAccessListsAndRoles) {
  KeyStore store;
  CreatedKey k = store.create(KeyOptions(Role::Predict).models({"a", "b"}));
  EXPECT_TRUE(k.record.may_use("a"));
  EXPECT_FALSE(k.record.may_use("c"));
  EXPECT_TRUE(store.create(KeyOptions(Role::Auditor)).record.may_use("anything"));
  EXPECT_EQ(parse_role("auditor"), Role::Auditor);
  EXPECT_THROW(parse_role("root"), Error);
  EXPECT_THROW(store.create(KeyOptions().models({})), Error);
}

TEST(KeyStore, CorruptFileIsReported) {
  testing::TempDir dir;
  std::ofstream(dir.file("keys.json")) << "{\"keys\": [{\"id\": \"x\"}]}";
  try {
    KeyStore s(dir.file("keys.json"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::CorruptData);
  }
}

TEST(KeyStore, ChangesByAnotherProcessTakeEffectOnTheNextLookup) {
  testing::TempDir dir;
  const std::string file = dir.file("keys.json");
  KeyStore gateway(file);  // what a running gateway holds
  CreatedKey a = gateway.create(KeyOptions(Role::Predict));
  ASSERT_TRUE(gateway.authenticate(a.key));
  // `aegis keys` in another process: its own store on the same file.
  {
    KeyStore cli(file);
    CreatedKey b = cli.create(KeyOptions(Role::Auditor).name("new"));
    cli.revoke(a.record.id);
    EXPECT_TRUE(gateway.authenticate(b.key));  // created: valid at once
    cli.set_role(b.record.id, Role::Explain);
  }
  EXPECT_FALSE(gateway.authenticate(a.key));  // revoked: refused at once
  ASSERT_TRUE(gateway.lookup(a.key));
  EXPECT_TRUE(gateway.lookup(a.key)->revoked);
  EXPECT_EQ(gateway.list().size(), 2u);
  EXPECT_EQ(gateway.list()[1].role, Role::Explain);
  // Writers re-read before they write: neither loses the other's keys.
  KeyStore other(file);
  CreatedKey c = gateway.create(KeyOptions(Role::Predict));
  CreatedKey d = other.create(KeyOptions(Role::Predict));
  KeyStore fresh(file);
  EXPECT_EQ(fresh.list().size(), 4u);
  EXPECT_TRUE(fresh.authenticate(c.key));
  EXPECT_TRUE(fresh.authenticate(d.key));
  EXPECT_EQ(error_kind_of_role_change(other, "000000000000"), ErrorKind::NotFound);
}

TEST(KeyStore, ABrokenFileKeepsTheLastGoodKeysAndSaysWhy) {
  testing::TempDir dir;
  const std::string file = dir.file("keys.json");
  KeyStore store(file);
  CreatedKey a = store.create(KeyOptions(Role::Predict));
  {
    std::ofstream out(file + ".new");
    out << "{ not json";
  }
  std::filesystem::rename(file + ".new", file);
  EXPECT_TRUE(store.authenticate(a.key));
  EXPECT_NE(store.last_error().find("not JSON"), std::string::npos) << store.last_error();
  // Repaired: read again, and the error is gone.
  {
    KeyStore writer{std::string()};
    std::ofstream(file + ".new") << "{\"keys\": []}";
    std::filesystem::rename(file + ".new", file);
  }
  EXPECT_FALSE(store.authenticate(a.key));
  EXPECT_EQ(store.last_error(), "");
}

}  // namespace
}  // namespace aegis::serve
