#pragma once
/// Feature masks: the groups of input features that perturbation methods
/// (ablation, KernelSHAP, LIME) switch on and off together. On images a
/// group spans all channels of its pixels: square patches of a grid, or
/// SLIC superpixels; on tabular data each feature is its own group, or the
/// user gives the groups.
///
///   FeatureMask m = make_feature_mask(FeatureMaskOptions(FeatureMaskKind::Grid).patch(4), x, meta);
///   m.ids;        // [batch, input_shape...] int64, group of each feature
///   m.groups[i];  // number of groups of sample i (ids 0..groups[i]-1 all used)

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/core/model_meta.h"
#include "aegis/explain/segmentation.h"

namespace aegis {

/// Auto: a grid of `patch` pixels on images ([C, H, W]), one group per feature otherwise.
enum class FeatureMaskKind { Auto, Element, Grid, Superpixels, Given };

struct FeatureMaskOptions {
  FeatureMaskOptions() = default;
  explicit FeatureMaskOptions(FeatureMaskKind kind) : kind_(kind) {}
  FeatureMaskKind kind_ = FeatureMaskKind::Auto;
  int64_t patch_ = 4;  ///< Grid: side of the square patches in pixels (the last ones may be smaller)
  SlicOptions slic_;   ///< Superpixels
  torch::Tensor tensor_;  ///< Given: int64 ids, one sample's shape (broadcast) or the batch's

  FeatureMaskOptions& patch(int64_t v) { patch_ = v; return *this; }
  FeatureMaskOptions& slic(SlicOptions v) { slic_ = std::move(v); return *this; }
  FeatureMaskOptions& tensor(torch::Tensor v) { kind_ = FeatureMaskKind::Given; tensor_ = std::move(v); return *this; }
};

struct FeatureMask {
  torch::Tensor ids;            ///< [batch, input_shape...] int64
  std::vector<int64_t> groups;  ///< per sample
};

/// "auto", "element", "grid", "superpixels", "given".
std::string feature_mask_kind_name(FeatureMaskKind kind);
/// "auto", "element", "grid", "superpixels"; InvalidArgument otherwise.
FeatureMaskKind parse_feature_mask_kind(const std::string& name);
nlohmann::json feature_mask_json(const FeatureMaskOptions& o);

/// The mask of the batch x. InvalidArgument: grid or superpixels on inputs
/// that are not images, patch < 1, a given mask of another shape or whose
/// ids are not 0..G-1 with every id used.
FeatureMask make_feature_mask(const FeatureMaskOptions& options, const torch::Tensor& x, const ModelMeta& meta);

}  // namespace aegis
