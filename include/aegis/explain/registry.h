#pragma once
/// Explainers by name with JSON parameters: what the CLI's flags and the
/// Python package's keyword arguments turn into (as attacks/registry.h).
///
///   auto e = make_explainer("ig", {{"steps", 64}, {"baseline", "blur"}, {"tunnel", "smoothgrad"}});
///
/// Methods: saliency, gradient-x-input, ig, eg, gradcam, smoothgrad,
/// smoothgrad-sq, vargrad (the noise tunnel around signed saliency), the
/// black-box occlusion, ablation, kernelshap, lime, and counterfactual (its
/// attribution is the change x_cf - x). The global explanations are not
/// explainers of samples and have their own entry points: the surrogate tree
/// (surrogate_tree.h) and class prototypes (prototypes.h); asking for
/// "tree" or "prototypes" here says so. Parameters, each refused where it
/// does not apply and unknown ones refused by name:
///   saliency: absolute (true);
///   eg (expected-gradients): samples (100), max_batch (256), and a background
///       set (the third argument, required);
///   ig: steps (32), rule ("gauss-legendre"), baseline ("zero", "constant",
///       "blur", "uniform"), baseline_value (0), blur_sigma (5), max_batch (256);
///   tunnels: samples (50), stdev (0.15), max_batch (256);
///   any gradient method: tunnel ("none", "smoothgrad", "smoothgrad-sq",
///       "vargrad") with samples and stdev; seed (0) for every random draw;
///   occlusion: window (4), stride (2), the baseline parameters, max_batch (256);
///   ablation, kernelshap, lime: mask ("auto", "element", "grid",
///       "superpixels"), patch (4), segments (50), compactness (0.1),
///       slic_iterations (10), the baseline parameters, max_batch;
///   kernelshap: samples (0: 2 * groups + 2048), max_exact (12), and a
///       background set (the third argument) instead of the baseline;
///   lime: samples (1000), kernel_width (0.25), ridge (1);
///   gradcam: layer (an index into feature_maps(), negative from the end;
///       default the deepest spatial map), relu (true);
///   counterfactual: to ("runner-up" or a class index), norm ("l2": C&W,
///       "l1": elastic net), steps (200), binary_search_steps (6),
///       initial_const (0.1), lr (0.01), beta (0.01, l1), kappa (0).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/explain/explainer.h"

namespace aegis {

std::shared_ptr<Explainer> make_explainer(const std::string& method,
                                          const nlohmann::json& params = nlohmann::json::object(),
                                          const torch::Tensor& background = {});

/// The method names make_explainer takes.
std::vector<std::string> explainer_names();

}  // namespace aegis
