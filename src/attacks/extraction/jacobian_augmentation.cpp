#include "aegis/attacks/extraction/jacobian_augmentation.h"

#include <torch/torch.h>

#include <chrono>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"

namespace aegis {

void JacobianAugmentationOptions::validate() const {
  AEGIS_CHECK(seed_size_ >= 1, InvalidArgument, "jacobian: seed size must be >= 1, got " << seed_size_);
  AEGIS_CHECK(budget_ >= seed_size_, InvalidArgument,
              "jacobian: budget " << budget_ << " must cover the seed set of " << seed_size_);
  AEGIS_CHECK(lambda_ > 0, InvalidArgument, "jacobian: lambda must be > 0, got " << lambda_);
  AEGIS_CHECK(tau_ >= 1, InvalidArgument, "jacobian: tau must be >= 1, got " << tau_);
  access_.validate();
  substitute_.validate();
}

ExtractionResult jacobian_extraction(Classifier& victim, const Dataset& seed_pool,
                                     const JacobianAugmentationOptions& o) {
  o.validate();
  const ModelMeta& m = victim.meta();
  AEGIS_CHECK(
      seed_pool.size() >= o.seed_size_, InvalidArgument,
      "jacobian: the seed pool has " << seed_pool.size() << " samples, fewer than the seed size " << o.seed_size_);
  AEGIS_CHECK(seed_pool.sample_shape() == m.input_shape, ShapeMismatch,
              "jacobian: the seed pool's samples do not have the victim's input shape");
  auto start = std::chrono::steady_clock::now();
  auto gen = make_generator(o.seed_, "jacobian");
  const int64_t q0 = victim.queries();
  torch::Tensor x =
      seed_pool.x.index_select(0, torch::randperm(seed_pool.size(), gen, torch::kLong).narrow(0, 0, o.seed_size_));
  torch::Tensor seen = query_answers(victim, x, o.access_);
  std::shared_ptr<ScriptClassifier> substitute;
  nlohmann::json rounds = nlohmann::json::array();
  for (int64_t round = 0;; ++round) {
    Dataset d;
    d.x = x;
    d.y = seen.argmax(1);
    torch::Tensor targets = o.access_.as_distribution(seen);
    SurrogateModelOptions so = o.substitute_;
    so.train_.seed(derive_seed(o.seed_, "jacobian-train-" + std::to_string(round)));
    substitute = train_surrogate(m, d, so, &targets);
    const int64_t used = victim.queries() - q0;
    rounds.push_back({{"round", round}, {"set_size", x.size(0)}, {"queries", used}});
    const int64_t left = o.budget_ - used;
    if (left <= 0) break;
    // Sign of the substitute's Jacobian row for the victim's label, per sample.
    torch::Tensor grad;
    {
      torch::AutoGradMode enable(true);
      torch::Tensor xg = x.detach().clone().requires_grad_(true);
      torch::Tensor logits = substitute->forward(xg);
      torch::Tensor sel = logits.gather(1, seen.argmax(1, true)).sum();
      grad = torch::autograd::grad({sel}, {xg})[0];
    }
    const double lam = ((round / o.tau_) % 2 == 0 ? 1.0 : -1.0) * o.lambda_;
    torch::Tensor fresh = (x + lam * grad.sign()).clamp(m.clip_min, m.clip_max);
    if (fresh.size(0) > left)
      fresh = fresh.index_select(0, torch::randperm(fresh.size(0), gen, torch::kLong).narrow(0, 0, left));
    torch::Tensor fresh_seen = query_answers(victim, fresh, o.access_);
    x = torch::cat({x, fresh});
    seen = torch::cat({seen, fresh_seen});
  }
  ExtractionResult r;
  r.method = "jacobian";
  r.substitute = substitute;
  r.access = o.access_;
  r.budget = o.budget_;
  r.queries = victim.queries() - q0;
  r.details = {{"seed_size", o.seed_size_},
               {"lambda", o.lambda_},
               {"tau", o.tau_},
               {"rounds", rounds},
               {"substitute", o.substitute_.to_json()}};
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
