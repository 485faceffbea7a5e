#pragma once
/// Baselines for path methods (Integrated Gradients): the "absence of
/// signal" an attribution is measured against. Which one is right depends on
/// the data (Sturmfels et al. 2020): black (zero) for dark-background images,
/// a blurred copy to keep colours but drop edges, uniform noise to average
/// out any one choice, or a tensor the user gives.
///
///   torch::Tensor x0 = make_baseline(BaselineOptions(BaselineKind::Blur).blur_sigma(3), x, model->meta());

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "aegis/core/model_meta.h"

namespace aegis {

enum class BaselineKind { Zero, Constant, Blur, Uniform, Given };

struct BaselineOptions {
  BaselineOptions() = default;
  explicit BaselineOptions(BaselineKind kind) : kind_(kind) {}
  BaselineKind kind_ = BaselineKind::Zero;
  double value_ = 0.0;       ///< Constant: every feature takes this value
  double blur_sigma_ = 5.0;  ///< Blur: Gaussian sigma in pixels over the last two dimensions (images only)
  uint64_t seed_ = 0;        ///< Uniform: the draw in [clip_min, clip_max] (the same for the same seed)
  torch::Tensor tensor_;     ///< Given: one sample's shape (broadcast) or the batch's

  BaselineOptions& value(double v) { value_ = v; return *this; }
  BaselineOptions& blur_sigma(double v) { blur_sigma_ = v; return *this; }
  BaselineOptions& seed(uint64_t v) { seed_ = v; return *this; }
  BaselineOptions& tensor(torch::Tensor v) { kind_ = BaselineKind::Given; tensor_ = std::move(v); return *this; }
};

/// "zero", "constant", "blur", "uniform", "given".
std::string baseline_kind_name(BaselineKind kind);
/// "zero", "constant", "blur", "uniform"; InvalidArgument otherwise ("given" needs a tensor).
BaselineKind parse_baseline_kind(const std::string& name);
nlohmann::json baseline_json(const BaselineOptions& o);

/// The baseline for the batch x ([batch, input_shape...]), shaped like x.
/// InvalidArgument: blur on inputs without two spatial dimensions, sigma <= 0,
/// a given tensor of another shape.
torch::Tensor make_baseline(const BaselineOptions& options, const torch::Tensor& x, const ModelMeta& meta);

}  // namespace aegis
