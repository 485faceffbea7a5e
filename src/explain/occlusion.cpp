#include "aegis/explain/occlusion.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "aegis/core/error.h"

namespace aegis {

namespace {

/// Window starts along a dimension of `size`: 0, stride, ... and one that
/// ends at the edge, so every position is covered.
std::vector<int64_t> starts(int64_t size, int64_t window, int64_t stride) {
  std::vector<int64_t> s;
  const int64_t last = std::max<int64_t>(0, size - window);
  for (int64_t p = 0; p < last; p += stride) s.push_back(p);
  s.push_back(last);
  return s;
}

}  // namespace

Occlusion::Occlusion(OcclusionOptions options) : o_(std::move(options)) {
  AEGIS_CHECK(o_.window_ >= 1, InvalidArgument, "occlusion: window must be >= 1, got " << o_.window_);
  AEGIS_CHECK(o_.stride_ >= 1, InvalidArgument, "occlusion: stride must be >= 1, got " << o_.stride_);
  AEGIS_CHECK(o_.max_batch_ >= 1, InvalidArgument, "max batch must be >= 1, got " << o_.max_batch_);
}

nlohmann::json Occlusion::options_json() const {
  return {{"window", o_.window_},
          {"stride", o_.stride_},
          {"baseline", baseline_json(o_.baseline_)},
          {"max_batch", o_.max_batch_}};
}

Attribution Occlusion::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  const torch::Tensor baseline = make_baseline(o_.baseline_, x, model.meta());
  const bool image = x.dim() == 4;
  // Windows as masks over one sample's features: [P, sample shape] bool.
  const torch::Tensor shape_probe = x[0];
  std::vector<torch::Tensor> windows;
  if (image) {
    const int64_t h = x.size(2), w = x.size(3);
    for (int64_t r : starts(h, o_.window_, o_.stride_))
      for (int64_t c : starts(w, o_.window_, o_.stride_)) {
        torch::Tensor m = torch::zeros_like(shape_probe, torch::kBool);
        m.narrow(1, r, std::min(o_.window_, h)).narrow(2, c, std::min(o_.window_, w)).fill_(true);
        windows.push_back(m);
      }
  } else {
    const int64_t d = shape_probe.numel();
    for (int64_t s : starts(d, o_.window_, o_.stride_)) {
      torch::Tensor m = torch::zeros({d}, torch::kBool);
      m.narrow(0, s, std::min(o_.window_, d)).fill_(true);
      windows.push_back(m.view(shape_probe.sizes()));
    }
  }
  const torch::Tensor masks = torch::stack(windows);  // [P, ...]
  const int64_t p = masks.size(0);
  const torch::Tensor cover = masks.to(torch::kDouble).sum(0);
  torch::Tensor values = torch::empty(x.sizes(), torch::kDouble);
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < x.size(0); ++i) {
    const int64_t t = target[i].item<int64_t>();
    const double fx = model.logits(x.narrow(0, i, 1)).select(1, t).item<double>();
    torch::Tensor sum = torch::zeros(shape_probe.sizes(), torch::kDouble);
    for (int64_t p0 = 0; p0 < p; p0 += o_.max_batch_) {
      const int64_t pb = std::min(o_.max_batch_, p - p0);
      torch::Tensor m = masks.narrow(0, p0, pb);
      torch::Tensor occluded = torch::where(m, baseline[i].unsqueeze(0), x[i].unsqueeze(0));
      torch::Tensor drop = fx - model.logits(occluded).select(1, t).to(torch::kDouble);  // [pb]
      std::vector<int64_t> bshape(size_t(x.dim()), 1);
      bshape[0] = pb;
      sum += (m.to(torch::kDouble) * drop.view(bshape)).sum(0);
    }
    values[i] = sum / cover;
  }
  Attribution a;
  a.values = values.to(torch::kFloat);
  return a;
}

}  // namespace aegis
