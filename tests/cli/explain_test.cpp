// aegis explain: the files it writes, the completeness gap it reports, and
// its refusals.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "aegis/core/dataset_io.h"
#include "aegis/core/image_io.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using nlohmann::json;
using testing::run_aegis;

/// Saves the bars CNN and `images` bar images in dir; returns the flags that name them.
std::string model_and_data_flags(const testing::TempDir& dir, int64_t images, uint64_t seed) {
  testing::trained_bars_cnn(4)->save(dir.file("m.pt"));
  Dataset bars = testing::make_bar_images(images, 4, seed);
  save_npy(bars.x, dir.file("x.npy"));
  save_npy(bars.y, dir.file("y.npy"));
  return " -m '" + dir.file("m.pt") + "' --data '" + dir.file("x.npy") + "' --labels '" + dir.file("y.npy") + "'";
}

TEST(ExplainCli, WritesAttributionsGridAndJsonWithSmallCompletenessGaps) {
  testing::TempDir dir;
  const std::string common = model_and_data_flags(dir, 12, 8) + " -n 6 --batch-size 4";
  auto r = run_aegis("explain" + common + " --method ig --steps 48 -o '" + dir.file("ig") + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["method"], "integrated-gradients");
  ASSERT_EQ(j["samples"].size(), 6u);
  EXPECT_LT(j["max_abs_completeness_gap"].get<double>(), 0.05);
  EXPECT_EQ(j["samples"][0]["target"], j["samples"][0]["predicted"]);
  torch::Tensor values = load_npy(dir.file("ig/attributions.npy"), dir.file("ig/target.npy")).x;
  EXPECT_EQ(values.sizes(), (std::vector<int64_t>{6, 1, 28, 28}));
  EXPECT_NEAR(values[5].sum().item<double>(), j["samples"][5]["attribution_sum"].get<double>(), 1e-3);
  DecodedImage grid = decode_image_file(dir.file("ig/grid.png"));
  EXPECT_GT(grid.width, 3 * 28);
  EXPECT_TRUE(std::filesystem::exists(dir.file("ig/explanation.json")));

  auto m = run_aegis("explain" + common + " --method saliency --signed --metrics deletion,insertion,sanity -o '" +
                     dir.file("m") + "' --json");
  ASSERT_EQ(m.exit_code, 0) << m.err;
  json mj = json::parse(m.out);
  EXPECT_EQ(mj["metrics"]["deletion"]["kind"], "deletion");
  EXPECT_EQ(mj["metrics"]["deletion"]["auc"].size(), 6u);
  EXPECT_TRUE(mj["metrics"]["insertion"].contains("better_than_random_fraction"));
  EXPECT_TRUE(mj["metrics"]["sanity"]["passed"].get<bool>()) << mj["metrics"]["sanity"].dump();

  auto q = run_aegis("explain" + common +
                     " --method ig --steps 8 --metrics faithfulness,infidelity,sensitivity,sparseness -o '" +
                     dir.file("q") + "' --json");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  json qj = json::parse(q.out)["metrics"];
  for (const char* m : {"faithfulness", "infidelity", "sensitivity", "sparseness"}) {
    ASSERT_TRUE(qj.contains(m)) << m;
    EXPECT_EQ(qj[m]["per_sample"].size(), 6u) << m;
  }
  EXPECT_GT(qj["faithfulness"]["mean"].get<double>(), 0.0);
  EXPECT_GE(qj["sparseness"]["mean"].get<double>(), 0.0);
  EXPECT_LE(qj["sparseness"]["mean"].get<double>(), 1.0);

  auto sg = run_aegis("explain" + common + " --method smoothgrad --samples 4 --target true -o '" + dir.file("sg") +
                      "' --json");
  ASSERT_EQ(sg.exit_code, 0) << sg.err;
  json s = json::parse(sg.out);
  EXPECT_EQ(s["method"], "smoothgrad(saliency)");
  EXPECT_EQ(s["samples"][3]["target"], s["samples"][3]["label"]);
  EXPECT_FALSE(s.contains("max_abs_completeness_gap"));

  for (auto [args, message] : std::vector<std::pair<std::string, std::string>>{
           {" --method shap", "unknown method 'shap'"},
           {" --method ig --baseline black", "unknown baseline 'black'"},
           {" --method ig --rule simpson", "unknown integration rule"},
           {" --method smoothgrad --tunnel vargrad", "already a noise tunnel"},
           {" --target 9", "--target is predicted, true or a class"},
           {" --method ig --steps 0", "at least 1 step"},
           {" --method ig --window 3", "takes no parameter 'window'"},
           {" --method lime --tunnel smoothgrad", "noise tunnel is for gradient methods"},
           {" --method ig --background 2", "background set is for kernelshap"},
           {" --method kernelshap --background 99", "needs as many training samples"},
           {" --method ablation --mask voronoi", "unknown feature mask 'voronoi'"},
           {" --metrics deletion,fidelity", "unknown metric 'fidelity'"}}) {
    auto bad = run_aegis("explain" + common + args + " -o '" + dir.file("bad") + "'");
    EXPECT_EQ(bad.exit_code, 2) << args << "\n" << bad.err;
    EXPECT_NE(bad.err.find(message), std::string::npos) << args << "\n" << bad.err;
  }
}

