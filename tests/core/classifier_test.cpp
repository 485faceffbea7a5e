#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;
using testing::error_message_of;

std::shared_ptr<ScriptClassifier> small_cnn(double dropout = 0.5) {
  seed_everything(1);
  return build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10).dropout(dropout));
}

TEST(Classifier, IsInEvalModeAndDeterministicWhenQueried) {
  auto m = small_cnn(0.5);
  torch::Tensor x = torch::rand({4, 1, 28, 28});
  EXPECT_FALSE(m->training());
  // Dropout 0.5 would make two train-mode passes differ; eval mode must not.
  EXPECT_TRUE(torch::equal(m->logits(x), m->logits(x)));
  auto [loss, grad] = m->loss_gradient(x, torch::zeros({4}, torch::kLong));
  EXPECT_TRUE(torch::equal(m->logits(x), m->logits(x)));
}

TEST(Classifier, InputGradientsLeaveParametersUntouched) {
  auto m = small_cnn();
  std::vector<torch::Tensor> before;
  for (auto& p : m->parameters()) before.push_back(p.clone());
  torch::Tensor x = torch::rand({8, 1, 28, 28});
  torch::Tensor y = torch::randint(0, 10, {8}, torch::kLong);
  auto [loss, grad] = m->loss_gradient(x, y);
  EXPECT_EQ(grad.sizes(), x.sizes());
  EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
  auto after = m->parameters();
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(before[i], after[i]));
    EXPECT_FALSE(after[i].requires_grad());
    EXPECT_FALSE(after[i].grad().defined());
  }
}

TEST(Classifier, GradientMatchesFiniteDifferences) {
  torch::Tensor w = torch::tensor({{0.3f, -0.7f}, {-0.2f, 0.4f}, {0.9f, 0.1f}});
  auto m = testing::make_linear(w, torch::tensor({0.1f, 0.0f, -0.1f}));
  torch::Tensor x = torch::tensor({{0.2f, 0.6f}}, torch::kDouble).to(torch::kFloat);
  torch::Tensor y = torch::tensor({2}, torch::kLong);
  auto [loss, grad] = m->loss_gradient(x, y);
  for (int i = 0; i < 2; ++i) {
    torch::Tensor xp = x.clone(), xm = x.clone();
    xp[0][i] += 1e-3f;
    xm[0][i] -= 1e-3f;
    double fd = (m->loss_gradient(xp, y).first - m->loss_gradient(xm, y).first).item<double>() / 2e-3;
    EXPECT_NEAR(grad[0][i].item<double>(), fd, 1e-3);
  }
}

TEST(Classifier, AppliesDeclaredNormalisationInside) {
  torch::Tensor w = torch::eye(3);
  auto raw = testing::make_linear(w, torch::zeros({3}));
  ModelMeta meta = raw->meta();
  meta.mean = {0.5};
  meta.std = {0.25};
  ScriptClassifier normalised(raw->module().clone(), meta);
  torch::Tensor x = torch::rand({5, 3});
  EXPECT_TRUE(torch::allclose(normalised.logits(x), (x - 0.5) / 0.25));
}

TEST(Classifier, CountsQueriesPerSample) {
  auto m = small_cnn();
  m->logits(torch::rand({5, 1, 28, 28}));
  m->loss_gradient(torch::rand({3, 1, 28, 28}), torch::zeros({3}, torch::kLong));
  EXPECT_EQ(m->queries(), 8);
  m->reset_queries();
  EXPECT_EQ(m->queries(), 0);
}

TEST(Classifier, RejectsInputsOfTheWrongShape) {
  auto m = small_cnn();
  EXPECT_EQ(error_kind_of([&] { m->logits(torch::rand({2, 1, 27, 28})); }), ErrorKind::ShapeMismatch);
  EXPECT_EQ(error_kind_of([&] { m->logits(torch::rand({1, 28, 28})); }), ErrorKind::ShapeMismatch);
}

TEST(ScriptClassifier, SaveLoadRoundTripKeepsLogitsAndMetadata) {
  testing::TempDir dir;
  auto m = small_cnn();
  m->mutable_meta().class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  m->save(dir.file("m.pt"));
  auto back = ScriptClassifier::load(dir.file("m.pt"));
  torch::Tensor x = torch::rand({3, 1, 28, 28});
  EXPECT_TRUE(torch::equal(m->logits(x), back->logits(x)));
  EXPECT_EQ(back->meta().to_json(), m->meta().to_json());
  EXPECT_TRUE(back->has_features());
  EXPECT_EQ(back->features(x).sizes(), (std::vector<int64_t>{3, 128}));
}

TEST(ScriptClassifier, CloneIsIndependent) {
  auto m = small_cnn();
  auto c = m->clone();
  torch::Tensor x = torch::rand({2, 1, 28, 28});
  {
    torch::NoGradGuard g;
    for (auto& p : c->parameters()) p.add_(1.0);
  }
  EXPECT_FALSE(torch::equal(m->logits(x), c->logits(x)));
}

