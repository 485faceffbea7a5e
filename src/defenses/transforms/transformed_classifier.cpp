#include "aegis/defenses/transforms/transformed_classifier.h"

#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

namespace {
ModelMeta wrapped_meta(const ClassifierPtr& inner) {
  AEGIS_CHECK(inner != nullptr, InvalidArgument, "an input defence needs a model to wrap");
  ModelMeta m = inner->meta();
  m.mean.clear();  // the inner model normalises
  m.std.clear();
  return m;
}
}  // namespace

TransformedClassifier::TransformedClassifier(ClassifierPtr inner)
    : Classifier(wrapped_meta(inner)), inner_(std::move(inner)), gen_(make_generator(0, "input-defence")) {}

void TransformedClassifier::seed(uint64_t s) { gen_ = make_generator(s, "input-defence"); }

void TransformedClassifier::record_provenance() {
  meta_.provenance["input_defence"] = {{"name", name()}, {"options", options_json()}};
}

torch::Tensor TransformedClassifier::compute_logits(const torch::Tensor& x, bool grad) {
  if (!grad) return inner_->logits(transform(x));
  if (gradient_ == Gradient::BPDA) {
    torch::Tensor t;
    {
      torch::NoGradGuard g;
      t = transform(x.detach());
    }
    return inner_->forward(x + (t - x).detach());
  }
  return inner_->forward(transform(x));
}

}  // namespace aegis
