#pragma once
/// OutputAccess: what a black-box attacker sees of each answer. The privacy
/// and extraction attacks query a Classifier only through probabilities()
/// and then apply this view, which mirrors the gateway's output hardening
/// (serve/output_hardening.h): full probabilities, the top k, probabilities
/// rounded to some decimals, or the predicted label only. Running one attack
/// under each mode shows what each hardening costs the thief.
///
///   OutputAccess access = OutputAccess().mode(AnswerMode::TopK).top_k(3);
///   torch::Tensor seen = query_answers(*model, x, access);   // [B, C], counts B queries
///
/// The view of a batch is a [B, C] tensor:
///  - full:    the probabilities;
///  - topk:    the k largest probabilities in place, 0 for the classes not returned;
///  - rounded: probabilities rounded to `decimals` places (0 for tiny ones);
///  - label:   one-hot of the predicted class.
/// Against a RemoteClassifier whose gateway already hardens its answers, use
/// full (the gateway did the rest).

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/core/classifier.h"

namespace aegis {

enum class AnswerMode { Full, TopK, Rounded, Label };
/// "full", "topk", "rounded", "label"; throws InvalidArgument otherwise.
AnswerMode parse_answer_mode(const std::string& s);
std::string answer_mode_name(AnswerMode m);

struct OutputAccess {
  AnswerMode mode_ = AnswerMode::Full;  ///< default: every class probability
  int64_t top_k_ = 3;                   ///< TopK only, >= 1 (the gateway's default)
  int decimals_ = 2;                    ///< Rounded only, in [0, 8] (the gateway's default)
  OutputAccess& mode(AnswerMode v) { mode_ = v; return *this; }
  OutputAccess& top_k(int64_t v) { top_k_ = v; return *this; }
  OutputAccess& decimals(int v) { decimals_ = v; return *this; }

  /// Throws InvalidArgument for an unusable setting.
  void validate() const;
  /// True unless the mode is label-only.
  bool has_scores() const { return mode_ != AnswerMode::Label; }
  /// The attacker's view [B, C] of softmax probabilities `probs` [B, C] (same dtype).
  torch::Tensor observe(const torch::Tensor& probs) const;
  /// The view turned into a distribution an attacker can train on: the mass a
  /// top-k answer leaves out is spread evenly over the classes not returned,
  /// rounded rows are renormalised (uniform where all round to 0).
  torch::Tensor as_distribution(const torch::Tensor& observed) const;
  nlohmann::json to_json() const;
};

/// Queries `model` on x in batches of `batch_size` (the softmax of logits(),
/// i.e. probabilities(), computed in double precision) and returns the
/// attacker's view as float64. Counts x.size(0) queries.
torch::Tensor query_answers(Classifier& model, const torch::Tensor& x, const OutputAccess& access,
                            int64_t batch_size = 512);

}  // namespace aegis
