#pragma once
// Helpers shared by the tests: temporary directories, synthetic data, small
// models, and running the aegis binary.

#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "aegis/core/error.h"

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"

namespace aegis::testing {

/// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// Linearly separable-ish blobs: `n` samples of `features` features in [0, 1],
/// `classes` classes around random centres. Deterministic for a seed.
Dataset make_blobs(int64_t n, int64_t features, int64_t classes, uint64_t seed, double spread = 0.08);

/// Tiny 28x28 "images": each class a bright bar at its own position plus noise.
Dataset make_bar_images(int64_t n, int64_t classes, uint64_t seed);

/// A linear model whose features() are its inputs (input [features], range
/// [-10, 10]): detectors working on penultimate features see the data as is.
std::shared_ptr<ScriptClassifier> identity_features_model(int64_t features, int64_t classes);

/// Poisoned-sample detection with a known answer: 8 features, class 0 has
/// 200 samples around one centre, class 1 200 around another, and 40 samples
/// planted in class 0 far along axis 0 (indices 400..439, planted_indices()).
Dataset make_planted_features(uint64_t seed);
std::vector<int64_t> planted_indices();

/// A linear classifier logits = W x + b as a ScriptClassifier (input [features]).
std::shared_ptr<ScriptClassifier> make_linear(const torch::Tensor& weight, const torch::Tensor& bias,
                                              double clip_min = 0.0, double clip_max = 1.0);

/// A backdoor with a known answer, small enough to reason about: 12x12
/// grey images, 4 classes, class c a bright bar over rows 2c..2c+1 of the
/// top-left 8x8 (noise only there; the rest is black). The model is linear
/// on the pixels (logit c = 0.25 x the bar's pixel sum). With `planted`, the
/// 2x2 white patch at the bottom right (tiny_backdoor_trigger(), which no
/// clean image touches) adds 5 per pixel to the target class
/// kTinyBackdoorTarget, so a triggered image is always classified as it.
constexpr int64_t kTinyBackdoorTarget = 2;
Dataset make_tiny_backdoor_data(int64_t n, uint64_t seed);
std::shared_ptr<ScriptClassifier> tiny_backdoor_model(bool planted);
/// The trigger as aegis poison would record it (Trigger::patch(2, "bottom-right", "white")).
nlohmann::json tiny_backdoor_record();

/// A small CNN trained on make_bar_images (`classes` classes, 2 epochs): a
/// model with real gradients for attack tests. Trained once per process and
/// cached on disk under the temp dir, so the many test processes share it.
std::shared_ptr<ScriptClassifier> trained_bars_cnn(int64_t classes = 4);

struct CommandResult {
  int exit_code = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};
/// Runs the aegis binary with `args` (a shell-quoted string), capturing output.
CommandResult run_aegis(const std::string& args);
/// Runs any shell command, capturing output.
CommandResult run_command(const std::string& command);

/// Debian's python3 with torch, or "" when it is absent.
std::string python_with_torch();

/// The kind of the aegis::Error `f` throws (Internal when it throws none).
ErrorKind error_kind_of(const std::function<void()>& f);
/// The message of the aegis::Error `f` throws ("" when it throws none).
std::string error_message_of(const std::function<void()>& f);

/// True when the Fashion-MNIST package is installed.
bool have_fashion_mnist();

}  // namespace aegis::testing
