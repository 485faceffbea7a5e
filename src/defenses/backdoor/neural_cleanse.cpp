#include "aegis/defenses/backdoor/neural_cleanse.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"

namespace aegis {

namespace F = torch::nn::functional;

nlohmann::json NeuralCleanseOptions::to_json() const {
  return {{"steps", steps_},
          {"batch_size", batch_size_},
          {"lr", lr_},
          {"init_cost", init_cost_},
          {"attack_success_target", attack_success_target_},
          {"cost_patience", cost_patience_},
          {"early_stop_windows", early_stop_windows_},
          {"anomaly_threshold", anomaly_threshold_},
          {"smoothness", smoothness_},
          {"seed", seed_}};
}

nlohmann::json NeuralCleanseResult::to_json() const {
  nlohmann::json cs = nlohmann::json::array();
  for (const auto& c : classes)
    cs.push_back({{"target", c.target},
                  {"mask_l1", c.mask_l1},
                  {"attack_success_rate", c.attack_success_rate},
                  {"reached_target", c.reached_target},
                  {"steps", c.steps},
                  {"anomaly_index", c.anomaly_index}});
  return {{"method", "neural-cleanse"},
          {"backdoor_suspected", backdoor_suspected()},
          {"flagged_classes", flagged_classes},
          {"median_mask_l1", median_l1},
          {"mad", mad},
          {"classes", cs},
          {"options", options},
          {"seconds", seconds}};
}

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

ReversedTrigger reverse_engineer(Classifier& model, const torch::Tensor& xs, int64_t target,
                                 const NeuralCleanseOptions& o, at::Generator& gen) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const int64_t n = xs.size(0), c = xs.size(1), h = xs.size(2), w = xs.size(3);
  // Unconstrained parameters; tanh keeps mask in [0, 1] and pattern in [lo,
  // hi].
  torch::Tensor mask_p = (torch::rand({1, h, w}, gen) * 0.2 - 1.0).requires_grad_(true);  // mask ~ 0.12
  torch::Tensor pattern_p = (torch::rand({c, h, w}, gen) * 2 - 1).requires_grad_(true);
  torch::optim::Adam opt({mask_p, pattern_p}, torch::optim::AdamOptions(o.lr_).betas({0.5, 0.9}));
  double cost = o.init_cost_;
  int64_t up = 0, down = 0;
  double window_hits = 0, window_total = 0;
  double checkpoint = std::numeric_limits<double>::infinity();  // early stopping: best L1 at the last improvement
  int64_t stale = 0;
  ReversedTrigger best;
  best.target = target;
  best.mask_l1 = std::numeric_limits<double>::infinity();
  torch::Tensor y_t;
  for (int64_t step = 0; step < o.steps_; ++step) {
    torch::Tensor pick = torch::randint(0, n, {std::min(o.batch_size_, n)}, gen, torch::kLong);
    torch::Tensor x = xs.index_select(0, pick);
    torch::Tensor mask = (torch::tanh(mask_p) + 1) / 2;
    torch::Tensor pattern = lo + (torch::tanh(pattern_p) + 1) / 2 * (hi - lo);
    torch::Tensor xt = (1 - mask) * x + mask * pattern;
    torch::Tensor logits = model.forward(xt);
    y_t = torch::full({x.size(0)}, target, torch::kLong);
    torch::Tensor ce = F::cross_entropy(logits, y_t);
    torch::Tensor l1 = mask.sum();
    torch::Tensor size = l1;
    if (o.smoothness_ > 0) {  // anisotropic total variation of the mask
      torch::Tensor tv = (mask.slice(1, 1) - mask.slice(1, 0, h - 1)).abs().sum() +
                         (mask.slice(2, 1) - mask.slice(2, 0, w - 1)).abs().sum();
      size = l1 + o.smoothness_ * tv;
    }
    torch::Tensor loss = ce + cost * size;
    opt.zero_grad();
    loss.backward();
    opt.step();
    double acc = (logits.argmax(1) == y_t).to(torch::kDouble).mean().item<double>();
    window_hits += acc;
    window_total += 1;
    if ((step + 1) % o.cost_patience_ == 0) {
      // As in the paper, success is judged over a whole window of batches
      // (cost_patience * batch_size inputs), not one lucky batch: the mask of
      // the window's last step is kept when the window succeeded and it is
      // the smallest so far.
      const double window_rate = window_hits / window_total;
      const bool ok = window_rate >= o.attack_success_target_;
      window_hits = window_total = 0;
      if (ok && l1.item<double>() < best.mask_l1) {
        best.mask_l1 = l1.item<double>();
        best.attack_success_rate = window_rate;
        best.reached_target = true;
        best.mask = mask.detach().clone();
        best.pattern = pattern.detach().clone();
      }
      // The paper's adaptive cost: up when succeeding, down when not.
      if (ok) {
        ++up;
        down = 0;
      } else {
        ++down;
        up = 0;
      }
      if (up >= 1) cost *= 1.5;
      if (down >= 1) cost /= std::pow(1.5, 1.5);
      // The paper's early stop: the smallest successful mask has not shrunk by
      // 1% for `early_stop_windows` windows.
      if (best.reached_target && o.early_stop_windows_ > 0) {
        if (best.mask_l1 < 0.99 * checkpoint) {
          checkpoint = best.mask_l1;
          stale = 0;
        } else if (++stale >= o.early_stop_windows_) {
          best.steps = step + 1;
          break;
        }
      }
    }
    best.steps = step + 1;
  }
  if (!best.reached_target) {  // never succeeded: report the last trigger, which
                               // is the smallest it tried
    torch::NoGradGuard ng;
    best.mask = ((torch::tanh(mask_p) + 1) / 2).detach();
    best.pattern = (lo + (torch::tanh(pattern_p) + 1) / 2 * (hi - lo)).detach();
    best.mask_l1 = best.mask.sum().item<double>();
  }
  {  // success rate of the kept trigger on all the clean inputs
    torch::NoGradGuard ng;
    int64_t hit = 0;
    for (int64_t s = 0; s < n; s += 256) {
      torch::Tensor x = xs.narrow(0, s, std::min<int64_t>(256, n - s));
      hit += (model.predict((1 - best.mask) * x + best.mask * best.pattern) == target).sum().item<int64_t>();
    }
    best.attack_success_rate = double(hit) / double(n);
  }
  return best;
}

}  // namespace