TEST(ExplainCli, BlackBoxMethodsWriteTheSameFilesWithTheirOwnFigures) {
  testing::TempDir dir;
  const std::string common = model_and_data_flags(dir, 8, 9) + " -n 3";
  // 16 patches of 7 pixels: more than max-exact, so KernelSHAP samples coalitions.
  auto shap = run_aegis("explain" + common + " --method kernelshap --mask grid --patch 7 --samples 64 --background 4" +
                        " -o '" + dir.file("shap") + "' --json");
  ASSERT_EQ(shap.exit_code, 0) << shap.err;
  json k = json::parse(shap.out);
  EXPECT_EQ(k["method"], "kernel-shap");
  EXPECT_EQ(k["options"]["background"], 4);
  EXPECT_EQ(k["samples"][0]["feature_groups"], 16);
  EXPECT_LT(k["max_abs_completeness_gap"].get<double>(), 1e-3) << "Shapley values sum to f(x) - E[f(background)]";
  EXPECT_TRUE(std::filesystem::exists(dir.file("shap/grid.png")));
  EXPECT_EQ(load_npy(dir.file("shap/attributions.npy"), dir.file("shap/target.npy")).x.sizes(),
            (std::vector<int64_t>{3, 1, 28, 28}));

  auto lime =
      run_aegis("explain" + common + " --method lime --samples 100 --segments 20 -o '" + dir.file("lime") + "'");
  ASSERT_EQ(lime.exit_code, 0) << lime.err;
  EXPECT_NE(lime.out.find("local fidelity"), std::string::npos) << lime.out;
  std::ifstream in(dir.file("lime/explanation.json"));
  json l = json::parse(in);
  EXPECT_GE(l["samples"][2]["local_fidelity"].get<double>(), 0.0);
  EXPECT_LE(l["samples"][2]["local_fidelity"].get<double>(), 1.0);

  auto occ =
      run_aegis("explain" + common + " --method occlusion --window 6 --stride 3 -o '" + dir.file("occ") + "' --json");
  ASSERT_EQ(occ.exit_code, 0) << occ.err;
  EXPECT_EQ(json::parse(occ.out)["options"]["window"], 6);
}

TEST(ExplainCli, TreeFitsTheModelOnTheRestOfASingleFileAndWritesItsRules) {
  testing::TempDir dir;
  const std::string common = model_and_data_flags(dir, 300, 9);
  auto r = run_aegis("explain" + common + " --method tree --depth 4 -n 100 -o '" + dir.file("tree") + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["method"], "tree");
  EXPECT_EQ(j["held_out_samples"], 100);
  EXPECT_EQ(j["fit_samples"], 200);  // one file: the samples after the held-out ones
  ASSERT_EQ(j["fidelity_by_depth"].size(), size_t(j["depth"].get<int64_t>() + 1));
  EXPECT_GE(j["fidelity_by_depth"].back().get<double>(), 0.8) << j.dump();
  std::ifstream rules(dir.file("tree/rules.txt"));
  std::string first;
  std::getline(rules, first);
  EXPECT_EQ(first.rfind("if pixel (", 0), 0u) << first;
  EXPECT_TRUE(std::filesystem::exists(dir.file("tree/tree.json")));
  auto bad = run_aegis("explain" + common + " --method tree --depth 0 -o '" + dir.file("t2") + "'");
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("max depth"), std::string::npos) << bad.err;
  auto none_left = run_aegis("explain" + common + " --method tree -n 300 -o '" + dir.file("t3") + "'");
  EXPECT_EQ(none_left.exit_code, 2) << none_left.err;
  EXPECT_NE(none_left.err.find("none left to fit"), std::string::npos) << none_left.err;
}

