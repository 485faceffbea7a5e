#include "aegis/explain/registry.h"

#include <set>

#include "aegis/core/error.h"
#include "aegis/explain/gradient_x_input.h"
#include "aegis/explain/expected_gradients.h"
#include "aegis/explain/counterfactual.h"
#include "aegis/explain/feature_ablation.h"
#include "aegis/explain/grad_cam.h"
#include "aegis/explain/integrated_gradients.h"
#include "aegis/explain/kernel_shap.h"
#include "aegis/explain/lime.h"
#include "aegis/explain/noise_tunnel.h"
#include "aegis/explain/occlusion.h"
#include "aegis/explain/saliency.h"

namespace aegis {

namespace {

/// Reads typed parameters and remembers which were used, so the rest can be refused by name.
class Params {
 public:
  Params(const std::string& method, const nlohmann::json& j) : method_(method), j_(j) {
    AEGIS_CHECK(j_.is_object(), InvalidArgument, method << ": parameters must be a JSON object");
  }
  template <typename T>
  T get(const std::string& key, T fallback) {
    used_.insert(key);
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    try {
      return j_[key].get<T>();
    } catch (const nlohmann::json::exception&) {
      AEGIS_FAIL(InvalidArgument, method_ << ": parameter '" << key << "' has the wrong type: " << j_[key].dump());
    }
    return fallback;  // not reached
  }
  void refuse_unused() const {
    for (const auto& [key, value] : j_.items())
      AEGIS_CHECK(used_.count(key), InvalidArgument, method_ << " takes no parameter '" << key << "'");
  }

