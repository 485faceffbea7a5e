// Grad-CAM against its closed form: on conv -> global average pooling ->
// linear head, d z_c / d A_k,ij = W[c, k] / (h w), so the map is
// ReLU(sum_k W[c, k] / (h w) A_k); batches equal single samples; the ReLU
// keeps it non-negative; models it cannot explain are refused by name.

#include "aegis/explain/grad_cam.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"
#include "aegis/explain/registry.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;
using testing::error_message_of;

struct PooledConv {
  torch::Tensor conv_w, conv_b, lin_w, lin_b;
  std::shared_ptr<ScriptClassifier> model;
};

/// feature_maps: [relu(conv3x3(x)) [B, 4, 8, 8], its spatial mean [B, 4]];
/// head: linear [4 -> 3]; forward = head(feature_maps(x)[-1]).
/// With `head` false the module defines no head().
PooledConv pooled_conv(bool with_head = true, bool consistent = true) {
  torch::Generator gen(at::detail::createCPUGenerator(11));
  PooledConv p;
  p.conv_w = torch::randn({4, 2, 3, 3}, gen);
  p.conv_b = torch::randn({4}, gen) * 0.1;
  p.lin_w = torch::randn({3, 4}, gen);
  p.lin_b = torch::randn({3}, gen);
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.PooledConv"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_parameter("conv_w", p.conv_w, false);
  m.register_parameter("conv_b", p.conv_b, false);
  m.register_parameter("lin_w", p.lin_w, false);
  m.register_parameter("lin_b", p.lin_b, false);
  std::string src = R"(
    def feature_maps(self, x) -> List[Tensor]:
        a = torch.relu(torch.conv2d(x, self.conv_w, self.conv_b, [1, 1], [1, 1]))
        return [a, torch.mean(a, [2, 3])]
  )";
  if (with_head)
    src += R"(
    def head(self, h):
        return torch.linear(h, self.lin_w, self.lin_b)
  )";
  src += consistent ? R"(
    def forward(self, x):
        a = torch.relu(torch.conv2d(x, self.conv_w, self.conv_b, [1, 1], [1, 1]))
        return torch.linear(torch.mean(a, [2, 3]), self.lin_w, self.lin_b)
  )"
                    : R"(
    def forward(self, x):
        a = torch.relu(torch.conv2d(x, self.conv_w, self.conv_b, [1, 1], [1, 1]))
        return torch.linear(torch.amax(a, [2, 3]), self.lin_w, self.lin_b)
  )";
  m.define(src);
  ModelMeta meta;
  meta.architecture = "pooled-conv";
  meta.input_shape = {2, 8, 8};
  meta.num_classes = 3;
  p.model = std::make_shared<ScriptClassifier>(std::move(m), meta);
  return p;
}

torch::Tensor images(int64_t n, uint64_t seed) {
  return torch::rand({n, 2, 8, 8}, torch::Generator(at::detail::createCPUGenerator(seed)));
}

TEST(GradCam, OnGlobalAveragePoolingEqualsHeadWeightsOverAreaTimesMaps) {
  PooledConv p = pooled_conv();
  torch::Tensor x = images(6, 1);
  torch::Tensor target = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong);
  torch::Tensor maps = torch::relu(torch::conv2d(x, p.conv_w, p.conv_b, 1, 1));  // [6, 4, 8, 8]
  torch::Tensor w = p.lin_w.index_select(0, target) / 64.0;                      // [6, 4]
  torch::Tensor signed_cam = (w.view({6, 4, 1, 1}) * maps).sum(1, true);         // [6, 1, 8, 8]

  Attribution a = GradCam().explain(*p.model, x, target);
  ASSERT_EQ(a.values.sizes(), x.sizes());
  EXPECT_EQ(a.method, "gradcam");
  EXPECT_FALSE(a.has_completeness());
  EXPECT_TRUE(torch::equal(a.target, target));
  // Same size map: the bilinear upsampling is the identity; every channel carries the map.
  for (int64_t c = 0; c < 2; ++c)
    EXPECT_TRUE(torch::allclose(a.values.narrow(1, c, 1), signed_cam.clamp_min(0), 1e-5, 1e-6)) << c;
  EXPECT_GE(a.values.min().item<float>(), 0.0f);
  EXPECT_GT(a.values.max().item<float>(), 0.0f);

  Attribution s = GradCam(GradCamOptions().relu(false)).explain(*p.model, x, target);
  EXPECT_TRUE(torch::allclose(s.values.narrow(1, 0, 1), signed_cam, 1e-5, 1e-6));
  EXPECT_LT(s.values.min().item<float>(), 0.0f) << "the signed map keeps the negative evidence";

  // Explicit layer 0 (and -2, from the end) is the same map as the default.
  EXPECT_TRUE(torch::equal(GradCam(GradCamOptions().layer(0)).explain(*p.model, x, target).values, a.values));
  EXPECT_TRUE(torch::equal(GradCam(GradCamOptions().layer(-2)).explain(*p.model, x, target).values, a.values));
}