TEST(ExplainCli, GradCamAndCounterfactualsWriteTheSameFilesAndTheCounterfactuals) {
  testing::TempDir dir;
  const std::string common = model_and_data_flags(dir, 8, 10) + " -n 4";
  auto cam = run_aegis("explain" + common + " --method gradcam -o '" + dir.file("cam") + "' --json");
  ASSERT_EQ(cam.exit_code, 0) << cam.err;
  json c = json::parse(cam.out);
  EXPECT_EQ(c["method"], "gradcam");
  torch::Tensor maps = load_npy(dir.file("cam/attributions.npy"), dir.file("cam/target.npy")).x;
  EXPECT_EQ(maps.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  EXPECT_GE(maps.min().item<float>(), 0.0f);
  EXPECT_TRUE(std::filesystem::exists(dir.file("cam/grid.png")));
  auto layer0 = run_aegis("explain" + common + " --method gradcam --layer 0 --signed -o '" + dir.file("cam0") +
                          "' --json");
  ASSERT_EQ(layer0.exit_code, 0) << layer0.err;
  EXPECT_EQ(json::parse(layer0.out)["options"]["layer"], 0);
  EXPECT_EQ(json::parse(layer0.out)["options"]["relu"], false);

  auto cf = run_aegis("explain" + common + " --method counterfactual -o '" + dir.file("cf") + "' --json");
  ASSERT_EQ(cf.exit_code, 0) << cf.err;
  json j = json::parse(cf.out);
  EXPECT_EQ(j["method"], "counterfactual");
  EXPECT_EQ(j["options"]["norm"], "l2");
  ASSERT_EQ(j["samples"].size(), 4u);
  torch::Tensor x = load_npy(dir.file("x.npy"), dir.file("y.npy")).x.narrow(0, 0, 4);
  torch::Tensor delta = load_npy(dir.file("cf/attributions.npy"), dir.file("cf/target.npy")).x;
  torch::Tensor counterfactual = load_npy(dir.file("cf/counterfactual.npy"), dir.file("cf/to.npy")).x;
  EXPECT_TRUE(torch::allclose(counterfactual - x, delta, 1e-5, 1e-6));
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_NE(j["samples"][i]["to"], j["samples"][i]["target"]) << "the runner-up is another class";
    if (j["samples"][i]["success"].get<bool>()) {
      EXPECT_EQ(j["samples"][i]["to"], j["samples"][i]["counterfactual_predicted"]);
      EXPECT_GT(j["samples"][i]["l2"].get<double>(), 0.0);
    }
  }
  EXPECT_GE(j["success_rate"].get<double>(), 0.75) << j.dump();
  DecodedImage grid = decode_image_file(dir.file("cf/grid.png"));
  EXPECT_GT(grid.width, 4 * 28) << "input, counterfactual, change and its size side by side";

  auto l1 = run_aegis("explain" + common + " --method counterfactual --norm l1 --to 2 --steps 50 -o '" +
                      dir.file("l1") + "' --json");
  ASSERT_EQ(l1.exit_code, 0) << l1.err;
  json k = json::parse(l1.out);
  EXPECT_EQ(k["options"]["norm"], "l1");
  EXPECT_EQ(k["samples"][1]["to"], 2);

  for (auto [args, message] : std::vector<std::pair<std::string, std::string>>{
           {" --method counterfactual --to best", "--to is runner-up or a class index"},
           {" --method counterfactual --to 7", "outside the model's 4 classes"},
           {" --method counterfactual --norm linf", "norm must be l2"},
           {" --method counterfactual --metrics deletion", "--metrics measures attributions"},
           {" --method ig --to 2", "takes no parameter 'to'"},
           {" --method gradcam --layer 2", "spatial feature map"},
           {" --method gradcam --layer 9", "does not exist"}}) {
    auto bad = run_aegis("explain" + common + args + " -o '" + dir.file("bad") + "'");
    EXPECT_EQ(bad.exit_code, 2) << args << "\n" << bad.err;
    EXPECT_NE(bad.err.find(message), std::string::npos) << args << "\n" << bad.err;
  }
}

TEST(ExplainCli, PrototypesWriteOneImagePerClass) {
  testing::TempDir dir;
  const std::string common = model_and_data_flags(dir, 40, 11);
  auto r = run_aegis("explain" + common + " --method prototypes --top 3 -o '" + dir.file("p") + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["method"], "prototypes");
  EXPECT_EQ(j["kind"], "mean");
  ASSERT_EQ(j["classes"].size(), 4u);
  EXPECT_EQ(j["classes"][0]["samples_averaged"], 3);
  torch::Tensor images = load_npy(dir.file("p/prototypes.npy"), dir.file("p/classes.npy")).x;
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  DecodedImage png = decode_image_file(dir.file("p/prototypes.png"));
  EXPECT_GE(png.width, 4 * 28 * 3) << "four classes side by side, enlarged";
  EXPECT_TRUE(std::filesystem::exists(dir.file("p/prototypes.json")));

  auto m = run_aegis("explain" + common + " --method prototypes --prototype maximise --steps 20 -o '" +
                     dir.file("m") + "' --json");
  ASSERT_EQ(m.exit_code, 0) << m.err;
  json mj = json::parse(m.out);
  EXPECT_EQ(mj["kind"], "maximise");
  for (const auto& c : mj["classes"])
    EXPECT_GT(c["score"].get<double>(), c["start_score"].get<double>()) << mj.dump();

  for (auto [args, message] : std::vector<std::pair<std::string, std::string>>{
           {" --method prototypes --prototype median", "unknown prototype kind 'median'"},
           {" --method prototypes --top 0", "top k must be >= 1"},
           {" --method prototypes --prototype maximise --top 3", "--top applies to --prototype mean"},
           {" --method prototypes --layer 1", "--layer does not apply"},
           {" --method prototypes -n 2", "has no samples"}}) {
    auto bad = run_aegis("explain" + common + args + " -o '" + dir.file("bad") + "'");
    EXPECT_EQ(bad.exit_code, 2) << args << "\n" << bad.err;
    EXPECT_NE(bad.err.find(message), std::string::npos) << args << "\n" << bad.err;
  }
  auto help = run_aegis("explain --help");
  for (const char* flag : {"--layer", "--to", "--norm", "--prototype", "--top", "gradcam", "counterfactual"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace aegis
