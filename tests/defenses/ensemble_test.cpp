#include "aegis/defenses/ensemble.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "support/test_support.h"

namespace aegis {
namespace {

std::vector<ClassifierPtr> members(int n, int64_t features = 6, int64_t classes = 4) {
  std::vector<ClassifierPtr> out;
  for (int i = 0; i < n; ++i) {
    auto gen = make_generator(uint64_t(i), "member");
    out.push_back(testing::make_linear(torch::randn({classes, features}, gen), torch::randn({classes}, gen)));
  }
  return out;
}

TEST(Ensemble, LogitsAreTheMeanOfTheMembers) {
  auto ms = members(3);
  EnsembleClassifier ens(ms, EnsembleOptions().combine("logits"));
  torch::Tensor x = torch::rand({16, 6}, make_generator(1, "x"));
  torch::Tensor mean = (ms[0]->logits(x) + ms[1]->logits(x) + ms[2]->logits(x)) / 3;
  EXPECT_TRUE(torch::allclose(ens.logits(x), mean, 1e-5, 1e-6));
  // Gradients too: the ensemble's input gradient is the mean of the members'.
  torch::Tensor y = torch::randint(0, 4, {16}, make_generator(2, "y"), torch::kLong);
  torch::Tensor xg = x.clone().requires_grad_(true);
  torch::Tensor g = torch::autograd::grad({ens.forward(xg).gather(1, y.unsqueeze(1)).sum()}, {xg})[0];
  torch::Tensor expect = torch::zeros_like(x);
  for (auto& m : ms) {
    torch::Tensor xm = x.clone().requires_grad_(true);
    expect += torch::autograd::grad({m->forward(xm).gather(1, y.unsqueeze(1)).sum()}, {xm})[0] / 3;
  }
  EXPECT_TRUE(torch::allclose(g, expect, 1e-5, 1e-6));
}

TEST(Ensemble, ProbabilitiesAreTheWeightedMeanOfTheMembers) {
  auto ms = members(2);
  EnsembleClassifier ens(ms, EnsembleOptions().combine("probabilities").weights({1, 3}));
  torch::Tensor x = torch::rand({8, 6}, make_generator(3, "x"));
  torch::Tensor expect = 0.25 * ms[0]->probabilities(x) + 0.75 * ms[1]->probabilities(x);
  EXPECT_TRUE(torch::allclose(ens.probabilities(x), expect, 1e-5, 1e-6));
  EXPECT_EQ(ens.meta().architecture, "ensemble");
}

TEST(Ensemble, AttacksRunOnItAndACommonMemberEnsembleEqualsTheMember) {
  auto ms = members(1);
  EnsembleClassifier ens({ms[0], ms[0]}, EnsembleOptions().combine("logits"));
  torch::Tensor x = torch::rand({8, 6}, make_generator(4, "x"));
  torch::Tensor y = ms[0]->predict(x);
  AttackResult a = PGD(PGDOptions(0.2).steps(10).seed(1)).run(ens, x, y);
  AttackResult b = PGD(PGDOptions(0.2).steps(10).seed(1)).run(*ms[0], x, y);
  EXPECT_TRUE(torch::allclose(a.x_adv, b.x_adv, 1e-5, 1e-5));
}

TEST(Ensemble, RejectsMismatchedMembersAndBadWeights) {
  auto ms = members(1);
  auto other = members(1, 7)[0];
  try {
    EnsembleClassifier bad({ms[0], other});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::ShapeMismatch);
  }
  EXPECT_THROW(EnsembleClassifier({}), Error);
  EXPECT_THROW(EnsembleClassifier(ms, EnsembleOptions().weights({1, 2})), Error);
  EXPECT_THROW(EnsembleClassifier(ms, EnsembleOptions().weights({0})), Error);
  EXPECT_THROW(EnsembleClassifier(ms, EnsembleOptions().combine("vote")), Error);
}

}  // namespace
}  // namespace aegis
