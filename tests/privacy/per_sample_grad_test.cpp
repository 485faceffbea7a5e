// Per-sample gradients from the rewritten graph equal the gradients autograd
// gives one sample at a time, for every supported layer (linear on 2-D and
// 3-D inputs, conv2d with stride, padding, dilation and groups, group norm,
// layer norm, a parameter shared by two layers) and for the DP-ready built-in
// networks; batch norm and other parameter uses are refused by name.

#include "aegis/privacy/per_sample_grad.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/privacy/clipping.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;
using testing::error_message_of;

std::shared_ptr<ScriptClassifier> script_model(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                               const std::string& forward, std::vector<int64_t> input_shape,
                                               int64_t classes) {
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.PsgTest"));
  m.register_attribute("training", c10::BoolType::get(), false);
  for (const auto& [name, t] : params) m.register_parameter(name, t.clone(), false);
  m.define(forward);
  ModelMeta meta;
  meta.input_shape = std::move(input_shape);
  meta.num_classes = classes;
  return std::make_shared<ScriptClassifier>(m, meta);
}

/// Gradient of sample b's own loss, by ordinary autograd, one sample at a time.
std::vector<torch::Tensor> one_at_a_time(ScriptClassifier& model, const torch::Tensor& x, const torch::Tensor& y,
                                         int64_t b) {
  TrainingScope scope(model);
  auto params = model.parameters();
  torch::Tensor logits = model.module().forward({x.slice(0, b, b + 1)}).toTensor();
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y.slice(0, b, b + 1));
  return torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
}

void expect_matches_one_at_a_time(ScriptClassifier& model, const torch::Tensor& x, const torch::Tensor& y) {
  PerSampleGradient psg(model);
  PerSampleGrads g = psg.compute(x, y);
  auto params = model.parameters();
  ASSERT_EQ(g.grads.size(), params.size());
  for (int64_t b = 0; b < x.size(0); ++b) {
    auto ref = one_at_a_time(model, x, y, b);
    for (size_t p = 0; p < params.size(); ++p) {
      torch::Tensor r = ref[p].defined() ? ref[p] : torch::zeros_like(params[p]);
      torch::Tensor got = g.grads[p][b];
      ASSERT_EQ(got.sizes(), r.sizes()) << psg.parameter_names()[p];
      const double scale = std::max(1.0, r.abs().max().item<double>());
      EXPECT_LT((got - r).abs().max().item<double>(), 1e-4 * scale)
          << "sample " << b << ", parameter " << psg.parameter_names()[p];
    }
  }
}

TEST(PerSampleGrad, LinearOnFlatAndSequenceInputs) {
  torch::manual_seed(1);
  auto m = script_model({{"w1", torch::randn({6, 5})},
                         {"b1", torch::randn({6})},
                         {"w2", torch::randn({3, 6})},
                         {"b2", torch::randn({3})}},
                        R"(
    def forward(self, x):
        h = torch.relu(torch.linear(x, self.w1, self.b1))
        return torch.linear(h, self.w2, self.b2)
)",
                        {5}, 3);
  expect_matches_one_at_a_time(*m, torch::randn({7, 5}), torch::randint(0, 3, {7}));

  // [B, T, d]: the gradient sums over the sequence positions.
  auto s = script_model({{"w", torch::randn({4, 3})}, {"b", torch::randn({4})}, {"v", torch::randn({2, 4})}},
                        R"(
    def forward(self, x):
        h = torch.tanh(torch.linear(x, self.w, self.b))
        return torch.linear(h.mean(1), self.v, None)
)",
                        {5, 3}, 2);
  expect_matches_one_at_a_time(*s, torch::randn({4, 5, 3}), torch::randint(0, 2, {4}));
}

TEST(PerSampleGrad, Conv2dWithStridePaddingDilationAndGroups) {
  torch::manual_seed(2);
  auto m = script_model({{"c1", torch::randn({4, 2, 3, 3}) * 0.3},
                         {"c1b", torch::randn({4})},
                         {"c2", torch::randn({6, 2, 3, 2}) * 0.3},
                         {"c2b", torch::randn({6})},
                         {"c3", torch::randn({3, 6, 1, 1}) * 0.3},
                         {"fc", torch::randn({3, 3 * 5 * 5}) * 0.3}},
                        R"(
    def forward(self, x):
        h = torch.relu(torch.conv2d(x, self.c1, self.c1b, [2, 2], [1, 1]))
        h = torch.relu(torch.conv2d(h, self.c2, self.c2b, [1, 1], [2, 1], [2, 1], 2))
        h = torch.conv2d(h, self.c3, None)
        return torch.linear(torch.flatten(h, 1), self.fc, None)
)",
                        {2, 9, 7}, 3);
  expect_matches_one_at_a_time(*m, torch::randn({5, 2, 9, 7}), torch::randint(0, 3, {5}));
}

