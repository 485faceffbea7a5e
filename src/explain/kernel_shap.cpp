#include "aegis/explain/kernel_shap.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "aegis/core/error.h"
#include "explain/internal/coalitions.h"

namespace aegis {

namespace {

double binomial(int64_t n, int64_t k) {
  double r = 1;
  for (int64_t i = 1; i <= k; ++i) r = r * double(n - k + i) / double(i);
  return r;
}

/// Coalitions (rows of '0'/'1', one char per group) and their kernel weights.
struct Design {
  std::vector<std::string> rows;
  std::vector<double> weights;
};

/// SHAP's KernelExplainer design: whole subset sizes (and their complements)
/// while the budget allows, then paired draws by the kernel's size
/// distribution, repeats adding weight; the drawn weights share the mass of
/// the sizes not enumerated.
Design kernel_design(int64_t m, int64_t budget, at::Generator& gen) {
  const int64_t num_sizes = m / 2, num_paired = (m - 1) / 2;  // ceil((m-1)/2), floor((m-1)/2)
  std::vector<double> wv(static_cast<size_t>(num_sizes));
  for (int64_t s = 1; s <= num_sizes; ++s)
    wv[size_t(s - 1)] = double(m - 1) / double(s * (m - s)) * (s <= num_paired ? 2.0 : 1.0);
  const double total = std::accumulate(wv.begin(), wv.end(), 0.0);
  for (auto& w : wv) w /= total;

  Design d;
  double left = double(budget);
  int64_t full = 0;
  std::vector<double> rw = wv;
  for (int64_t s = 1; s <= num_sizes; ++s) {
    const double nsub = binomial(m, s) * (s <= num_paired ? 2.0 : 1.0);
    if (rw[size_t(s - 1)] * left / nsub < 1.0 - 1e-8) break;
    ++full;
    left -= nsub;
    if (rw[size_t(s - 1)] < 1.0) {
      const double r = rw[size_t(s - 1)];
      for (auto& w : rw) w /= (1.0 - r);
    }
    const double w = wv[size_t(s - 1)] / nsub;
    std::vector<int64_t> c(static_cast<size_t>(s));
    std::iota(c.begin(), c.end(), 0);
    for (;;) {
      std::string z(size_t(m), '0');
      for (int64_t i : c) z[size_t(i)] = '1';
      d.rows.push_back(z);
      d.weights.push_back(w);
      if (s <= num_paired) {
        for (auto& ch : z) ch = ch == '1' ? '0' : '1';
        d.rows.push_back(z);
        d.weights.push_back(w);
      }
      int64_t i = s - 1;  // next combination in lexicographic order
      while (i >= 0 && c[size_t(i)] == m - s + i) --i;
      if (i < 0) break;
      ++c[size_t(i)];
      for (int64_t j = i + 1; j < s; ++j) c[size_t(j)] = c[size_t(j - 1)] + 1;
    }
  }
  if (full == num_sizes || left < 1) return d;

  std::vector<double> p;
  for (int64_t s = full + 1; s <= num_sizes; ++s) p.push_back(wv[size_t(s - 1)] / (s <= num_paired ? 2.0 : 1.0));
  const double mass_left = std::accumulate(wv.begin() + full, wv.end(), 0.0);
  const size_t fixed = d.rows.size();
  std::map<std::string, size_t> seen;
  int64_t samples_left = int64_t(left);
  const torch::Tensor sizes =
      torch::multinomial(torch::tensor(p, torch::kDouble), 4 * samples_left, /*replacement=*/true, gen);
  const int64_t* size_idx = sizes.data_ptr<int64_t>();
  auto add = [&](const std::string& z) {
    auto [it, fresh] = seen.emplace(z, d.rows.size());
    if (fresh) {
      d.rows.push_back(z);
      d.weights.push_back(1.0);
      --samples_left;
    } else {
      d.weights[it->second] += 1.0;
    }
  };
  for (int64_t k = 0; k < sizes.numel() && samples_left > 0; ++k) {
    const int64_t s = size_idx[k] + full + 1;
    const torch::Tensor perm = torch::randperm(m, gen, torch::kLong);
    const int64_t* chosen = perm.data_ptr<int64_t>();
    std::string z(size_t(m), '0');
    for (int64_t i = 0; i < s; ++i) z[size_t(chosen[i])] = '1';
    add(z);
    if (samples_left > 0 && s <= num_paired) {
      for (auto& ch : z) ch = ch == '1' ? '0' : '1';
      add(z);
    }
  }
  double drawn = 0;
  for (size_t i = fixed; i < d.weights.size(); ++i) drawn += d.weights[i];
  for (size_t i = fixed; i < d.weights.size(); ++i) d.weights[i] *= mass_left / drawn;
  return d;
}

}  // namespace

namespace explain {

torch::Tensor exact_shapley(const torch::Tensor& v_in, int64_t g) {
  const torch::Tensor v = v_in.to(torch::kDouble).contiguous();
  AEGIS_CHECK(v.numel() == (int64_t(1) << g), InvalidArgument,
              "exact Shapley values need all 2^" << g << " coalitions");
  std::vector<double> w(static_cast<size_t>(g));  // s! (g - s - 1)! / g! = 1 / (g * C(g - 1, s))
  for (int64_t s = 0; s < g; ++s) w[size_t(s)] = 1.0 / (double(g) * binomial(g - 1, s));
  const double* pv = v.data_ptr<double>();
  std::vector<double> phi(static_cast<size_t>(g), 0.0);
  const uint64_t n = uint64_t(1) << g;
  for (uint64_t s = 0; s < n; ++s) {
    const int size = __builtin_popcountll(s);
    for (int64_t j = 0; j < g; ++j)
      if (!(s & (uint64_t(1) << j))) phi[size_t(j)] += w[size_t(size)] * (pv[s | (uint64_t(1) << j)] - pv[s]);
  }
  return torch::tensor(phi, torch::kDouble);
}

}  // namespace explain

KernelShap::KernelShap(KernelShapOptions options) : o_(std::move(options)) {
  AEGIS_CHECK(o_.samples_ >= 0, InvalidArgument,
              "kernelshap: samples must be >= 0 (0: automatic), got " << o_.samples_);
  AEGIS_CHECK(o_.max_exact_ >= 0 && o_.max_exact_ <= 20, InvalidArgument,
              "kernelshap: max_exact must be in [0, 20], got " << o_.max_exact_);
  AEGIS_CHECK(o_.max_batch_ >= 1, InvalidArgument, "max batch must be >= 1, got " << o_.max_batch_);
  AEGIS_CHECK(!o_.background_.defined() || (o_.background_.dim() >= 2 && o_.background_.size(0) >= 1), InvalidArgument,
              "kernelshap: the background set is empty");
}

nlohmann::json KernelShap::options_json() const {
  nlohmann::json j = {{"mask", feature_mask_json(o_.mask_)},
                      {"samples", o_.samples_},
                      {"max_exact", o_.max_exact_},
                      {"max_batch", o_.max_batch_},
                      {"seed", o_.seed_}};
  if (o_.background_.defined())
    j["background"] = o_.background_.size(0);
  else
    j["baseline"] = baseline_json(o_.baseline_);
  return j;
}

Attribution KernelShap::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  const FeatureMask mask = make_feature_mask(o_.mask_, x, model.meta());
  torch::Tensor baseline, background;
  if (o_.background_.defined()) {
    background = o_.background_.detach().to(torch::kFloat).contiguous();
    AEGIS_CHECK(background.sizes().slice(1) == x.sizes().slice(1), InvalidArgument,
                "kernelshap: background samples are shaped " << background.sizes().slice(1) << ", inputs "
                                                             << x.sizes().slice(1));
  } else {
    baseline = make_baseline(o_.baseline_, x, model.meta());
  }
  torch::Tensor values = torch::empty(x.sizes(), torch::kDouble);
  torch::Tensor fnull_all = torch::empty({x.size(0)}, torch::kDouble);
  for (int64_t i = 0; i < x.size(0); ++i) {
    const int64_t m = mask.groups[size_t(i)], t = target[i].item<int64_t>();
    const torch::Tensor refs = background.defined() ? background : baseline.narrow(0, i, 1);
    auto values_of = [&](const torch::Tensor& keep) {
      return explain::coalition_values(model, x[i], mask.ids[i], keep, refs, t, o_.max_batch_);
    };
    torch::Tensor phi;
    double fnull = 0;
    if (m <= o_.max_exact_ || m == 1) {
      const int64_t n = int64_t(1) << m;
      torch::Tensor bits = torch::arange(m, torch::kLong);
      torch::Tensor keep =
          torch::arange(n, torch::kLong).unsqueeze(1).bitwise_right_shift(bits).bitwise_and(1).to(torch::kBool);
      torch::Tensor v = values_of(keep);
      fnull = v[0].item<double>();
      phi = explain::exact_shapley(v, m);
    } else {
      at::Generator gen = explain::sample_generator(o_.seed_, x[i], "kernel-shap");
      const double all = std::ldexp(1.0, int(std::min<int64_t>(m, 62))) - 2;
      const int64_t budget = int64_t(std::min(all, double(o_.samples_ > 0 ? o_.samples_ : 2 * m + 2048)));
      const Design d = kernel_design(m, budget, gen);
      const int64_t k = int64_t(d.rows.size());
      torch::Tensor z = torch::empty({k, m}, torch::kDouble);
      double* pz = z.data_ptr<double>();
      for (int64_t r = 0; r < k; ++r)
        for (int64_t j = 0; j < m; ++j) pz[r * m + j] = d.rows[size_t(r)][size_t(j)] == '1' ? 1.0 : 0.0;
      // Rows 0 and 1: everything kept (f(x)) and nothing kept (E[f(background)]).
      torch::Tensor keep = torch::cat({torch::ones({1, m}, torch::kDouble), torch::zeros({1, m}, torch::kDouble), z});
      torch::Tensor v = values_of(keep.to(torch::kBool));
      const double fx = v[0].item<double>();
      fnull = v[1].item<double>();
      torch::Tensor y = v.narrow(0, 2, k) - fnull;
      torch::Tensor w = torch::tensor(d.weights, torch::kDouble).sqrt().unsqueeze(1);
      // Constrained to sum to fx - fnull: the last value is eliminated.
      torch::Tensor last = z.narrow(1, m - 1, 1);
      torch::Tensor a = (z.narrow(1, 0, m - 1) - last) * w;
      torch::Tensor b = (y.unsqueeze(1) - last * (fx - fnull)) * w;
      torch::Tensor beta = std::get<0>(at::linalg_lstsq(a, b, c10::nullopt, "gelsd")).squeeze(1);
      phi = torch::cat({beta, (fx - fnull - beta.sum()).view({1})});
    }
    fnull_all[i] = fnull;
    values[i] = explain::spread_over_groups(phi, mask.ids[i]);
  }
  Attribution a;
  a.values = values.to(torch::kFloat);
  a.baseline_score = fnull_all;
  a.feature_mask = mask.ids;
  return a;
}

}  // namespace aegis
