// aegis train --defense dp-sgd end to end: the budget is spent and stored in
// the model, `aegis info` shows it, `aegis sign` attests it (and tampering
// with it breaks verification), a resumed run keeps counting, and every bad
// flag gets a one-line message and exit code 2, an unsupported layer exit code 1.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "aegis/core/dataset_io.h"
#include "aegis/core/script_classifier.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using nlohmann::json;
using testing::run_aegis;

class DpTrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    Dataset blobs = testing::make_blobs(200, 4, 2, 1, 0.05);
    std::ofstream csv(dir_.file("train.csv"));
    csv << "f0,f1,f2,f3,label\n";
    for (int64_t i = 0; i < blobs.size(); ++i) {
      for (int j = 0; j < 4; ++j) csv << blobs.x[i][j].item<float>() << ",";
      csv << blobs.y[i].item<int64_t>() << "\n";
    }
  }
  std::string q(const std::string& name) {
    std::string quoted = "'";
    quoted.append(dir_.file(name)).append("'");
    return quoted;
  }
  std::string train(const std::string& extra) {
    return "train --data " + q("train.csv") + " --defense dp-sgd --batch-size 20 --lr 0.5 --optimizer sgd " +
           "--schedule constant --val-fraction 0 " + extra;
  }
  void expect_error(const testing::CommandResult& r, const std::string& fragment, int code = 2) {
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Exception raised from"), std::string::npos) << r.err;
  }
  testing::TempDir dir_;
};

TEST_F(DpTrainCli, SpendsTheBudgetStoresItAndInfoShowsIt) {
  auto r = run_aegis(train("--epsilon 2 --delta 1e-4 --epochs 2 --accountant rdp --json --out " + q("m.pt")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  const json& p = j["privacy"];
  EXPECT_LE(p["epsilon"].get<double>(), 2.0);
  EXPECT_GE(p["epsilon"].get<double>(), 1.99);
  EXPECT_EQ(p["steps"], 20);  // ceil(2 / q), q = 20 / 200
  EXPECT_EQ(p["seeded"], false);

  auto info = run_aegis("info " + q("m.pt") + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  json ij = json::parse(info.out);
  EXPECT_EQ(ij["privacy"]["epsilon"], p["epsilon"]);
  EXPECT_EQ(ij["meta"]["provenance"]["privacy"]["noise_multiplier"], p["noise_multiplier"]);
  auto human = run_aegis("info " + q("m.pt"));
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("privacy      epsilon "), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("at delta 0.0001 (rdp accountant), per training example"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("dp-sgd       sigma"), std::string::npos) << human.out;
  EXPECT_EQ(human.out.find("SEEDED"), std::string::npos) << human.out;
}

TEST_F(DpTrainCli, SigningAttestsTheBudgetAndTamperingBreaksIt) {
  ASSERT_EQ(run_aegis(train("--noise-multiplier 1 --epochs 1 --seeded-noise --out " + q("m.pt"))).exit_code, 0);
  ASSERT_EQ(run_aegis("keygen --out " + q("k.pem")).exit_code, 0);
  auto s = run_aegis("sign " + q("m.pt") + " --key " + q("k.pem") + " --json");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  json sj = json::parse(s.out);
  ASSERT_TRUE(sj.contains("attestation")) << s.out;
  EXPECT_EQ(sj["attestation"]["attachments"][0]["kind"], "privacy-budget");
  EXPECT_EQ(sj["attestation"]["attachments"][0]["content"]["noise_multiplier"], 1.0);
  auto v = run_aegis("verify " + q("m.pt") + " --pub " + q("k.pem.pub") + " --attestation");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("attested     privacy-budget"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("NOT private"), std::string::npos) << v.out;  // the seeded label travels with the budget

  // Claim a smaller epsilon in the model's metadata: the signature no longer holds.
  auto m = ScriptClassifier::load(dir_.file("m.pt"));
  m->mutable_meta().provenance["privacy"]["epsilon"] = 0.1;
  m->save(dir_.file("m.pt"));
  auto bad = run_aegis("verify " + q("m.pt") + " --pub " + q("k.pem.pub"));
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
}

TEST_F(DpTrainCli, ResumeKeepsCounting) {
  const std::string common = "--noise-multiplier 1.5 --seeded-noise --checkpoint-dir " + q("ck") + " --json";
  auto first = run_aegis(train(common + " --epochs 1 --out " + q("a.pt")));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(json::parse(first.out)["privacy"]["steps"], 10);
  auto second = run_aegis(train(common + " --epochs 2 --resume --out " + q("b.pt")));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  json j = json::parse(second.out);
  EXPECT_EQ(j["privacy"]["steps"], 20);
  EXPECT_EQ(j["result"]["resumed"], true);
  EXPECT_GT(j["privacy"]["epsilon"].get<double>(), json::parse(first.out)["privacy"]["epsilon"].get<double>());
}

TEST_F(DpTrainCli, RefusesBadFlagsAndUnsupportedLayers) {
  expect_error(run_aegis("train --data " + q("train.csv") + " --epsilon 1"), "--epsilon applies to --defense dp-sgd");
  expect_error(run_aegis("train --data " + q("train.csv") + " --max-grad-norm 2"), "applies to --defense dp-sgd");
  expect_error(run_aegis(train("")), "needs --epsilon");
  expect_error(run_aegis(train("--epsilon 1 --noise-multiplier 1")), "not both");
  expect_error(run_aegis(train("--epsilon 1 --delta 1")), "delta");
  expect_error(run_aegis(train("--epsilon 1 --max-grad-norm 0")), "max-grad-norm");
  expect_error(run_aegis(train("--epsilon 1 --clipping global")), "clipping");
  expect_error(run_aegis(train("--epsilon 1 --accountant moments")), "accountant");
  expect_error(run_aegis(train("--epsilon 1 --patience 2")), "early");
  expect_error(
      run_aegis("train --data " + q("train.csv") + " --defense dp-sgd --epsilon 1 --val-fraction 0 --batch-size 500"),
      "exceeds the training set");

  Dataset imgs = testing::make_bar_images(16, 2, 1);
  save_npy(imgs.x, dir_.file("x.npy"));
  save_npy(imgs.y, dir_.file("y.npy"));
  auto bn = run_aegis("train --data " + q("x.npy") + " --labels " + q("y.npy") +
                      " --arch resnet --defense dp-sgd --epsilon 1 --batch-size 4");
  expect_error(bn, "GroupNorm", 1);  // Unsupported: a valid request aegis cannot do
  EXPECT_NE(bn.err.find("bn0_weight"), std::string::npos) << bn.err;
  EXPECT_NE(bn.err.find("--arch resnet-gn"), std::string::npos) << bn.err;
}

}  // namespace
}  // namespace aegis
