#include "aegis/attacks/inference/attribute_inference.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "aegis/attacks/inference/membership.h"
#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"

namespace aegis {

namespace {

/// Index of the candidate nearest each value.
torch::Tensor nearest_candidate(const torch::Tensor& values, const torch::Tensor& cands) {
  return (values.to(torch::kDouble).unsqueeze(1) - cands.unsqueeze(0)).abs().argmin(1);
}

}  // namespace

AttributeInferenceResult attribute_inference(Classifier& model, const Dataset& targets, const Dataset& prior_data,
                                             const AttributeInferenceOptions& o) {
  const ModelMeta& m = model.meta();
  AEGIS_CHECK(m.input_shape.size() == 1, InvalidArgument,
              "attribute inference works on tabular models (1-D inputs); this "
              "model takes "
                  << m.input_shape.size() << "-D inputs");
  AEGIS_CHECK(o.feature_ >= 0 && o.feature_ < m.input_shape[0], InvalidArgument,
              "attribute inference: feature " << o.feature_ << " outside [0, " << m.input_shape[0] << ")");
  AEGIS_CHECK(targets.size() > 0, InvalidArgument, "attribute inference needs target records");
  AEGIS_CHECK(prior_data.size() > 0, InvalidArgument, "attribute inference needs prior data for the marginal");
  AEGIS_CHECK(o.batch_size_ >= 1, InvalidArgument, "batch size must be >= 1");
  o.access_.validate();
  check_compatible(m, targets);
  check_compatible(m, prior_data);
  auto start = std::chrono::steady_clock::now();

  AttributeInferenceResult r;
  r.feature = o.feature_;
  r.access = o.access_;
  r.targets = targets.size();
  torch::Tensor prior_col = prior_data.x.select(1, o.feature_).to(torch::kDouble).contiguous();
  if (o.candidates_.empty()) {
    std::set<double> distinct(prior_col.data_ptr<double>(), prior_col.data_ptr<double>() + prior_col.numel());
    AEGIS_CHECK(distinct.size() <= 64, InvalidArgument,
                "attribute inference: feature " << o.feature_ << " takes " << distinct.size()
                                                << " values in the prior data (continuous?); give candidates");
    r.candidates.assign(distinct.begin(), distinct.end());
  } else {
    r.candidates = o.candidates_;
  }
  AEGIS_CHECK(r.candidates.size() >= 2, InvalidArgument, "attribute inference needs at least 2 candidate values");
  torch::Tensor cands = torch::tensor(r.candidates, torch::kDouble);
  const int64_t v = cands.size(0);
  torch::Tensor counts = torch::bincount(nearest_candidate(prior_col, cands), {}, v).to(torch::kDouble);
  torch::Tensor prior = (counts + 1e-9) / (counts.sum() + 1e-9 * double(v));
  r.prior.assign(prior.data_ptr<double>(), prior.data_ptr<double>() + v);
  const int64_t mode = prior.argmax().item<int64_t>();

  r.truth = nearest_candidate(targets.x.select(1, o.feature_), cands);
  const int64_t q0 = model.queries();
  // score[i, j] = P(known label | features with value j) * prior(j), from the
  // observed view.
  torch::Tensor score = torch::zeros({targets.size(), v}, torch::kDouble);
  for (int64_t j = 0; j < v; ++j) {
    torch::Tensor x = targets.x.clone();
    x.select(1, o.feature_).fill_(r.candidates[size_t(j)]);
    torch::Tensor seen = query_answers(model, x, o.access_, o.batch_size_);
    score.select(1, j).copy_(true_class_score(seen, targets.y).to(torch::kDouble) * prior[j]);
  }
  // Ties (e.g. label-only answers) go to the likelier value: add a
  // prior-ordered epsilon.
  score = score + prior.unsqueeze(0) * 1e-12;
  r.guesses = score.argmax(1);
  r.queries = model.queries() - q0;
  r.accuracy = (r.guesses == r.truth).to(torch::kDouble).mean().item<double>();
  r.baseline_accuracy = (r.truth == mode).to(torch::kDouble).mean().item<double>();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

nlohmann::json AttributeInferenceResult::to_json() const {
  return {{"attack", "attribute-inference"},
          {"kind", "model-inversion"},
          {"atlas", "AML.T0024.001"},
          {"owasp", "ML03"},
          {"feature", feature},
          {"candidates", candidates},
          {"prior", prior},
          {"targets", targets},
          {"accuracy", accuracy},
          {"baseline_accuracy", baseline_accuracy},
          {"advantage", advantage()},
          {"access", access.to_json()},
          {"queries", queries},
          {"seconds", seconds}};
}

}  // namespace aegis