TEST(ScriptClassifier, LoadErrorsAreClear) {
  testing::TempDir dir;
  EXPECT_EQ(error_kind_of([&] { ScriptClassifier::load(dir.file("missing.pt")); }), ErrorKind::NotFound);
  std::ofstream(dir.file("junk.pt")) << "this is not a zip archive";
  EXPECT_EQ(error_kind_of([&] { ScriptClassifier::load(dir.file("junk.pt")); }), ErrorKind::CorruptData);
  // A truncated archive.
  small_cnn()->save(dir.file("m.pt"));
  std::ifstream in(dir.file("m.pt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir.file("cut.pt"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_EQ(error_kind_of([&] { ScriptClassifier::load(dir.file("cut.pt")); }), ErrorKind::CorruptData);
  // Declared shape the module cannot take.
  EXPECT_EQ(error_kind_of([&] { ScriptClassifier::load(dir.file("m.pt"), ModelOverrides().input_shape({3, 32, 32})); }),
            ErrorKind::ShapeMismatch);
  EXPECT_EQ(error_kind_of([&] { ScriptClassifier::load(dir.file("m.pt"), ModelOverrides().num_classes(7)); }),
            ErrorKind::ShapeMismatch);
}

TEST(ScriptClassifier, ForeignArchiveNeedsAShapeAndInfersClasses) {
  testing::TempDir dir;
  auto lin = testing::make_linear(torch::rand({4, 6}), torch::zeros({4}));
  lin->module().save(dir.file("plain.pt"));  // no aegis.json inside
  try {
    ScriptClassifier::load(dir.file("plain.pt"));
    FAIL() << "loaded without a shape";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("--input-shape"), std::string::npos);
  }
  auto m = ScriptClassifier::load(dir.file("plain.pt"), ModelOverrides().input_shape({6}));
  EXPECT_EQ(m->meta().num_classes, 4);
}

TEST(Architectures, BuildEveryArchitectureAndRejectUnknown) {
  seed_everything(0);
  EXPECT_EQ(build_architecture(ArchitectureOptions("mlp", {20}, 3))->logits(torch::rand({2, 20})).sizes(),
            (std::vector<int64_t>{2, 3}));
  auto resnet = build_architecture(ArchitectureOptions("resnet", {3, 32, 32}, 10));
  EXPECT_EQ(resnet->logits(torch::rand({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(resnet->features(torch::rand({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(error_kind_of([] { build_architecture(ArchitectureOptions("vit", {1, 28, 28}, 10)); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([] { build_architecture(ArchitectureOptions("cnn", {1, 32, 32}, 10)); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([] { build_architecture(ArchitectureOptions("mlp", {4}, 1)); }), ErrorKind::InvalidArgument);
}

TEST(Architectures, FeatureMapsRunShallowToDeepAndEndWithTheFeatures) {
  seed_everything(1);
  auto shapes = [](const std::vector<torch::Tensor>& maps) {
    std::vector<std::vector<int64_t>> s;
    for (const auto& m : maps) s.push_back(m.sizes().vec());
    return s;
  };
  using Shapes = std::vector<std::vector<int64_t>>;
  torch::Tensor img = torch::rand({2, 1, 28, 28}), img32 = torch::rand({2, 3, 32, 32}), vec = torch::rand({2, 20});
  auto cnn = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10));
  auto mlp = build_architecture(ArchitectureOptions("mlp", {20}, 3).hidden({16, 8}));
  auto resnet = build_architecture(ArchitectureOptions("resnet", {3, 32, 32}, 10));
  EXPECT_EQ(shapes(cnn->feature_maps(img)), (Shapes{{2, 32, 28, 28}, {2, 64, 14, 14}, {2, 128}}));
  EXPECT_EQ(shapes(mlp->feature_maps(vec)), (Shapes{{2, 16}, {2, 8}}));
  auto cnn_dp = build_architecture(ArchitectureOptions("cnn-dp", {1, 28, 28}, 10));
  EXPECT_EQ(shapes(cnn_dp->feature_maps(img)), (Shapes{{2, 16, 14, 14}, {2, 32, 5, 5}, {2, 32}}));
  EXPECT_EQ(cnn_dp->logits(img).sizes(), (std::vector<int64_t>{2, 10}));
  int64_t params = 0;
  for (const auto& t : cnn_dp->parameters()) params += t.numel();
  EXPECT_EQ(params, 26010);  // Tramer and Boneh's CNN
  EXPECT_EQ(shapes(resnet->feature_maps(img32)),
            (Shapes{{2, 16, 32, 32}, {2, 16, 32, 32}, {2, 32, 16, 16}, {2, 64, 8, 8}, {2, 64}}));
  EXPECT_TRUE(torch::equal(cnn->feature_maps(img).back(), cnn->features(img)));
  EXPECT_TRUE(torch::equal(resnet->feature_maps(img32).back(), resnet->features(img32)));
  // The first map is the first convolution's ReLU output, by hand.
  auto p = cnn->named_tensors();
  auto get = [&](const std::string& n) {
    for (auto& [name, t] : p)
      if (name == n) return t;
    return torch::Tensor();
  };
  torch::Tensor h1 = torch::relu(torch::conv2d(img, get("conv1_weight"), get("conv1_bias"), 1, 1));
  EXPECT_TRUE(torch::allclose(cnn->feature_maps(img)[0], h1, 1e-5, 1e-6));
}

TEST(Architectures, BakedNormalisationMatchesManual) {
  seed_everything(2);
  auto plain = build_architecture(ArchitectureOptions("mlp", {5}, 3));
  seed_everything(2);
  auto norm = build_architecture(ArchitectureOptions("mlp", {5}, 3).normalization({0.3}, {0.2}));
  torch::Tensor x = torch::rand({4, 5});
  EXPECT_TRUE(torch::allclose(norm->logits(x), plain->logits((x - 0.3) / 0.2), 1e-5, 1e-5));
}

}  // namespace
}  // namespace aegis
