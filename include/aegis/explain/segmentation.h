#pragma once
/// SLIC superpixels (Achanta et al. 2012) on the pixel grid: k-means over
/// (value, position) started from a regular grid, each centre searching a
/// 2S x 2S window, then connected components, with fragments smaller than a
/// quarter of the mean segment merged into a neighbour. The interpretable
/// features of LIME and KernelSHAP on images. Deterministic.
///
///   torch::Tensor labels = slic(image, SlicOptions().segments(50));   // [H, W] int64, ids 0..G-1

#include <torch/types.h>

#include <cstdint>

namespace aegis {

struct SlicOptions {
  int64_t segments_ = 50;     ///< wanted number of superpixels (the result is close to it), >= 1
  double compactness_ = 0.1;  ///< weight of position against value; values scaled to [0, 1] (0.1 = skimage's 10 on Lab)
  int64_t iterations_ = 10;   ///< k-means rounds, >= 1

  SlicOptions& segments(int64_t v) { segments_ = v; return *this; }
  SlicOptions& compactness(double v) { compactness_ = v; return *this; }
  SlicOptions& iterations(int64_t v) { iterations_ = v; return *this; }
};

/// Superpixel labels [H, W] (int64, every id in 0..G-1 used, each segment
/// 4-connected) of an image [C, H, W] whose values lie in [lo, hi].
torch::Tensor slic(const torch::Tensor& image, const SlicOptions& options = {}, double lo = 0.0, double hi = 1.0);

}  // namespace aegis
