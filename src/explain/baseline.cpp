#include "aegis/explain/baseline.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

std::string baseline_kind_name(BaselineKind kind) {
  switch (kind) {
    case BaselineKind::Zero:
      return "zero";
    case BaselineKind::Constant:
      return "constant";
    case BaselineKind::Blur:
      return "blur";
    case BaselineKind::Uniform:
      return "uniform";
    case BaselineKind::Given:
      return "given";
  }
  return "?";
}

BaselineKind parse_baseline_kind(const std::string& name) {
  for (BaselineKind k : {BaselineKind::Zero, BaselineKind::Constant, BaselineKind::Blur, BaselineKind::Uniform})
    if (baseline_kind_name(k) == name) return k;
  AEGIS_FAIL(InvalidArgument, "unknown baseline '" << name << "' (zero, constant, blur, uniform)");
  return BaselineKind::Zero;  // not reached
}

nlohmann::json baseline_json(const BaselineOptions& o) {
  nlohmann::json j = {{"kind", baseline_kind_name(o.kind_)}};
  if (o.kind_ == BaselineKind::Constant) j["value"] = o.value_;
  if (o.kind_ == BaselineKind::Blur) j["sigma"] = o.blur_sigma_;
  if (o.kind_ == BaselineKind::Uniform) j["seed"] = o.seed_;
  return j;
}

namespace {

/// Separable Gaussian blur over the last two dimensions, edges replicated.
torch::Tensor gaussian_blur(const torch::Tensor& x, double sigma) {
  const int64_t radius = std::max<int64_t>(1, int64_t(std::ceil(3.0 * sigma)));
  torch::Tensor t = torch::arange(-radius, radius + 1, torch::kDouble);
  torch::Tensor k = torch::exp(-(t * t) / (2.0 * sigma * sigma));
  k = (k / k.sum()).to(torch::kFloat);
  const auto sizes = x.sizes().vec();
  const int64_t h = sizes[sizes.size() - 2], w = sizes[sizes.size() - 1];
  torch::Tensor img = x.reshape({-1, 1, h, w});
  namespace F = torch::nn::functional;
  img = F::pad(img, F::PadFuncOptions({radius, radius, radius, radius}).mode(torch::kReplicate));
  img = torch::conv2d(img, k.view({1, 1, 1, -1}));
  img = torch::conv2d(img, k.view({1, 1, -1, 1}));
  return img.reshape(sizes);
}

}  // namespace

torch::Tensor make_baseline(const BaselineOptions& o, const torch::Tensor& x, const ModelMeta& meta) {
  switch (o.kind_) {
    case BaselineKind::Zero:
      return torch::zeros_like(x);
    case BaselineKind::Constant:
      return torch::full_like(x, o.value_);
    case BaselineKind::Blur:
      AEGIS_CHECK(x.dim() >= 3, InvalidArgument, "a blurred baseline needs image inputs (height and width)");
      AEGIS_CHECK(o.blur_sigma_ > 0, InvalidArgument, "blur sigma must be > 0, got " << o.blur_sigma_);
      return gaussian_blur(x, o.blur_sigma_);
    case BaselineKind::Uniform: {
      at::Generator gen = make_generator(o.seed_, "explain-baseline");
      torch::Tensor u = torch::rand(x.sizes(), gen, torch::kFloat);
      return meta.clip_min + u * (meta.clip_max - meta.clip_min);
    }
    case BaselineKind::Given: {
      AEGIS_CHECK(o.tensor_.defined(), InvalidArgument, "a given baseline needs its tensor");
      torch::Tensor b = o.tensor_.detach().to(torch::kFloat);
      if (b.dim() == x.dim() - 1) b = b.unsqueeze(0);
      AEGIS_CHECK(
          b.dim() == x.dim() && b.sizes().slice(1) == x.sizes().slice(1) && (b.size(0) == 1 || b.size(0) == x.size(0)),
          InvalidArgument,
          "the baseline's shape " << b.sizes() << " matches neither one sample nor the batch " << x.sizes());
      return b.expand_as(x).contiguous();
    }
  }
  return torch::zeros_like(x);
}

}  // namespace aegis
