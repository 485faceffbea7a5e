// Model registry: immutable numbered versions, content-addressed blobs,
// atomic stage changes (checked by killing a real process mid-write),
// rollback order, history, lineage, gc and verified checkout.

#include "aegis/integrity/registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"
#include "aegis/integrity/model_signing.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace aegis;
using aegis::testing::TempDir;

namespace {

std::string write(const TempDir& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir.file(name), std::ios::binary) << bytes;
  return dir.file(name);
}

}  // namespace

TEST(Registry, VersionsAreNumberedImmutableAndContentAddressed) {
  TempDir dir;
  Registry reg(dir.file("reg"));
  ModelVersion v1 = reg.add("clf", write(dir, "a.pt", "model-one"), AddOptions().reason("first"));
  ModelVersion v2 = reg.add("clf", write(dir, "b.pt", "model-two"), AddOptions().parent_version(1));
  ModelVersion v3 = reg.add("clf", dir.file("a.pt"));  // same bytes again: new version, same blob
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v3.version, 3);
  EXPECT_EQ(v1.sha256, sha256_hex("model-one"));
  EXPECT_EQ(v3.sha256, v1.sha256);
  EXPECT_EQ(v2.parent, "clf:1");
  EXPECT_EQ(sha256_file(reg.blob_path(v2.sha256)), v2.sha256);
  EXPECT_EQ(reg.show("clf").version, 3);
  EXPECT_EQ(reg.show("clf", 1).reason, "first");
  EXPECT_THROW(reg.show("clf", 9), Error);
  EXPECT_THROW(reg.show("nope"), Error);
  EXPECT_THROW(reg.add("bad name!", dir.file("a.pt")), Error);
  EXPECT_THROW(reg.add("clf", dir.file("a.pt"), AddOptions().parent_version(7)), Error);
  // The database refuses to change a stored version.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("reg/registry.db").c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE versions SET sha256 = 'x' WHERE version = 1", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(reg.show("clf", 1).sha256, sha256_hex("model-one"));
}

TEST(Registry, PromoteRollbackAndHistory) {
  TempDir dir;
  Registry reg(dir.file("reg"));
  for (int i = 1; i <= 3; ++i) reg.add("clf", write(dir, "m" + std::to_string(i), "bytes" + std::to_string(i)));
  EXPECT_THROW(reg.production("clf"), Error);
  reg.promote("clf", 1, "production", ChangeInfo("alice", "first release"));
  reg.promote("clf", 2, "staging", ChangeInfo("bob", "candidate"));
  reg.promote("clf", 2, "production", ChangeInfo("alice", "v2 passed audit"));
  reg.promote("clf", 3, "production", ChangeInfo("carol", "hotfix"));
  EXPECT_EQ(reg.production("clf").version, 3);
  EXPECT_EQ(reg.stage("clf", "staging").version, 2);
  EXPECT_EQ(reg.rollback("clf", "production", ChangeInfo("dave", "hotfix broke")).version, 2);
  EXPECT_EQ(reg.rollback("clf", "production", ChangeInfo("dave", "v2 too")).version, 1);
  EXPECT_THROW(reg.rollback("clf", "production"), Error);  // nothing before version 1
  EXPECT_EQ(reg.production("clf").version, 1);
  EXPECT_THROW(reg.promote("clf", 9, "production"), Error);
  EXPECT_EQ(reg.production("clf").version, 1);

  auto h = reg.history("clf");
  ASSERT_EQ(h.size(), 3u + 4u + 2u);
  EXPECT_EQ(h[0].action, "rollback");
  EXPECT_EQ(h[0].who, "dave");
  EXPECT_EQ(h[0].reason, "v2 too");
  EXPECT_EQ(h[0].from_version, 2);
  EXPECT_EQ(h[0].version, 1);
  EXPECT_EQ(h[2].action, "promote");
  EXPECT_EQ(h[2].who, "carol");
  EXPECT_EQ(h[2].from_version, 2);
  EXPECT_EQ(h.back().action, "add");
  auto stages = reg.show("clf", 2).stages;
  EXPECT_EQ(stages, std::vector<std::string>{"staging"});
}

