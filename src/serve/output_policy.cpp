#include "aegis/serve/output_policy.h"

#include <torch/torch.h>

#include <algorithm>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis::serve {

PolicyAction parse_policy_action(const std::string& s) {
  if (s == "abstain") return PolicyAction::Abstain;
  if (s == "flag") return PolicyAction::Flag;
  if (s == "reject") return PolicyAction::Reject;
  AEGIS_FAIL(InvalidArgument, "unknown policy action '" << s << "' (abstain, flag, reject)");
  return PolicyAction::Flag;  // not reached
}

const char* policy_action_name(PolicyAction a) {
  switch (a) {
    case PolicyAction::Abstain:
      return "abstain";
    case PolicyAction::Flag:
      return "flag";
    case PolicyAction::Reject:
      return "reject";
  }
  return "?";
}

void OutputPolicyOptions::validate(const std::string& w) const {
  AEGIS_CHECK(min_confidence >= 0 && min_confidence <= 1, InvalidArgument,
              w << "min_confidence must be in [0, 1], got " << min_confidence);
  AEGIS_CHECK(vote_samples >= 0 && vote_samples <= 1000, InvalidArgument,
              w << "vote.samples must be in [0, 1000], got " << vote_samples);
  AEGIS_CHECK(vote_sigma > 0 && vote_sigma <= 1, InvalidArgument,
              w << "vote.sigma must be in (0, 1], got " << vote_sigma);
  AEGIS_CHECK(vote_agreement > 0 && vote_agreement <= 1, InvalidArgument,
              w << "vote.agreement must be in (0, 1], got " << vote_agreement);
  for (const auto& t : invariance)
    AEGIS_CHECK(t == "shift" || t == "brightness", InvalidArgument,
                w << "invariance.transforms: unknown transform '" << t << "' (shift, brightness)");
  AEGIS_CHECK(shift >= 1, InvalidArgument, w << "invariance.shift must be >= 1 pixel, got " << shift);
  AEGIS_CHECK(brightness > 0 && brightness < 1, InvalidArgument,
              w << "invariance.brightness must be in (0, 1), got " << brightness);
  for (const auto& r : class_rates) {
    AEGIS_CHECK(r.max_rate >= 0 && r.max_rate < 1, InvalidArgument,
                w << "class_rate.max_rate must be in [0, 1), got " << r.max_rate);
    AEGIS_CHECK(r.window >= 1 && r.window <= 100000, InvalidArgument,
                w << "class_rate.window must be in [1, 100000], got " << r.window);
  }
}

int64_t OutputPolicyOptions::extra_queries_per_sample() const {
  int64_t n = vote_samples;
  for (const auto& t : invariance) n += t == "shift" ? 4 : 2;
  return n;
}

nlohmann::json OutputPolicyOptions::to_json() const {
  nlohmann::json rates = nlohmann::json::array();
  for (const auto& r : class_rates)
    rates.push_back(
        {{"class", r.cls}, {"max_rate", r.max_rate}, {"window", r.window}, {"action", policy_action_name(r.action)}});
  return {{"min_confidence", min_confidence},
          {"confidence_action", policy_action_name(confidence_action)},
          {"vote",
           {{"samples", vote_samples},
            {"sigma", vote_sigma},
            {"agreement", vote_agreement},
            {"action", policy_action_name(vote_action)}}},
          {"invariance",
           {{"transforms", invariance},
            {"shift", shift},
            {"brightness", brightness},
            {"action", policy_action_name(invariance_action)}}},
          {"class_rate", rates}};
}

namespace {
std::string joined(const std::vector<std::string>& v) {
  std::string r;
  for (const auto& s : v) r += (r.empty() ? "" : "+") + s;
  return r;
}
}  // namespace

std::string PolicyVerdict::reason() const { return joined(reasons); }
std::string PolicyVerdict::flag_reason() const { return joined(flagged_by); }

