#pragma once
/// Output hardening: what a served model tells its callers. Less detail makes
/// extraction, inversion and score-based evasion cost more queries; it does
/// not stop decision-based attacks, which need labels only.
///  - full:    every class probability;
///  - topk:    the k most likely classes and their probabilities;
///  - rounded: probabilities rounded to `decimals` places;
///  - label:   the predicted class only.
/// Optionally calibrated noise on the probabilities before the above: the
/// Laplace mechanism (scale 2/epsilon: two probability vectors differ by at
/// most 2 in L1) or the Gaussian mechanism (sigma = sqrt(2) *
/// sqrt(2 ln(1.25/delta)) / epsilon, L2 sensitivity sqrt(2), epsilon < 1),
/// then clipped and renormalised (post-processing). The guarantee is per
/// released score vector; over many queries the privacy loss adds up.
///
///   OutputOptions o = OutputOptions().mode(OutputMode::TopK).top_k(3);
///   HardenedOutput out = harden_output(probs, o, rng);
///   out.to_json_outputs();   // Open Inference Protocol "outputs" array

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace aegis::serve {

enum class OutputMode { Full, TopK, Rounded, Label };
enum class NoiseMechanism { None, Laplace, Gaussian };
OutputMode parse_output_mode(const std::string& s);
NoiseMechanism parse_noise(const std::string& s);
const char* output_mode_name(OutputMode m);
const char* noise_name(NoiseMechanism m);

struct OutputOptions {
  OutputMode mode_ = OutputMode::Full;
  int64_t top_k_ = 3;
  int decimals_ = 2;
  NoiseMechanism noise_ = NoiseMechanism::None;
  double epsilon_ = 1.0;
  double delta_ = 1e-5;  ///< Gaussian only
  OutputOptions& mode(OutputMode v) {
    mode_ = v;
    return *this;
  }
  OutputOptions& top_k(int64_t v) {
    top_k_ = v;
    return *this;
  }
  OutputOptions& decimals(int v) {
    decimals_ = v;
    return *this;
  }
  OutputOptions& noise(NoiseMechanism v, double epsilon, double delta = 1e-5) {
    noise_ = v;
    epsilon_ = epsilon;
    delta_ = delta;
    return *this;
  }
  /// Throws InvalidArgument for an unusable combination.
  void validate() const;
  /// Noise scale: Laplace b or Gaussian sigma (0 without noise).
  double noise_scale() const;
  nlohmann::json to_json() const;
};

struct HardenedOutput {
  torch::Tensor labels;   ///< [b] int64, always present (from the noised scores)
  torch::Tensor scores;   ///< [b, c] (full, rounded), [b, k] (topk); undefined for label
  torch::Tensor classes;  ///< [b, k] int64 for topk
  OutputMode mode = OutputMode::Full;
  /// The Open Inference Protocol "outputs" array.
  nlohmann::json to_json_outputs() const;
};

/// Hardens softmax probabilities `probs` [b, c]. Noise draws from `rng`.
HardenedOutput harden_output(const torch::Tensor& probs, const OutputOptions& options, std::mt19937_64& rng);

}  // namespace aegis::serve