TEST(PerSampleGrad, GroupNormLayerNormAndASharedParameter) {
  torch::manual_seed(3);
  auto m = script_model({{"c", torch::randn({4, 1, 3, 3}) * 0.5},
                         {"gw", torch::randn({4})},
                         {"gb", torch::randn({4})},
                         {"lw", torch::randn({16})},
                         {"lb", torch::randn({16})},
                         {"fc", torch::randn({16, 16}) * 0.3},
                         {"out", torch::randn({3, 16}) * 0.3}},
                        R"(
    def forward(self, x):
        h = torch.relu(torch.group_norm(torch.conv2d(x, self.c, None), 2, self.gw, self.gb, 1e-5))
        h = torch.flatten(torch.adaptive_avg_pool2d(h, [2, 2]), 1)
        h = torch.layer_norm(h, [16], self.lw, self.lb, 1e-5)
        h = torch.relu(torch.linear(h, self.fc, None))
        h = torch.relu(torch.linear(h, self.fc, None))
        return torch.linear(h, self.out, None)
)",
                        {1, 6, 6}, 3);
  expect_matches_one_at_a_time(*m, torch::randn({6, 1, 6, 6}), torch::randint(0, 3, {6}));
}

TEST(PerSampleGrad, BuiltInDpReadyArchitectures) {
  torch::manual_seed(4);
  auto mlp = build_architecture(ArchitectureOptions("mlp", {6}, 3).hidden({8, 5}).normalization({0.5}, {2.0}));
  expect_matches_one_at_a_time(*mlp, torch::rand({4, 6}), torch::randint(0, 3, {4}));
  auto cnn = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 4));
  expect_matches_one_at_a_time(*cnn, torch::rand({3, 1, 28, 28}), torch::randint(0, 4, {3}));
  auto cnn_dp = build_architecture(ArchitectureOptions("cnn-dp", {1, 28, 28}, 4));  // stride 2, padding 3, tanh
  expect_matches_one_at_a_time(*cnn_dp, torch::rand({3, 1, 28, 28}), torch::randint(0, 4, {3}));
  auto resnet = build_architecture(ArchitectureOptions("resnet-gn", {3, 8, 8}, 3));
  expect_matches_one_at_a_time(*resnet, torch::rand({3, 3, 8, 8}), torch::randint(0, 3, {3}));
}

// The fused path (ghost norms for linear layers) equals clipping the
// materialised per-sample gradients, in both modes, with clipping active on
// some samples and not on others; shared parameters fall back to materialising.
void expect_clipped_sum_matches(ScriptClassifier& model, const torch::Tensor& x, const torch::Tensor& y) {
  PerSampleGradient psg(model);
  PerSampleGrads g = psg.compute(x, y);
  const double median = per_sample_norms(g.grads).median().item<double>();
  for (const std::string mode : {"flat", "per-layer"}) {
    ClippedGradSum c = psg.clipped_sum(x, y, median, mode);
    std::vector<torch::Tensor> expect = clip_and_sum(g.grads, median, mode);
    ASSERT_EQ(c.sum.size(), expect.size());
    for (size_t i = 0; i < expect.size(); ++i)
      EXPECT_TRUE(torch::allclose(c.sum[i], expect[i], 1e-4, 1e-6))
          << mode << " " << psg.parameter_names()[i] << " max diff "
          << (c.sum[i] - expect[i]).abs().max().item<double>();
    EXPECT_TRUE(torch::allclose(c.norms, per_sample_norms(g.grads), 1e-4, 1e-8));
    EXPECT_TRUE(torch::allclose(c.losses, g.losses));
  }
}

TEST(PerSampleGrad, ClippedSumWithGhostNormsEqualsClippingThePerSampleGradients) {
  torch::manual_seed(6);
  auto mlp = build_architecture(ArchitectureOptions("mlp", {6}, 3).hidden({8, 5}));
  expect_clipped_sum_matches(*mlp, torch::rand({7, 6}), torch::randint(0, 3, {7}));
  auto cnn = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 4));
  expect_clipped_sum_matches(*cnn, torch::rand({5, 1, 28, 28}), torch::randint(0, 4, {5}));
  auto cnn_dp = build_architecture(ArchitectureOptions("cnn-dp", {1, 28, 28}, 4));
  expect_clipped_sum_matches(*cnn_dp, torch::rand({5, 1, 28, 28}), torch::randint(0, 4, {5}));
  auto shared = script_model({{"fc", torch::randn({6, 6}) * 0.5}, {"out", torch::randn({3, 6}) * 0.5}}, R"(
    def forward(self, x):
        h = torch.relu(torch.linear(x, self.fc, None))
        h = torch.relu(torch.linear(h, self.fc, None))
        return torch.linear(h, self.out, None)
)",
                             {6}, 3);
  expect_clipped_sum_matches(*shared, torch::randn({6, 6}), torch::randint(0, 3, {6}));
  PerSampleGradient psg(*mlp);
  ClippedGradSum empty = psg.clipped_sum(torch::zeros({0, 6}), torch::zeros({0}, torch::kLong), 1.0, "flat");
  EXPECT_EQ(empty.sum[0].sizes(), (std::vector<int64_t>{8, 6}));
  EXPECT_EQ(empty.sum[0].abs().sum().item<double>(), 0.0);
}

