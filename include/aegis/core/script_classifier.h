#pragma once
/// ScriptClassifier: a Classifier backed by a TorchScript module. It is the
/// one concrete model type of aegis: models exported from PyTorch with
/// `torch.jit.save` and aegis's own built-in architectures (which are
/// TorchScript modules defined in C++, see architectures.h) are both this, so
/// whatever aegis can attack it can also train, fine-tune, harden and save,
/// and whatever it saves PyTorch's `torch.jit.load` opens.
///
///   auto model = ScriptClassifier::load("model.pt");          // reads aegis.json
///   auto model = ScriptClassifier::load("foreign.pt",         // or takes it from you
///                    ModelOverrides().input_shape({1, 28, 28}));
///   model->save("copy.pt");

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/script.h>

#include "aegis/core/classifier.h"

namespace aegis {

/// Metadata given by the user, for archives that carry none (or to override it).
struct ModelOverrides {
  std::optional<std::vector<int64_t>> input_shape_;
  std::optional<int64_t> num_classes_;
  std::optional<double> clip_min_, clip_max_;
  std::optional<std::vector<double>> mean_, std_;
  std::optional<std::vector<std::string>> class_names_;
  /// Shape used only when the archive carries no aegis metadata and no
  /// input_shape was given (the CLI passes the data's sample shape); loading
  /// then logs a one-line note saying so.
  std::optional<std::vector<int64_t>> fallback_input_shape_;
  /// Key file for an encrypted model (integrity/encryption.h); "" falls back
  /// to $AEGIS_KEY_FILE / $AEGIS_KEY when the file turns out to be encrypted.
  std::string key_file_;

  ModelOverrides& input_shape(std::vector<int64_t> v) { input_shape_ = std::move(v); return *this; }
  ModelOverrides& num_classes(int64_t v) { num_classes_ = v; return *this; }
  ModelOverrides& clip(double lo, double hi) { clip_min_ = lo; clip_max_ = hi; return *this; }
  ModelOverrides& normalization(std::vector<double> m, std::vector<double> s) {
    mean_ = std::move(m); std_ = std::move(s); return *this;
  }
  ModelOverrides& class_names(std::vector<std::string> v) { class_names_ = std::move(v); return *this; }
  ModelOverrides& fallback_input_shape(std::vector<int64_t> v) { fallback_input_shape_ = std::move(v); return *this; }
  ModelOverrides& key_file(std::string v) { key_file_ = std::move(v); return *this; }
  bool empty() const {
    return !input_shape_ && !num_classes_ && !clip_min_ && !mean_ && !class_names_;
  }
};

class ScriptClassifier : public Classifier {
 public:
  /// Name of the extra file inside the archive that holds ModelMeta as JSON.
  static constexpr const char* kMetaFile = "aegis.json";

  ScriptClassifier(torch::jit::Module module, ModelMeta meta);

  /// Loads a TorchScript archive. Throws NotFound (no file), CorruptData (not a
  /// TorchScript archive, bad aegis.json), InvalidArgument (no metadata and no
  /// input shape given), ShapeMismatch (the module rejects the declared shape).
  /// An encrypted archive (aegis encrypt) is decrypted in memory with the key
  /// from `overrides.key_file_` or the environment; PermissionDenied without one.
  static std::shared_ptr<ScriptClassifier> load(const std::string& path,
                                                const ModelOverrides& overrides = {},
                                                torch::Device device = torch::kCPU);
  /// Writes a TorchScript archive with aegis.json inside (atomically: a
  /// temporary file renamed into place).
  void save(const std::string& path) const;

  torch::jit::Module& module() { return module_; }
  ModelMeta& mutable_meta() { return meta_; }

  /// The trainable parameters (in registration order).
  std::vector<torch::Tensor> parameters() const;
  int64_t parameter_count() const;
  /// Named parameters and buffers, for summaries.
  std::vector<std::pair<std::string, torch::Tensor>> named_tensors() const;

  /// Switches between training (train mode, parameters require grad) and the
  /// default evaluation state (eval mode, parameters frozen so attacks compute
  /// input gradients only). Prefer TrainingScope.
  void set_training(bool on);
  bool training() const { return training_; }

  /// Penultimate-layer features, when the module defines `features(x)` (all
  /// built-in architectures do). Throws Unsupported otherwise.
  bool has_features() const;
  torch::Tensor features(const torch::Tensor& x);
  /// Intermediate activations, shallow to deep, when the module defines
  /// `feature_maps(x) -> List[Tensor]` (built-in architectures do: the cnn
  /// gives its two convolutions' ReLU maps [B, C, H, W] and the penultimate
  /// features [B, d]); otherwise just {features(x)}. Throws Unsupported when
  /// the module has neither.
  bool has_feature_maps() const;
  std::vector<torch::Tensor> feature_maps(const torch::Tensor& x);

  void to(torch::Device device);
  torch::Device device() const override { return device_; }

  /// Deep copy (parameters and buffers copied, not shared).
  std::shared_ptr<ScriptClassifier> clone() const;

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override;

 private:
  torch::Tensor normalize(const torch::Tensor& x) const;

  torch::jit::Module module_;
  torch::Device device_ = torch::kCPU;
  bool training_ = false;
  torch::Tensor norm_mean_, norm_std_;  // undefined when meta has none
};

/// RAII: training state for its lifetime, evaluation state after.
class TrainingScope {
 public:
  explicit TrainingScope(ScriptClassifier& model) : model_(model) { model_.set_training(true); }
  ~TrainingScope() { model_.set_training(false); }
  TrainingScope(const TrainingScope&) = delete;
  TrainingScope& operator=(const TrainingScope&) = delete;

 private:
  ScriptClassifier& model_;
};

}  // namespace aegis
