// Perturbation explainers (black-box) against closed forms: on a linear
// model exact KernelSHAP, occlusion with a one-feature window, ablation and
// unregularised LIME all give (x - x') * w, and sampled KernelSHAP with a
// background set gives w * (x - mean(background)); exact Shapley values of a
// small ReLU network equal a brute-force average over feature orderings;
// an ignored feature gets zero; batches equal single samples; seeds
// reproduce; masks are what they say.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/core/script_classifier.h"
#include "aegis/explain/feature_ablation.h"
#include "aegis/explain/feature_mask.h"
#include "aegis/explain/kernel_shap.h"
#include "aegis/explain/lime.h"
#include "aegis/explain/occlusion.h"
#include "aegis/explain/registry.h"
#include "aegis/explain/segmentation.h"
#include "support/black_box.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::BlackBox;
using testing::error_kind_of;
using testing::error_message_of;

struct Linear {
  explicit Linear(int64_t features = 4) {
    auto gen = make_generator(11, "linear");
    w = torch::randn({2, features}, gen);
    w.select(1, features - 1).zero_();  // the last feature is ignored
    b = torch::tensor({0.2f, -0.1f});
    model = testing::make_linear(w, b);
    x = torch::rand({6, features}, gen);
    target = torch::tensor({0, 1, 0, 1, 1, 0}, torch::kLong);
  }
  torch::Tensor w, b, x, target;
  std::shared_ptr<ScriptClassifier> model;
  torch::Tensor expected(const torch::Tensor& reference) const { return (x - reference) * w.index_select(0, target); }
};

/// logits = W2 relu(W1 x + b1) + b2, 4 inputs, 2 classes.
std::shared_ptr<ScriptClassifier> relu_net() {
  auto gen = make_generator(5, "relu-net");
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.ReluNet"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_parameter("w1", torch::randn({6, 4}, gen), false);
  m.register_parameter("b1", torch::randn({6}, gen) * 0.5, false);
  m.register_parameter("w2", torch::randn({2, 6}, gen), false);
  m.define(R"(
    def forward(self, x):
        return torch.linear(torch.relu(torch.linear(x, self.w1, self.b1)), self.w2, None)
  )");
  ModelMeta meta;
  meta.architecture = "relu-net";
  meta.input_shape = {4};
  meta.num_classes = 2;
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

TEST(KernelShap, ExactOnALinearModelIsInputMinusBaselineTimesWeights) {
  Linear lin;
  for (BaselineOptions base : {BaselineOptions(), BaselineOptions(BaselineKind::Constant).value(0.3)}) {
    BlackBox box(lin.model);
    Attribution a = KernelShap(KernelShapOptions().baseline(base)).explain(box, lin.x, lin.target);
    torch::Tensor ref = make_baseline(base, lin.x, lin.model->meta());
    EXPECT_TRUE(torch::allclose(a.values, lin.expected(ref), 1e-5, 1e-6)) << a.values << lin.expected(ref);
    EXPECT_TRUE(a.values.select(1, 3).eq(0).all().item<bool>()) << "the ignored feature gets exactly zero";
    EXPECT_LT(a.gap.abs().max().item<double>(), 1e-5);
    EXPECT_EQ(a.queries, 6 * (16 + 1));  // every coalition, plus the score
  }
}

TEST(KernelShap, SampledWithABackgroundSetIsWeightsTimesInputMinusTheBackgroundMean) {
  Linear lin(20);
  torch::Tensor background = torch::rand({8, 20}, make_generator(3, "bg"));
  KernelShap shap(KernelShapOptions().background(background).max_exact(0).samples(200).seed(4));
  Attribution a = shap.explain(*lin.model, lin.x, lin.target);
  torch::Tensor expected = lin.expected(background.mean(0, true));
  EXPECT_TRUE(torch::allclose(a.values, expected, 1e-4, 1e-5)) << (a.values - expected).abs().max();
  EXPECT_LT(a.gap.abs().max().item<double>(), 1e-4);
  EXPECT_LT(a.values.select(1, 19).abs().max().item<double>(), 1e-5);
  EXPECT_LE(a.queries, 6 * (202 * 8 + 1));  // the budget is kept
}

TEST(KernelShap, ExactShapleyValuesOfAReluNetworkMatchABruteForceOverOrderings) {
  auto net = relu_net();
  torch::Tensor x = torch::rand({3, 4}, make_generator(8, "x")) * 2 - 0.5;
  x = x.clamp(0, 1);
  torch::Tensor base = torch::rand({4}, make_generator(9, "base"));
  Attribution a = KernelShap(KernelShapOptions().baseline(BaselineOptions().tensor(base)))
                      .explain(*net, x, torch::tensor({0, 1, 1}, torch::kLong));
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t t = a.target[i].item<int64_t>();
    auto f = [&](const std::vector<bool>& on) {
      torch::Tensor z = base.clone();
      for (int64_t j = 0; j < 4; ++j)
        if (on[size_t(j)]) z[j] = x[i][j];
      return net->logits(z.unsqueeze(0))[0][t].item<double>();
    };
    std::vector<int64_t> order = {0, 1, 2, 3};
    std::vector<double> phi(4, 0.0);
    int perms = 0;
    do {
      std::vector<bool> on(4, false);
      double before = f(on);
      for (int64_t j : order) {
        on[size_t(j)] = true;
        const double after = f(on);
        phi[size_t(j)] += after - before;
        before = after;
      }
      ++perms;
    } while (std::next_permutation(order.begin(), order.end()));
    for (int64_t j = 0; j < 4; ++j) EXPECT_NEAR(a.values[i][j].item<double>(), phi[size_t(j)] / perms, 1e-5);
  }
}

