#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "aegis/core/architectures.h"
#include "aegis/core/random.h"
#include "support/test_support.h"

namespace aegis {
namespace {

TEST(PrivacyAttackCli, AttackHelpNamesEveryAttackAndMethod) {
  auto r = testing::run_aegis("attack --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"pgd", "membership", "inversion", "extraction", "lira", "label-only", "knockoff", "jacobian",
                           "--access", "--budget", "--candidates", "--objective"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  // The temporary subcommand is gone: one way to run an attack.
  EXPECT_EQ(testing::run_aegis("--help").out.find("privacy-attack"), std::string::npos);
  EXPECT_EQ(testing::run_aegis("privacy-attack --attack membership -m x.pt").exit_code, 2);
}

TEST(PrivacyAttackCli, UsageErrorsExitTwoAndRuntimeFailuresOne) {
  testing::TempDir dir;
  auto bad_access = testing::run_aegis("attack --attack membership -m x.pt --access probs");
  EXPECT_EQ(bad_access.exit_code, 2);
  auto no_attack = testing::run_aegis("attack -m x.pt");
  EXPECT_EQ(no_attack.exit_code, 2);
  auto unknown = testing::run_aegis("attack --attack telepathy -m x.pt");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("membership, inversion, extraction"), std::string::npos) << unknown.err;
  auto evasion_flag = testing::run_aegis("attack --attack membership -m x.pt -n 5");
  EXPECT_EQ(evasion_flag.exit_code, 2);
  EXPECT_NE(evasion_flag.err.find("--candidates"), std::string::npos) << evasion_flag.err;
  auto missing = testing::run_aegis("attack --attack extraction -m " + dir.file("none.pt"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("aegis: error:"), std::string::npos);
  // A tabular model cannot be inverted with MI-Face: a one-line usage error
  // naming the alternative.
  seed_everything(1);
  build_architecture(ArchitectureOptions("mlp", {4}, 2))->save(dir.file("mlp.pt"));
  auto tabular = testing::run_aegis("attack --attack inversion -m " + dir.file("mlp.pt") + " --data " +
                                    dir.file("none.csv") + " -o " + dir.file("out"));
  EXPECT_EQ(tabular.exit_code, 2);
  EXPECT_NE(tabular.err.find("--feature"), std::string::npos) << tabular.err;
}

TEST(PrivacyAttackCli, EachAttackRunsFromAttack) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  testing::TempDir dir;
  seed_everything(1);
  build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10))->save(dir.file("m.pt"));
  const std::string m = " -m " + dir.file("m.pt") + " --json --quiet -o ";
  struct Run {
    std::string args, artefact, key;
  };
  std::vector<Run> runs = {
      {"attack --attack membership --candidates 50" + m + dir.file("mem"), "membership_roc.json", "metrics"},
      {"attack --attack inversion --steps 3 --reference-limit 300" + m + dir.file("inv"), "inversion.png",
       "closest_to_own_fraction"},
      {"attack --attack extraction --budget 100 --substitute-epochs 1 --test-limit 100 "
       "--transfer-samples 10" +
           m + dir.file("ext"),
       "substitute.pt", "evaluation"}};
  for (const auto& r : runs) {
    auto out = testing::run_aegis(r.args);
    ASSERT_EQ(out.exit_code, 0) << r.args << "\n" << out.err;
    nlohmann::json j = nlohmann::json::parse(out.out);
    EXPECT_TRUE(j.contains(r.key)) << r.args;
    std::string dir_out = r.args.substr(r.args.rfind(' ') + 1);
    EXPECT_TRUE(std::filesystem::exists(dir_out + "/" + r.artefact)) << r.args;
    EXPECT_TRUE(std::filesystem::exists(dir_out + "/result.json")) << r.args;
  }
}

}  // namespace
}  // namespace aegis
