#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "aegis/core/dataset_io.h"
#include "aegis/core/script_classifier.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::run_aegis;

struct Files {
  testing::TempDir dir;
  std::string csv;
  Files() {
    Dataset d = testing::make_blobs(300, 6, 3, 1, 0.05);
    csv = dir.file("blobs.csv");
    std::ofstream out(csv);
    out << "f0,f1,f2,f3,f4,f5,label\n";
    auto x = d.x.accessor<float, 2>();
    for (int64_t i = 0; i < d.size(); ++i) {
      for (int64_t j = 0; j < 6; ++j) out << x[i][j] << ",";
      out << d.y[i].item<int64_t>() << "\n";
    }
  }
  std::string data() const { return "--data " + csv; }
};

TEST(HardenCli, TrainWithADefenseRecordsItInTheModel) {
  Files f;
  std::string model = f.dir.file("robust.pt");
  auto r = run_aegis("train " + f.data() + " --defense pgd-at --eps 0.05 --attack-steps 2 --epochs 2 " +
                     "--warmup-epochs 1 --val-fraction 0 --quiet --json --out " + model);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["defense"], "pgd-at");
  auto m = ScriptClassifier::load(model);
  const auto& t = m->meta().provenance.at("training");
  EXPECT_EQ(t["objective"], "pgd-at");
  EXPECT_DOUBLE_EQ(t["objective_options"]["eps"].get<double>(), 0.05);
  EXPECT_EQ(t["objective_options"]["steps"], 2);
  EXPECT_EQ(t["options"]["epochs"], 2);

  // Distillation from it, at T = 10.
  std::string student = f.dir.file("student.pt");
  r = run_aegis("train " + f.data() + " --defense distillation --teacher " + model +
                " --temperature 10 --epochs 1 --val-fraction 0 --quiet --out " + student);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ScriptClassifier::load(student)->meta().provenance["training"]["objective"], "distillation");
}

TEST(HardenCli, UsageErrorsExitTwoWithOneLine) {
  Files f;
  auto r = run_aegis("train " + f.data() + " --defense distillation --epochs 1 --quiet");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--teacher"), std::string::npos) << r.err;
  r = run_aegis("train " + f.data() + " --defense fast-at --norm l2 --quiet");
  EXPECT_EQ(r.exit_code, 2);
  r = run_aegis("train " + f.data() + " --defense pgd-at --eps -1 --quiet");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("eps"), std::string::npos) << r.err;
  r = run_aegis("train " + f.data() + " --defense magic");
  EXPECT_EQ(r.exit_code, 2);
}

