#include "aegis/attacks/inference/model_inversion.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "aegis/attacks/inference/membership.h"
#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"

namespace aegis {

namespace F = torch::nn::functional;

void InversionOptions::validate() const {
  AEGIS_CHECK(gradient_ == "white-box" || gradient_ == "estimated", InvalidArgument,
              "inversion: gradient must be 'white-box' or 'estimated', got '" << gradient_ << "'");
  AEGIS_CHECK(objective_ == "logit" || objective_ == "log-prob", InvalidArgument,
              "inversion: objective must be 'logit' or 'log-prob', got '" << objective_ << "'");
  AEGIS_CHECK(steps_ >= 1, InvalidArgument, "inversion: steps must be >= 1, got " << steps_);
  AEGIS_CHECK(lr_ > 0 && std::isfinite(lr_), InvalidArgument, "inversion: lr must be > 0, got " << lr_);
  AEGIS_CHECK(tv_weight_ >= 0, InvalidArgument, "inversion: tv weight must be >= 0, got " << tv_weight_);
  AEGIS_CHECK(l2_weight_ >= 0, InvalidArgument, "inversion: l2 weight must be >= 0, got " << l2_weight_);
  AEGIS_CHECK(init_ == "min" || init_ == "mid" || init_ == "random", InvalidArgument,
              "inversion: init must be min, mid or random, got '" << init_ << "'");
  AEGIS_CHECK(samples_ >= 2 && samples_ % 2 == 0, InvalidArgument,
              "inversion: samples must be even and >= 2, got " << samples_);
  AEGIS_CHECK(sigma_ > 0, InvalidArgument, "inversion: sigma must be > 0, got " << sigma_);
  access_.validate();
  AEGIS_CHECK(gradient_ != "estimated" || access_.has_scores(), InvalidArgument,
              "inversion: gradient estimation needs score answers, not labels only");
}

nlohmann::json InversionOptions::to_json() const {
  nlohmann::json j = {
      {"gradient", gradient_},   {"objective", objective_}, {"classes", classes_}, {"steps", steps_}, {"lr", lr_},
      {"tv_weight", tv_weight_}, {"l2_weight", l2_weight_}, {"init", init_},       {"seed", seed_}};
  if (gradient_ == "estimated") {
    j["samples"] = samples_;
    j["sigma"] = sigma_;
    j["access"] = access_.to_json();
  }
  return j;
}

torch::Tensor total_variation(const torch::Tensor& x) {
  torch::Tensor dh = (x.narrow(2, 1, x.size(2) - 1) - x.narrow(2, 0, x.size(2) - 1)).abs().flatten(1).mean(1);
  torch::Tensor dw = (x.narrow(3, 1, x.size(3) - 1) - x.narrow(3, 0, x.size(3) - 1)).abs().flatten(1).mean(1);
  return dh + dw;
}

double ssim(const torch::Tensor& a, const torch::Tensor& b, double range) {
  AEGIS_CHECK(a.dim() == 3 && a.sizes() == b.sizes(), InvalidArgument, "ssim needs two [C, H, W] images of one shape");
  AEGIS_CHECK(range > 0, InvalidArgument, "ssim range must be > 0");
  const int64_t c = a.size(0);
  int64_t win = std::min<int64_t>({11, a.size(1), a.size(2)});
  if (win % 2 == 0) --win;
  torch::Tensor g = torch::arange(win, torch::kDouble) - double(win / 2);
  g = torch::exp(-g.pow(2) / (2 * 1.5 * 1.5));
  g = g / g.sum();
  torch::Tensor w = torch::outer(g, g).expand({c, 1, win, win}).contiguous();
  torch::Tensor x = a.to(torch::kDouble).unsqueeze(0), y = b.to(torch::kDouble).unsqueeze(0);
  auto conv = [&](const torch::Tensor& t) { return F::conv2d(t, w, F::Conv2dFuncOptions().groups(c)); };
  torch::Tensor mx = conv(x), my = conv(y);
  torch::Tensor sxx = conv(x * x) - mx * mx, syy = conv(y * y) - my * my, sxy = conv(x * y) - mx * my;
  const double c1 = std::pow(0.01 * range, 2), c2 = std::pow(0.03 * range, 2);
  torch::Tensor s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
  return s.mean().item<double>();
}

namespace {

bool is_image(const ModelMeta& m) { return m.input_shape.size() == 3; }

/// Attacker-side prior on x [K, ...]: TV (images) and the L2 pull to the start.
torch::Tensor prior_loss(const torch::Tensor& x, const torch::Tensor& start, const InversionOptions& o, bool image) {
  torch::Tensor loss = torch::zeros({x.size(0)}, x.options());
  if (image && o.tv_weight_ > 0) loss = loss + o.tv_weight_ * total_variation(x);
  if (o.l2_weight_ > 0) loss = loss + o.l2_weight_ * (x - start).pow(2).flatten(1).mean(1);
  return loss;
}

/// The score raised for class y from logits or log-probabilities [B, C] (the
/// centred logit is the same from either): log p_y, or z_y - mean_j z_j.
torch::Tensor class_score(const torch::Tensor& logits, const torch::Tensor& y, const std::string& objective) {
  torch::Tensor picked = logits.gather(1, y.unsqueeze(1)).squeeze(1);
  if (objective == "logit") return picked - logits.mean(1);
  return picked - torch::logsumexp(logits, 1);
}

/// NES estimate of the gradient of -score(x) from observed answers.
torch::Tensor estimate_gradient(Classifier& model, const torch::Tensor& x, const torch::Tensor& cls,
                                const InversionOptions& o, at::Generator& gen) {
  const int64_t k = x.size(0), half = o.samples_ / 2;
  std::vector<int64_t> rep = x.sizes().vec();
  rep.insert(rep.begin() + 1, half);
  torch::Tensor u = torch::randn(rep, gen);  // [K, half, ...]
  torch::Tensor xs = x.unsqueeze(1);
  // Queries must be valid inputs (a gateway rejects others): clip the probes.
  torch::Tensor both = torch::cat({xs + o.sigma_ * u, xs - o.sigma_ * u}, 1)
                           .flatten(0, 1)
                           .clamp(model.meta().clip_min, model.meta().clip_max);
  torch::Tensor seen = query_answers(model, both, o.access_);
  torch::Tensor y = cls.repeat_interleave(2 * half);
  // Scores from the observed view; probabilities a top-k or rounded answer left out count as 1e-12.
  torch::Tensor logp = seen.to(torch::kDouble).clamp_min(1e-12).log();
  torch::Tensor f = -class_score(logp, y, o.objective_).to(torch::kFloat).view({k, 2 * half});
  torch::Tensor diff = (f.narrow(1, 0, half) - f.narrow(1, half, half));  // [K, half]
  std::vector<int64_t> view = {k, half};
  for (int64_t i = 1; i < x.dim(); ++i) view.push_back(1);
  return (diff.view(view) * u).sum(1) / (2 * o.sigma_ * double(half));
}

}  // namespace

InversionResult mi_face(Classifier& model, const InversionOptions& o, const Dataset* reference) {
  o.validate();
  const ModelMeta& m = model.meta();
  AEGIS_CHECK(o.gradient_ != "white-box" || model.has_gradients(), Unsupported,
              "white-box inversion needs a model with gradients; use "
              "--gradient estimated");
  std::vector<int64_t> classes = o.classes_;
  if (classes.empty())
    for (int64_t c = 0; c < m.num_classes; ++c) classes.push_back(c);
  for (int64_t c : classes)
    AEGIS_CHECK(c >= 0 && c < m.num_classes, InvalidArgument,
                "inversion: class " << c << " outside the model's " << m.num_classes << " classes");
  if (reference) {
    check_compatible(m, *reference);
    AEGIS_CHECK(reference->size() > 0, InvalidArgument, "inversion: the reference data is empty");
  }
  auto start_time = std::chrono::steady_clock::now();
  const int64_t q0 = model.queries();
  const int64_t k = int64_t(classes.size());
  torch::Tensor cls = torch::tensor(classes, torch::kLong);
  std::vector<int64_t> shape = {k};
  shape.insert(shape.end(), m.input_shape.begin(), m.input_shape.end());
  auto gen = make_generator(o.seed_, "inversion");
  torch::Tensor start;
  if (o.init_ == "min")
    start = torch::full(shape, m.clip_min);
  else if (o.init_ == "mid")
    start = torch::full(shape, (m.clip_min + m.clip_max) / 2);
  else
    start = torch::rand(shape, gen) * (m.clip_max - m.clip_min) + m.clip_min;
  const bool image = is_image(m);

  torch::Tensor x = start.clone().requires_grad_(true);
  torch::optim::Adam opt({x}, torch::optim::AdamOptions(o.lr_));
  Progress bar("inversion (" + o.gradient_ + ")", o.steps_);
  for (int64_t step = 0; step < o.steps_; ++step) {
    opt.zero_grad();
    {
      torch::AutoGradMode enable(true);
      torch::Tensor loss = prior_loss(x, start, o, image);
      if (o.gradient_ == "white-box") {
        loss = loss - class_score(model.forward(x), cls, o.objective_);
      }
      if (loss.requires_grad()) loss.sum().backward();
    }
    if (o.gradient_ == "estimated") {
      torch::Tensor g = estimate_gradient(model, x.detach(), cls, o, gen);
      if (x.grad().defined())
        x.mutable_grad() = x.grad() + g;
      else
        x.mutable_grad() = g;
    }
    opt.step();
    {
      torch::NoGradGuard ng;
      x.clamp_(m.clip_min, m.clip_max);
    }
    bar.advance(1);
  }
  bar.finish();

  InversionResult r;
  r.gradient = o.gradient_;
  r.classes = cls;
  r.reconstructions = x.detach().clone();
  r.queries = model.queries() - q0;
  {
    // Measurement by the auditor, after the attack's queries were counted.
    r.confidence = true_class_score(model.probabilities(r.reconstructions), cls);
  }
  if (reference) {
    r.has_reference = true;
    std::vector<torch::Tensor> means;
    for (int64_t c = 0; c < m.num_classes; ++c) {
      torch::Tensor mask = reference->y == c;
      torch::Tensor xs = reference->x.index({mask});
      means.push_back(xs.size(0) > 0 ? xs.mean(0) : torch::full(m.input_shape, std::nan("")));
    }
    r.class_means = torch::stack(means);
    r.mse = (r.reconstructions.flatten(1).unsqueeze(1) - r.class_means.flatten(1).unsqueeze(0)).pow(2).mean(2);
    torch::Tensor mse_safe = torch::nan_to_num(r.mse, std::numeric_limits<double>::infinity());
    int64_t closest = 0;
    for (int64_t i = 0; i < k; ++i) {
      int64_t c = classes[size_t(i)];
      int64_t nearest = mse_safe[i].argmin().item<int64_t>();
      r.nearest_class.push_back(nearest);
      r.mse_own.push_back(r.mse[i][c].item<double>());
      if (image) r.ssim_own.push_back(ssim(r.reconstructions[i], r.class_means[c], m.clip_max - m.clip_min));
      closest += nearest == c;
    }
    r.closest_to_own_fraction = double(closest) / double(k);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return r;
}

nlohmann::json InversionResult::to_json() const {
  nlohmann::json j = {{"attack", "mi-face"}, {"kind", "model-inversion"}, {"atlas", "AML.T0024.001"},
                      {"owasp", "ML03"},     {"gradient", gradient},      {"queries", queries},
                      {"seconds", seconds}};
  std::vector<int64_t> cls(classes.data_ptr<int64_t>(), classes.data_ptr<int64_t>() + classes.numel());
  j["classes"] = cls;
  torch::Tensor conf = confidence.to(torch::kDouble).contiguous();
  j["confidence"] = std::vector<double>(conf.data_ptr<double>(), conf.data_ptr<double>() + conf.numel());
  if (has_reference) {
    j["mse_to_own_class_mean"] = mse_own;
    if (!ssim_own.empty()) j["ssim_to_own_class_mean"] = ssim_own;
    j["nearest_class_mean"] = nearest_class;
    j["closest_to_own_fraction"] = closest_to_own_fraction;
    double mean_mse = 0, mean_ssim = 0;
    for (double v : mse_own) mean_mse += v / double(mse_own.size());
    for (double v : ssim_own) mean_ssim += v / double(ssim_own.size());
    j["mean_mse_to_own_class_mean"] = mean_mse;
    if (!ssim_own.empty()) j["mean_ssim_to_own_class_mean"] = mean_ssim;
  }
  return j;
}

}  // namespace aegis
