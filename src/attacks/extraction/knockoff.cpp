#include "aegis/attacks/extraction/knockoff.h"

#include <torch/torch.h>

#include <chrono>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

void KnockoffOptions::validate() const {
  AEGIS_CHECK(budget_ >= 1, InvalidArgument, "knockoff: budget must be >= 1, got " << budget_);
  access_.validate();
  substitute_.validate();
}

ExtractionResult knockoff_extraction(Classifier& victim, const Dataset& pool, const KnockoffOptions& o) {
  o.validate();
  AEGIS_CHECK(pool.size() > 0, InvalidArgument, "knockoff: the query set is empty");
  AEGIS_CHECK(o.budget_ <= pool.size(), InvalidArgument,
              "knockoff: budget " << o.budget_ << " exceeds the query set's " << pool.size() << " samples");
  AEGIS_CHECK(pool.sample_shape() == victim.meta().input_shape, ShapeMismatch,
              "knockoff: the query set's samples do not have the victim's input shape");
  auto start = std::chrono::steady_clock::now();
  auto gen = make_generator(o.seed_, "knockoff-queries");
  Dataset queries = pool.subset(torch::randperm(pool.size(), gen, torch::kLong).narrow(0, 0, o.budget_));
  const int64_t q0 = victim.queries();
  torch::Tensor seen = query_answers(victim, queries.x, o.access_);
  ExtractionResult r;
  r.method = "knockoff";
  r.access = o.access_;
  r.budget = o.budget_;
  r.queries = victim.queries() - q0;
  torch::Tensor targets = o.access_.as_distribution(seen);
  queries.class_names = victim.meta().class_names;
  SurrogateModelOptions so = o.substitute_;
  so.train_.seed(derive_seed(o.seed_, "knockoff-train"));
  r.substitute = train_surrogate(victim.meta(), queries, so, &targets);
  r.details = {{"query_set", pool.source}, {"query_set_size", pool.size()}, {"substitute", so.to_json()}};
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
