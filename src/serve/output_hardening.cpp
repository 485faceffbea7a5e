#include "aegis/serve/output_hardening.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"

namespace aegis::serve {

OutputMode parse_output_mode(const std::string& s) {
  if (s == "full") return OutputMode::Full;
  if (s == "topk") return OutputMode::TopK;
  if (s == "rounded") return OutputMode::Rounded;
  if (s == "label") return OutputMode::Label;
  AEGIS_FAIL(InvalidArgument, "unknown output mode '" << s << "' (full, topk, rounded, label)");
}

NoiseMechanism parse_noise(const std::string& s) {
  if (s == "none") return NoiseMechanism::None;
  if (s == "laplace") return NoiseMechanism::Laplace;
  if (s == "gaussian") return NoiseMechanism::Gaussian;
  AEGIS_FAIL(InvalidArgument, "unknown noise mechanism '" << s << "' (none, laplace, gaussian)");
}

const char* output_mode_name(OutputMode m) {
  switch (m) {
    case OutputMode::Full:
      return "full";
    case OutputMode::TopK:
      return "topk";
    case OutputMode::Rounded:
      return "rounded";
    case OutputMode::Label:
      return "label";
  }
  return "?";
}

const char* noise_name(NoiseMechanism m) {
  switch (m) {
    case NoiseMechanism::None:
      return "none";
    case NoiseMechanism::Laplace:
      return "laplace";
    case NoiseMechanism::Gaussian:
      return "gaussian";
  }
  return "?";
}

void OutputOptions::validate() const {
  AEGIS_CHECK(top_k_ >= 1, InvalidArgument, "top_k must be >= 1, got " << top_k_);
  AEGIS_CHECK(decimals_ >= 0 && decimals_ <= 8, InvalidArgument, "decimals must be in [0, 8], got " << decimals_);
  if (noise_ != NoiseMechanism::None) {
    AEGIS_CHECK(epsilon_ > 0 && std::isfinite(epsilon_), InvalidArgument, "noise epsilon must be > 0");
    if (noise_ == NoiseMechanism::Gaussian) {
      AEGIS_CHECK(epsilon_ < 1, InvalidArgument,
                  "the Gaussian mechanism's bound holds for epsilon < 1, got " << epsilon_
                                                                               << "; use laplace for larger epsilon");
      AEGIS_CHECK(delta_ > 0 && delta_ < 1, InvalidArgument, "Gaussian delta must be in (0, 1)");
    }
  }
}

double OutputOptions::noise_scale() const {
  switch (noise_) {
    case NoiseMechanism::None:
      return 0;
    case NoiseMechanism::Laplace:
      return 2.0 / epsilon_;
    case NoiseMechanism::Gaussian:
      return std::sqrt(2.0) * std::sqrt(2 * std::log(1.25 / delta_)) / epsilon_;
  }
  return 0;
}

nlohmann::json OutputOptions::to_json() const {
  nlohmann::json j = {{"mode", output_mode_name(mode_)}, {"noise", noise_name(noise_)}};
  if (mode_ == OutputMode::TopK) j["top_k"] = top_k_;
  if (mode_ == OutputMode::Rounded) j["decimals"] = decimals_;
  if (noise_ != NoiseMechanism::None) {
    j["epsilon"] = epsilon_;
    j["scale"] = noise_scale();
    if (noise_ == NoiseMechanism::Gaussian) j["delta"] = delta_;
  }
  return j;
}

HardenedOutput harden_output(const torch::Tensor& probs, const OutputOptions& o, std::mt19937_64& rng) {
  torch::NoGradGuard ng;
  torch::Tensor p = probs.to(torch::kFloat).contiguous().clone();
  if (o.noise_ != NoiseMechanism::None) {
    const double scale = o.noise_scale();
    auto* d = p.data_ptr<float>();
    std::uniform_real_distribution<double> uni(-0.5, 0.5);
    std::normal_distribution<double> gauss(0.0, 1.0);
    for (int64_t i = 0; i < p.numel(); ++i) {
      double n;
      if (o.noise_ == NoiseMechanism::Laplace) {
        double u = uni(rng);
        n = -scale * (u < 0 ? -1 : 1) * std::log(1 - 2 * std::abs(u) + 1e-300);
      } else {
        n = scale * gauss(rng);
      }
      d[i] = static_cast<float>(d[i] + n);
    }
    p = p.clamp(0, 1);
    torch::Tensor sum = p.sum(1, true);
    // A row clipped to all zeros becomes uniform: post-processing, still
    // private.
    p = torch::where(sum > 0, p / sum.clamp_min(1e-12), torch::full_like(p, 1.0 / p.size(1)));
  }
  HardenedOutput out;
  out.mode = o.mode_;
  out.labels = p.argmax(1);
  switch (o.mode_) {
    case OutputMode::Full:
      out.scores = p;
      break;
    case OutputMode::Rounded: {
      const double f = std::pow(10.0, o.decimals_);
      out.scores = (p * f).round() / f;
      break;
    }
    case OutputMode::TopK: {
      auto [v, i] = p.topk(std::min<int64_t>(o.top_k_, p.size(1)), 1);
      out.scores = v, out.classes = i;
      break;
    }
    case OutputMode::Label:
      break;
  }
  return out;
}

namespace {

nlohmann::json tensor_output(const std::string& name, const torch::Tensor& t) {
  torch::Tensor c = t.contiguous().cpu();
  nlohmann::json data = nlohmann::json::array();
  const bool is_int = c.scalar_type() == torch::kLong;
  if (is_int) {
    const int64_t* d = c.data_ptr<int64_t>();
    for (int64_t i = 0; i < c.numel(); ++i) data.push_back(d[i]);
  } else {
    c = c.to(torch::kFloat);
    const float* d = c.data_ptr<float>();
    for (int64_t i = 0; i < c.numel(); ++i) data.push_back(d[i]);
  }
  return {{"name", name}, {"datatype", is_int ? "INT64" : "FP32"}, {"shape", c.sizes().vec()}, {"data", data}};
}

}  // namespace

nlohmann::json HardenedOutput::to_json_outputs() const {
  nlohmann::json outs = nlohmann::json::array();
  outs.push_back(tensor_output("label", labels));
  if (scores.defined()) outs.push_back(tensor_output(mode == OutputMode::TopK ? "topk_scores" : "scores", scores));
  if (classes.defined()) outs.push_back(tensor_output("topk_classes", classes));
  return outs;
}

}  // namespace aegis::serve