 private:
  std::string method_;
  const nlohmann::json& j_;
  std::set<std::string> used_;
};

NoiseTunnelOptions tunnel_options(Params& p, NoiseTunnelKind kind, uint64_t seed) {
  return NoiseTunnelOptions()
      .samples(p.get<int64_t>("samples", 50))
      .stdev(p.get<double>("stdev", 0.15))
      .max_batch(p.get<int64_t>("max_batch", 256))
      .seed(seed)
      .kind(kind);
}

BaselineOptions baseline_options(Params& p, uint64_t seed) {
  BaselineOptions b(parse_baseline_kind(p.get<std::string>("baseline", "zero")));
  b.value(p.get<double>("baseline_value", 0.0)).blur_sigma(p.get<double>("blur_sigma", 5.0)).seed(seed);
  return b;
}

FeatureMaskOptions mask_options(Params& p, const std::string& fallback) {
  FeatureMaskOptions m(parse_feature_mask_kind(p.get<std::string>("mask", fallback)));
  m.patch(p.get<int64_t>("patch", 4));
  m.slic(SlicOptions()
             .segments(p.get<int64_t>("segments", 50))
             .compactness(p.get<double>("compactness", 0.1))
             .iterations(p.get<int64_t>("slic_iterations", 10)));
  return m;
}

}  // namespace

std::vector<std::string> explainer_names() {
  return {"saliency", "gradient-x-input", "ig",        "eg",       "gradcam",    "smoothgrad", "smoothgrad-sq",
          "vargrad",  "occlusion",        "ablation",  "kernelshap", "lime",    "counterfactual"};
}

std::shared_ptr<Explainer> make_explainer(const std::string& method, const nlohmann::json& params,
                                          const torch::Tensor& background) {
  const bool eg = method == "eg" || method == "expected-gradients";
  AEGIS_CHECK(!background.defined() || method == "kernelshap" || method == "kernel-shap" || eg, InvalidArgument,
              "a background set is for kernelshap and expected gradients, not " << method);
  Params p(method, params);
  const uint64_t seed = p.get<uint64_t>("seed", 0);
  const std::string tunnel = p.get<std::string>("tunnel", "none");
  std::shared_ptr<Explainer> e;
  if (method == "saliency") {
    e = std::make_shared<Saliency>(SaliencyOptions().absolute(p.get<bool>("absolute", true)));
  } else if (method == "gradient-x-input") {
    e = std::make_shared<GradientXInput>();
  } else if (method == "gradcam" || method == "grad-cam") {
    GradCamOptions o;
    const nlohmann::json layer = p.get<nlohmann::json>("layer", nullptr);
    if (!layer.is_null()) {
      AEGIS_CHECK(layer.is_number_integer(), InvalidArgument,
                  "gradcam: parameter 'layer' is a feature map index (negative from the end), got " << layer.dump());
      o.layer(layer.get<int64_t>());
    }
    e = std::make_shared<GradCam>(o.relu(p.get<bool>("relu", true)));
  } else if (method == "ig" || method == "integrated-gradients") {
    e = std::make_shared<IntegratedGradients>(
        IntegratedGradientsOptions()
            .steps(p.get<int64_t>("steps", 32))
            .rule(parse_integration_rule(p.get<std::string>("rule", "gauss-legendre")))
            .baseline(baseline_options(p, seed))
            .max_batch(p.get<int64_t>("max_batch", 256)));
  } else if (eg) {
    AEGIS_CHECK(background.defined(), InvalidArgument,
                "expected gradients averages over a background set: give one (the CLI's --background N)");
    AEGIS_CHECK(tunnel == "none", InvalidArgument, "expected gradients already averages over noise-like draws");
    e = std::make_shared<ExpectedGradients>(background, ExpectedGradientsOptions()
                                                            .samples(p.get<int64_t>("samples", 100))
                                                            .max_batch(p.get<int64_t>("max_batch", 256))
                                                            .seed(seed));
    p.refuse_unused();
    return e;
  } else if (method == "occlusion" || method == "ablation" || method == "feature-ablation" ||
             method == "kernelshap" || method == "kernel-shap" || method == "lime") {
    // Perturbation methods: their own sampling, no noise tunnel around them.
    AEGIS_CHECK(tunnel == "none", InvalidArgument, "a noise tunnel is for gradient methods, not " << method);
    if (method == "occlusion") {
      e = std::make_shared<Occlusion>(OcclusionOptions()
                                          .window(p.get<int64_t>("window", 4))
                                          .stride(p.get<int64_t>("stride", 2))
                                          .baseline(baseline_options(p, seed))
                                          .max_batch(p.get<int64_t>("max_batch", 256)));
    } else if (method == "lime") {
      e = std::make_shared<Lime>(LimeOptions()
                                     .mask(mask_options(p, "auto"))
                                     .baseline(baseline_options(p, seed))
                                     .samples(p.get<int64_t>("samples", 1000))
                                     .kernel_width(p.get<double>("kernel_width", 0.25))
                                     .ridge(p.get<double>("ridge", 1.0))
                                     .max_batch(p.get<int64_t>("max_batch", 512))
                                     .seed(seed));
    } else if (method == "ablation" || method == "feature-ablation") {
      e = std::make_shared<FeatureAblation>(FeatureAblationOptions()
                                                .mask(mask_options(p, "auto"))
                                                .baseline(baseline_options(p, seed))
                                                .max_batch(p.get<int64_t>("max_batch", 256)));
    } else {
      e = std::make_shared<KernelShap>(KernelShapOptions()
                                           .mask(mask_options(p, "auto"))
                                           .background(background)
                                           .baseline(baseline_options(p, seed))
                                           .samples(p.get<int64_t>("samples", 0))
                                           .max_exact(p.get<int64_t>("max_exact", 12))
                                           .max_batch(p.get<int64_t>("max_batch", 512))
                                           .seed(seed));
    }
    p.refuse_unused();
    return e;
  } else if (method == "counterfactual") {
    AEGIS_CHECK(tunnel == "none", InvalidArgument, "a noise tunnel is for attributions, not counterfactuals");
    CounterfactualOptions o;
    const nlohmann::json to = p.get<nlohmann::json>("to", "runner-up");
    if (to.is_string() && to.get<std::string>() == "runner-up") {
      o.to(-1);
    } else {
      AEGIS_CHECK(to.is_number_integer() && to.get<int64_t>() >= 0, InvalidArgument,
                  "counterfactual: parameter 'to' is a class index or \"runner-up\", got " << to.dump());
      o.to(to.get<int64_t>());
    }
    o.norm(parse_norm(p.get<std::string>("norm", "l2")))
        .steps(p.get<int64_t>("steps", o.steps_))
        .binary_search_steps(p.get<int64_t>("binary_search_steps", o.binary_search_steps_))
        .initial_const(p.get<double>("initial_const", o.initial_const_))
        .lr(p.get<double>("lr", o.lr_))
        .beta(p.get<double>("beta", o.beta_))
        .kappa(p.get<double>("kappa", o.kappa_))
        .seed(seed);
    e = std::make_shared<Counterfactual>(o);
    p.refuse_unused();
    return e;
  } else if (method == "smoothgrad" || method == "smoothgrad-sq" || method == "vargrad") {
    AEGIS_CHECK(tunnel == "none", InvalidArgument, method << " is already a noise tunnel");
    e = std::make_shared<NoiseTunnel>(std::make_shared<Saliency>(SaliencyOptions().absolute(false)),
                                      tunnel_options(p, parse_noise_tunnel_kind(method), seed));
    p.refuse_unused();
    return e;
  } else {
    AEGIS_CHECK(method != "prototypes" && method != "tree", InvalidArgument,
                method << " is a global explanation of the model, not an explainer of samples: see "
                       << (method == "tree" ? "explain/surrogate_tree.h" : "explain/prototypes.h"));
    AEGIS_FAIL(InvalidArgument, "unknown method '" << method
                                                   << "' (saliency, gradient-x-input, ig, eg, gradcam, smoothgrad, "
                                                      "smoothgrad-sq, vargrad, occlusion, ablation, kernelshap, lime, "
                                                      "counterfactual)");
  }
  if (tunnel != "none") e = std::make_shared<NoiseTunnel>(e, tunnel_options(p, parse_noise_tunnel_kind(tunnel), seed));
  p.refuse_unused();
  return e;
}

}  // namespace aegis
