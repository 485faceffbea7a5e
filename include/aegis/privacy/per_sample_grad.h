#pragma once
/// Per-sample gradients of a TorchScript model in one forward and one backward
/// pass, for DP-SGD (dp_sgd.h). The model's forward graph is inlined and
/// rewritten once: every node that consumes a parameter (aten::linear,
/// aten::conv2d, aten::group_norm, aten::layer_norm) gets a zero "probe"
/// added to its output and returns its input activation. The gradient of the
/// summed per-sample losses with respect to a probe is, row by row, each
/// sample's gradient with respect to that node's output, and the per-sample
/// parameter gradients follow in closed form (linear: outer products; conv2d:
/// im2col of the activation times the output gradient, any stride, padding,
/// dilation and groups; group and layer norm: the output gradient times the
/// normalised activation). This works for aegis's built-in networks and for
/// users' TorchScript models alike, since neither has nn hooks to attach to.
///
/// Refused when the object is built, before any training, with Unsupported
/// naming the operation and the parameter: batch norm (its statistics mix the
/// samples of a batch; use GroupNorm, or the built-in `resnet-gn`), a
/// parameter consumed by any other operation or inside control flow. As a
/// last guard, the constructor checks on two synthetic inputs (dropout off)
/// that the per-sample gradients add up to autograd's batch gradient for
/// every parameter, and refuses the parameter that does not.
///
///   PerSampleGradient psg(model);                    // analyses the graph, or throws
///   PerSampleGrads g = psg.compute(x, y);            // g.grads[i]: [B, *parameter i's shape]

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aegis/core/script_classifier.h"

namespace aegis {

struct PerSampleGrads {
  /// One per parameter of the model (ScriptClassifier::parameters() order):
  /// [B, *shape], sample b's gradient of its own loss in row b.
  std::vector<torch::Tensor> grads;
  torch::Tensor losses;  ///< [B] per-sample cross-entropy
  torch::Tensor logits;  ///< [B, classes], detached
};

/// Per-sample gradients clipped and summed (clipping.h's rule), for a DP-SGD step.
struct ClippedGradSum {
  std::vector<torch::Tensor> sum;  ///< one per parameter, its shape: sum over b of clip(grad_b)
  torch::Tensor losses;            ///< [B] per-sample cross-entropy
  torch::Tensor logits;            ///< [B, classes], detached
  torch::Tensor norms;             ///< [B] double: each sample's whole-gradient norm before clipping
};

namespace internal {
struct PerSampleGraph;
}

class PerSampleGradient {
 public:
  /// Analyses and rewrites `model`'s forward graph (the model is kept by
  /// reference and must outlive this object). Throws Unsupported naming the
  /// first layer it cannot differentiate per sample.
  explicit PerSampleGradient(ScriptClassifier& model);
  ~PerSampleGradient();
  PerSampleGradient(const PerSampleGradient&) = delete;
  PerSampleGradient& operator=(const PerSampleGradient&) = delete;

  /// Per-sample gradients of cross-entropy (with `label_smoothing`) at raw
  /// inputs x [B, ...] and labels y [B]; the model's own normalisation is
  /// applied, and its train/eval mode (dropout) is used as it is. B may be 0.
  PerSampleGrads compute(const torch::Tensor& x, const torch::Tensor& y, double label_smoothing = 0.0);

  /// The per-sample gradients clipped to `max_norm` ("flat" or "per-layer")
  /// and summed: clip_and_sum(compute(x, y).grads, ...) up to float rounding,
  /// without materialising the per-sample gradients of linear layers on
  /// [B, features] inputs (ghost clipping, Goodfellow 2015; Li et al. 2022):
  /// their norms are |g_b| |a_b| and their clipped sum one matrix product.
  /// On the built-in cnn this removes the [B, 128, 3136] tensor of fc1.
  ClippedGradSum clipped_sum(const torch::Tensor& x, const torch::Tensor& y, double max_norm,
                             const std::string& mode, double label_smoothing = 0.0);

  /// Parameter names, in the order of PerSampleGrads::grads.
  const std::vector<std::string>& parameter_names() const;
  /// The layers found, e.g. "aten::conv2d(conv1_weight, conv1_bias)", for logs.
  std::vector<std::string> layers() const;

 private:
  struct Pass;
  Pass forward_backward(const torch::Tensor& x, const torch::Tensor& y, double label_smoothing);
  void check_against_autograd();
  torch::Tensor prepare(const torch::Tensor& x) const;  // device, float, the model's own normalisation
  ScriptClassifier& model_;
  std::unique_ptr<internal::PerSampleGraph> graph_;
};

}  // namespace aegis
