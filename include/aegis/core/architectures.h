#pragma once
/// The built-in architectures, written as TorchScript modules in C++ so that
/// one representation serves training, attack, serving and export: a model
/// aegis trains is saved as a TorchScript archive PyTorch loads unchanged.
///
///   auto model = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10).dropout(0.25));
///
/// - "mlp": tabular data, hidden layers with ReLU and dropout;
/// - "cnn": 28x28 images: conv32-conv64 (3x3, max-pool) - fc128 - classes;
/// - "cnn-dp": 28x28 images, the small tanh CNN of Tramer and Boneh 2021
///   for DP-SGD: conv16 (8x8, stride 2) - conv32 (4x4, stride 2) - fc32 -
///   classes, 26k parameters;
/// - "resnet": 32x32 colour images: a small pre-activation-free ResNet with
///   batch norm (16-32-64 channels, one basic block a stage);
/// - "resnet-gn": the same with group norm instead of batch norm, the variant
///   DP-SGD can train (per-sample gradients need no batch statistics; mlp
///   and cnn have no batch norm and are DP-ready as they are).
/// Each defines `forward(x)` and `features(x)` (the penultimate layer), and
/// normalises its input inside when mean/std are given.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aegis/core/script_classifier.h"

namespace aegis {

struct ArchitectureOptions {
  ArchitectureOptions(std::string name, std::vector<int64_t> input_shape, int64_t num_classes)
      : name_(std::move(name)), input_shape_(std::move(input_shape)), num_classes_(num_classes) {}

  /// "mlp", "cnn", "cnn-dp", "resnet" or "resnet-gn".
  std::string name_;
  /// One sample's shape: {features} for mlp, {C, 28, 28} for cnn, {C, 32, 32} for resnet.
  std::vector<int64_t> input_shape_;
  int64_t num_classes_;
  /// Dropout before the classifier head (and between MLP layers). Default 0.
  double dropout_ = 0.0;
  /// MLP hidden widths. Default {256, 128}.
  std::vector<int64_t> hidden_ = {256, 128};
  /// Normalisation baked into forward(): per-channel (or per-feature) mean and std. Default none.
  std::vector<double> mean_, std_;
  /// Valid input range recorded in the metadata. Default [0, 1].
  double clip_min_ = 0.0, clip_max_ = 1.0;
  std::vector<std::string> class_names_;

  ArchitectureOptions& dropout(double v) { dropout_ = v; return *this; }
  ArchitectureOptions& hidden(std::vector<int64_t> v) { hidden_ = std::move(v); return *this; }
  ArchitectureOptions& normalization(std::vector<double> m, std::vector<double> s) {
    mean_ = std::move(m); std_ = std::move(s); return *this;
  }
  ArchitectureOptions& clip(double lo, double hi) { clip_min_ = lo; clip_max_ = hi; return *this; }
  ArchitectureOptions& class_names(std::vector<std::string> v) { class_names_ = std::move(v); return *this; }
};

/// Builds a freshly initialised model (PyTorch's default initialisation,
/// drawn from LibTorch's global generator: seed it first with seed_everything).
std::shared_ptr<ScriptClassifier> build_architecture(const ArchitectureOptions& options);

/// Names accepted by build_architecture.
std::vector<std::string> architecture_names();

}  // namespace aegis
