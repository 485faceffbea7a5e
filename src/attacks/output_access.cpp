#include "aegis/attacks/output_access.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

AnswerMode parse_answer_mode(const std::string& s) {
  if (s == "full") return AnswerMode::Full;
  if (s == "topk") return AnswerMode::TopK;
  if (s == "rounded") return AnswerMode::Rounded;
  if (s == "label") return AnswerMode::Label;
  AEGIS_FAIL(InvalidArgument, "unknown answer mode '" << s << "' (full, topk, rounded, label)");
}

std::string answer_mode_name(AnswerMode m) {
  switch (m) {
    case AnswerMode::Full: return "full";
    case AnswerMode::TopK: return "topk";
    case AnswerMode::Rounded: return "rounded";
    case AnswerMode::Label: return "label";
  }
  return "?";
}

void OutputAccess::validate() const {
  AEGIS_CHECK(top_k_ >= 1, InvalidArgument, "top_k must be >= 1, got " << top_k_);
  AEGIS_CHECK(decimals_ >= 0 && decimals_ <= 8, InvalidArgument, "decimals must be in [0, 8], got " << decimals_);
}

torch::Tensor OutputAccess::observe(const torch::Tensor& probs) const {
  validate();
  AEGIS_CHECK(probs.dim() == 2, ShapeMismatch, "answers must be [batch, classes], got " << probs.dim() << " dims");
  torch::NoGradGuard ng;
  torch::Tensor p = probs.is_floating_point() ? probs : probs.to(torch::kFloat);
  switch (mode_) {
    case AnswerMode::Full: return p;
    case AnswerMode::Rounded: {
      const double f = std::pow(10.0, decimals_);
      return (p * f).round() / f;
    }
    case AnswerMode::TopK: {
      auto [v, i] = p.topk(std::min<int64_t>(top_k_, p.size(1)), 1);
      return torch::zeros_like(p).scatter(1, i, v);
    }
    case AnswerMode::Label:
      return torch::zeros_like(p).scatter(1, p.argmax(1, true), 1.0);
  }
  return p;
}

torch::Tensor OutputAccess::as_distribution(const torch::Tensor& observed) const {
  torch::NoGradGuard ng;
  torch::Tensor p = observed.to(torch::kFloat).clamp_min(0);
  const int64_t c = p.size(1);
  if (mode_ == AnswerMode::TopK && top_k_ < c) {
    torch::Tensor missing = (p == 0).to(torch::kFloat);
    torch::Tensor rest = (1 - p.sum(1, true)).clamp_min(0);
    p = p + missing * rest / missing.sum(1, true).clamp_min(1);
  }
  torch::Tensor sum = p.sum(1, true);
  return torch::where(sum > 0, p / sum.clamp_min(1e-12), torch::full_like(p, 1.0 / double(c)));
}

nlohmann::json OutputAccess::to_json() const {
  nlohmann::json j = {{"mode", answer_mode_name(mode_)}};
  if (mode_ == AnswerMode::TopK) j["top_k"] = top_k_;
  if (mode_ == AnswerMode::Rounded) j["decimals"] = decimals_;
  return j;
}

torch::Tensor query_answers(Classifier& model, const torch::Tensor& x, const OutputAccess& access,
                            int64_t batch_size) {
  access.validate();
  AEGIS_CHECK(batch_size >= 1, InvalidArgument, "batch size must be >= 1");
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch_size) {
    torch::Tensor xb = x.narrow(0, i, std::min(batch_size, x.size(0) - i));
    // probabilities() in double precision: a float32 softmax rounds confident answers to
    // exactly 1 and 0, which would hide the differences membership inference measures.
    parts.push_back(access.observe(torch::softmax(model.logits(xb).to(torch::kDouble), 1)));
  }
  if (parts.empty()) return torch::zeros({0, model.meta().num_classes}, torch::kDouble);
  return torch::cat(parts);
}

}  // namespace aegis
