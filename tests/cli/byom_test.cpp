// Bring your own model: a TorchScript archive without aegis metadata (as
// `torch.jit.save` writes it) goes through eval, attack, evaluate and audit
// with the data's sample shape, and `aegis model meta` writes the metadata in.
// Serving such a model is tested in tests/serve/gateway_test.cpp.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "aegis/core/dataset_io.h"
#include "aegis/core/image_io.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using nlohmann::json;
using testing::run_aegis;

class ByomCli : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("AEGIS_PROGRESS", "lines", 1);  // the notes on stderr are part of what is tested
    // The trained bars CNN, saved the way PyTorch users save: no aegis.json.
    testing::trained_bars_cnn(4)->module().save(dir_.file("foreign.pt"));
    Dataset bars = testing::make_bar_images(48, 4, 5);
    save_npy(bars.x, dir_.file("x.npy"));
    save_npy(bars.y, dir_.file("y.npy"));
  }
  void TearDown() override { setenv("AEGIS_PROGRESS", "quiet", 1); }
  std::string q(const std::string& name) {
    std::string quoted = "'";
    quoted.append(dir_.file(name)).append("'");
    return quoted;
  }
  std::string data() { return " --data " + q("x.npy") + " --labels " + q("y.npy"); }
  testing::TempDir dir_;
};

TEST_F(ByomCli, ForeignModelTakesTheDataShapeInEvalAttackEvaluateAndAudit) {
  auto e = run_aegis("eval -m " + q("foreign.pt") + data());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.err.find("carries no aegis metadata; taking the input shape 1,28,28 from the data"), std::string::npos)
      << e.err;
  EXPECT_NE(e.out.find("accuracy"), std::string::npos);

  auto a =
      run_aegis("attack -m " + q("foreign.pt") + data() + " -a pgd --eps 0.3 --steps 10 -o " + q("atk") + " --json");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_GT(json::parse(a.out)["result"]["success_rate"].get<double>(), 0.0);
  // The grid has the true and predicted classes beside each pair: wider than
  // the three 84-pixel images with their gaps, with dark text pixels there.
  DecodedImage grid = decode_image_file(dir_.file("atk/grid.png"));
  const int images_w = 3 * 84 + 4 * 2;
  ASSERT_GT(grid.width, images_w + 20);
  int dark = 0;
  for (int y = 0; y < grid.height; ++y)
    for (int x = images_w; x < grid.width; ++x) dark += grid.pixels[size_t(y * grid.width + x) * grid.channels] < 100;
  EXPECT_GT(dark, 50);

  auto ev = run_aegis("evaluate -m " + q("foreign.pt") + data() + " --eps 0.1 --budget quick --no-sanity -n 24 --json");
  ASSERT_EQ(ev.exit_code, 0) << ev.err;
  EXPECT_LE(json::parse(ev.out)["evaluation"]["robust_accuracy"].get<double>(),
            json::parse(ev.out)["evaluation"]["clean_accuracy"].get<double>());

  // The quick suite on 24 samples; mitigations name --init with the user's model.
  auto au = run_aegis("audit -m " + q("foreign.pt") + data() + " --budget quick --samples 24 --out " + q("audit") +
                      " --json");
  ASSERT_EQ(au.exit_code, 0) << au.err;
  json report = json::parse(std::ifstream(dir_.file("audit/report.json")));
  int train_mitigations = 0;
  for (const auto& f : report["findings"]) {
    const std::string m = f.value("mitigation", "");
    if (m.rfind("aegis train ", 0) != 0) continue;
    ++train_mitigations;
    EXPECT_NE(m.find("--init " + dir_.file("foreign.pt")), std::string::npos) << m;
  }
  EXPECT_GT(train_mitigations, 0) << report["findings"].dump();
}

TEST_F(ByomCli, ModelMetaWritesMetadataThatInfoShowsAndRefusesWhatIsWrong) {
  auto w = run_aegis("model meta " + q("foreign.pt") +
                     " --input-shape 1,28,28 --class-names up,down,left,right --clip 0,1 -o " + q("meta.pt"));
  ASSERT_EQ(w.exit_code, 0) << w.err;
  auto info = run_aegis("info " + q("meta.pt") + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  json meta = json::parse(info.out)["meta"];
  EXPECT_EQ(meta["input_shape"], json({1, 28, 28}));
  EXPECT_EQ(meta["num_classes"], 4);
  EXPECT_EQ(meta["class_names"], json({"up", "down", "left", "right"}));
  // The archive now works with no flags and no data shape, and no note.
  auto e = run_aegis("eval -m " + q("meta.pt") + data());
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(e.err.find("no aegis metadata"), std::string::npos) << e.err;

  auto exists = run_aegis("model meta " + q("foreign.pt") + " --input-shape 1,28,28 -o " + q("meta.pt"));
  EXPECT_EQ(exists.exit_code, 2);
  EXPECT_NE(exists.err.find("exists; pass --force"), std::string::npos) << exists.err;
  auto no_shape = run_aegis("model meta " + q("foreign.pt") + " -o " + q("other.pt"));
  EXPECT_EQ(no_shape.exit_code, 2);
  EXPECT_NE(no_shape.err.find("give the input shape"), std::string::npos) << no_shape.err;
  auto wrong_classes =
      run_aegis("model meta " + q("foreign.pt") + " --input-shape 1,28,28 --classes 7 -o " + q("other.pt"));
  EXPECT_EQ(wrong_classes.exit_code, 1);
  EXPECT_NE(wrong_classes.err.find("returns 4 logits but 7 classes"), std::string::npos) << wrong_classes.err;
  auto wrong_shape = run_aegis("model meta " + q("foreign.pt") + " --input-shape 3,5 -o " + q("other.pt"));
  EXPECT_EQ(wrong_shape.exit_code, 1);
  EXPECT_NE(wrong_shape.err.find("rejects inputs of shape"), std::string::npos) << wrong_shape.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("other.pt")));
}

}  // namespace
}  // namespace aegis
