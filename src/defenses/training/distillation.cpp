#include "aegis/defenses/training/distillation.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

namespace F = torch::nn::functional;

void DistillationOptions::validate() const {
  AEGIS_CHECK(temperature_ > 0 && std::isfinite(temperature_), InvalidArgument,
              "distillation: temperature must be > 0, got " << temperature_);
  AEGIS_CHECK(hard_weight_ >= 0 && hard_weight_ <= 1, InvalidArgument,
              "distillation: hard-label weight must be in [0, 1], got " << hard_weight_);
}

nlohmann::json DistillationOptions::to_json() const {
  return {{"temperature", temperature_}, {"hard_weight", hard_weight_}};
}

DistillationObjective::DistillationObjective(ClassifierPtr teacher, DistillationOptions options)
    : teacher_(std::move(teacher)), o_(std::move(options)) {
  o_.validate();
  AEGIS_CHECK(teacher_ != nullptr || o_.hard_weight_ == 1, InvalidArgument,
              "distillation needs a teacher model (or hard-label weight 1 to train the teacher itself at T)");
}

nlohmann::json DistillationObjective::describe() const {
  nlohmann::json j = o_.to_json();
  if (teacher_)
    j["teacher"] = {{"architecture", teacher_->meta().architecture}, {"provenance", teacher_->meta().provenance}};
  return j;
}

torch::Tensor DistillationObjective::loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                                          torch::Tensor& clean_logits) {
  const double T = o_.temperature_;
  clean_logits = model.forward(batch.x);
  torch::Tensor student = torch::log_softmax(clean_logits / T, 1);
  torch::Tensor l = torch::zeros({}, clean_logits.options());
  if (o_.hard_weight_ < 1) {
    AEGIS_CHECK(teacher_->meta().num_classes == model.meta().num_classes, ShapeMismatch,
                "distillation: the teacher has " << teacher_->meta().num_classes << " classes, the student "
                                                 << model.meta().num_classes);
    torch::Tensor soft = torch::softmax(teacher_->logits(batch.x) / T, 1).detach();
    l = l + (1 - o_.hard_weight_) * -(soft * student).sum(1).mean();
  }
  if (o_.hard_weight_ > 0) {
    // The true labels at the same temperature (Papernot et al. train the teacher this way).
    l = l + o_.hard_weight_ * F::nll_loss(student, batch.y) * (1 - ctx.label_smoothing) +
        o_.hard_weight_ * ctx.label_smoothing * -student.mean(1).mean();
  }
  return l;
}

}  // namespace aegis
