#include "aegis/attacks/inference/membership_shadow.h"

#include <chrono>

#include <fmt/format.h>
#include <torch/torch.h>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"

namespace aegis {

void ShadowMembershipOptions::validate() const {
  AEGIS_CHECK(shadow_models_ >= 1, InvalidArgument, "shadow membership: shadow models must be >= 1, got "
                                                        << shadow_models_);
  AEGIS_CHECK(attack_epochs_ >= 1, InvalidArgument, "shadow membership: attack epochs must be >= 1");
  shadow_.validate();
  access_.validate();
}

torch::Tensor shadow_attack_features(const torch::Tensor& view, const torch::Tensor& y) {
  torch::Tensor observed = view.to(torch::kFloat);
  torch::Tensor sorted = std::get<0>(observed.sort(1, /*descending=*/true));
  torch::Tensor py = true_class_score(observed, y);
  torch::Tensor logp = (true_class_score(view, y).to(torch::kDouble).clamp_min(1e-12).log() / 27.7 + 1).to(torch::kFloat);  // in [0, 1]
  torch::Tensor top = (observed.argmax(1) == y).to(torch::kFloat);
  return torch::cat({sorted, py.unsqueeze(1), logp.unsqueeze(1), top.unsqueeze(1)}, 1).contiguous();
}

MembershipResult shadow_membership(Classifier& victim, const Dataset& attacker_data, const Dataset& members,
                                   const Dataset& nonmembers, const ShadowMembershipOptions& o) {
  o.validate();
  check_membership_inputs(victim.meta(), members, nonmembers);
  AEGIS_CHECK(attacker_data.size() >= 20, InvalidArgument,
              "shadow membership needs at least 20 attacker records, got " << attacker_data.size());
  check_compatible(victim.meta(), attacker_data);
  auto start = std::chrono::steady_clock::now();

  std::vector<torch::Tensor> feats, labels;
  std::vector<double> shadow_train_acc, shadow_test_acc;
  Progress bar("shadow models", o.shadow_models_);
  for (int64_t s = 0; s < o.shadow_models_; ++s) {
    auto [out, in] = attacker_data.split(0.5, derive_seed(o.seed_, "shadow-split-" + std::to_string(s)));
    SurrogateModelOptions so = o.shadow_;
    so.train_.seed(derive_seed(o.seed_, "shadow-train-" + std::to_string(s)));
    auto shadow = train_surrogate(victim.meta(), in, so);
    torch::Tensor vin = query_answers(*shadow, in.x, o.access_), vout = query_answers(*shadow, out.x, o.access_);
    shadow_train_acc.push_back((vin.argmax(1) == in.y).to(torch::kFloat).mean().item<double>());
    shadow_test_acc.push_back((vout.argmax(1) == out.y).to(torch::kFloat).mean().item<double>());
    feats.push_back(shadow_attack_features(vin, in.y));
    labels.push_back(torch::ones({in.size()}, torch::kLong));
    feats.push_back(shadow_attack_features(vout, out.y));
    labels.push_back(torch::zeros({out.size()}, torch::kLong));
    bar.advance(1);
  }
  bar.finish();

  Dataset attack_data;
  attack_data.x = torch::cat(feats);
  attack_data.y = torch::cat(labels);
  ModelMeta am;
  am.architecture = "mlp";
  am.input_shape = {attack_data.x.size(1)};
  am.num_classes = 2;
  SurrogateModelOptions ao = SurrogateModelOptions().arch("mlp").hidden({64, 64}).normalize(false).train(
      TrainOptions().epochs(o.attack_epochs_).lr(1e-3).batch_size(128).seed(derive_seed(o.seed_, "attack-model")));
  auto attack_model = train_surrogate(am, attack_data, ao);

  int64_t q0 = victim.queries();
  MembershipResult r;
  r.attack = "shadow";
  r.access = o.access_;
  auto score = [&](const Dataset& d) {
    torch::Tensor f = shadow_attack_features(query_answers(victim, d.x, o.access_), d.y);
    torch::Tensor z = attack_model->logits(f);
    return (z.select(1, 1) - z.select(1, 0)).contiguous();  // log-odds of "member"
  };
  r.member_scores = score(members);
  r.nonmember_scores = score(nonmembers);
  r.threshold = 0.0;
  r.metrics = membership_metrics(r.member_scores, r.nonmember_scores, r.threshold);
  r.queries = victim.queries() - q0;
  r.details = {{"shadow_models", o.shadow_models_},
               {"shadow", o.shadow_.to_json()},
               {"shadow_train_accuracy", shadow_train_acc},
               {"shadow_test_accuracy", shadow_test_acc},
               {"attack_model_training_records", attack_data.size()}};
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
