// End-to-end runs of the aegis binary: the happy paths on small synthetic
// data and every error path with its exit code and one-line message.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <fstream>

#include "aegis/core/architectures.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/random.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::run_aegis;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    // Tabular data: 4 features, 3 classes; and 28x28 images.
    Dataset blobs = testing::make_blobs(240, 4, 3, 1, 0.05);
    std::ofstream csv(dir_.file("train.csv"));
    csv << "f0,f1,f2,f3,label\n";
    for (int64_t i = 0; i < blobs.size(); ++i) {
      for (int j = 0; j < 4; ++j) csv << blobs.x[i][j].item<float>() << ",";
      csv << blobs.y[i].item<int64_t>() << "\n";
    }
    csv.close();
    Dataset bars = testing::make_bar_images(64, 4, 2);
    save_npy(bars.x, dir_.file("img_x.npy"));
    save_npy(bars.y, dir_.file("img_y.npy"));
  }

  /// Checks a failure: exit code, one line on stderr with the fragment, no stack dump.
  void expect_error(const testing::CommandResult& r, int code, const std::string& fragment) {
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Exception raised from"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
    if (code == 1) {
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_EQ(r.err.rfind("aegis: error: ", 0), 0u) << r.err;
    }
  }

  std::string q(const std::string& name) { return "'" + dir_.file(name) + "'"; }
  testing::TempDir dir_;
};

TEST_F(Cli, TrainEvalInfoOnCsv) {
  auto t = run_aegis("train --data " + q("train.csv") + " --epochs 15 --lr 0.01 --out " + q("m.pt") + " --json");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  auto tj = nlohmann::json::parse(t.out);
  EXPECT_EQ(tj["architecture"], "mlp");
  EXPECT_GT(tj["result"]["history"].back()["val_accuracy"].get<double>(), 0.9);

  auto e = run_aegis("eval -m " + q("m.pt") + " --data " + q("train.csv") + " --json");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto ej = nlohmann::json::parse(e.out);
  EXPECT_GT(ej["metrics"]["accuracy"].get<double>(), 0.9);
  EXPECT_EQ(ej["metrics"]["confusion"].size(), 3u);
  int64_t total = 0;
  for (const auto& row : ej["metrics"]["confusion"])
    for (const auto& v : row) total += v.get<int64_t>();
  EXPECT_EQ(total, 240);

  auto i = run_aegis("info " + q("m.pt") + " --json");
  ASSERT_EQ(i.exit_code, 0) << i.err;
  auto ij = nlohmann::json::parse(i.out);
  EXPECT_EQ(ij["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(ij["meta"]["input_shape"], (std::vector<int64_t>{4}));
  EXPECT_GT(ij["parameters"].get<int64_t>(), 0);
  auto human = run_aegis("info " + q("m.pt"));
  EXPECT_NE(human.out.find("architecture mlp"), std::string::npos) << human.out;
}

TEST_F(Cli, TrainOnNpyImagesWithCheckpointsAndResume) {
  std::string common = "train --data " + q("img_x.npy") + " --labels " + q("img_y.npy") +
                       " --epochs 2 --batch-size 16 --checkpoint-dir " + q("ck") + " --out " + q("cnn.pt") + " -q";
  auto r = run_aegis(common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto again = run_aegis(common + " --resume --json");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto j = nlohmann::json::parse(again.out);
  EXPECT_TRUE(j["result"]["resumed"].get<bool>());
  EXPECT_EQ(j["architecture"], "cnn");
}

TEST_F(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run_aegis("").exit_code, 2);
  EXPECT_EQ(run_aegis("frobnicate").exit_code, 2);
  expect_error(run_aegis("train --no-such-flag"), 2, "no-such-flag");
  expect_error(run_aegis("train --epochs 0"), 2, "epochs");
  expect_error(run_aegis("train --arch vit"), 2, "arch");
  expect_error(run_aegis("eval"), 2, "model");
  expect_error(run_aegis("train --data " + q("img_x.npy") + " --epochs 1"), 2, "--labels");
  EXPECT_EQ(run_aegis("train --help").exit_code, 0);
  EXPECT_NE(run_aegis("eval --help").out.find("--model"), std::string::npos);
}

TEST_F(Cli, RuntimeErrorsExitOneWithOneLine) {
  expect_error(run_aegis("eval -m " + q("missing.pt") + " --data " + q("train.csv")), 1, "model file not found");
  std::ofstream(dir_.file("junk.pt")) << "not a model";
  expect_error(run_aegis("eval -m " + q("junk.pt") + " --data " + q("train.csv")), 1, "not a TorchScript archive");
  expect_error(run_aegis("info " + q("junk.pt")), 1, "not a TorchScript archive");

  ASSERT_EQ(run_aegis("train --data " + q("train.csv") + " --epochs 1 --out " + q("m.pt") + " -q").exit_code, 0);
  expect_error(run_aegis("eval -m " + q("m.pt") + " --data " + q("nope.csv")), 1, "data not found");
  // Images into a tabular model.
  expect_error(run_aegis("eval -m " + q("m.pt") + " --data " + q("img_x.npy") + " --labels " + q("img_y.npy")), 1,
               "data samples are [1, 28, 28] but the model takes [4]");
  // Labels beyond the model's classes.
  std::ofstream(dir_.file("wide.csv")) << "f0,f1,f2,f3,label\n0,0,0,0,0\n1,1,1,1,7\n";
  expect_error(run_aegis("eval -m " + q("m.pt") + " --data " + q("wide.csv")), 1, "label 7");
  // Corrupt data file.
  std::ofstream(dir_.file("bad.npy")) << "\x93NUMPY garbage";
  expect_error(run_aegis("eval -m " + q("m.pt") + " --data " + q("bad.npy") + " --labels " + q("img_y.npy")), 1,
               "bad.npy");
  // A foreign archive without metadata and without --input-shape.
  seed_everything(0);
  build_architecture(ArchitectureOptions("mlp", {4}, 3))->module().save(dir_.file("plain.pt"));
  expect_error(run_aegis("info " + q("plain.pt")), 2, "--input-shape");
  EXPECT_EQ(run_aegis("info " + q("plain.pt") + " --input-shape 4").exit_code, 0);
}

}  // namespace
}  // namespace aegis