OutputPolicy::OutputPolicy(OutputPolicyOptions options, ModelMeta meta, uint64_t seed)
    : o_(std::move(options)), meta_(std::move(meta)), rng_(seed) {
  o_.validate("policy.");
  const bool shift = std::find(o_.invariance.begin(), o_.invariance.end(), "shift") != o_.invariance.end();
  if (shift) {
    AEGIS_CHECK(meta_.input_shape.size() == 3, InvalidArgument,
                "policy.invariance: 'shift' needs image inputs [C, H, W]; this model's input has "
                    << meta_.input_shape.size() << " dimension(s)");
    AEGIS_CHECK(o_.shift < meta_.input_shape[1] && o_.shift < meta_.input_shape[2], InvalidArgument,
                "policy.invariance.shift " << o_.shift << " is not smaller than the image");
  }
  for (const auto& r : o_.class_rates)
    AEGIS_CHECK(r.cls >= 0 && r.cls < meta_.num_classes, InvalidArgument,
                "policy.class_rate: class " << r.cls << " is not one of the model's " << meta_.num_classes);
}

std::vector<std::string> OutputPolicy::transform_names() const {
  std::vector<std::string> names;
  for (const auto& t : o_.invariance) {
    if (t == "shift")
      for (const char* d : {"shift-right", "shift-left", "shift-down", "shift-up"}) names.push_back(d);
    else
      for (const char* d : {"brighter", "darker"}) names.push_back(d);
  }
  return names;
}

torch::Tensor OutputPolicy::transformed(const torch::Tensor& x) const {
  const double lo = meta_.clip_min, hi = meta_.clip_max;
  std::vector<torch::Tensor> out;
  // A shift moves the image by s pixels and fills the edge it uncovers with
  // the range's low end (the background of most image data).
  auto shift = [&](int64_t dim, bool forward) {
    const int64_t s = o_.shift, len = x.size(dim) - s;
    torch::Tensor y = torch::full_like(x, lo);
    y.narrow(dim, forward ? s : 0, len).copy_(x.narrow(dim, forward ? 0 : s, len));
    return y;
  };
  for (const auto& t : o_.invariance) {
    if (t == "shift") {
      out.push_back(shift(3, true));
      out.push_back(shift(3, false));
      out.push_back(shift(2, true));
      out.push_back(shift(2, false));
    } else {
      const double d = o_.brightness * (hi - lo);
      out.push_back((x + d).clamp(lo, hi));
      out.push_back((x - d).clamp(lo, hi));
    }
  }
  return torch::cat(out, 0);
}

