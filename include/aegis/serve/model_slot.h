#pragma once
/// ModelSlot: one served model name and the model behind it, with hot swap,
/// rollback and a fallback. Requests take a shared_ptr to the current
/// LoadedModel, so a swap replaces the pointer while requests in flight
/// finish on the model they started with (the old batcher drains before it
/// is destroyed). Every load, swap and fallback first runs the verification
/// hooks (ServerConfig::verify_model, ModelConfig::verify): a model that
/// fails them is never loaded.
///
///   ModelSlot slot(config, server_verify, &metrics);
///   auto m = slot.current();            // hold while serving one request
///   slot.swap("model-v2.pt");           // verify, load, swap in
///   slot.rollback();                    // back to the previous version

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/core/script_classifier.h"
#include "aegis/defenses/detectors/detector.h"
#include "aegis/serve/batcher.h"
#include "aegis/serve/config.h"
#include "aegis/serve/metrics.h"

namespace aegis::serve {

struct LoadedModel {
  std::string path;
  std::string version;  ///< first 12 hex of the file's SHA-256
  std::shared_ptr<ScriptClassifier> classifier;
  std::unique_ptr<Detector> detector;  ///< may be null
  std::mutex detector_mu;              ///< detectors are not assumed thread-safe
  std::unique_ptr<DynamicBatcher> batcher;
  bool is_fallback = false;
};

class ModelSlot {
 public:
  /// Loads config.path (and the fallback, if any). Throws what loading throws.
  ModelSlot(ModelConfig config, ModelVerifier server_verify, Metrics* metrics);

  const ModelConfig& config() const { return config_; }
  /// The model requests go to now (the fallback while it is switched on).
  std::shared_ptr<LoadedModel> current() const;
  /// Verifies and loads `path`, then swaps it in. The new model must take the
  /// same input shape and classes. Returns the new version.
  std::string swap(const std::string& path);
  /// Swaps the previous version back in. Throws NotFound when there is none.
  std::string rollback();
  /// Serves the fallback model instead (or the primary again).
  void use_fallback(bool on);
  bool using_fallback() const;
  nlohmann::json to_json() const;

 private:
  std::shared_ptr<LoadedModel> load(const std::string& path, bool fallback) const;

  const ModelConfig config_;
  const ModelVerifier server_verify_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  std::shared_ptr<LoadedModel> primary_, fallback_;
  std::vector<std::string> history_;  // paths swapped out, newest last
  bool use_fallback_ = false;
};

}  // namespace aegis::serve
