#pragma once
/// Class prototypes: one input per class that shows what the model takes the
/// class to be, a global explanation (like the surrogate tree) rather than
/// an attribution of one sample. Two kinds:
///  - mean: the mean of the top_k samples of the class (by label) in a
///    dataset that the model is most confident about (highest probability
///    of the class): what the model's clearest examples of it look like;
///  - maximise: activation maximisation with the MI-Face optimiser
///    (attacks/inference/model_inversion.h): Adam steps on the input that
///    raise the class's centred logit under a total-variation and an L2
///    prior, clipped to the valid range; no data needed. White-box unless
///    the inversion options ask for estimated gradients.
///
///   ClassPrototypes p = class_prototypes(*model, &data, PrototypeOptions().top_k(20));
///   write_tiled_png("prototypes.png", p.images);          // core/image_io.h
///   ClassPrototypes m = class_prototypes(*model, nullptr,
///       PrototypeOptions().kind(PrototypeKind::Maximise).inversion(InversionOptions().steps(200)));

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/attacks/inference/model_inversion.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

enum class PrototypeKind { Mean, Maximise };
/// "mean", "maximise"; parse_... also takes "maximize" and throws InvalidArgument for others.
std::string prototype_kind_name(PrototypeKind kind);
PrototypeKind parse_prototype_kind(const std::string& name);

struct PrototypeOptions {
  PrototypeKind kind_ = PrototypeKind::Mean;
  std::vector<int64_t> classes_;  ///< classes to show; empty (the default) = all of the model's
  int64_t top_k_ = 10;            ///< mean: most confident samples averaged per class, >= 1
  int64_t batch_size_ = 256;      ///< mean: samples per model call, >= 1
  /// maximise: the MI-Face optimiser's options (its classes are replaced by
  /// classes_). Default: 300 steps from the middle of the range.
  InversionOptions inversion_ = InversionOptions().init("mid");

  PrototypeOptions& kind(PrototypeKind v) { kind_ = v; return *this; }
  PrototypeOptions& classes(std::vector<int64_t> v) { classes_ = std::move(v); return *this; }
  PrototypeOptions& top_k(int64_t v) { top_k_ = v; return *this; }
  PrototypeOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  PrototypeOptions& inversion(InversionOptions v) { inversion_ = std::move(v); return *this; }
  void validate() const;
  nlohmann::json to_json() const;
};

struct ClassPrototypes {
  PrototypeKind kind = PrototypeKind::Mean;
  torch::Tensor classes;      ///< [K] int64
  torch::Tensor images;       ///< [K, input_shape...] in the valid range
  torch::Tensor score;        ///< [K] the class's logit on its prototype
  torch::Tensor probability;  ///< [K] the model's probability of the class on its prototype
  // mean:
  torch::Tensor counts;           ///< [K] int64 samples averaged (top_k, or fewer where the class has fewer)
  torch::Tensor mean_confidence;  ///< [K] mean probability of the class over those samples
  // maximise:
  torch::Tensor start_score;  ///< [K] the class's logit on the starting image
  int64_t queries = 0;        ///< samples through the model
  double seconds = 0;
  nlohmann::json to_json() const;
};

/// Prototypes of the options' classes. `data` is required for the mean
/// (InvalidArgument without it, or for a class with no samples in it) and
/// ignored by maximise.
ClassPrototypes class_prototypes(Classifier& model, const Dataset* data, const PrototypeOptions& options = {});

}  // namespace aegis
