// aegis explain --adversarial and --robustness: the side-by-side grid and
// the per-sample map shift (checked against the NPY files it writes), the
// explanation attack's report, and the refusals of bad flags.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aegis/core/dataset_io.h"
#include "aegis/core/image_io.h"
#include "aegis/explain/explanation_attack.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using nlohmann::json;
using testing::run_aegis;

torch::Tensor npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return parse_npy(bytes.str(), path);
}

std::string flags(const testing::TempDir& dir) {
  testing::trained_bars_cnn(4)->save(dir.file("m.pt"));
  Dataset bars = testing::make_bar_images(8, 4, 21);
  save_npy(bars.x, dir.file("x.npy"));
  save_npy(bars.y, dir.file("y.npy"));
  return " -m '" + dir.file("m.pt") + "' --data '" + dir.file("x.npy") + "' --labels '" + dir.file("y.npy") + "'";
}

TEST(ExplainAdversarialCli, SideBySideGridAndMapShiftMatchTheFilesWritten) {
  testing::TempDir dir;
  const std::string out = dir.file("adv");
  auto r = run_aegis("explain" + flags(dir) + " -n 4 --method saliency --adversarial pgd --eps 0.2 --attack-steps 5 " +
                     "-o '" + out + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out)["adversarial"];
  EXPECT_EQ(j["attack"], "pgd");
  ASSERT_EQ(j["samples"].size(), 4u);
  const int64_t k = j["top_k"].get<int64_t>();
  EXPECT_EQ(k, 39);
  // The JSON's overlap and distance are those of the maps in the NPY files.
  const torch::Tensor clean = npy(out + "/attributions.npy");
  const torch::Tensor adv = npy(out + "/adversarial_attributions.npy");
  const torch::Tensor x_adv = npy(out + "/adversarial_inputs.npy");
  const torch::Tensor x = npy(dir.file("x.npy")).narrow(0, 0, 4);
  EXPECT_LE((x_adv - x).abs().max().item<double>(), 0.2 + 1e-5);
  const torch::Tensor overlap = explain::top_k_overlap(clean, adv, k);
  const torch::Tensor distance = explain::normalised_map_distance(clean, adv);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(j["samples"][size_t(i)]["topk_overlap"].get<double>(), overlap[i].item<double>(), 1e-9);
    EXPECT_NEAR(j["samples"][size_t(i)]["map_distance"].get<double>(), distance[i].item<double>(), 1e-6);
  }
  // Four columns (clean input, its map, adversarial input, its map) and four rows at 3x scale.
  DecodedImage grid = decode_image_file(out + "/adversarial.png");
  EXPECT_GE(grid.width, 4 * 28 * 3);
  EXPECT_GE(grid.height, 4 * 28 * 3);
}

TEST(ExplainAdversarialCli, RobustnessReportsTheOverlapLeftAgainstNoise) {
  testing::TempDir dir;
  const std::string out = dir.file("rob");
  auto r = run_aegis("explain" + flags(dir) + " -n 8 --method ig --steps 8 --robustness --eps 0.05 " +
                     "--attack-steps 20 -o '" + out + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out)["robustness"];
  EXPECT_EQ(j["method"], "integrated-gradients");
  EXPECT_EQ(j["label_kept_fraction"].get<double>(), 1.0);
  EXPECT_LE(j["max_linf"].get<double>(), 0.05 + 1e-6);
  EXPECT_LT(j["mean_topk_overlap"].get<double>(), j["random_mean_topk_overlap"].get<double>());
  EXPECT_EQ(j["method_topk_overlap"].size(), 8u);
  EXPECT_TRUE(std::filesystem::exists(out + "/robustness.png"));
  EXPECT_TRUE(std::filesystem::exists(out + "/robustness_inputs.npy"));
  auto human =
      run_aegis("explain" + flags(dir) + " -n 2 --method saliency --robustness --attack-steps 2 -o '" + out + "2'");
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("explanation robustness (Ghorbani et al."), std::string::npos) << human.out;
}

TEST(ExplainAdversarialCli, RefusesBadFlagsWithOneLine) {
  testing::TempDir dir;
  const std::string common = flags(dir) + " -n 2 -o '" + dir.file("bad") + "'";
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {" --adversarial pgd --eps 0", "--eps must be > 0"},
           {" --adversarial no-such-attack", "no-such-attack"},
           {" --robustness --robustness-map grad-cam", "unknown map 'grad-cam'"},
           {" --robustness --top-k 5000", "exceeds the 784 features"},
           {" --robustness --attack-steps 0", "--attack-steps must be >= 1"},
           {" --method tree --robustness", "apply to attribution methods"}}) {
    auto r = run_aegis("explain" + common + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << ": " << r.err;
  }
}

}  // namespace
}  // namespace aegis
