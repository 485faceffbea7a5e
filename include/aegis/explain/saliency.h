#pragma once
/// Saliency (Simonyan et al. 2014): the gradient of the target class's logit
/// with respect to the input, signed or as its absolute value. White-box; one
/// forward and one backward per batch. No baseline, so no completeness gap.
///
///   Attribution a = Saliency(SaliencyOptions().absolute(true)).explain(*model, x);

#include "aegis/explain/explainer.h"

namespace aegis {

struct SaliencyOptions {
  bool absolute_ = true;  ///< |gradient| (the usual saliency map); false keeps the sign
  SaliencyOptions& absolute(bool v) { absolute_ = v; return *this; }
};

class Saliency : public Explainer {
 public:
  explicit Saliency(SaliencyOptions options = {}) : o_(options) {}
  std::string name() const override { return "saliency"; }
  bool needs_gradients() const override { return true; }
  nlohmann::json options_json() const override { return {{"absolute", o_.absolute_}}; }

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  SaliencyOptions o_;
};

}  // namespace aegis