TEST(KernelShap, SampledApproachesExactOnAReluNetworkAndSeedsReproduce) {
  auto net = relu_net();
  torch::Tensor x = torch::rand({4, 4}, make_generator(2, "x"));
  Attribution exact = KernelShap().explain(*net, x);
  // Four groups with max_exact 0 go through the sampled design; a budget
  // covering all 14 proper coalitions makes the fit exact too.
  Attribution fit = KernelShap(KernelShapOptions().max_exact(0).samples(14)).explain(*net, x);
  EXPECT_TRUE(torch::allclose(fit.values, exact.values, 1e-4, 1e-5)) << fit.values << exact.values;
  // A small budget draws coalitions: the same seed gives the same values bit
  // for bit, and a batch gives what its samples give alone.
  torch::Tensor big = torch::rand({3, 1, 12, 12}, make_generator(4, "img"));
  KernelShapOptions o =
      KernelShapOptions().mask(FeatureMaskOptions(FeatureMaskKind::Grid).patch(3)).samples(40).seed(7);
  torch::Tensor lin_w = torch::randn({2, 144}, make_generator(6, "w"));
  // A 12x12 "image" model: flatten inside.
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.FlatRelu"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_parameter("w", lin_w, false);
  m.define(R"(
    def forward(self, x):
        h = torch.flatten(x, 1)
        return torch.linear(torch.relu(h - 0.5), self.w, None)
  )");
  ModelMeta meta;
  meta.architecture = "flat";
  meta.input_shape = {1, 12, 12};
  meta.num_classes = 2;
  ScriptClassifier flat(std::move(m), meta);
  Attribution a1 = KernelShap(o).explain(flat, big), a2 = KernelShap(o).explain(flat, big);
  EXPECT_TRUE(torch::equal(a1.values, a2.values));
  Attribution one = KernelShap(o).explain(flat, big.narrow(0, 1, 1));
  EXPECT_TRUE(torch::equal(one.values[0], a1.values[1]));
  Attribution other = KernelShap(KernelShapOptions(o).seed(8)).explain(flat, big);
  EXPECT_FALSE(torch::equal(other.values, a1.values));
  EXPECT_LT(a1.gap.abs().max().item<double>(), 1e-4) << "sampled values still sum to f(x) - f(baseline)";
}

