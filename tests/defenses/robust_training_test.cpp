#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/distillation.h"
#include "aegis/defenses/training/fast_at.h"
#include "aegis/defenses/training/pgd_at.h"
#include "aegis/defenses/training/trades.h"
#include "aegis/defenses/training/trainer.h"
#include "support/test_support.h"

namespace aegis {
namespace {

/// Two classes; feature 0 is robust (0.5 +- 0.3, agrees with the label 90% of
/// the time), features 1..40 are non-robust (0.5 +- 0.05 plus noise 0.02): a
/// standard model leans on the many weak features, which an Linf eps of 0.1
/// flips all at once; a robust model must use feature 0 (Tsipras et al. 2019).
Dataset robust_vs_nonrobust(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed, "rvn");
  torch::Tensor y = torch::randint(0, 2, {n}, gen, torch::kLong);
  torch::Tensor s = y.to(torch::kFloat) * 2 - 1;
  torch::Tensor agree = (torch::rand({n}, gen) < 0.9).to(torch::kFloat) * 2 - 1;
  torch::Tensor x = torch::empty({n, 41});
  x.select(1, 0).copy_(0.5 + 0.3 * s * agree);
  x.narrow(1, 1, 40).copy_(0.5 + 0.05 * s.unsqueeze(1) + 0.02 * torch::randn({n, 40}, gen));
  Dataset d;
  d.x = x.clamp(0, 1).contiguous();
  d.y = y;
  d.source = "robust-vs-nonrobust";
  return d;
}

std::shared_ptr<ScriptClassifier> fresh_mlp(int64_t features = 41, int64_t classes = 2, double dropout = 0) {
  seed_everything(11);
  return build_architecture(
      ArchitectureOptions("mlp", {features}, classes).hidden({32}).dropout(dropout).normalization({0.5}, {0.1}));
}

double robust_accuracy(ScriptClassifier& m, const Dataset& d, double eps) {
  AttackResult r = PGD(PGDOptions(eps).steps(20).restarts(2)).run(m, d.x, d.y);
  return 1.0 - r.success_rate();
}

double clean_accuracy(ScriptClassifier& m, const Dataset& d) {
  return (m.predict(d.x) == d.y).to(torch::kDouble).mean().item<double>();
}

const TrainOptions kOpts = TrainOptions().epochs(10).batch_size(32).lr(1e-2).seed(3);

TEST(RobustTraining, PGDATImprovesRobustAccuracyOverStandardTraining) {
  Dataset fit = robust_vs_nonrobust(1200, 1), test = robust_vs_nonrobust(400, 2);
  auto standard = fresh_mlp();
  train(*standard, fit, nullptr, kOpts);
  auto robust = fresh_mlp();
  PGDATObjective at(PGDATOptions(0.1).steps(5).warmup_epochs(1));
  TrainResult tr = train(*robust, fit, nullptr, kOpts, &at);
  // An adversarial objective reports its accuracy on its own adversarial batch, labelled as such.
  EXPECT_EQ(tr.history.back().train_accuracy_on, "adversarial");
  EXPECT_GT(tr.history.back().train_accuracy, 0.5);
  // The crafted batch is what loss() trains on: inside the ball and the range, the model left in training state.
  {
    TrainingScope scope(*robust);
    Batch b{test.x.narrow(0, 0, 32), test.y.narrow(0, 0, 32), torch::arange(32)};
    torch::Tensor xa = at.adversarial_batch(*robust, b, StepContext{});
    EXPECT_LE((xa - b.x).abs().max().item<double>(), 0.1 + 1e-6);
    EXPECT_TRUE(robust->training());
  }
  double std_clean = clean_accuracy(*standard, test), std_rob = robust_accuracy(*standard, test, 0.1);
  double at_clean = clean_accuracy(*robust, test), at_rob = robust_accuracy(*robust, test, 0.1);
  EXPECT_GT(std_clean, 0.95);  // the weak features separate the classes well...
  EXPECT_LT(std_rob, 0.5);     // ...but not under attack
  EXPECT_GT(at_rob, 0.8);      // the robust feature does
  EXPECT_GT(at_rob, std_rob + 0.3);
  EXPECT_GT(at_clean, 0.8);
  // The recipe is recorded in the model.
  const auto& t = robust->meta().provenance.at("training");
  EXPECT_EQ(t.at("objective"), "pgd-at");
  EXPECT_DOUBLE_EQ(t.at("objective_options").at("eps").get<double>(), 0.1);
  EXPECT_EQ(t.at("data").at("fingerprint"), fit.fingerprint());
  EXPECT_FALSE(robust->training());
}

TEST(RobustTraining, TRADESAndFastATAlsoImproveRobustAccuracy) {
  Dataset fit = robust_vs_nonrobust(1200, 1), test = robust_vs_nonrobust(400, 2);
  auto standard = fresh_mlp();
  train(*standard, fit, nullptr, kOpts);
  double std_rob = robust_accuracy(*standard, test, 0.1);

  auto trades_model = fresh_mlp();
  TRADESObjective trades(TRADESOptions(0.1).beta(6).steps(5));
  train(*trades_model, fit, nullptr, kOpts, &trades);
  EXPECT_GT(robust_accuracy(*trades_model, test, 0.1), std_rob + 0.3);
  EXPECT_EQ(trades_model->meta().provenance["training"]["objective"], "trades");

  auto fast = fresh_mlp();
  FastATObjective fat(FastATOptions(0.1).step_size(0.1).warmup_epochs(2));
  train(*fast, fit, nullptr, kOpts, &fat);
  EXPECT_GT(robust_accuracy(*fast, test, 0.1), std_rob + 0.2);
}

TEST(RobustTraining, WarmUpGrowsEpsLinearlyAndThenHolds) {
  StepContext c{0, 4, 0, 10, 0};
  EXPECT_NEAR(warmed_up_eps(0.1, 2, c), 0.1 * (0.1 / 2), 1e-12);
  c.epoch = 1;
  c.step = 4;
  EXPECT_NEAR(warmed_up_eps(0.1, 2, c), 0.1 * (1.5 / 2), 1e-12);
  c.epoch = 3;
  EXPECT_DOUBLE_EQ(warmed_up_eps(0.1, 2, c), 0.1);
  EXPECT_DOUBLE_EQ(warmed_up_eps(0.1, 0, StepContext{}), 0.1);
}

TEST(RobustTraining, RejectsBadOptionsByName) {
  auto expect_invalid = [](auto fn, const std::string& what) {
    try {
      fn();
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_invalid([] { PGDATObjective{PGDATOptions(0)}; }, "eps");
  expect_invalid([] { PGDATObjective{PGDATOptions(0.1).norm(Norm::L1)}; }, "norm");
  expect_invalid([] { PGDATObjective{PGDATOptions(0.1).norm(Norm::L2).fast_epochs(1)}; }, "fast epochs");
  expect_invalid([] { TRADESObjective{TRADESOptions(0.1).beta(-1)}; }, "beta");
  expect_invalid([] { FastATObjective{FastATOptions(-0.1)}; }, "eps");
  expect_invalid([] { DistillationObjective{nullptr, DistillationOptions()}; }, "teacher");
  expect_invalid([] { DistillationObjective{fresh_mlp(), DistillationOptions().temperature(0)}; }, "temperature");
}

TEST(Distillation, StudentMatchesTeacherSoftLabelsAtTemperature) {
  Dataset d = testing::make_blobs(600, 5, 3, 4, 0.15);
  // A fixed linear teacher; the labels the student sees are all wrong on
  // purpose (class 0): it must learn from the teacher's soft labels alone.
  auto gen = make_generator(5, "teacher");
  auto teacher = testing::make_linear(torch::randn({3, 5}, gen) * 3, torch::zeros({3}));
  Dataset garbage = d;
  garbage.y = torch::zeros_like(d.y);
  const double T = 4.0;
  auto student = fresh_mlp(5, 3);
  auto soft_gap = [&](ScriptClassifier& s) {
    torch::Tensor p = torch::softmax(teacher->logits(d.x) / T, 1), q = torch::softmax(s.logits(d.x) / T, 1);
    return 0.5 * (p - q).abs().sum(1).mean().item<double>();  // mean total variation
  };
  double before = soft_gap(*student);
  DistillationObjective obj(teacher, DistillationOptions().temperature(T));
  train(*student, garbage, nullptr, TrainOptions().epochs(30).batch_size(64).lr(1e-2).seed(1), &obj);
  double after = soft_gap(*student);
  EXPECT_LT(after, 0.03) << "before " << before;
  EXPECT_LT(after, before / 3);
  // At T = 1 it agrees with the teacher's decisions.
  EXPECT_GT((student->predict(d.x) == teacher->predict(d.x)).to(torch::kDouble).mean().item<double>(), 0.95);
  EXPECT_EQ(student->meta().provenance["training"]["objective"], "distillation");
  EXPECT_DOUBLE_EQ(student->meta().provenance["training"]["objective_options"]["temperature"].get<double>(), T);
}

/// Trains with checkpoints and stops by throwing after `stop_after` epochs (0 =
/// never).
std::shared_ptr<ScriptClassifier> run_with_checkpoints(const Dataset& d, const std::string& dir, int64_t stop_after,
                                                       bool resume, Objective* obj) {
  auto m = fresh_mlp(41, 2,
                     0.3);  // dropout: the global generator must be restored too
  TrainOptions o =
      TrainOptions().epochs(4).batch_size(50).lr(5e-3).weight_decay(1e-3).seed(9).checkpoint_dir(dir).resume(resume);
  if (resume) seed_everything(12345);  // a resumed process starts from some other generator state
  try {
    train(*m, d, nullptr, o, obj, [&](const EpochStats& s) {
      if (stop_after > 0 && s.epoch == stop_after + 1) throw std::runtime_error("interrupted");
    });
  } catch (const std::runtime_error&) {
    return nullptr;
  }
  return m;
}

TEST(Resume, InterruptedThenResumedEqualsUninterrupted) {
  Dataset d = robust_vs_nonrobust(300, 6);
  testing::TempDir a, b;
  for (bool adversarial : {false, true}) {
    SCOPED_TRACE(adversarial ? "pgd-at" : "standard");
    PGDATObjective at(PGDATOptions(0.1).steps(2).warmup_epochs(1));
    Objective* obj = adversarial ? static_cast<Objective*>(&at) : nullptr;
    auto full = run_with_checkpoints(d, a.file(adversarial ? "a1" : "a0"), 0, false, obj);
    ASSERT_TRUE(full);
    EXPECT_EQ(run_with_checkpoints(d, b.file(adversarial ? "b1" : "b0"), 2, false, obj), nullptr);
    auto resumed = run_with_checkpoints(d, b.file(adversarial ? "b1" : "b0"), 0, true, obj);
    ASSERT_TRUE(resumed);
    auto p = full->parameters(), q = resumed->parameters();
    ASSERT_EQ(p.size(), q.size());
    for (size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(torch::equal(p[i], q[i])) << "parameter " << i;
  }
  // Fast-AT's random starts are per step too.
  FastATObjective fast(FastATOptions(0.1));
  auto full = run_with_checkpoints(d, a.file("f"), 0, false, &fast);
  run_with_checkpoints(d, b.file("f"), 1, false, &fast);
  auto resumed = run_with_checkpoints(d, b.file("f"), 0, true, &fast);
  ASSERT_TRUE(full && resumed);
  for (size_t i = 0; i < full->parameters().size(); ++i)
    EXPECT_TRUE(torch::equal(full->parameters()[i], resumed->parameters()[i]));
}

TEST(Resume, RefusesACheckpointMadeWithOtherOptions) {
  Dataset d = robust_vs_nonrobust(100, 6);
  testing::TempDir dir;
  auto m = fresh_mlp();
  train(*m, d, nullptr, TrainOptions().epochs(1).checkpoint_dir(dir.file("ck")));
  try {
    train(*m, d, nullptr, TrainOptions().epochs(2).checkpoint_dir(dir.file("ck")).resume(true));
    ADD_FAILURE() << "resumed with other options";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("other training options"), std::string::npos);
  }
}

}  // namespace
}  // namespace aegis
