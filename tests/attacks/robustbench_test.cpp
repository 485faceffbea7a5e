// RobustBench's model-info format: the leaderboard's keys in its order, eps
// as the leaderboard writes it, and an entry that departs from its protocol
// marked unreliable with the reasons; the CLI writes the file.

#include "aegis/attacks/evasion/robustbench.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "aegis/core/dataset_io.h"
#include "support/test_support.h"

namespace aegis {
namespace {

ModelMeta unit_meta(double hi = 1.0) {
  ModelMeta m;
  m.architecture = "cnn";
  m.input_shape = {1, 28, 28};
  m.num_classes = 10;
  m.clip_min = 0;
  m.clip_max = hi;
  return m;
}

TEST(RobustBench, EpsIsWrittenAsTheLeaderboardWritesIt) {
  EXPECT_EQ(robustbench_eps(8.0 / 255, Norm::Linf, unit_meta()), "8/255");
  EXPECT_EQ(robustbench_eps(4.0 / 255, Norm::Linf, unit_meta()), "4/255");
  EXPECT_EQ(robustbench_eps(8.0, Norm::Linf, unit_meta(255)), "8/255");  // a [0, 255] model
  EXPECT_EQ(robustbench_eps(0.1, Norm::Linf, unit_meta()), "0.1");
  EXPECT_EQ(robustbench_eps(0.5, Norm::L2, unit_meta()), "0.5");
}

TEST(RobustBench, AStandardFullRunIsAPlainEntryAndDeparturesAreMarkedUnreliable) {
  RobustEvaluation r;
  r.norm = Norm::Linf;
  r.eps = 8.0 / 255;
  r.samples = 10000;
  r.clean_accuracy = 0.9478;
  r.robust_accuracy = 0.59531;
  r.protocol = "autoattack-standard";
  auto j = robustbench_model_info(r, unit_meta(), RobustBenchInfo().name("net").dataset("fashion-mnist"));
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"link", "name", "authors", "additional_data", "number_forward_passes", "dataset",
                                      "venue", "architecture", "eps", "clean_acc", "reported", "autoattack_acc"}));
  EXPECT_EQ(j["clean_acc"], "94.78");
  EXPECT_EQ(j["autoattack_acc"], "59.53");
  EXPECT_EQ(j["eps"], "8/255");
  EXPECT_EQ(j["architecture"], "cnn");
  EXPECT_EQ(j["number_forward_passes"], 1);

  r.protocol = "autoattack-quick";
  r.samples = 500;
  r.warnings = {"preflight gradients-nonzero: 3 of 16 probe samples have an all-zero input gradient"};
  auto u = robustbench_model_info(r, unit_meta(), RobustBenchInfo().name("net"));
  EXPECT_TRUE(u["unreliable"].get<bool>());
  const std::string f = u["footnote"];
  EXPECT_NE(f.find("autoattack-quick"), std::string::npos) << f;
  EXPECT_NE(f.find("first 500 of the 10000"), std::string::npos) << f;
  EXPECT_NE(f.find("gradients-nonzero"), std::string::npos) << f;
}

TEST(RobustBench, EvaluateWritesTheModelInfoFile) {
  testing::TempDir dir;
  testing::trained_bars_cnn(4)->save(dir.file("bars.pt"));
  Dataset bars = testing::make_bar_images(24, 4, 5);
  save_npy(bars.x, dir.file("x.npy"));
  save_npy(bars.y, dir.file("y.npy"));
  auto res = testing::run_aegis(
      "evaluate -m '" + dir.file("bars.pt") + "' --data '" + dir.file("x.npy") + "' --labels '" + dir.file("y.npy") +
      "' --eps 0.1 --budget quick --no-sanity --robustbench-json '" + dir.file("rb/bars.json") + "' --json");
  ASSERT_EQ(res.exit_code, 0) << res.err;
  std::ifstream in(dir.file("rb/bars.json"));
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["name"], "bars");
  nlohmann::json ev = nlohmann::json::parse(res.out)["evaluation"];
  EXPECT_EQ(j["autoattack_acc"], fmt::format("{:.2f}", 100 * ev["robust_accuracy"].get<double>()));
  EXPECT_EQ(j["clean_acc"], fmt::format("{:.2f}", 100 * ev["clean_accuracy"].get<double>()));
  EXPECT_TRUE(j["unreliable"].get<bool>());  // quick budget, 24 samples
}

}  // namespace
}  // namespace aegis