TEST(Registry, KilledMidPromoteLeavesThePreviousState) {
  TempDir dir;
  std::string root = dir.file("reg");
  {
    Registry reg(root);
    reg.add("clf", write(dir, "m1", "one"));
    reg.add("clf", write(dir, "m2", "two"));
    reg.promote("clf", 1, "production");
  }
  // A real process is killed (SIGKILL) after it changed the stage row and
  // before it committed: the previous production version must survive.
  auto r = aegis::testing::run_command("AEGIS_REGISTRY_CRASH_POINT=promote " + std::string(AEGIS_BINARY) +
                                       " registry --root " + root + " promote clf 2 --reason crash");
  EXPECT_NE(r.exit_code, 0);
  Registry reg(root);
  EXPECT_EQ(reg.production("clf").version, 1);
  EXPECT_EQ(reg.history("clf")[0].action, "promote");
  EXPECT_EQ(reg.history("clf")[0].version, 1);  // the crashed promotion left no record

  reg.promote("clf", 2, "production");
  auto rb = aegis::testing::run_command("AEGIS_REGISTRY_CRASH_POINT=rollback " + std::string(AEGIS_BINARY) +
                                        " registry --root " + root + " rollback clf");
  EXPECT_NE(rb.exit_code, 0);
  EXPECT_EQ(Registry(root).production("clf").version, 2);
}

TEST(Registry, KilledMidBlobWriteLeavesNoVersionAndGcCleansUp) {
  TempDir dir;
  std::string root = dir.file("reg");
  std::string model = write(dir, "big.pt", std::string(3u << 20, 'z'));  // several copy chunks
  auto r = aegis::testing::run_command("AEGIS_REGISTRY_CRASH_POINT=blob " + std::string(AEGIS_BINARY) +
                                       " registry --root " + root + " add clf " + model);
  EXPECT_NE(r.exit_code, 0);
  Registry reg(root);
  EXPECT_TRUE(reg.list().empty());
  EXPECT_FALSE(fs::exists(reg.blob_path(sha256_file(model))));
  GcResult dry = reg.gc(true);
  ASSERT_EQ(dry.removed.size(), 1u);
  EXPECT_EQ(dry.removed[0].rfind("tmp-", 0), 0u);
  GcResult g = reg.gc();
  EXPECT_EQ(g.removed, dry.removed);
  EXPECT_TRUE(reg.gc(true).removed.empty());
  // The registry works normally afterwards.
  EXPECT_EQ(reg.add("clf", model).version, 1);
}

TEST(Registry, GcKeepsReferencedBlobs) {
  TempDir dir;
  Registry reg(dir.file("reg"));
  ModelVersion v = reg.add("clf", write(dir, "m", "kept"));
  write(dir, "stray", "stray");
  fs::copy_file(dir.file("stray"), reg.blob_path(sha256_hex("stray")));
  GcResult g = reg.gc();
  EXPECT_EQ(g.removed, std::vector<std::string>{sha256_hex("stray")});
  EXPECT_TRUE(fs::exists(reg.blob_path(v.sha256)));
}

TEST(Registry, LineageFromModelMetadataAndExplicitOptions) {
  TempDir dir;
  auto model = aegis::testing::make_linear(torch::randn({2, 3}), torch::randn({2}));
  model->mutable_meta().provenance["training"] = {
      {"objective", "pgd-at"}, {"epochs_run", 3}, {"data", {{"fingerprint", "abc123"}, {"source", "synthetic"}}}};
  model->save(dir.file("m.pt"));
  Registry reg(dir.file("reg"));
  ModelVersion base = reg.add("base", dir.file("m.pt"));
  EXPECT_EQ(base.data_fingerprint, "abc123");
  EXPECT_EQ(base.recipe["objective"], "pgd-at");
  ModelVersion child =
      reg.add("tuned", dir.file("m.pt"),
              AddOptions().parent("base:1").audit({{"robust_accuracy", 0.41}}).data_fingerprint("f00"));
  EXPECT_EQ(child.parent, "base:1");
  EXPECT_EQ(child.data_fingerprint, "f00");
  EXPECT_DOUBLE_EQ(reg.show("tuned").audit["robust_accuracy"].get<double>(), 0.41);
  EXPECT_THROW(reg.add("tuned", dir.file("m.pt"), AddOptions().parent("base:5")), Error);
}

