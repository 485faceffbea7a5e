#include "aegis/explain/feature_mask.h"

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

std::string feature_mask_kind_name(FeatureMaskKind kind) {
  switch (kind) {
    case FeatureMaskKind::Auto:
      return "auto";
    case FeatureMaskKind::Element:
      return "element";
    case FeatureMaskKind::Grid:
      return "grid";
    case FeatureMaskKind::Superpixels:
      return "superpixels";
    case FeatureMaskKind::Given:
      return "given";
  }
  return "?";
}

FeatureMaskKind parse_feature_mask_kind(const std::string& name) {
  for (FeatureMaskKind k :
       {FeatureMaskKind::Auto, FeatureMaskKind::Element, FeatureMaskKind::Grid, FeatureMaskKind::Superpixels})
    if (feature_mask_kind_name(k) == name) return k;
  AEGIS_FAIL(InvalidArgument, "unknown feature mask '" << name << "' (auto, element, grid, superpixels)");
}

nlohmann::json feature_mask_json(const FeatureMaskOptions& o) {
  nlohmann::json j = {{"kind", feature_mask_kind_name(o.kind_)}};
  if (o.kind_ == FeatureMaskKind::Grid || o.kind_ == FeatureMaskKind::Auto) j["patch"] = o.patch_;
  if (o.kind_ == FeatureMaskKind::Superpixels)
    j["slic"] = {
        {"segments", o.slic_.segments_}, {"compactness", o.slic_.compactness_}, {"iterations", o.slic_.iterations_}};
  return j;
}

namespace {

bool is_image(const torch::Tensor& x) { return x.dim() == 4; }

/// Ids 0..G-1 per pixel [H, W] expanded over the channels of one sample.
torch::Tensor over_channels(const torch::Tensor& pixel_ids, int64_t channels) {
  return pixel_ids.unsqueeze(0).expand({channels, -1, -1}).contiguous();
}

}  // namespace

FeatureMask make_feature_mask(const FeatureMaskOptions& o, const torch::Tensor& x, const ModelMeta& meta) {
  const int64_t n = x.size(0);
  FeatureMaskKind kind = o.kind_;
  if (kind == FeatureMaskKind::Auto) kind = is_image(x) ? FeatureMaskKind::Grid : FeatureMaskKind::Element;
  FeatureMask m;
  if (kind == FeatureMaskKind::Element) {
    const int64_t d = x[0].numel();
    m.ids = torch::arange(d, torch::kLong).view(x.sizes().slice(1)).unsqueeze(0).expand(x.sizes()).contiguous();
    m.groups.assign(size_t(n), d);
  } else if (kind == FeatureMaskKind::Grid) {
    AEGIS_CHECK(is_image(x), InvalidArgument, "a grid mask needs images [C, H, W], got samples " << x.sizes().slice(1));
    AEGIS_CHECK(o.patch_ >= 1, InvalidArgument, "grid mask: patch must be >= 1, got " << o.patch_);
    const int64_t h = x.size(2), w = x.size(3), gw = (w + o.patch_ - 1) / o.patch_;
    torch::Tensor rows = torch::arange(h, torch::kLong).div(o.patch_, "floor").view({h, 1});
    torch::Tensor cols = torch::arange(w, torch::kLong).div(o.patch_, "floor").view({1, w});
    torch::Tensor ids = over_channels(rows * gw + cols, x.size(1));
    m.ids = ids.unsqueeze(0).expand(x.sizes()).contiguous();
    m.groups.assign(size_t(n), ((h + o.patch_ - 1) / o.patch_) * gw);
  } else if (kind == FeatureMaskKind::Superpixels) {
    AEGIS_CHECK(is_image(x), InvalidArgument,
                "a superpixel mask needs images [C, H, W], got samples " << x.sizes().slice(1));
    std::vector<torch::Tensor> ids;
    for (int64_t i = 0; i < n; ++i) {
      torch::Tensor labels = slic(x[i], o.slic_, meta.clip_min, meta.clip_max);
      m.groups.push_back(labels.max().item<int64_t>() + 1);
      ids.push_back(over_channels(labels, x.size(1)));
    }
    m.ids = torch::stack(ids);
  } else {
    AEGIS_CHECK(o.tensor_.defined(), InvalidArgument, "a given feature mask needs a tensor");
    torch::Tensor t = o.tensor_.to(torch::kLong);
    if (t.dim() == x.dim() - 1) t = t.unsqueeze(0).expand(x.sizes());
    AEGIS_CHECK(t.sizes() == x.sizes(), InvalidArgument,
                "the feature mask is shaped " << o.tensor_.sizes() << ", the inputs " << x.sizes());
    m.ids = t.contiguous();
    for (int64_t i = 0; i < n; ++i) {
      torch::Tensor u = std::get<0>(at::_unique(m.ids[i], true));
      const int64_t g = u.numel();
      AEGIS_CHECK(u[0].item<int64_t>() == 0 && u[g - 1].item<int64_t>() == g - 1, InvalidArgument,
                  "feature mask ids must be 0..G-1 with every id used (sample " << i << ")");
      m.groups.push_back(g);
    }
  }
  return m;
}

}  // namespace aegis
