#pragma once
/// Dataset: samples and labels as tensors, with deterministic subsets, splits,
/// shuffles and batches, and a fingerprint (a Merkle root over the samples)
/// that changes when any one sample or label does.
///
///   Dataset train = load_dataset(DataSpec("fashion-mnist").split("train"));
///   auto [fit, val] = train.split(0.1, /*seed=*/1);
///   for (const Batch& b : fit.batches(128, /*shuffle_seed=*/7)) { ... b.x ... b.y ... }

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace aegis {

struct Batch {
  torch::Tensor x;        ///< [b, sample shape...] float32
  torch::Tensor y;        ///< [b] int64
  torch::Tensor indices;  ///< [b] int64, positions in the dataset the batch came from
};

struct Dataset {
  torch::Tensor x;  ///< [N, sample shape...] float32, in the raw valid range
  torch::Tensor y;  ///< [N] int64 labels in [0, num_classes)
  std::vector<std::string> class_names;  ///< optional, num_classes long when set
  std::string source;                    ///< where it came from, for reports
  /// Preprocessing applied while loading (e.g. CSV min-max scaling), recorded
  /// so the same transformation can be applied to new data.
  nlohmann::json preprocessing = nlohmann::json::object();

  int64_t size() const { return x.defined() ? x.size(0) : 0; }
  std::vector<int64_t> sample_shape() const;
  /// class_names.size() when set, else max label + 1.
  int64_t num_classes() const;

  /// Throws CorruptData unless x and y agree in length, y is 1-D int64 with
  /// labels >= 0 (and < class_names.size() when set), and x is finite.
  void validate() const;

  Dataset subset(const torch::Tensor& indices) const;
  /// The first n samples (all when n <= 0 or n >= size()).
  Dataset head(int64_t n) const;
  /// A random permutation of the samples, fixed by seed.
  Dataset shuffled(uint64_t seed) const;
  /// Splits off `fraction` of the samples (stratified by class) as the second
  /// part; deterministic for a seed.
  std::pair<Dataset, Dataset> split(double fraction, uint64_t seed) const;
  /// Consecutive batches; shuffled by `shuffle_seed` when given.
  std::vector<Batch> batches(int64_t batch_size, std::optional<uint64_t> shuffle_seed = {}) const;

  /// SHA-256 of one sample's float bytes, its shape and its label: the leaves.
  std::vector<std::string> leaf_hashes() const;
  /// Merkle root (hex SHA-256) over the leaves: the dataset's fingerprint.
  std::string fingerprint() const;
};

/// Where data comes from, as the CLI says it.
///  - "fashion-mnist": the Debian package's IDX files (split "train" or "test");
///  - a directory holding IDX files (train-/t10k- names), or an "images.idx[.gz]"
///    file with `labels` naming the labels file;
///  - "file.csv" (numeric features, `label_column` names the label column);
///  - "x.npy" with `labels` naming a "y.npy".
struct DataSpec {
  explicit DataSpec(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::string split_ = "train";      ///< "train" or "test" for IDX collections
  std::string labels_;               ///< separate labels file (IDX or NPY)
  std::string label_column_ = "label";  ///< CSV label column (name or 0-based index)
  int64_t limit_ = 0;                ///< keep the first n samples; 0 = all

  DataSpec& split(std::string v) { split_ = std::move(v); return *this; }
  DataSpec& labels(std::string v) { labels_ = std::move(v); return *this; }
  DataSpec& label_column(std::string v) { label_column_ = std::move(v); return *this; }
  DataSpec& limit(int64_t v) { limit_ = v; return *this; }
};

/// Loads by spec. Throws NotFound, CorruptData or InvalidArgument with a
/// message naming the file and what is wrong.
Dataset load_dataset(const DataSpec& spec);

/// Directory of the Debian package dataset-fashion-mnist, or "" when absent.
/// $AEGIS_FASHION_MNIST overrides it.
std::string fashion_mnist_dir();

/// Fashion-MNIST's class names.
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace aegis
