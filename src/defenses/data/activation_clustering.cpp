#include "aegis/defenses/data/activation_clustering.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "defenses/data/internal/features.h"

namespace aegis {

nlohmann::json ActivationClusteringOptions::to_json() const {
  return {{"dimensions", dimensions_},
          {"max_cluster_fraction", max_cluster_fraction_},
          {"min_silhouette", min_silhouette_},
          {"max_valley", max_valley_},
          {"min_class_size", min_class_size_},
          {"kmeans_restarts", kmeans_restarts_},
          {"seed", seed_}};
}

SuspectReport activation_clustering(ScriptClassifier& model, const Dataset& data,
                                    const ActivationClusteringOptions& o) {
  AEGIS_CHECK(o.dimensions_ >= 1, InvalidArgument, "dimensions must be >= 1, got " << o.dimensions_);
  AEGIS_CHECK(o.max_cluster_fraction_ > 0 && o.max_cluster_fraction_ <= 0.5, InvalidArgument,
              "max cluster fraction must be in (0, 0.5], got " << o.max_cluster_fraction_);
  AEGIS_CHECK(o.min_silhouette_ >= -1 && o.min_silhouette_ <= 1, InvalidArgument,
              "min silhouette must be in [-1, 1], got " << o.min_silhouette_);
  AEGIS_CHECK(o.max_valley_ > 0 && o.max_valley_ < 1, InvalidArgument,
              "max valley must be in (0, 1), got " << o.max_valley_);
  AEGIS_CHECK(o.min_class_size_ >= 4, InvalidArgument, "min class size must be >= 4, got " << o.min_class_size_);
  AEGIS_CHECK(o.silhouette_samples_ >= 10, InvalidArgument, "silhouette samples must be >= 10");
  torch::Tensor feats = internal::dataset_features(model, data, o.batch_size_);
  SuspectReport r;
  r.method = "activation-clustering";
  r.samples = data.size();
  r.details["options"] = o.to_json();
  nlohmann::json classes = nlohmann::json::array();
  auto gen = make_generator(o.seed_, "activation-clustering");
  const int64_t k = data.size() ? data.y.max().item<int64_t>() + 1 : 0;
  for (int64_t c = 0; c < k; ++c) {
    torch::Tensor idx = (data.y == c).nonzero().view(-1);
    const int64_t n = idx.size(0);
    nlohmann::json cj = {{"class", c}, {"samples", n}, {"flagged", 0}};
    if (n < o.min_class_size_) {
      cj["skipped"] = "fewer samples than min_class_size";
      classes.push_back(cj);
      continue;
    }
    torch::Tensor z = internal::pca(feats.index_select(0, idx), o.dimensions_);
    internal::TwoMeans km = internal::two_means(z, o.kmeans_restarts_, gen);
    int64_t n1 = (km.assignment == 1).sum().item<int64_t>();
    int64_t small = n1 <= n - n1 ? 1 : 0;
    double share = double(std::min(n1, n - n1)) / double(n);
    torch::Tensor sample = n > o.silhouette_samples_
                               ? torch::randperm(n, gen, torch::kLong).narrow(0, 0, o.silhouette_samples_)
                               : torch::arange(n, torch::kLong);
    double sil = internal::silhouette(z.index_select(0, sample), km.assignment.index_select(0, sample));
    // The density dip between the clusters along the line through their centres.
    torch::Tensor axis = km.centres[1] - km.centres[0];
    double valley = 1.0;
    if (axis.norm().item<double>() > 0)
      valley = internal::valley_ratio((z - km.centres[0]).matmul(axis), km.assignment == 0);
    cj["smaller_cluster_fraction"] = share;
    cj["silhouette"] = sil;
    cj["valley"] = valley;
    if (share <= o.max_cluster_fraction_ && sil >= o.min_silhouette_ && valley <= o.max_valley_) {
      torch::Tensor d = torch::cdist(z, km.centres);
      torch::Tensor d_small = d.select(1, small), d_large = d.select(1, 1 - small);
      torch::Tensor score = (d_large - d_small) / (d_large + d_small).clamp_min(1e-12);
      torch::Tensor members = (km.assignment == small).nonzero().view(-1);
      auto ia = idx.accessor<int64_t, 1>();
      auto ma = members.accessor<int64_t, 1>();
      for (int64_t i = 0; i < members.size(0); ++i)
        r.suspects.push_back({ia[ma[i]], c, score[ma[i]].item<double>(),
                              fmt::format("activation-clustering: small separated cluster in class {}", c)});
      cj["flagged"] = members.size(0);
    }
    classes.push_back(cj);
  }
  std::sort(r.suspects.begin(), r.suspects.end(), [](const Suspect& a, const Suspect& b) { return a.index < b.index; });
  r.details["classes"] = classes;
  return r;
}

}  // namespace aegis
