#include "aegis/defenses/transforms/gaussian_noise.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

GaussianNoise::GaussianNoise(ClassifierPtr inner, GaussianNoiseOptions options)
    : TransformedClassifier(std::move(inner)), o_(options) {
  AEGIS_CHECK(o_.sigma_ > 0 && std::isfinite(o_.sigma_), InvalidArgument,
              "gaussian noise: sigma must be > 0, got " << o_.sigma_);
  seed(o_.seed_);
  record_provenance();
}

torch::Tensor GaussianNoise::transform(const torch::Tensor& x) {
  torch::Tensor noisy = x + o_.sigma_ * torch::randn(x.sizes(), gen_).to(x.device(), x.scalar_type());
  return o_.clip_ ? noisy.clamp(meta_.clip_min, meta_.clip_max) : noisy;
}

}  // namespace aegis
