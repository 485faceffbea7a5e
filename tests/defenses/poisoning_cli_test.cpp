#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "aegis/core/dataset_io.h"
#include "support/test_support.h"

namespace aegis {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The pipeline a user runs: poison, check, train, scan, filter, evaluate.
TEST(PoisoningCli, PoisonScanFilterRoundTrip) {
  testing::TempDir dir;
  Dataset d = testing::make_bar_images(600, 4, 31);
  save_npy(d.x, dir.file("x.npy"));
  save_npy(d.y, dir.file("y.npy"));
  std::string data = dir.file("x.npy") + " --labels " + dir.file("y.npy");

  auto p = testing::run_aegis("poison badnets --data " + data + " --target 1 --rate 0.1 --seed 2 --json -o " +
                              dir.file("p"));
  ASSERT_EQ(p.exit_code, 0) << p.err;
  nlohmann::json rec = read_json(dir.file("p/poison.json"));
  EXPECT_EQ(rec["poisoned_count"], 60);
  EXPECT_EQ(rec["trigger"]["size"], 3);
  EXPECT_EQ(rec["poisoned"].size(), 60u);
  std::string pdata = dir.file("p/x.npy") + " --labels " + dir.file("p/y.npy");

  auto c = testing::run_aegis("data check " + pdata + " --json --reference " + dir.file("x.npy") +
                              " --reference-labels " + dir.file("y.npy"));
  EXPECT_EQ(c.exit_code, 0) << c.err;  // warnings only: balance drift
  nlohmann::json cj = nlohmann::json::parse(c.out);
  EXPECT_GT(cj["balance"]["total_variation"].get<double>(), 0.05);

  auto t = testing::run_aegis("train --data " + pdata +
                              " --epochs 3 --lr 3e-3 --batch-size 64 --val-fraction 0 -q -o " + dir.file("m.pt"));
  ASSERT_EQ(t.exit_code, 0) << t.err;
  auto s =
      testing::run_aegis("data scan " + pdata + " --model " + dir.file("m.pt") + " --method spectral --json --out " +
                         dir.file("scan.json") + " --truth " + dir.file("p/poison.json"));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  nlohmann::json sj = nlohmann::json::parse(s.out);
  EXPECT_GE(sj["evaluation"]["combined"]["recall"].get<double>(), 0.8) << s.out;

  auto f = testing::run_aegis("data filter " + pdata + " --from " + dir.file("scan.json") + " --json -o " +
                              dir.file("clean"));
  ASSERT_EQ(f.exit_code, 0) << f.err;
  nlohmann::json fr = read_json(dir.file("clean/filter.json"));
  EXPECT_EQ(fr["removed_samples"], sj["suspect_count"]);
  EXPECT_EQ(fr["kept_samples"].get<int64_t>() + fr["removed_samples"].get<int64_t>(), 600);
  Dataset cleaned = load_npy(dir.file("clean/x.npy"), dir.file("clean/y.npy"));
  EXPECT_EQ(cleaned.size(), fr["kept_samples"].get<int64_t>());
  EXPECT_EQ(cleaned.fingerprint(), fr["output_fingerprint"]);

  auto e = testing::run_aegis("poison evaluate --model " + dir.file("m.pt") + " --record " + dir.file("p/poison.json") +
                              " --data " + data + " --json");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_GT(nlohmann::json::parse(e.out)["attack_success_rate"].get<double>(), 0.8) << e.out;
}

TEST(PoisoningCli, BadInputIsAOneLineUsageError) {
  testing::TempDir dir;
  Dataset d = testing::make_bar_images(40, 4, 1);
  save_npy(d.x, dir.file("x.npy"));
  save_npy(d.y, dir.file("y.npy"));
  auto r = testing::run_aegis("poison badnets --data " + dir.file("x.npy") + " --labels " + dir.file("y.npy") +
                              " --target 9 -o " + dir.file("p"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("target class must be in [0, 4)"), std::string::npos) << r.err;
  auto nan = d.x.clone();
  nan[0][0][0][0] = std::nan("");
  save_npy(nan, dir.file("nan.npy"));
  auto c = testing::run_aegis("data check " + dir.file("nan.npy") + " --labels " + dir.file("y.npy"));
  EXPECT_EQ(c.exit_code, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("1 samples contain NaN"), std::string::npos) << c.out;
}

}  // namespace
}  // namespace aegis
