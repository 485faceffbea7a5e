#include "aegis/serve/model_slot.h"

#include <filesystem>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"

namespace aegis::serve {

ModelSlot::ModelSlot(ModelConfig config, ModelVerifier server_verify, Metrics* metrics)
    : config_(std::move(config)), server_verify_(std::move(server_verify)), metrics_(metrics) {
  config_.validate();
  primary_ = load(config_.path, false);
  if (!config_.fallback_path.empty()) fallback_ = load(config_.fallback_path, true);
}

std::shared_ptr<LoadedModel> ModelSlot::load(const std::string& path, bool fallback) const {
  AEGIS_CHECK(std::filesystem::exists(path), NotFound, "model file " << path << " does not exist");
  // The hooks run before a single byte of the model is deserialised.
  if (server_verify_) server_verify_(path);
  if (config_.verify) config_.verify(path);
  auto m = std::make_shared<LoadedModel>();
  m->path = path;
  m->version = sha256_file(path).substr(0, 12);
  m->classifier = ScriptClassifier::load(path, config_.meta);
  m->is_fallback = fallback;
  if (config_.detection_policy != DetectionPolicy::Off) {
    if (config_.detector_factory) {
      m->detector = config_.detector_factory(m->classifier);
    } else if (!config_.detector_path.empty()) {
      m->detector = load_detector_file(config_.detector_path, m->classifier);
    }
  }
  const std::string name = config_.name;
  Metrics* metrics = metrics_;
  m->batcher = std::make_unique<DynamicBatcher>(m->classifier, config_.batching, [metrics, name](int64_t n) {
    if (metrics) metrics->observe_batch(name, n);
  });
  std::shared_ptr<LoadedModel> primary;
  {
    std::lock_guard<std::mutex> lock(mu_);
    primary = primary_;
  }
  if (primary) {
    const auto& a = primary->classifier->meta();
    const auto& b = m->classifier->meta();
    AEGIS_CHECK(a.input_shape == b.input_shape && a.num_classes == b.num_classes, InvalidArgument,
                "model " << path << " does not take the same input shape and classes as the model it would replace");
  }
  return m;
}

std::shared_ptr<LoadedModel> ModelSlot::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return use_fallback_ && fallback_ ? fallback_ : primary_;
}

std::string ModelSlot::swap(const std::string& path) {
  auto m = load(path, false);  // outside the lock: serving continues while loading
  std::lock_guard<std::mutex> lock(mu_);
  history_.push_back(primary_->path);
  primary_ = m;
  return m->version;
}

std::string ModelSlot::rollback() {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    AEGIS_CHECK(!history_.empty(), NotFound, "model '" << config_.name << "' has no previous version");
    path = history_.back();
  }
  auto m = load(path, false);  // verified again: the file may have changed since
  std::lock_guard<std::mutex> lock(mu_);
  history_.pop_back();
  primary_ = m;
  return m->version;
}

void ModelSlot::use_fallback(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  AEGIS_CHECK(!on || fallback_, InvalidArgument, "model '" << config_.name << "' has no fallback");
  use_fallback_ = on;
}

bool ModelSlot::using_fallback() const {
  std::lock_guard<std::mutex> lock(mu_);
  return use_fallback_;
}

nlohmann::json ModelSlot::to_json() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {{"name", config_.name},
          {"path", primary_->path},
          {"version", primary_->version},
          {"fallback_active", use_fallback_},
          {"previous_versions", history_.size()}};
}

}  // namespace aegis::serve
