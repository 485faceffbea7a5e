// Class prototypes on synthetic data where each class is a distinct constant
// pattern: the mean of the most confident samples recovers the pattern (and
// leaves out the ambiguous samples a plain class mean would blur it with);
// activation maximisation raises the class's logit above its start, stays
// in the valid range, and heads towards the class's own pattern.

#include "aegis/explain/prototypes.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;
using testing::error_message_of;

/// Three patterns of 16 features in {0.2, 0.8}, eight high each, mutually
/// orthogonal around 0.5; a linear model whose weights are the patterns
/// (minus 0.5); per class 30 noisy copies of its pattern and 10 ambiguous
/// samples halfway to another class's pattern.
struct Patterns {
  torch::Tensor patterns = torch::full({3, 16}, 0.2f);
  std::shared_ptr<ScriptClassifier> model;
  Dataset data;
  Patterns() {
    for (int64_t i = 0; i < 16; ++i) {
      if (i < 8) patterns[0][i] = 0.8f;
      if (i % 2 == 0) patterns[1][i] = 0.8f;
      if (i < 4 || (i >= 8 && i < 12)) patterns[2][i] = 0.8f;
    }
    model = testing::make_linear(8 * (patterns - 0.5), torch::zeros({3}));
    torch::Generator gen(at::detail::createCPUGenerator(8));
    std::vector<torch::Tensor> xs;
    std::vector<int64_t> ys;
    for (int64_t c = 0; c < 3; ++c) {
      xs.push_back((patterns[c] + 0.03 * torch::randn({30, 16}, gen)).clamp(0, 1));
      xs.push_back((0.5 * (patterns[c] + patterns[(c + 1) % 3]) + 0.03 * torch::randn({10, 16}, gen)).clamp(0, 1));
      for (int64_t i = 0; i < 40; ++i) ys.push_back(c);
    }
    data.x = torch::cat(xs);
    data.y = torch::tensor(ys, torch::kLong);
    data.source = "patterns";
  }
};

TEST(Prototypes, MeanOfTheMostConfidentSamplesRecoversEachClassPattern) {
  Patterns p;
  ClassPrototypes r = class_prototypes(*p.model, &p.data, PrototypeOptions().top_k(20));
  ASSERT_EQ(r.images.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_TRUE(torch::equal(r.classes, torch::tensor({0, 1, 2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(r.counts, torch::full({3}, 20, torch::kLong)));
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_LT((r.images[c] - p.patterns[c]).abs().max().item<float>(), 0.04f) << c << ": " << r.images[c];
    // A plain mean of the class's samples is pulled towards the ambiguous ones.
    torch::Tensor plain = p.data.x.index({p.data.y == c}).mean(0);
    EXPECT_GT((plain - p.patterns[c]).abs().max().item<float>(), 0.06f);
    EXPECT_GT(r.mean_confidence[c].item<float>(), 0.99f);
    EXPECT_GT(r.probability[c].item<float>(), 0.99f);
  }
  EXPECT_GT(r.queries, 0);
  // top_k larger than a class: all of its samples.
  ClassPrototypes all = class_prototypes(*p.model, &p.data, PrototypeOptions().top_k(1000).classes({1}));
  EXPECT_EQ(all.counts[0].item<int64_t>(), 40);
  EXPECT_TRUE(torch::allclose(all.images[0], p.data.x.index({p.data.y == 1}).mean(0), 1e-5, 1e-6));
  nlohmann::json j = r.to_json();
  EXPECT_EQ(j["kind"], "mean");
  EXPECT_EQ(j["classes"].size(), 3u);
  EXPECT_EQ(j["classes"][2]["samples_averaged"], 20);
}

TEST(Prototypes, MaximiseRaisesTheClassLogitAndStaysInRange) {
  Patterns p;
  std::vector<torch::Tensor> before;
  for (const auto& t : p.model->parameters()) before.push_back(t.clone());
  ClassPrototypes r = class_prototypes(
      *p.model, nullptr,
      PrototypeOptions().kind(PrototypeKind::Maximise).inversion(InversionOptions().init("mid").steps(100).lr(0.02)));
  ASSERT_EQ(r.images.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_GE(r.images.min().item<float>(), 0.0f);
  EXPECT_LE(r.images.max().item<float>(), 1.0f);
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_GT(r.score[c].item<float>(), r.start_score[c].item<float>() + 1.0f) << c;
    // It moves towards its own pattern: nearer to it than to any other class's.
    torch::Tensor distance = (p.patterns - r.images[c]).norm(2, 1);
    EXPECT_EQ(distance.argmin().item<int64_t>(), c) << c << ": " << r.images[c];
  }
  EXPECT_LT(r.start_score.abs().max().item<float>(), 1e-4f) << "mid-grey is on every class's boundary here";
  EXPECT_FALSE(r.counts.defined());
  auto params = p.model->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], before[i]));
  EXPECT_EQ(r.to_json()["kind"], "maximise");
}

TEST(Prototypes, RefusesWhatItCannotDoByName) {
  Patterns p;
  EXPECT_NE(error_message_of([&] { class_prototypes(*p.model, nullptr); }).find("needs a dataset"), std::string::npos);
  Dataset two = p.data.subset(torch::arange(0, 80));  // classes 0 and 1 only
  EXPECT_NE(error_message_of([&] { class_prototypes(*p.model, &two); }).find("class 2 has no samples"),
            std::string::npos);
  EXPECT_EQ(class_prototypes(*p.model, &two, PrototypeOptions().classes({0, 1})).images.size(0), 2);
  EXPECT_EQ(error_kind_of([&] { class_prototypes(*p.model, &p.data, PrototypeOptions().top_k(0)); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { class_prototypes(*p.model, &p.data, PrototypeOptions().classes({3})); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([] { parse_prototype_kind("median"); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(parse_prototype_kind("maximize"), PrototypeKind::Maximise);
  Dataset wrong;
  wrong.x = torch::rand({4, 8});
  wrong.y = torch::zeros({4}, torch::kLong);
  EXPECT_EQ(error_kind_of([&] { class_prototypes(*p.model, &wrong); }), ErrorKind::ShapeMismatch);
}

}  // namespace
}  // namespace aegis
