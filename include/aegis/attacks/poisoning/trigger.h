#pragma once
/// Trigger: the pattern a backdoor attack stamps on inputs. Either a patch
/// (a size x size square at a position, with a fixed pattern) pasted over the
/// image, or a full-image pattern blended in with weight alpha (Chen et al.
/// 2017). Fully described by its parameters, so a record can rebuild it.
///
///   Trigger t = Trigger::patch(3, "bottom-right", "checker");
///   torch::Tensor xt = t.apply(x);   // x: [N, C, H, W] in [lo, hi]

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace aegis {

struct Trigger {
  std::string kind = "patch";  ///< "patch" or "blend"
  int64_t size = 3;            ///< patch side in pixels, >= 1
  /// "bottom-right", "bottom-left", "top-right", "top-left", or explicit
  /// row/col (>= 0)
  std::string position = "bottom-right";
  int64_t row = -1,
          col = -1;                 ///< explicit top-left corner; -1 = from `position`
  int64_t margin = 1;               ///< distance from the border for named positions
  std::string pattern = "checker";  ///< "checker", "white", "black", "random"
  double alpha = 0.1;               ///< blend weight, in (0, 1], for kind "blend"
  uint64_t seed = 0;                ///< the "random" pattern's seed
  double clip_min = 0.0,
         clip_max = 1.0;  ///< the data's valid range (pattern values are its ends)

  static Trigger patch(int64_t size, std::string position = "bottom-right", std::string pattern = "checker");
  static Trigger blend(double alpha, std::string pattern = "random", uint64_t seed = 0);

  /// Throws InvalidArgument naming the first bad field (or a patch that does
  /// not fit a sample of `sample_shape` [C, H, W]).
  void validate(const std::vector<int64_t>& sample_shape) const;
  /// [C, H, W] mask (1 where the trigger replaces the image; alpha for blend).
  torch::Tensor mask(const std::vector<int64_t>& sample_shape) const;
  /// [C, H, W] pattern values in [clip_min, clip_max].
  torch::Tensor pattern_tensor(const std::vector<int64_t>& sample_shape) const;
  /// x * (1 - mask) + pattern * mask, for a batch [N, C, H, W].
  torch::Tensor apply(const torch::Tensor& x) const;

  nlohmann::json to_json() const;
  static Trigger from_json(const nlohmann::json& j);  ///< throws CorruptData
};

}  // namespace aegis