PolicyVerdict OutputPolicy::check(const torch::Tensor& x, const torch::Tensor& probs, const std::string& key,
                                  const ProbsFn& probs_of) {
  const int64_t b = x.size(0);
  torch::Tensor labels = probs.argmax(1);
  PolicyVerdict v;
  v.abstain = torch::zeros({b}, torch::kBool);
  auto indices = [](const torch::Tensor& mask) {
    torch::Tensor i = mask.nonzero().flatten();
    return std::vector<int64_t>(i.data_ptr<int64_t>(), i.data_ptr<int64_t>() + i.numel());
  };
  auto act = [&](const torch::Tensor& mask, PolicyAction a, const std::string& name) {
    if (!mask.any().item<bool>()) return;
    if (std::find(v.reasons.begin(), v.reasons.end(), name) == v.reasons.end()) v.reasons.push_back(name);
    if (a == PolicyAction::Abstain) v.abstain |= mask;
    if (a == PolicyAction::Flag && std::find(v.flagged_by.begin(), v.flagged_by.end(), name) == v.flagged_by.end()) {
      v.flag = true;
      v.flagged_by.push_back(name);
    }
    if (a == PolicyAction::Reject) v.reject = true;
  };

  if (o_.min_confidence > 0) {
    torch::Tensor conf = std::get<0>(probs.max(1)).to(torch::kFloat);
    torch::Tensor low = conf < o_.min_confidence;
    v.details["confidence"] = {{"confidence", std::vector<float>(conf.data_ptr<float>(), conf.data_ptr<float>() + b)},
                               {"tripped", indices(low)}};
    act(low, o_.confidence_action, "policy-confidence");
  }

  // The vote's noisy copies and the transformed inputs go to the model in one batch.
  std::vector<torch::Tensor> extra;
  const std::vector<int64_t> sample_shape(x.sizes().begin() + 1, x.sizes().end());
  if (o_.vote_samples > 0) {
    uint64_t seed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seed = rng_();
    }
    at::Generator gen = make_generator(seed, "output-policy-vote");
    std::vector<int64_t> shape = {o_.vote_samples};
    shape.insert(shape.end(), x.sizes().begin(), x.sizes().end());
    const double sd = o_.vote_sigma * (meta_.clip_max - meta_.clip_min);
    torch::Tensor noisy = x.unsqueeze(0) + torch::randn(shape, gen, torch::kFloat) * float(sd);
    extra.push_back(noisy.clamp(meta_.clip_min, meta_.clip_max).flatten(0, 1));
  }
  if (!o_.invariance.empty()) extra.push_back(transformed(x));
  if (!extra.empty()) {
    torch::Tensor answers = probs_of(torch::cat(extra, 0)).argmax(1);
    int64_t at = 0;
    if (o_.vote_samples > 0) {
      torch::Tensor votes = answers.narrow(0, 0, o_.vote_samples * b).view({o_.vote_samples, b});
      at = o_.vote_samples * b;
      torch::Tensor agree = (votes == labels.unsqueeze(0)).to(torch::kFloat).mean(0).contiguous();
      torch::Tensor split = agree < o_.vote_agreement;
      v.details["vote"] = {{"agreement", std::vector<float>(agree.data_ptr<float>(), agree.data_ptr<float>() + b)},
                           {"tripped", indices(split)}};
      act(split, o_.vote_action, "policy-vote");
    }
    if (!o_.invariance.empty()) {
      const auto names = transform_names();
      torch::Tensor t = answers.narrow(0, at, int64_t(names.size()) * b).view({int64_t(names.size()), b});
      torch::Tensor flips = t != labels.unsqueeze(0);
      nlohmann::json flipped = nlohmann::json::object();
      for (size_t i = 0; i < names.size(); ++i) {
        auto idx = indices(flips[int64_t(i)]);
        if (!idx.empty()) flipped[names[i]] = idx;
      }
      torch::Tensor any = flips.any(0);
      v.details["invariance"] = {{"flipped", flipped}, {"tripped", indices(any)}};
      act(any, o_.invariance_action, "policy-invariance");
    }
  }

  if (!o_.class_rates.empty()) {
    int64_t keep = 0;
    for (const auto& r : o_.class_rates) keep = std::max(keep, r.window);
    std::vector<int64_t> recent;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& q = recent_[key];
      for (int64_t i = 0; i < b; ++i) q.push_back(labels[i].item<int64_t>());
      while (int64_t(q.size()) > keep) q.pop_front();
      recent.assign(q.begin(), q.end());
    }
    nlohmann::json rates = nlohmann::json::array();
    for (const auto& r : o_.class_rates) {
      if (int64_t(recent.size()) < r.window) continue;  // not a full window yet
      const int64_t hits = std::count(recent.end() - r.window, recent.end(), r.cls);
      const double rate = double(hits) / double(r.window);
      rates.push_back({{"class", r.cls}, {"rate", rate}, {"max_rate", r.max_rate}});
      if (rate > r.max_rate) act(labels == r.cls, r.action, "policy-class-rate");
    }
    if (!rates.empty()) v.details["class_rate"] = rates;
  }
  return v;
}

}  // namespace aegis::serve