std::vector<double> anomaly_indices(const std::vector<double>& norms) {
  double med = median(norms);
  std::vector<double> dev;
  for (double v : norms) dev.push_back(std::abs(v - med));
  double mad = 1.4826 * median(dev);
  std::vector<double> out;
  for (double v : norms) out.push_back(mad > 0 ? (med - v) / mad : 0.0);
  return out;
}

NeuralCleanseResult neural_cleanse(Classifier& model, const Dataset& clean, const NeuralCleanseOptions& o) {
  AEGIS_CHECK(o.steps_ >= 1, InvalidArgument, "steps must be >= 1, got " << o.steps_);
  AEGIS_CHECK(o.batch_size_ >= 1, InvalidArgument, "batch size must be >= 1, got " << o.batch_size_);
  AEGIS_CHECK(o.lr_ > 0, InvalidArgument, "learning rate must be > 0, got " << o.lr_);
  AEGIS_CHECK(o.init_cost_ >= 0, InvalidArgument, "initial cost must be >= 0, got " << o.init_cost_);
  AEGIS_CHECK(o.attack_success_target_ > 0 && o.attack_success_target_ <= 1, InvalidArgument,
              "attack success target must be in (0, 1], got " << o.attack_success_target_);
  AEGIS_CHECK(o.cost_patience_ >= 1, InvalidArgument, "cost patience must be >= 1");
  AEGIS_CHECK(o.early_stop_windows_ >= 0, InvalidArgument, "early stop windows must be >= 0 (0 = never)");
  AEGIS_CHECK(o.smoothness_ >= 0, InvalidArgument, "smoothness must be >= 0, got " << o.smoothness_);
  AEGIS_CHECK(model.has_gradients(), Unsupported, "Neural Cleanse needs a white-box model (input gradients)");
  AEGIS_CHECK(model.meta().input_shape.size() == 3, InvalidArgument,
              "Neural Cleanse reverse-engineers image triggers; the model "
              "takes samples of "
                  << model.meta().input_shape.size() << " dimensions, not [C, H, W]");
  check_compatible(model.meta(), clean);
  AEGIS_CHECK(clean.size() >= 10, InvalidArgument,
              "Neural Cleanse needs at least 10 clean samples, got " << clean.size());
  const int64_t k = model.meta().num_classes;
  AEGIS_CHECK(k >= 3, InvalidArgument, "the anomaly index needs at least 3 classes, the model has " << k);
  auto start = std::chrono::steady_clock::now();
  NeuralCleanseResult r;
  r.options = o.to_json();
  auto gen = make_generator(o.seed_, "neural-cleanse");
  Progress bar("neural cleanse", k);
  for (int64_t t = 0; t < k; ++t) {
    torch::Tensor others = clean.y != t;
    torch::Tensor xs = clean.x.index({others}).to(model.device());
    AEGIS_CHECK(xs.size(0) > 0, InvalidArgument, "no clean samples outside class " << t);
    r.classes.push_back(reverse_engineer(model, xs, t, o, gen));
    bar.advance(1, fmt::format("class {} mask L1 {:.1f}", t, r.classes.back().mask_l1));
  }
  bar.finish();
  std::vector<double> norms;
  for (const auto& c : r.classes) norms.push_back(c.mask_l1);
  std::vector<double> ai = anomaly_indices(norms);
  r.median_l1 = median(norms);
  std::vector<double> dev;
  for (double v : norms) dev.push_back(std::abs(v - r.median_l1));
  r.mad = 1.4826 * median(dev);
  for (int64_t t = 0; t < k; ++t) {
    r.classes[t].anomaly_index = ai[t];
    if (ai[t] > o.anomaly_threshold_) r.flagged_classes.push_back(t);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
