#include "aegis/defenses/transforms/eot.h"

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

namespace {
ModelMeta eot_meta(const ClassifierPtr& inner, int64_t samples) {
  AEGIS_CHECK(inner != nullptr, InvalidArgument, "EOT needs a model to wrap");
  AEGIS_CHECK(samples >= 1, InvalidArgument, "EOT samples must be >= 1, got " << samples);
  ModelMeta m = inner->meta();
  m.mean.clear();
  m.std.clear();
  m.provenance["eot_samples"] = samples;
  return m;
}
}  // namespace

EOTClassifier::EOTClassifier(ClassifierPtr inner, int64_t samples)
    : Classifier(eot_meta(inner, samples)), inner_(std::move(inner)), samples_(samples) {}

torch::Tensor EOTClassifier::compute_logits(const torch::Tensor& x, bool grad) {
  torch::Tensor acc;
  for (int64_t i = 0; i < samples_; ++i) {
    torch::Tensor z = grad ? inner_->forward(x) : inner_->logits(x);
    acc = acc.defined() ? acc + z : z;
  }
  return acc / double(samples_);
}

}  // namespace aegis
