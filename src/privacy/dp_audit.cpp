#include "aegis/privacy/dp_audit.h"

#include <fmt/format.h>
#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

namespace F = torch::nn::functional;

void DpAuditOptions::validate() const {
  AEGIS_CHECK(canaries_ >= 2, InvalidArgument, "the audit needs at least 2 canaries, got " << canaries_);
  AEGIS_CHECK(confidence_ > 0 && confidence_ < 1, InvalidArgument,
              "the confidence must be in (0, 1), got " << confidence_);
  AEGIS_CHECK(!guess_fractions_.empty(), InvalidArgument, "give at least one guess fraction");
  for (double f : guess_fractions_)
    AEGIS_CHECK(f > 0 && f <= 0.5, InvalidArgument,
                "a guess fraction is the share of canaries guessed on each side, in (0, 0.5]; got " << f);
  AEGIS_CHECK(batch_size_ >= 1, InvalidArgument, "the batch size must be >= 1, got " << batch_size_);
}

nlohmann::json DpAuditOptions::to_json() const {
  return {{"canaries", canaries_},
          {"confidence", confidence_},
          {"guess_fractions", guess_fractions_},
          {"seed", seed_},
          {"batch_size", batch_size_}};
}

double dp_audit_p_value(int64_t m, int64_t r, int64_t v, double eps, double delta) {
  AEGIS_CHECK(0 <= v && v <= r && r <= m, InvalidArgument,
              "need 0 <= correct <= guesses <= canaries, got " << v << ", " << r << ", " << m);
  AEGIS_CHECK(eps >= 0 && std::isfinite(eps), InvalidArgument, "eps must be finite and >= 0, got " << eps);
  AEGIS_CHECK(delta >= 0 && delta <= 1, InvalidArgument, "delta must be in [0, 1], got " << delta);
  // q = e^eps / (1 + e^eps): the accuracy of eps-DP randomised response, the
  // best an eps-DP mechanism lets a guesser reach on each canary.
  const double log_q = -std::log1p(std::exp(-eps));
  const double log_1mq = -eps - std::log1p(std::exp(-eps));
  const double log_rfact = std::lgamma(double(r) + 1);
  auto pmf = [&](int64_t j) {
    return std::exp(log_rfact - std::lgamma(double(j) + 1) - std::lgamma(double(r - j) + 1) + double(j) * log_q +
                    double(r - j) * log_1mq);
  };
  // beta = P[Binomial(r, q) >= v], summed from the small tail upwards.
  double beta = 0;
  for (int64_t j = r; j >= v; --j) beta += pmf(j);
  // The delta term: alpha = max_i P[v - i <= Binomial(r, q) < v] / i.
  double alpha = 0, sum = 0;
  for (int64_t i = 1; i <= v; ++i) {
    sum += pmf(v - i);
    alpha = std::max(alpha, sum / double(i));
  }
  return std::min(1.0, beta + alpha * delta * 2.0 * double(m));
}

double dp_audit_epsilon_lower_bound(int64_t m, int64_t r, int64_t v, double delta, double confidence) {
  AEGIS_CHECK(confidence > 0 && confidence < 1, InvalidArgument,
              "the confidence must be in (0, 1), got " << confidence);
  const double level = 1 - confidence;
  if (dp_audit_p_value(m, r, v, 0, delta) >= level) return 0;  // not even eps = 0 is rejected
  double lo = 0, hi = 1;
  while (dp_audit_p_value(m, r, v, hi, delta) < level) {
    lo = hi;
    hi *= 2;
    if (hi > 1e4) return lo;  // cannot happen for r >= 1: q -> 1 makes the p-value 1
  }
  while (hi - lo > 1e-9) {
    const double mid = 0.5 * (lo + hi);
    (dp_audit_p_value(m, r, v, mid, delta) < level ? lo : hi) = mid;
  }
  return lo;
}

nlohmann::json DpAuditBound::to_json() const {
  return {{"epsilon_lower_bound", epsilon_lower_bound},
          {"canaries", canaries},
          {"included", included},
          {"guesses", guesses},
          {"correct", correct},
          {"confidence", confidence},
          {"delta", delta},
          {"tries", tries}};
}

DpAuditBound dp_audit_bound(const torch::Tensor& scores, const torch::Tensor& included, double delta,
                            const DpAuditOptions& options) {
  options.validate();
  AEGIS_CHECK(scores.dim() == 1 && included.dim() == 1 && scores.size(0) == included.size(0), InvalidArgument,
              "scores and inclusion must be 1-D of the same length");
  const int64_t m = scores.size(0);
  AEGIS_CHECK(m >= 2, InvalidArgument, "the audit needs at least 2 canaries, got " << m);
  torch::Tensor s = scores.to(torch::kDouble).contiguous();
  AEGIS_CHECK(torch::isfinite(s).all().item<bool>(), InvalidArgument, "canary scores contain NaN or Inf");
  torch::Tensor in = included.to(torch::kBool).contiguous();
  const double* sp = s.data_ptr<double>();
  const bool* ip = in.data_ptr<bool>();

  // Highest score first; ties keep the canaries' (random) order.
  std::vector<int64_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return sp[a] > sp[b]; });

  DpAuditBound best;
  best.canaries = m;
  best.included = in.sum().item<int64_t>();
  best.confidence = options.confidence_;
  best.delta = delta;
  std::vector<int64_t> ks;
  for (double f : options.guess_fractions_) {
    int64_t k = std::clamp<int64_t>(int64_t(std::llround(f * double(m))), 1, m / 2);
    if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
  }
  best.tries = int(ks.size());
  // Bonferroni: each try at confidence 1 - (1 - c) / tries, so the best of
  // them still holds at c.
  const double per_try = 1 - (1 - options.confidence_) / double(ks.size());
  bool first = true;
  for (int64_t k : ks) {
    int64_t v = 0;
    for (int64_t i = 0; i < k; ++i) v += ip[order[i]] ? 1 : 0;      // guessed included
    for (int64_t i = m - k; i < m; ++i) v += ip[order[i]] ? 0 : 1;  // guessed excluded
    const double eps = dp_audit_epsilon_lower_bound(m, 2 * k, v, delta, per_try);
    if (first || eps > best.epsilon_lower_bound) {
      best.epsilon_lower_bound = eps;
      best.guesses = 2 * k;
      best.correct = v;
      first = false;
    }
  }
  return best;
}

