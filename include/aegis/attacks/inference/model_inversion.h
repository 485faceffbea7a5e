#pragma once
/// MI-Face model inversion (Fredrikson et al. 2015): reconstruct a
/// representative input of a class by gradient steps on the input that raise
/// the model's score for that class, under a prior: total variation (images),
/// an L2 pull towards the starting image, and the valid range. The score is
/// by default the class's centred logit z_c - mean_j z_j (= log p_c - mean_j
/// log p_j, so a query-only attacker reads it off the probabilities too): it
/// keeps growing where the probability has saturated, so the image keeps
/// gathering what the model associates with the class instead of stopping at
/// the first adversarial pattern that reaches p_c ~ 1 ("log-prob", the
/// paper's cost 1 - p_c family, does that on CNNs). Two gradient sources:
///  - "white-box": the model's input gradient (Classifier::forward);
///  - "estimated": queries only: NES gradient estimates (antithetic Gaussian
///    directions, Ilyas et al. 2018) of the score from the observed
///    probabilities; needs score answers, costs 2 * samples queries a step.
/// The prior's gradient is the attacker's own and costs no queries.
/// Maps to MITRE ATLAS AML.T0024.001 (Invert ML Model), OWASP ML03.
///
/// Given the class's real training records, the result says how close each
/// reconstruction is to its class's mean image (MSE, SSIM) and whether it is
/// closer to its own class's mean than to any other class's.
///
///   InversionResult r = mi_face(*model, InversionOptions().steps(300), &train_data);
///   write_tiled_png("inversion.png", r.reconstructions);  // core/image_io.h

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/attacks/output_access.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

struct InversionOptions {
  std::string gradient_ = "white-box";  ///< "white-box" or "estimated"
  std::vector<int64_t> classes_;        ///< classes to invert; empty = all
  std::string objective_ = "logit";     ///< "logit" (centred logit) or "log-prob" (log p_c)
  int64_t steps_ = 300;                 ///< Adam steps on the input, >= 1
  double lr_ = 0.01;                    ///< Adam step size on the input (raw units), > 0
  double tv_weight_ = 0.1;              ///< total-variation prior (images only), >= 0
  double l2_weight_ = 1.0;              ///< pull towards the start (mean squared difference), >= 0
  std::string init_ = "min";            ///< start: "min" (clip_min, as Fredrikson), "mid" (middle of the range), "random"
  int64_t samples_ = 40;                ///< estimated only: directions a step (even, >= 2)
  double sigma_ = 0.01;                 ///< estimated only: NES smoothing (raw units), > 0
  OutputAccess access_;                 ///< estimated only: the view of answers (needs scores)
  uint64_t seed_ = 0;
  InversionOptions& gradient(std::string v) { gradient_ = std::move(v); return *this; }
  InversionOptions& classes(std::vector<int64_t> v) { classes_ = std::move(v); return *this; }
  InversionOptions& objective(std::string v) { objective_ = std::move(v); return *this; }
  InversionOptions& steps(int64_t v) { steps_ = v; return *this; }
  InversionOptions& lr(double v) { lr_ = v; return *this; }
  InversionOptions& tv_weight(double v) { tv_weight_ = v; return *this; }
  InversionOptions& l2_weight(double v) { l2_weight_ = v; return *this; }
  InversionOptions& init(std::string v) { init_ = std::move(v); return *this; }
  InversionOptions& samples(int64_t v) { samples_ = v; return *this; }
  InversionOptions& sigma(double v) { sigma_ = v; return *this; }
  InversionOptions& access(OutputAccess v) { access_ = v; return *this; }
  InversionOptions& seed(uint64_t v) { seed_ = v; return *this; }
  void validate() const;
  nlohmann::json to_json() const;
};

struct InversionResult {
  torch::Tensor classes;          ///< [K] int64, the inverted classes
  torch::Tensor reconstructions;  ///< [K, input shape...] in the valid range
  torch::Tensor confidence;       ///< [K] the model's probability of the class on its
                                  ///< reconstruction
  // Filled when real training data was given:
  bool has_reference = false;
  torch::Tensor class_means;  ///< [C, input shape...] mean training record per class
  torch::Tensor mse;          ///< [K, C] MSE of each reconstruction to each class mean
  std::vector<double> mse_own,
      ssim_own;                        ///< to its own class mean (SSIM: images only, else empty)
  std::vector<int64_t> nearest_class;  ///< argmin of mse per reconstruction
  double closest_to_own_fraction = 0;  ///< share of reconstructions nearest to their own class mean
  int64_t queries = 0;
  double seconds = 0;
  std::string gradient;
  nlohmann::json to_json() const;
};

/// Inverts the model. `reference` (the class's real training records, e.g.
/// the training set) enables the similarity metrics.
InversionResult mi_face(Classifier& model, const InversionOptions& options, const Dataset* reference = nullptr);

/// Mean SSIM (Gaussian 11x11 window, sigma 1.5; smaller for small images) of
/// images a and b [C, H, W] whose values span a range of width `range`.
double ssim(const torch::Tensor& a, const torch::Tensor& b, double range = 1.0);

/// Anisotropic total variation per sample of images [B, C, H, W] (mean absolute
/// neighbour difference).
torch::Tensor total_variation(const torch::Tensor& x);

}  // namespace aegis
