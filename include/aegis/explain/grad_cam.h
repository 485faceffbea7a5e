#pragma once
/// Grad-CAM (Selvaraju et al. 2017): a class activation map on one of the
/// model's intermediate feature maps A [C, h, w]. Each channel's weight is
/// the spatial mean of the gradient of the target logit with respect to it,
/// w_k = mean_ij d z_t / d A_k,ij; the map is ReLU(sum_k w_k A_k), upsampled
/// bilinearly to the input's height and width and repeated over its
/// channels, so the Attribution is shaped like the input. White-box; one
/// forward and one backward per batch. No baseline, so no completeness gap.
///
/// The model must be a ScriptClassifier with `feature_maps(x)` and a
/// `head(h)` with forward(x) == head(feature_maps(x)[-1]), the convention of
/// aegis's built-in architectures: the logits are then a function of the maps
/// in one autograd graph, which gives their gradient. Other models are
/// refused with Unsupported (and the convention is checked on every batch).
///
///   GradCam cam(GradCamOptions().layer(0));   // the cnn's first convolution
///   Attribution a = cam.explain(*model, x);   // [batch, C, H, W], >= 0

#include <optional>

#include "aegis/explain/explainer.h"

namespace aegis {

struct GradCamOptions {
  /// Position in feature_maps(): 0-based from the shallow end, negative from
  /// the deep end (-1 the last). Must name a spatial map [batch, C, h, w].
  /// Unset (the default): the deepest spatial map (the cnn's second
  /// convolution, index 1; its last map is the flat penultimate layer).
  std::optional<int64_t> layer_;
  bool relu_ = true;  ///< ReLU on the weighted sum (Grad-CAM); false keeps the negative evidence too

  GradCamOptions& layer(int64_t v) { layer_ = v; return *this; }
  GradCamOptions& relu(bool v) { relu_ = v; return *this; }
};

class GradCam : public Explainer {
 public:
  explicit GradCam(GradCamOptions options = {}) : o_(options) {}
  std::string name() const override { return "gradcam"; }
  bool needs_gradients() const override { return true; }
  nlohmann::json options_json() const override;

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  GradCamOptions o_;
};

}  // namespace aegis
