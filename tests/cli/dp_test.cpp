// aegis dp account | noise: the accountants through the CLI, against the
// published MNIST setting (Abadi et al. 2016: sigma 1.1, q 256/60000, 60
// epochs, delta 1e-5), and the refusals.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace aegis {
namespace {

using nlohmann::json;
using testing::run_aegis;

TEST(DpCli, AccountGivesRdpAndATighterPrvForTheMnistSetting) {
  auto r = run_aegis("dp account --sigma 1.1 --batch-size 256 --dataset-size 60000 --epochs 60 --delta 1e-5 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["steps"], 14063);  // ceil(60 * 60000 / 256)
  ASSERT_EQ(j["results"].size(), 2u);
  const json& rdp = j["results"][0];
  const json& prv = j["results"][1];
  EXPECT_EQ(rdp["accountant"], "rdp");
  EXPECT_NEAR(rdp["epsilon"].get<double>(), 2.5967, 1e-3);  // Balle et al. 2020 conversion (3.01 with the old one)
  EXPECT_EQ(prv["accountant"], "prv");
  EXPECT_LT(prv["epsilon"].get<double>(), rdp["epsilon"].get<double>());
  EXPECT_LE(prv["lower"].get<double>(), prv["estimate"].get<double>());
  EXPECT_LE(prv["estimate"].get<double>(), prv["epsilon"].get<double>());

  auto human = run_aegis("dp account --sigma 1.1 --sample-rate 0.0042666 --steps 14063 --delta 1e-5 --accountant rdp");
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("rdp  epsilon 2.59"), std::string::npos) << human.out;
  EXPECT_EQ(human.out.find("prv"), std::string::npos) << human.out;
}

TEST(DpCli, NoiseFindsTheMultiplierThatAccountRoundTrips) {
  auto n = run_aegis("dp noise --epsilon 3 --delta 1e-5 --sample-rate 0.04 --steps 2250 --accountant rdp --json");
  ASSERT_EQ(n.exit_code, 0) << n.err;
  json r = json::parse(n.out)["results"][0];
  const double sigma = r["noise_multiplier"].get<double>();
  EXPECT_LE(r["epsilon"].get<double>(), 3.0);
  EXPECT_GE(r["epsilon"].get<double>(), 2.99);
  auto a = run_aegis("dp account --sigma " + std::to_string(sigma) +
                     " --sample-rate 0.04 --steps 2250 --delta 1e-5 --accountant rdp --json");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NEAR(json::parse(a.out)["results"][0]["epsilon"].get<double>(), r["epsilon"].get<double>(), 1e-4);
}

TEST(DpCli, RefusesIncompleteOrContradictorySchedules) {
  struct Case {
    std::string args, message;
  };
  for (const Case& c : std::vector<Case>{
           {"account --sigma 1 --steps 10 --delta 1e-5", "give the sampling rate"},
           {"account --sigma 1 --sample-rate 0.01 --batch-size 5 --dataset-size 100 --steps 10 --delta 1e-5",
            "not both"},
           {"account --sigma 1 --sample-rate 0.01 --delta 1e-5", "give the length of training"},
           {"account --sigma 1 --sample-rate 0.01 --steps 10 --epochs 1 --delta 1e-5", "give the length of training"},
           {"account --sigma 1 --batch-size 500 --dataset-size 100 --steps 10 --delta 1e-5", "exceeds"},
           {"account --sigma 1 --sample-rate 1.5 --steps 10 --delta 1e-5", "sample rate must be in (0, 1]"},
           {"account --sigma 0 --sample-rate 0.01 --steps 10 --delta 1e-5", "noise multiplier"},
           {"account --sigma 1 --sample-rate 0.01 --steps 10 --delta 1.5", "delta"},
           {"account --sigma 1 --sample-rate 0.01 --steps 10 --delta 1e-5 --accountant gdp", "rdp, prv or both"},
       }) {
    auto r = run_aegis("dp " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
  }
}

}  // namespace
}  // namespace aegis
