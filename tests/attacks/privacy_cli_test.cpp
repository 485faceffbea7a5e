#include <gtest/gtest.h>

#include "aegis/core/architectures.h"
#include "aegis/core/random.h"
#include "support/test_support.h"

namespace aegis {
namespace {

TEST(PrivacyAttackCli, HelpNamesEveryAttackAndMethod) {
  auto r = testing::run_aegis("privacy-attack --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word :
       {"membership", "inversion", "extraction", "lira", "label-only", "knockoff", "jacobian", "--access", "--budget"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
}

TEST(PrivacyAttackCli, UsageErrorsExitTwoAndRuntimeFailuresOne) {
  testing::TempDir dir;
  auto bad_access = testing::run_aegis("privacy-attack --attack membership -m x.pt --access probs");
  EXPECT_EQ(bad_access.exit_code, 2);
  auto no_attack = testing::run_aegis("privacy-attack -m x.pt");
  EXPECT_EQ(no_attack.exit_code, 2);
  auto missing = testing::run_aegis("privacy-attack --attack extraction -m " + dir.file("none.pt"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("aegis: error:"), std::string::npos);
  // A tabular model cannot be inverted with MI-Face: a one-line usage error
  // naming the alternative.
  seed_everything(1);
  build_architecture(ArchitectureOptions("mlp", {4}, 2))->save(dir.file("mlp.pt"));
  auto tabular = testing::run_aegis("privacy-attack --attack inversion -m " + dir.file("mlp.pt") + " --data " +
                                    dir.file("none.csv"));
  EXPECT_EQ(tabular.exit_code, 2);
  EXPECT_NE(tabular.err.find("--feature"), std::string::npos) << tabular.err;
}

}  // namespace
}  // namespace aegis
