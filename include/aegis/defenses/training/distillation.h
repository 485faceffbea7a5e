#pragma once
/// Defensive distillation (Papernot et al. 2016): a student is trained on the
/// teacher's soft labels softmax(teacher(x) / T), with its own logits also
/// divided by T; deployed at T = 1 its softmax saturates, which makes plain
/// gradient attacks see vanishing gradients. That is gradient masking, not
/// robustness (Carlini and Wagner 2016): evaluate a distilled model with the
/// margin loss, the evaluation's sanity checks or a transfer attack.
/// The teacher itself is trained at T on the true labels: the same objective
/// with hard_weight 1 and no teacher.
///
///   auto teacher = ScriptClassifier::load("model.pt");
///   DistillationObjective d(teacher, DistillationOptions().temperature(20));
///   train(*student, fit, &val, TrainOptions().epochs(3), &d);

#include "aegis/core/classifier.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis {

struct DistillationOptions {
  double temperature_ = 20.0;  ///< T > 0 (Papernot et al. use 20-100)
  double hard_weight_ = 0.0;   ///< weight of CE on the true labels (also at T), in [0, 1]; 1 = no teacher needed

  DistillationOptions& temperature(double v) { temperature_ = v; return *this; }
  DistillationOptions& hard_weight(double v) { hard_weight_ = v; return *this; }

  void validate() const;
  nlohmann::json to_json() const;
};

class DistillationObjective : public Objective {
 public:
  /// `teacher` must take the same inputs and have as many classes as the
  /// student.
  DistillationObjective(ClassifierPtr teacher, DistillationOptions options);
  std::string name() const override { return "distillation"; }
  torch::Tensor loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                     torch::Tensor& clean_logits) override;
  nlohmann::json describe() const override;

 private:
  ClassifierPtr teacher_;
  DistillationOptions o_;
};

}  // namespace aegis
