#pragma once
/// Noise tunnel: any explainer averaged over noisy copies of the input.
/// SmoothGrad (Smilkov et al. 2017) is the mean of the attributions,
/// SmoothGrad-squared the mean of their squares, VarGrad (Adebayo et al.
/// 2018) their variance. The noise is Gaussian with standard deviation
/// `stdev` times the model's input range, clamped into the valid range; the
/// same seed gives the same draws. The noisy copies of a batch go through
/// the inner explainer together, at most max_batch inputs at a time.
///
///   NoiseTunnel sg(std::make_shared<Saliency>(SaliencyOptions().absolute(false)),
///                  NoiseTunnelOptions().samples(50).stdev(0.15));
///   Attribution a = sg.explain(*model, x);

#include <memory>

#include "aegis/explain/explainer.h"

namespace aegis {

enum class NoiseTunnelKind { SmoothGrad, SmoothGradSquared, VarGrad };

/// "smoothgrad", "smoothgrad-sq", "vargrad"; parse_... throws InvalidArgument for others.
std::string noise_tunnel_kind_name(NoiseTunnelKind kind);
NoiseTunnelKind parse_noise_tunnel_kind(const std::string& name);

struct NoiseTunnelOptions {
  int64_t samples_ = 50;  ///< noisy copies per input, >= 1 (>= 2 for VarGrad)
  double stdev_ = 0.15;   ///< noise std as a fraction of (clip_max - clip_min), >= 0
  NoiseTunnelKind kind_ = NoiseTunnelKind::SmoothGrad;
  uint64_t seed_ = 0;
  int64_t max_batch_ = 256;  ///< noisy inputs per call of the inner explainer, >= 1

  NoiseTunnelOptions& samples(int64_t v) { samples_ = v; return *this; }
  NoiseTunnelOptions& stdev(double v) { stdev_ = v; return *this; }
  NoiseTunnelOptions& kind(NoiseTunnelKind v) { kind_ = v; return *this; }
  NoiseTunnelOptions& seed(uint64_t v) { seed_ = v; return *this; }
  NoiseTunnelOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
};

class NoiseTunnel : public Explainer {
 public:
  NoiseTunnel(std::shared_ptr<Explainer> inner, NoiseTunnelOptions options = {});
  /// "smoothgrad(saliency)", "vargrad(integrated-gradients)", ...
  std::string name() const override;
  bool needs_gradients() const override { return inner_->needs_gradients(); }
  nlohmann::json options_json() const override;

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  std::shared_ptr<Explainer> inner_;
  NoiseTunnelOptions o_;
};

}  // namespace aegis