TEST(Occlusion, OneFeatureWindowsOnALinearModelGiveInputMinusBaselineTimesWeights) {
  Linear lin;
  BlackBox box(lin.model);
  Attribution a = Occlusion(OcclusionOptions().window(1).stride(1)).explain(box, lin.x, lin.target);
  EXPECT_TRUE(torch::allclose(a.values, lin.expected(torch::zeros_like(lin.x)), 1e-5, 1e-6));
  EXPECT_FALSE(a.has_completeness());
  // Wider windows average the drops of the windows covering each feature:
  // with window 2, stride 2 on 4 features each feature is in one window.
  Attribution w2 = Occlusion(OcclusionOptions().window(2).stride(2)).explain(box, lin.x, lin.target);
  torch::Tensor e = lin.expected(torch::zeros_like(lin.x));
  torch::Tensor pair = e.view({6, 2, 2}).sum(2, true).expand({6, 2, 2}).reshape({6, 4});
  EXPECT_TRUE(torch::allclose(w2.values, pair, 1e-5, 1e-6));
}

TEST(Occlusion, CoversEveryPixelOfAnImageAndBatchesEqualSingles) {
  auto cnn = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(3, 4, 1);
  Occlusion occ(OcclusionOptions().window(5).stride(4));
  Attribution a = occ.explain(*cnn, d.x);
  EXPECT_EQ(a.values.sizes(), d.x.sizes());
  EXPECT_TRUE(a.values.isfinite().all().item<bool>());
  Attribution one = occ.explain(*cnn, d.x.narrow(0, 2, 1));
  EXPECT_TRUE(torch::allclose(one.values[0], a.values[2], 1e-5, 1e-6));
  // 28 pixels, window 5, stride 4: starts 0, 4, ..., 20 and 23 at the edge.
  EXPECT_EQ(a.queries, 3 * (7 * 7 + 1) + 3 + 3);  // occluded inputs and f(x) per sample, predictions, scores
}

