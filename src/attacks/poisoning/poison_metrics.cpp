#include "aegis/attacks/poisoning/poison_metrics.h"

#include <torch/torch.h>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"

namespace aegis {

nlohmann::json PoisonMetrics::to_json() const {
  nlohmann::json j = {{"samples", samples}, {"clean_accuracy", clean_accuracy}};
  if (attack_success_rate >= 0) {
    j["attack_success_rate"] = attack_success_rate;
    j["triggered_samples"] = triggered_samples;
  }
  if (source_to_target_rate >= 0) {
    j["source_to_target_rate"] = source_to_target_rate;
    j["source_samples"] = source_samples;
  }
  return j;
}

PoisonMetrics measure_poisoning(Classifier& model, const Dataset& test, const PoisonMetricsOptions& o) {
  check_compatible(model.meta(), test);
  AEGIS_CHECK(o.batch_size_ >= 1, InvalidArgument, "batch size must be >= 1");
  const int64_t k = model.meta().num_classes;
  if (o.target_class_)
    AEGIS_CHECK(*o.target_class_ >= 0 && *o.target_class_ < k, InvalidArgument,
                "target class must be in [0, " << k << "), got " << *o.target_class_);
  if (o.source_class_)
    AEGIS_CHECK(*o.source_class_ >= 0 && *o.source_class_ < k, InvalidArgument,
                "source class must be in [0, " << k << "), got " << *o.source_class_);
  if (o.trigger_) o.trigger_->validate(test.sample_shape());
  PoisonMetrics m;
  m.samples = test.size();
  int64_t correct = 0, hit = 0, flipped = 0;
  for (const Batch& b : test.batches(o.batch_size_)) {
    torch::Tensor pred = model.predict(b.x).to(torch::kCPU);
    correct += (pred == b.y).sum().item<int64_t>();
    if (o.trigger_) {
      torch::Tensor others = b.y != *o.target_class_;
      if (others.any().item<bool>()) {
        torch::Tensor tp = model.predict(o.trigger_->apply(b.x.index({others}))).to(torch::kCPU);
        hit += (tp == *o.target_class_).sum().item<int64_t>();
        m.triggered_samples += tp.size(0);
      }
    }
    if (o.source_class_) {
      torch::Tensor src = b.y == *o.source_class_;
      flipped += (pred.index({src}) == *o.target_class_).sum().item<int64_t>();
      m.source_samples += src.sum().item<int64_t>();
    }
  }
  m.clean_accuracy = m.samples ? double(correct) / double(m.samples) : 0.0;
  if (o.trigger_) m.attack_success_rate = m.triggered_samples ? double(hit) / double(m.triggered_samples) : 0.0;
  if (o.source_class_) m.source_to_target_rate = m.source_samples ? double(flipped) / double(m.source_samples) : 0.0;
  return m;
}

}  // namespace aegis
