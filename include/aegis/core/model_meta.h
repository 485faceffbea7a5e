#pragma once
/// ModelMeta: what a model expects and produces, kept inside every TorchScript
/// archive aegis writes as the extra file `aegis.json` (PyTorch users add it
/// with `torch.jit.save(m, f, _extra_files={"aegis.json": ...})`).
///
///   ModelMeta meta;
///   meta.input_shape = {1, 28, 28};
///   meta.num_classes = 10;
///   meta.validate();

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aegis {

struct ModelMeta {
  /// Architecture name ("cnn", "mlp", "resnet", or "torchscript" for foreign models).
  std::string architecture = "torchscript";
  /// Shape of one sample, without the batch dimension, e.g. {1, 28, 28}. Required.
  std::vector<int64_t> input_shape;
  /// Number of output classes. Required, >= 2.
  int64_t num_classes = 0;
  /// Valid input range in the raw input space; attacks clip into it. Default [0, 1].
  double clip_min = 0.0;
  double clip_max = 1.0;
  /// Per-channel normalisation the Classifier applies *before* calling the
  /// module ((x - mean) / std). Empty = the module takes raw inputs (aegis's
  /// built-in models normalise inside their own forward and leave these empty).
  std::vector<double> mean;
  std::vector<double> std;
  /// Optional human names of the classes; empty or num_classes long.
  std::vector<std::string> class_names;
  /// How the model was made: training recipe, data fingerprint, defence, ...
  nlohmann::json provenance = nlohmann::json::object();

  /// Throws Error(InvalidArgument) naming the first inconsistent field.
  void validate() const;
  /// Name of class `c`: class_names[c] or its number.
  std::string class_name(int64_t c) const;
  int64_t input_numel() const;

  nlohmann::json to_json() const;
  /// Parses and validates; throws Error(CorruptData) on malformed JSON fields.
  static ModelMeta from_json(const nlohmann::json& j);
};

}  // namespace aegis