TEST(HardenCli, CertifyReportsRadiiAndCertifiedAccuracy) {
  Files f;
  std::string model = f.dir.file("m.pt");
  ASSERT_EQ(run_aegis("train " + f.data() + " --epochs 3 --val-fraction 0 --quiet --out " + model).exit_code, 0);
  auto r = run_aegis("certify --model " + model + " " + f.data() +
                     " --limit 20 --sigma 0.1 --n 200 --n0 20 --radius 0,0.1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto c = nlohmann::json::parse(r.out)["certificate"];
  EXPECT_EQ(c["samples"], 20);
  ASSERT_EQ(c["certified_accuracy"].size(), 2u);
  EXPECT_GE(c["certified_accuracy"][0]["certified_accuracy"].get<double>(),
            c["certified_accuracy"][1]["certified_accuracy"].get<double>());
  EXPECT_EQ(run_aegis("certify --model " + model + " " + f.data() + " --sigma 0").exit_code, 2);
}

TEST(HardenCli, DetectEvalAdaptiveAndEvaluateWithADetector) {
  Files f;
  std::string model = f.dir.file("m.pt"), det = f.dir.file("m.pt.detector.json");
  ASSERT_EQ(run_aegis("train " + f.data() + " --epochs 3 --val-fraction 0 --quiet --out " + model).exit_code, 0);
  auto r = run_aegis("detect-eval --model " + model + " " + f.data() +
                     " --calibration-samples 100 --detector feature-squeezing --bits 2 --median 1 --eps 0.1 "
                     "--attacks pgd --adaptive --adaptive-steps 10 --save " + det + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto e = nlohmann::json::parse(r.out)["evaluation"];
  ASSERT_EQ(e["attacks"].size(), 2u);
  EXPECT_EQ(e["attacks"][1]["attack"], "adaptive");
  EXPECT_EQ(e["attacks"][1]["options"]["surrogate"], "bpda");
  EXPECT_LE(e["robust_accuracy_adaptive"].get<double>(), e["robust_accuracy_detector"].get<double>());
  EXPECT_GE(e["robust_accuracy_detector"].get<double>(), e["robust_accuracy_model"].get<double>());

  auto v = run_aegis("evaluate --model " + model + " " + f.data() +
                     " -n 40 --eps 0.1 --budget quick --no-sanity --detector " + det + " --adaptive-steps 10 --json");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  auto d = nlohmann::json::parse(v.out)["detector"];
  EXPECT_EQ(d["detector"], "feature-squeezing");
  EXPECT_EQ(d["samples"], 40);
  EXPECT_LE(d["robust_accuracy_adaptive"].get<double>(), d["robust_accuracy_detector"].get<double>());
  EXPECT_GE(d["robust_accuracy_detector"].get<double>(), d["robust_accuracy_model"].get<double>());

  EXPECT_EQ(run_aegis("detect-eval --model " + model + " " + f.data() + " --adaptive --adaptive-method sideways").exit_code, 2);
  EXPECT_EQ(run_aegis("evaluate --model " + model + " " + f.data() + " --eps 0.1 --detector " + f.dir.file("none.json"))
                .exit_code,
            1);
  EXPECT_EQ(run_aegis("gateway-attack --model " + model + " " + f.data()).exit_code, 2);
}

TEST(HardenCli, DetectEvalStripMeasuresFalseAcceptanceOfTriggeredInputs) {
  testing::TempDir dir;
  testing::tiny_backdoor_model(true)->save(dir.file("m.pt"));
  Dataset d = testing::make_tiny_backdoor_data(300, 21);
  save_npy(d.x, dir.file("x.npy"));
  save_npy(d.y, dir.file("y.npy"));
  std::ofstream(dir.file("poison.json")) << testing::tiny_backdoor_record().dump();
  std::ofstream(dir.file("flip.json")) << R"({"attack": "label-flip", "target_class": 1})";
  const std::string base = "detect-eval --model " + dir.file("m.pt") + " --data " + dir.file("x.npy") + " --labels " +
                           dir.file("y.npy") +
                           " --detector strip --strip-overlays 32 --strip-pool 32 --attacks none --fpr 0.01 "
                           "--calibration-samples 100";
  auto r = run_aegis(base + " --backdoor " + dir.file("poison.json") + " --save " + dir.file("det.json") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto e = nlohmann::json::parse(r.out)["evaluation"];
  ASSERT_EQ(e["attacks"].size(), 1u);
  EXPECT_EQ(e["attacks"][0]["attack"], "trigger");
  EXPECT_EQ(e["attacks"][0]["evaded"], 0);
  EXPECT_GT(e["attacks"][0]["successful"].get<int64_t>(), 100);
  auto text = run_aegis("detect-eval --model " + dir.file("m.pt") + " --data " + dir.file("x.npy") + " --labels " +
                        dir.file("y.npy") + " --load " + dir.file("det.json") +
                        " --attacks none --fpr 0.01 --calibration-samples 100 --backdoor " + dir.file("poison.json"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("false acceptance 0.0000"), std::string::npos) << text.out;
  // A record without a trigger is refused with the reason.
  auto bad = run_aegis(base + " --backdoor " + dir.file("flip.json"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("no trigger"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace aegis