Canaries make_canaries(const Dataset& pool, int64_t m, int64_t num_classes, uint64_t seed) {
  AEGIS_CHECK(num_classes >= 2, InvalidArgument, "canaries need at least 2 classes to relabel between");
  AEGIS_CHECK(m >= 2 && m <= pool.size(), InvalidArgument,
              "the audit needs between 2 and " << pool.size() << " canaries (the pool's size), got " << m);
  Canaries c;
  const Dataset shuffled = pool.shuffled(derive_seed(seed, "dp-audit canaries"));
  c.data = shuffled.head(m);
  c.rest = shuffled.subset(torch::arange(m, shuffled.size()));
  auto gen = make_generator(seed, "dp-audit labels");
  torch::Tensor shift = torch::randint(1, num_classes, {m}, gen, torch::kLong);
  c.data.y = (c.data.y + shift).remainder(num_classes);
  c.data.source = pool.source + " (relabelled canaries)";
  auto inc = make_generator(seed, "dp-audit inclusion");
  c.included = torch::rand({m}, inc, torch::kDouble) < 0.5;
  return c;
}

torch::Tensor canary_scores(Classifier& model, const Dataset& canaries, int64_t batch_size) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < canaries.size(); i += batch_size) {
    const int64_t n = std::min(batch_size, canaries.size() - i);
    torch::Tensor logits = model.logits(canaries.x.narrow(0, i, n)).to(torch::kDouble);
    torch::Tensor loss =
        F::cross_entropy(logits, canaries.y.narrow(0, i, n), F::CrossEntropyFuncOptions().reduction(torch::kNone));
    out.push_back(-loss);
  }
  return torch::cat(out);
}

nlohmann::json DpAuditResult::to_json() const {
  return {{"bound", bound.to_json()},
          {"claimed_epsilon", std::isfinite(claimed_epsilon) ? nlohmann::json(claimed_epsilon) : nlohmann::json("inf")},
          {"violated", violated},
          {"membership", membership.to_json()},
          {"test_accuracy", test_accuracy},
          {"seconds", seconds}};
}

DpAuditResult one_run_audit(ScriptClassifier& model, const Dataset& train, const Dataset& pool,
                            const AuditTrainer& trainer, double delta, const DpAuditOptions& options) {
  options.validate();
  const auto start = std::chrono::steady_clock::now();
  const int64_t classes = model.meta().num_classes;
  Canaries c = make_canaries(pool, options.canaries_, classes, options.seed_);

  Dataset fit = train;
  torch::Tensor in_idx = c.included.nonzero().flatten();
  fit.x = torch::cat({train.x, c.data.x.index_select(0, in_idx)});
  fit.y = torch::cat({train.y, c.data.y.index_select(0, in_idx)});
  fit.source = train.source + " + canaries";
  // Mixed in at random positions: the order must not tell the trainer which
  // samples are canaries (it does not matter to DP-SGD's Poisson sampling, but
  // it does to a shuffled non-private trainer's first epoch).
  fit = fit.shuffled(derive_seed(options.seed_, "dp-audit mix"));

  DpAuditResult r;
  r.claimed_epsilon = trainer(model, fit);
  model.set_training(false);
  torch::NoGradGuard ng;
  torch::Tensor scores = canary_scores(model, c.data, options.batch_size_);
  r.bound = dp_audit_bound(scores, c.included, delta, options);
  r.violated = r.bound.epsilon_lower_bound > r.claimed_epsilon;
  torch::Tensor out_idx = c.included.logical_not().nonzero().flatten();
  if (in_idx.numel() > 0 && out_idx.numel() > 0)
    r.membership = membership_metrics(scores.index_select(0, in_idx), scores.index_select(0, out_idx));
  // Accuracy on the pool's samples that were not made canaries (true labels).
  if (c.rest.size() > 0) {
    const Dataset& rest = c.rest;
    int64_t correct = 0;
    for (int64_t i = 0; i < rest.size(); i += options.batch_size_) {
      const int64_t n = std::min(options.batch_size_, rest.size() - i);
      correct += model.predict(rest.x.narrow(0, i, n)).eq(rest.y.narrow(0, i, n)).sum().item<int64_t>();
    }
    r.test_accuracy = double(correct) / double(rest.size());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
