#pragma once
/// Occlusion (Zeiler and Fergus 2014): slide a window over the input, set it
/// to the baseline, and credit each feature with the drop in the target
/// logit, averaged over the windows that cover it. Black-box: only logits,
/// so it runs on a model behind a gateway. On images the window is square
/// over the pixels and spans all channels; on other inputs it slides over
/// the flattened features. The last window of a row ends at the edge, so
/// every feature is covered. No completeness: occlusion is not additive.
///
///   Occlusion occ(OcclusionOptions().window(4).stride(2));
///   Attribution a = occ.explain(*model, x);

#include "aegis/explain/baseline.h"
#include "aegis/explain/explainer.h"

namespace aegis {

struct OcclusionOptions {
  int64_t window_ = 4;        ///< side of the window (pixels) or its length (features), >= 1
  int64_t stride_ = 2;        ///< >= 1
  BaselineOptions baseline_;  ///< what the window is set to; zero by default
  int64_t max_batch_ = 256;   ///< occluded inputs per forward pass, >= 1

  OcclusionOptions& window(int64_t v) { window_ = v; return *this; }
  OcclusionOptions& stride(int64_t v) { stride_ = v; return *this; }
  OcclusionOptions& baseline(BaselineOptions v) { baseline_ = std::move(v); return *this; }
  OcclusionOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
};

class Occlusion : public Explainer {
 public:
  explicit Occlusion(OcclusionOptions options = {});
  std::string name() const override { return "occlusion"; }
  bool needs_gradients() const override { return false; }
  nlohmann::json options_json() const override;

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  OcclusionOptions o_;
};

}  // namespace aegis