TEST(Registry, CheckoutVerifiesBlobAndSignature) {
  TempDir dir;
  std::string model = write(dir, "model.pt", "weights");
  std::string pub = generate_signing_key(dir.file("k.pem"));
  sign_model(model, SignOptions(dir.file("k.pem")));
  Registry reg(dir.file("reg"));
  ModelVersion v = reg.add("clf", model, AddOptions().signature(model + ".sig"));
  reg.promote("clf", v.version, "production");
  std::string out = reg.checkout(reg.production("clf"), dir.file("serve"));
  EXPECT_EQ(fs::path(out).filename(), "model.pt");
  EXPECT_TRUE(require_verified_model(out, VerifyOptions(pub)).ok);
  // A blob altered inside the registry is caught at checkout.
  fs::permissions(reg.blob_path(v.sha256), fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(reg.blob_path(v.sha256), std::ios::binary) << "weightz";
  try {
    reg.checkout(reg.production("clf"), dir.file("serve2"));
    FAIL() << "checked out an altered blob";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("altered"), std::string::npos) << e.what();
  }
}

/// Sets (or unsets, with nullptr) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { old_ ? setenv(name_, old_->c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Registry, WhoComesFromTheEnvironmentAsGitFindsAnAuthor) {
  TempDir home;
  std::ofstream(home.file(".gitconfig")) << "[core]\n\tname = not this\n[user]\n\tname = \"Ada Lovelace\"\n";
  ScopedEnv h("HOME", home.path().c_str()), x("XDG_CONFIG_HOME", nullptr);
  {
    ScopedEnv a("AEGIS_USER", nullptr), g("GIT_AUTHOR_NAME", nullptr);
    Identity id = current_identity();
    EXPECT_EQ(id.name, "Ada Lovelace");
    EXPECT_NE(id.source.find(".gitconfig"), std::string::npos) << id.source;
    TempDir dir;
    write(dir, "m.pt", "abc");
    Registry r(dir.file("reg"));
    EXPECT_EQ(r.add("clf", dir.file("m.pt")).created_by, "Ada Lovelace");
  }
  {
    ScopedEnv a("AEGIS_USER", nullptr), g("GIT_AUTHOR_NAME", "Grace Hopper");
    EXPECT_EQ(current_identity().name, "Grace Hopper");
    EXPECT_EQ(current_identity().source, "$GIT_AUTHOR_NAME");
  }
  {
    ScopedEnv a("AEGIS_USER", "ci-bot"), g("GIT_AUTHOR_NAME", "Grace Hopper");
    EXPECT_EQ(current_identity().name, "ci-bot");
  }
  {  // no git config: the account (root here has a login name at least), never "unknown"
    ScopedEnv a("AEGIS_USER", nullptr), g("GIT_AUTHOR_NAME", nullptr), hh("HOME", "/nonexistent"), u("USER", nullptr);
    EXPECT_NE(current_identity().name, "unknown");
  }
  {                                                                     // the CLI says where the name came from
    ScopedEnv a("AEGIS_USER", "ci-bot"), p("AEGIS_PROGRESS", "lines");  // ctest's quiet would hide the note
    TempDir dir;
    write(dir, "m.pt", "abc");
    auto add = aegis::testing::run_aegis("registry --root " + dir.file("reg") + " add clf " + dir.file("m.pt"));
    ASSERT_EQ(add.exit_code, 0) << add.err;
    EXPECT_NE(add.err.find("recording the change as 'ci-bot' (from $AEGIS_USER"), std::string::npos) << add.err;
  }
}

TEST(RegistryCli, AddPromoteShowHistory) {
  TempDir dir;
  std::string root = " --root " + dir.file("reg");
  write(dir, "m.pt", "abc");
  auto add = aegis::testing::run_aegis("registry" + root + " add clf " + dir.file("m.pt") +
                                       " --by ci --reason nightly --json");
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_EQ(nlohmann::json::parse(add.out)["version"], 1);
  EXPECT_EQ(aegis::testing::run_aegis("registry" + root + " promote clf 1 --reason ok").exit_code, 0);
  auto show = aegis::testing::run_aegis("registry" + root + " show clf --stage production --json");
  EXPECT_EQ(nlohmann::json::parse(show.out)["sha256"], sha256_hex("abc"));
  auto hist = aegis::testing::run_aegis("registry" + root + " history clf");
  EXPECT_NE(hist.out.find("nightly"), std::string::npos) << hist.out;
  auto missing = aegis::testing::run_aegis("registry" + root + " promote clf 4");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no version 4"), std::string::npos) << missing.err;
}