TEST(GradCam, BatchEqualsOneSampleAtATimeAndTheModelIsUntouched) {
  auto cnn = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 4));
  std::vector<torch::Tensor> before;
  for (const auto& t : cnn->parameters()) before.push_back(t.clone());
  torch::Tensor x = torch::rand({5, 1, 28, 28}, torch::Generator(at::detail::createCPUGenerator(2)));
  GradCam cam;
  Attribution batch = cam.explain(*cnn, x);
  ASSERT_EQ(batch.values.sizes(), x.sizes());
  EXPECT_GE(batch.values.min().item<float>(), 0.0f);
  EXPECT_GT(batch.values.sum().item<float>(), 0.0f);
  for (int64_t i = 0; i < 5; ++i) {
    Attribution one = cam.explain(*cnn, x.narrow(0, i, 1), batch.target.narrow(0, i, 1));
    EXPECT_TRUE(torch::allclose(one.values, batch.values.narrow(0, i, 1), 1e-4, 1e-6)) << i;
  }
  // The default is the deepest spatial map (conv2, 14x14): its upsampled map is
  // smooth at 2x2 blocks, unlike conv1's 28x28 map.
  Attribution first = GradCam(GradCamOptions().layer(0)).explain(*cnn, x);
  EXPECT_FALSE(torch::allclose(first.values, batch.values));
  auto params = cnn->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], before[i]));
  EXPECT_EQ(make_explainer("gradcam", {{"layer", 0}, {"relu", true}})->explain(*cnn, x).values.sizes(), x.sizes());
}

TEST(GradCam, RefusesModelsItCannotExplainByName) {
  torch::Tensor x = images(2, 3);
  // No feature maps at all.
  auto linear = testing::make_linear(torch::randn({3, 4}), torch::zeros({3}));
  EXPECT_EQ(error_kind_of([&] { GradCam().explain(*linear, torch::rand({2, 4})); }), ErrorKind::Unsupported);
  EXPECT_NE(error_message_of([&] {
              GradCam().explain(*linear, torch::rand({2, 4}));
            }).find("feature_maps"),
            std::string::npos);
  // Feature maps but no head(): the logits are no function of the maps.
  PooledConv headless = pooled_conv(false);
  EXPECT_NE(error_message_of([&] { GradCam().explain(*headless.model, x); }).find("head"), std::string::npos);
  // A head() that is not what forward() computes.
  PooledConv inconsistent = pooled_conv(true, false);
  EXPECT_NE(error_message_of([&] { GradCam().explain(*inconsistent.model, x); }).find("differs"), std::string::npos);
  // A flat map, and a map that does not exist.
  PooledConv p = pooled_conv();
  EXPECT_NE(error_message_of([&] { GradCam(GradCamOptions().layer(1)).explain(*p.model, x); }).find("spatial"),
            std::string::npos);
  EXPECT_EQ(error_kind_of([&] { GradCam(GradCamOptions().layer(5)).explain(*p.model, x); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { make_explainer("gradcam", {{"layer", "deep"}}); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { make_explainer("gradcam", {{"steps", 3}}); }), ErrorKind::InvalidArgument);
}

}  // namespace
}  // namespace aegis
