#include "aegis/core/dataset.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <torch/torch.h>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/core/sha256.h"

namespace aegis {

namespace fs = std::filesystem;

std::vector<int64_t> Dataset::sample_shape() const {
  if (!x.defined()) return {};
  auto s = x.sizes().vec();
  s.erase(s.begin());
  return s;
}

int64_t Dataset::num_classes() const {
  if (!class_names.empty()) return int64_t(class_names.size());
  if (!y.defined() || y.numel() == 0) return 0;
  return y.max().item<int64_t>() + 1;
}

void Dataset::validate() const {
  AEGIS_CHECK(x.defined() && y.defined(), CorruptData, source << ": dataset has no samples or labels");
  AEGIS_CHECK(x.dim() >= 2, CorruptData, source << ": samples must be [N, ...], got " << x.sizes());
  AEGIS_CHECK(y.dim() == 1 && y.scalar_type() == torch::kLong, CorruptData,
              source << ": labels must be a 1-D int64 tensor");
  AEGIS_CHECK(x.size(0) == y.size(0), CorruptData,
              source << ": " << x.size(0) << " samples but " << y.size(0) << " labels");
  AEGIS_CHECK(x.scalar_type() == torch::kFloat, CorruptData, source << ": samples must be float32");
  if (y.numel() > 0) {
    AEGIS_CHECK(y.min().item<int64_t>() >= 0, CorruptData, source << ": negative label " << y.min().item<int64_t>());
    if (!class_names.empty()) {
      AEGIS_CHECK(y.max().item<int64_t>() < int64_t(class_names.size()), CorruptData,
                  source << ": label " << y.max().item<int64_t>() << " but only " << class_names.size()
                         << " classes");
    }
  }
  AEGIS_CHECK(torch::isfinite(x).all().item<bool>(), CorruptData, source << ": samples contain NaN or Inf");
}

Dataset Dataset::subset(const torch::Tensor& indices) const {
  Dataset d = *this;
  torch::Tensor idx = indices.to(torch::kLong);
  d.x = x.index_select(0, idx);
  d.y = y.index_select(0, idx);
  return d;
}

Dataset Dataset::head(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  Dataset d = *this;
  d.x = x.narrow(0, 0, n);
  d.y = y.narrow(0, 0, n);
  return d;
}

Dataset Dataset::shuffled(uint64_t seed) const {
  auto gen = make_generator(seed, "shuffle");
  return subset(torch::randperm(size(), gen, torch::kLong));
}

std::pair<Dataset, Dataset> Dataset::split(double fraction, uint64_t seed) const {
  AEGIS_CHECK(fraction > 0 && fraction < 1, InvalidArgument, "split fraction must be in (0, 1), got " << fraction);
  auto gen = make_generator(seed, "split");
  std::vector<int64_t> first, second;
  // Stratified: the same fraction from every class, each class's order shuffled.
  int64_t classes = num_classes();
  for (int64_t c = 0; c < classes; ++c) {
    torch::Tensor idx = (y == c).nonzero().flatten();
    int64_t n = idx.size(0);
    if (n == 0) continue;
    idx = idx.index_select(0, torch::randperm(n, gen, torch::kLong));
    int64_t take = int64_t(std::llround(double(n) * fraction));
    auto acc = idx.accessor<int64_t, 1>();
    for (int64_t i = 0; i < n; ++i) (i < take ? second : first).push_back(acc[i]);
  }
  std::sort(first.begin(), first.end());
  std::sort(second.begin(), second.end());
  AEGIS_CHECK(!first.empty() && !second.empty(), InvalidArgument,
              "a split of " << size() << " samples at " << fraction << " leaves one side empty");
  return {subset(torch::tensor(first, torch::kLong)), subset(torch::tensor(second, torch::kLong))};
}

std::vector<Batch> Dataset::batches(int64_t batch_size, std::optional<uint64_t> shuffle_seed) const {
  AEGIS_CHECK(batch_size > 0, InvalidArgument, "batch size must be > 0, got " << batch_size);
  torch::Tensor order;
  if (shuffle_seed) {
    auto gen = make_generator(*shuffle_seed, "batches");
    order = torch::randperm(size(), gen, torch::kLong);
  } else {
    order = torch::arange(size(), torch::kLong);
  }
  std::vector<Batch> out;
  for (int64_t start = 0; start < size(); start += batch_size) {
    int64_t n = std::min(batch_size, size() - start);
    torch::Tensor idx = order.narrow(0, start, n);
    if (shuffle_seed) {
      out.push_back({x.index_select(0, idx), y.index_select(0, idx), idx});
    } else {
      out.push_back({x.narrow(0, start, n), y.narrow(0, start, n), idx});
    }
  }
  return out;
}

std::vector<std::string> Dataset::leaf_hashes() const {
  std::vector<std::string> out;
  if (size() == 0) return out;
  torch::Tensor xc = x.contiguous().to(torch::kFloat);
  torch::Tensor yc = y.contiguous().to(torch::kLong);
  const int64_t per = xc.numel() / size();
  const float* px = xc.data_ptr<float>();
  const int64_t* py = yc.data_ptr<int64_t>();
  auto shape = sample_shape();
  out.reserve(size_t(size()));
  for (int64_t i = 0; i < size(); ++i) {
    Sha256 h;
    h.update("aegis-sample-v1", 15);
    h.update(shape.data(), shape.size() * sizeof(int64_t));
    h.update(&py[i], sizeof(int64_t));
    h.update(px + i * per, size_t(per) * sizeof(float));
    out.push_back(h.hex());
  }
  return out;
}

std::string Dataset::fingerprint() const {
  std::vector<std::string> level = leaf_hashes();
  if (level.empty()) return sha256_hex("aegis-empty-dataset");
  while (level.size() > 1) {
    std::vector<std::string> next;
    for (size_t i = 0; i < level.size(); i += 2) {
      // An odd node out is promoted unchanged.
      next.push_back(i + 1 < level.size() ? sha256_hex(level[i] + level[i + 1]) : level[i]);
    }
    level.swap(next);
  }
  return level[0];
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

std::string fashion_mnist_dir() {
  if (const char* env = std::getenv("AEGIS_FASHION_MNIST")) return env;
  const char* dir = "/usr/share/datasets/fashion-mnist";
  return fs::exists(fs::path(dir) / "t10k-labels-idx1-ubyte.gz") ? dir : "";
}

namespace {

std::string lower_ext(const std::string& path) {
  std::string p = path;
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (p.size() > 3 && p.ends_with(".gz")) p = p.substr(0, p.size() - 3);
  auto dot = p.rfind('.');
  return dot == std::string::npos ? "" : p.substr(dot);
}

std::string find_idx(const fs::path& dir, const std::string& prefix, const std::string& kind) {
  for (const char* suffix : {".gz", ""}) {
    fs::path p = dir / (prefix + "-" + kind + (kind == "images" ? "-idx3-ubyte" : "-idx1-ubyte") + suffix);
    if (fs::exists(p)) return p.string();
  }
  AEGIS_FAIL(NotFound, "no " << prefix << " " << kind << " IDX file in " << dir.string());
}

Dataset load_idx_dir(const std::string& dir, const std::string& split) {
  AEGIS_CHECK(split == "train" || split == "test", InvalidArgument,
              "split must be 'train' or 'test', got '" << split << "'");
  std::string prefix = split == "train" ? "train" : "t10k";
  return load_idx(find_idx(dir, prefix, "images"), find_idx(dir, prefix, "labels"));
}

}  // namespace

Dataset load_dataset(const DataSpec& spec) {
  AEGIS_CHECK(!spec.path_.empty(), InvalidArgument, "no data given");
  Dataset d;
  if (spec.path_ == "fashion-mnist") {
    std::string dir = fashion_mnist_dir();
    AEGIS_CHECK(!dir.empty(), NotFound,
                "Fashion-MNIST not found: install Debian's dataset-fashion-mnist (scripts/setup) or set AEGIS_FASHION_MNIST");
    d = load_idx_dir(dir, spec.split_);
    d.class_names = fashion_mnist_classes();
    d.source = "fashion-mnist:" + spec.split_;
  } else {
    AEGIS_CHECK(fs::exists(spec.path_), NotFound, "data not found: " << spec.path_);
    if (fs::is_directory(spec.path_)) {
      d = load_idx_dir(spec.path_, spec.split_);
    } else {
      std::string ext = lower_ext(spec.path_);
      if (ext == ".csv") {
        d = load_csv(spec.path_, spec.label_column_);
      } else if (ext == ".npy") {
        AEGIS_CHECK(!spec.labels_.empty(), InvalidArgument, "NPY data needs a labels file (--labels y.npy)");
        d = load_npy(spec.path_, spec.labels_);
      } else {
        AEGIS_CHECK(!spec.labels_.empty(), InvalidArgument,
                    "cannot tell the format of " << spec.path_
                                                 << " (use .csv, .npy, an IDX file with --labels, or a directory)");
        d = load_idx(spec.path_, spec.labels_);
      }
    }
  }
  d = d.head(spec.limit_);
  d.validate();
  return d;
}

}  // namespace aegis
