#include "defenses/data/internal/features.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"

namespace aegis::internal {

torch::Tensor dataset_features(ScriptClassifier& model, const Dataset& data, int64_t batch_size) {
  AEGIS_CHECK(batch_size >= 1, InvalidArgument, "batch size must be >= 1");
  AEGIS_CHECK(model.has_features(), Unsupported,
              "the model defines no features(x) method; poisoned-sample "
              "detection needs penultimate features");
  check_compatible(model.meta(), data);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (const Batch& b : data.batches(batch_size))
    parts.push_back(model.features(b.x.to(model.device())).to(torch::kCPU).to(torch::kFloat).flatten(1));
  return parts.empty() ? torch::zeros({0, 0}) : torch::cat(parts);
}

TwoMeans two_means(const torch::Tensor& x, int64_t restarts, at::Generator& gen, int64_t iterations) {
  const int64_t n = x.size(0);
  TwoMeans best;
  best.inertia = std::numeric_limits<double>::infinity();
  for (int64_t r = 0; r < std::max<int64_t>(restarts, 1); ++r) {
    // k-means++: the first centre uniformly, the second proportional to squared
    // distance.
    int64_t first = torch::randint(0, n, {1}, gen, torch::kLong).item<int64_t>();
    torch::Tensor d2 = (x - x[first]).pow(2).sum(1);
    int64_t second =
        d2.sum().item<double>() > 0 ? torch::multinomial(d2, 1, false, gen).item<int64_t>() : (first + 1) % n;
    torch::Tensor c = torch::stack({x[first], x[second]});
    torch::Tensor a;
    for (int64_t it = 0; it < iterations; ++it) {
      torch::Tensor na = torch::cdist(x, c).argmin(1);
      if (a.defined() && torch::equal(na, a)) break;
      a = na;
      for (int64_t k = 0; k < 2; ++k) {
        torch::Tensor m = a == k;
        if (m.any().item<bool>()) c[k] = x.index({m}).mean(0);
      }
    }
    double inertia = std::get<0>(torch::cdist(x, c).min(1)).pow(2).sum().item<double>();
    if (inertia < best.inertia) best = {a, c, inertia};
  }
  return best;
}

double silhouette(const torch::Tensor& x, const torch::Tensor& a) {
  const int64_t n = x.size(0);
  torch::Tensor d = torch::cdist(x, x);
  torch::Tensor in0 = (a == 0).to(torch::kFloat), in1 = (a == 1).to(torch::kFloat);
  double n0 = in0.sum().item<double>(), n1 = in1.sum().item<double>();
  if (n0 < 2 || n1 < 2) return 0.0;
  torch::Tensor s0 = d.matmul(in0),
                s1 = d.matmul(in1);  // sums of distances to each cluster
  torch::Tensor own0 = a == 0;
  torch::Tensor a_own = torch::where(own0, s0 / (n0 - 1), s1 / (n1 - 1));
  torch::Tensor b_other = torch::where(own0, s1 / n1, s0 / n0);
  torch::Tensor s = (b_other - a_own) / torch::max(a_own, b_other).clamp_min(1e-12);
  return n ? s.mean().item<double>() : 0.0;
}

double valley_ratio(const torch::Tensor& values, const torch::Tensor& first, int64_t grid) {
  torch::Tensor v = values.to(torch::kDouble).flatten();
  torch::Tensor in_a = first.to(torch::kBool).flatten();
  const int64_t n = v.size(0), na = in_a.sum().item<int64_t>();
  if (na < 2 || n - na < 2) return 1.0;
  torch::Tensor a = v.index({in_a}), b = v.index({in_a.logical_not()});
  double ss = (a - a.mean()).pow(2).sum().item<double>() + (b - b.mean()).pow(2).sum().item<double>();
  double sd = std::sqrt(ss / double(n - 2));
  if (sd <= 0) return 0.0;  // two groups, each a single point
  double h = 0.9 * sd * std::pow(double(n), -0.2);
  double lo = v.min().item<double>(), hi = v.max().item<double>();
  torch::Tensor g = torch::linspace(lo, hi, grid, torch::kDouble);
  torch::Tensor dens = torch::zeros({grid}, torch::kDouble);
  for (int64_t s = 0; s < n; s += 4096) {  // bounded memory for large classes
    torch::Tensor part = v.narrow(0, s, std::min<int64_t>(4096, n - s));
    dens += torch::exp(-0.5 * ((g.unsqueeze(1) - part.unsqueeze(0)) / h).pow(2)).sum(1);
  }
  double ma = a.median().item<double>(), mb = b.median().item<double>();
  torch::Tensor between = g.ge(std::min(ma, mb)) & g.le(std::max(ma, mb));
  torch::Tensor pos = between.nonzero().view(-1);
  if (pos.size(0) == 0) return 1.0;
  int64_t low = pos[dens.index_select(0, pos).argmin()].item<int64_t>();
  double left = dens.narrow(0, 0, low + 1).max().item<double>();
  double right = dens.narrow(0, low, grid - low).max().item<double>();
  double peak = std::min(left, right);
  return peak > 0 ? dens[low].item<double>() / peak : 1.0;
}

torch::Tensor pca(const torch::Tensor& x, int64_t k) {
  torch::Tensor c = x - x.mean(0, true);
  torch::Tensor cov = c.t().matmul(c) / double(std::max<int64_t>(x.size(0) - 1, 1));
  auto [values, vectors] = torch::linalg::eigh(cov, "L");  // ascending
  k = std::min<int64_t>(k, x.size(1));
  return c.matmul(vectors.narrow(1, vectors.size(1) - k, k).flip(1));
}

}  // namespace aegis::internal