TEST(PerSampleGrad, EmptyBatchGivesEmptyGradients) {
  auto mlp = build_architecture(ArchitectureOptions("mlp", {6}, 3).hidden({8}));
  PerSampleGradient psg(*mlp);
  PerSampleGrads g = psg.compute(torch::zeros({0, 6}), torch::zeros({0}, torch::kLong));
  ASSERT_EQ(g.grads.size(), 4u);
  EXPECT_EQ(g.grads[0].sizes(), (std::vector<int64_t>{0, 8, 6}));
}

TEST(PerSampleGrad, RefusesBatchNormNamingGroupNorm) {
  auto resnet = build_architecture(ArchitectureOptions("resnet", {3, 8, 8}, 3));
  EXPECT_EQ(error_kind_of([&] { PerSampleGradient psg(*resnet); }), ErrorKind::Unsupported);
  const std::string msg = error_message_of([&] { PerSampleGradient psg(*resnet); });
  EXPECT_NE(msg.find("batch norm 'bn0_weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("GroupNorm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("resnet-gn"), std::string::npos) << msg;
}

TEST(PerSampleGrad, RefusesOtherUsesOfAParameterByName) {
  auto m = script_model({{"w", torch::randn({3, 4})}}, R"(
    def forward(self, x):
        return torch.matmul(x, self.w.t())
)",
                        {4}, 3);
  const std::string msg = error_message_of([&] { PerSampleGradient psg(*m); });
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("aten::t"), std::string::npos) << msg;
  EXPECT_EQ(error_kind_of([&] { PerSampleGradient psg(*m); }), ErrorKind::Unsupported);
}

}  // namespace
}  // namespace aegis

namespace aegis {
namespace {

// A model written the PyTorch way (nn.Conv2d, nn.GroupNorm, nn.LayerNorm,
// nn.Linear in submodules, torch.jit.script): parameters are reached through
// attribute chains (self.block.conv.weight) and the layers through method
// calls, which the rewrite inlines; the same model traced (aten::_convolution);
// and nn.BatchNorm2d in such a model is refused by its name.
TEST(PerSampleGrad, ScriptedPyTorchModulesWithSubmodules) {
  const std::string py = testing::python_with_torch();
  if (py.empty()) GTEST_SKIP() << "python3 with torch (Debian's python3-torch) is not installed";
  testing::TempDir dir;
  const std::string script = R"(
import sys, torch, torch.nn as nn
torch.manual_seed(0)
class Block(nn.Module):
    def __init__(self, bn):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2)
        self.norm = nn.BatchNorm2d(4) if bn else nn.GroupNorm(2, 4)
    def forward(self, x):
        return torch.relu(self.norm(self.conv(x)))
class Net(nn.Module):
    def __init__(self, bn):
        super().__init__()
        self.block = Block(bn)
        self.ln = nn.LayerNorm(36)
        self.head = nn.Sequential(nn.Linear(36, 8), nn.Tanh(), nn.Linear(8, 3))
    def forward(self, x):
        return self.head(self.ln(torch.flatten(self.block(x), 1)))
for bn, name in [(False, 'gn.pt'), (True, 'bn.pt')]:
    torch.jit.save(torch.jit.script(Net(bn)), sys.argv[1] + '/' + name)
torch.jit.save(torch.jit.trace(Net(False), torch.rand(1, 2, 6, 6)), sys.argv[1] + '/traced.pt')
)";
  std::ofstream(dir.file("export.py")) << script;
  auto r = testing::run_command(py + " " + dir.file("export.py") + " " + dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto model = ScriptClassifier::load(dir.file("gn.pt"), ModelOverrides().input_shape({2, 6, 6}));
  torch::manual_seed(6);
  expect_matches_one_at_a_time(*model, torch::rand({5, 2, 6, 6}), torch::randint(0, 3, {5}));
  PerSampleGradient psg(*model);
  EXPECT_EQ(psg.layers().size(), 5u);  // conv, group norm, layer norm, two linear

  // torch.jit.trace records nn.Conv2d as aten::_convolution.
  auto traced = ScriptClassifier::load(dir.file("traced.pt"), ModelOverrides().input_shape({2, 6, 6}));
  expect_matches_one_at_a_time(*traced, torch::rand({4, 2, 6, 6}), torch::randint(0, 3, {4}));

  auto bn = ScriptClassifier::load(dir.file("bn.pt"), ModelOverrides().input_shape({2, 6, 6}));
  const std::string msg = error_message_of([&] { PerSampleGradient p(*bn); });
  EXPECT_NE(msg.find("block.norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("GroupNorm"), std::string::npos) << msg;
}

}  // namespace
}  // namespace aegis
