#include "aegis/explain/noise_tunnel.h"

#include <torch/torch.h>

#include <algorithm>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

std::string noise_tunnel_kind_name(NoiseTunnelKind kind) {
  switch (kind) {
    case NoiseTunnelKind::SmoothGrad:
      return "smoothgrad";
    case NoiseTunnelKind::SmoothGradSquared:
      return "smoothgrad-sq";
    case NoiseTunnelKind::VarGrad:
      return "vargrad";
  }
  return "?";
}

NoiseTunnelKind parse_noise_tunnel_kind(const std::string& name) {
  for (NoiseTunnelKind k : {NoiseTunnelKind::SmoothGrad, NoiseTunnelKind::SmoothGradSquared, NoiseTunnelKind::VarGrad})
    if (noise_tunnel_kind_name(k) == name) return k;
  AEGIS_FAIL(InvalidArgument, "unknown noise tunnel '" << name << "' (smoothgrad, smoothgrad-sq, vargrad)");
  return NoiseTunnelKind::SmoothGrad;  // not reached
}

NoiseTunnel::NoiseTunnel(std::shared_ptr<Explainer> inner, NoiseTunnelOptions options)
    : inner_(std::move(inner)), o_(options) {
  AEGIS_CHECK(inner_, InvalidArgument, "the noise tunnel needs an explainer to wrap");
  AEGIS_CHECK(o_.samples_ >= 1, InvalidArgument, "the noise tunnel needs at least 1 sample, got " << o_.samples_);
  AEGIS_CHECK(o_.kind_ != NoiseTunnelKind::VarGrad || o_.samples_ >= 2, InvalidArgument,
              "VarGrad needs at least 2 samples, got " << o_.samples_);
  AEGIS_CHECK(o_.stdev_ >= 0, InvalidArgument, "noise stdev must be >= 0, got " << o_.stdev_);
  AEGIS_CHECK(o_.max_batch_ >= 1, InvalidArgument, "max batch must be >= 1, got " << o_.max_batch_);
}

std::string NoiseTunnel::name() const { return noise_tunnel_kind_name(o_.kind_) + "(" + inner_->name() + ")"; }

nlohmann::json NoiseTunnel::options_json() const {
  return {{"samples", o_.samples_},
          {"stdev", o_.stdev_},
          {"kind", noise_tunnel_kind_name(o_.kind_)},
          {"seed", o_.seed_},
          {"max_batch", o_.max_batch_},
          {"inner", inner_->name()},
          {"inner_options", inner_->options_json()}};
}

Attribution NoiseTunnel::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  const ModelMeta& meta = model.meta();
  const int64_t n = x.size(0);
  const double sd = o_.stdev_ * (meta.clip_max - meta.clip_min);
  // Each sample's noise comes from its own generator, seeded by the seed and
  // the sample's bytes: a sample gets the same draws alone as in any batch.
  std::vector<torch::Tensor> per_sample;
  const std::vector<int64_t> sample_shape(x.sizes().begin() + 1, x.sizes().end());
  std::vector<int64_t> draw_shape = {o_.samples_};
  draw_shape.insert(draw_shape.end(), sample_shape.begin(), sample_shape.end());
  for (int64_t i = 0; i < n; ++i) {
    at::Generator gen = explain::sample_generator(o_.seed_, x[i], "noise-tunnel");
    per_sample.push_back(torch::randn(draw_shape, gen, torch::kFloat) * float(sd));
  }
  const torch::Tensor noise = torch::stack(per_sample, 1);  // [samples, n, ...]
  torch::Tensor sum = torch::zeros(x.sizes(), torch::kDouble);
  torch::Tensor sum_sq =
      o_.kind_ == NoiseTunnelKind::SmoothGrad ? torch::Tensor() : torch::zeros(x.sizes(), torch::kDouble);
  const int64_t draws_per_call = std::max<int64_t>(1, o_.max_batch_ / n);
  for (int64_t d0 = 0; d0 < o_.samples_; d0 += draws_per_call) {
    const int64_t db = std::min(draws_per_call, o_.samples_ - d0);
    torch::Tensor noisy = (x.unsqueeze(0) + noise.narrow(0, d0, db)).clamp(meta.clip_min, meta.clip_max);
    torch::Tensor v = inner_->attribute(model, noisy.flatten(0, 1), target.repeat({db})).values;
    v = v.to(torch::kDouble).view(noisy.sizes());
    sum += v.sum(0);
    if (o_.kind_ != NoiseTunnelKind::SmoothGrad) sum_sq += (v * v).sum(0);
  }
  const double s = double(o_.samples_);
  Attribution a;
  switch (o_.kind_) {
    case NoiseTunnelKind::SmoothGrad:
      a.values = (sum / s).to(torch::kFloat);
      break;
    case NoiseTunnelKind::SmoothGradSquared:
      a.values = (sum_sq / s).to(torch::kFloat);
      break;
    case NoiseTunnelKind::VarGrad: {
      torch::Tensor mean = sum / s;
      a.values = (sum_sq / s - mean * mean).clamp_min(0).to(torch::kFloat);
      break;
    }
  }
  return a;
}

}  // namespace aegis