TEST(FeatureAblation, DropsEachGroupAloneAndSpreadsTheDropOverTheGroup) {
  Linear lin;
  BlackBox box(lin.model);
  Attribution a = FeatureAblation().explain(box, lin.x, lin.target);
  EXPECT_TRUE(torch::allclose(a.values, lin.expected(torch::zeros_like(lin.x)), 1e-5, 1e-6));
  // Two groups {0, 1}, {2, 3}: each feature gets half its group's drop.
  torch::Tensor groups = torch::tensor({0, 0, 1, 1}, torch::kLong);
  Attribution g = FeatureAblation(FeatureAblationOptions().mask(FeatureMaskOptions().tensor(groups)))
                      .explain(box, lin.x, lin.target);
  torch::Tensor e = lin.expected(torch::zeros_like(lin.x));
  torch::Tensor half = (e.view({6, 2, 2}).sum(2, true) / 2).expand({6, 2, 2}).reshape({6, 4});
  EXPECT_TRUE(torch::allclose(g.values, half, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(g.feature_mask[0], groups));
}

TEST(Lime, UnregularisedOnALinearModelRecoversTheEffectsWithFidelityOne) {
  Linear lin(6);
  BlackBox box(lin.model);
  Attribution a = Lime(LimeOptions().ridge(0).samples(200)).explain(box, lin.x, lin.target);
  EXPECT_TRUE(torch::allclose(a.values, lin.expected(torch::zeros_like(lin.x)), 1e-4, 1e-5))
      << a.values << lin.expected(torch::zeros_like(lin.x));
  EXPECT_LT(a.values.select(1, 5).abs().max().item<double>(), 1e-5);
  EXPECT_GT(a.fidelity.min().item<double>(), 1 - 1e-9);
  // Ridge shrinks towards zero but keeps the order; the default setting is reproducible.
  Attribution r1 = Lime(LimeOptions().samples(200)).explain(box, lin.x, lin.target);
  Attribution r2 = Lime(LimeOptions().samples(200)).explain(box, lin.x, lin.target);
  EXPECT_TRUE(torch::equal(r1.values, r2.values));
  EXPECT_LT(r1.values.abs().sum().item<double>(), a.values.abs().sum().item<double>());
  EXPECT_EQ(a.to_json()["samples"][0]["local_fidelity"].get<double>(), a.fidelity[0].item<double>());
}

TEST(Lime, ExplainsImagesOverSuperpixelsWithAReportedFidelity) {
  auto cnn = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(2, 4, 3);
  Attribution a = Lime(LimeOptions().samples(300)).explain(*cnn, d.x);
  EXPECT_EQ(a.values.sizes(), d.x.sizes());
  EXPECT_TRUE(a.fidelity.defined());
  EXPECT_TRUE(((a.fidelity >= -1e-9) & (a.fidelity <= 1 + 1e-9)).all().item<bool>()) << a.fidelity;
  Attribution one = Lime(LimeOptions().samples(300)).explain(*cnn, d.x.narrow(0, 1, 1));
  EXPECT_TRUE(torch::equal(one.values[0], a.values[1]));
}

TEST(FeatureMask, GridsSuperpixelsAndGivenMasks) {
  torch::Tensor x = torch::rand({2, 3, 10, 9}, make_generator(1, "img"));
  ModelMeta meta;
  FeatureMask g = make_feature_mask(FeatureMaskOptions(FeatureMaskKind::Grid).patch(4), x, meta);
  EXPECT_EQ(g.groups, (std::vector<int64_t>{9, 9}));  // ceil(10/4) * ceil(9/4)
  EXPECT_EQ(g.ids[0][2][9][8].item<int64_t>(), 8);
  EXPECT_TRUE(torch::equal(g.ids[0][0], g.ids[1][2])) << "a group spans all channels of its pixels";
  FeatureMask auto_tab = make_feature_mask(FeatureMaskOptions(), torch::rand({2, 5}), meta);
  EXPECT_EQ(auto_tab.groups, (std::vector<int64_t>{5, 5}));
  EXPECT_EQ(error_kind_of([&] {
              make_feature_mask(FeatureMaskOptions(FeatureMaskKind::Grid), torch::rand({2, 5}), meta);
            }),
            ErrorKind::InvalidArgument);
  EXPECT_NE(error_message_of([&] {
              make_feature_mask(FeatureMaskOptions().tensor(torch::tensor({0, 2, 2, 0, 3})), torch::rand({1, 5}), meta);
            }).find("every id used"),
            std::string::npos);
  EXPECT_EQ(error_kind_of([] { parse_feature_mask_kind("voronoi"); }), ErrorKind::InvalidArgument);
}

TEST(Slic, SegmentsAreConnectedNumberedAndFollowEdges) {
  // Two flat halves: no segment may straddle the edge between them.
  torch::Tensor img = torch::zeros({1, 24, 24});
  img.narrow(2, 12, 12).fill_(1.0);
  torch::Tensor labels = slic(img, SlicOptions().segments(16));
  const int64_t g = labels.max().item<int64_t>() + 1;
  EXPECT_GE(g, 8);
  EXPECT_LE(g, 32);
  EXPECT_EQ(std::get<0>(at::_unique(labels)).numel(), g) << "ids 0..G-1, each used";
  for (int64_t s = 0; s < g; ++s) {
    torch::Tensor in = labels.eq(s);
    const bool left = in.narrow(1, 0, 12).any().item<bool>(), right = in.narrow(1, 12, 12).any().item<bool>();
    EXPECT_FALSE(left && right) << "segment " << s << " straddles the edge";
  }
  // Deterministic, and images with several channels work.
  EXPECT_TRUE(torch::equal(labels, slic(img, SlicOptions().segments(16))));
  EXPECT_EQ(slic(torch::rand({3, 20, 20}), SlicOptions().segments(10)).sizes(), (std::vector<int64_t>{20, 20}));
  EXPECT_EQ(error_kind_of([] { slic(torch::rand({5, 5}), SlicOptions()); }), ErrorKind::InvalidArgument);
}

TEST(PerturbationExplainers, ByNameWithParametersRefusedWhereTheyDoNotApply) {
  Linear lin;
  BlackBox box(lin.model);
  for (const char* m : {"occlusion", "ablation", "kernelshap", "lime"}) {
    auto e = make_explainer(m);
    EXPECT_FALSE(e->needs_gradients()) << m;
    EXPECT_EQ(e->explain(box, lin.x).values.sizes(), lin.x.sizes()) << m;
  }
  EXPECT_EQ(error_kind_of([] { make_explainer("lime", {{"steps", 4}}); }), ErrorKind::InvalidArgument);
  EXPECT_NE(error_message_of([] {
              make_explainer("kernelshap", {{"tunnel", "smoothgrad"}});
            }).find("noise tunnel"),
            std::string::npos);
  EXPECT_NE(error_message_of([] {
              make_explainer("ig", {}, torch::rand({2, 4}));
            }).find("background"),
            std::string::npos);
  auto shap = make_explainer("kernelshap", {{"max_exact", 0}, {"samples", 64}}, torch::rand({5, 4}));
  EXPECT_EQ(shap->options_json()["background"], 5);
  EXPECT_EQ(error_kind_of([] { KernelShap(KernelShapOptions().max_exact(21)); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([] { Lime(LimeOptions().samples(1)); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([] { Occlusion(OcclusionOptions().stride(0)); }), ErrorKind::InvalidArgument);
}

TEST(PlannedQueries, ADryRunCountsWhatEachMethodSpends) {
  Linear lin;
  const torch::Tensor background = torch::rand({5, 4}, make_generator(3, "background"));
  const std::vector<std::pair<std::string, nlohmann::json>> methods = {
      {"saliency", nlohmann::json::object()},
      {"gradient-x-input", nlohmann::json::object()},
      {"ig", {{"steps", 7}}},
      {"eg", {{"samples", 9}}},
      {"smoothgrad", {{"samples", 5}}},
      {"ig", {{"steps", 3}, {"tunnel", "vargrad"}, {"samples", 4}}},
      {"occlusion", {{"window", 2}, {"stride", 1}}},
      {"ablation", nlohmann::json::object()},
      {"kernelshap", nlohmann::json::object()},
      {"kernelshap", {{"max_exact", 0}, {"samples", 40}}},
      {"lime", {{"samples", 30}}}};
  for (const auto& [m, params] : methods) {
    const bool bg = m == "eg" || (m == "kernelshap" && params.contains("samples"));
    auto e = make_explainer(m, params, bg ? background : torch::Tensor());
    for (bool given_target : {false, true}) {
      const torch::Tensor target = given_target ? lin.target : torch::Tensor();
      const int64_t planned = e->planned_queries(lin.model->meta(), lin.x, target);
      const int64_t spent = e->explain(*lin.model, lin.x, target).queries;
      EXPECT_EQ(planned, spent) << m << " " << params.dump();
      EXPECT_GE(planned, lin.x.size(0)) << m;
    }
  }
  // More work asks for more: IG's steps scale its cost.
  EXPECT_GT(make_explainer("ig", {{"steps", 20}})->planned_queries(lin.model->meta(), lin.x),
            make_explainer("ig", {{"steps", 10}})->planned_queries(lin.model->meta(), lin.x));
}

}  // namespace
}  // namespace aegis
