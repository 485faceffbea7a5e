#include "aegis/core/architectures.h"

#include <cmath>
#include <sstream>

#include <torch/script.h>
#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

namespace {

/// Builds a TorchScript module piece by piece: registers parameters and
/// buffers with PyTorch's default initialisation and returns the TorchScript
/// expressions that use them, so each architecture reads like its forward().
class ScriptBuilder {
 public:
  explicit ScriptBuilder(const std::string& class_name)
      : module_(c10::QualifiedName("__torch__.aegis." + class_name)) {
    module_.register_attribute("training", c10::BoolType::get(), false);
  }

  torch::jit::Module& module() { return module_; }

  void buffer(const std::string& name, torch::Tensor value) { module_.register_buffer(name, std::move(value)); }
  void attribute_float(const std::string& name, double v) {
    module_.register_attribute(name, c10::FloatType::get(), v);
  }

  /// Conv weight [out, in, k, k] and bias; returns "torch.conv2d(<x>, ...)".
  std::string conv(const std::string& name, const std::string& x, int64_t in, int64_t out, int64_t k,
                   int64_t stride, int64_t pad, bool bias) {
    torch::Tensor w = torch::empty({out, in, k, k});
    double fan_in = double(in * k * k);
    init_uniform(w, 1.0 / std::sqrt(fan_in));
    module_.register_parameter(name + "_weight", w, false);
    std::string b = "None";
    if (bias) {
      torch::Tensor bt = torch::empty({out});
      init_uniform(bt, 1.0 / std::sqrt(fan_in));
      module_.register_parameter(name + "_bias", bt, false);
      b = "self." + name + "_bias";
    }
    std::ostringstream s;
    s << "torch.conv2d(" << x << ", self." << name << "_weight, " << b << ", [" << stride << ", "
      << stride << "], [" << pad << ", " << pad << "])";
    return s.str();
  }

  std::string linear(const std::string& name, const std::string& x, int64_t in, int64_t out) {
    torch::Tensor w = torch::empty({out, in});
    torch::Tensor b = torch::empty({out});
    init_uniform(w, 1.0 / std::sqrt(double(in)));
    init_uniform(b, 1.0 / std::sqrt(double(in)));
    module_.register_parameter(name + "_weight", w, false);
    module_.register_parameter(name + "_bias", b, false);
    return "torch.linear(" + x + ", self." + name + "_weight, self." + name + "_bias)";
  }

  std::string batch_norm(const std::string& name, const std::string& x, int64_t channels) {
    module_.register_parameter(name + "_weight", torch::ones({channels}), false);
    module_.register_parameter(name + "_bias", torch::zeros({channels}), false);
    module_.register_buffer(name + "_running_mean", torch::zeros({channels}));
    module_.register_buffer(name + "_running_var", torch::ones({channels}));
    const std::string s = "self." + name;
    return "torch.batch_norm(" + x + ", " + s + "_weight, " + s + "_bias, " + s + "_running_mean, " + s +
           "_running_var, self.training, 0.1, 1e-05, False)";
  }

  /// GroupNorm with affine parameters: the per-sample alternative to batch
  /// norm that DP-SGD can train (8 groups, or one a channel below 8 channels).
  std::string group_norm(const std::string& name, const std::string& x, int64_t channels) {
    module_.register_parameter(name + "_weight", torch::ones({channels}), false);
    module_.register_parameter(name + "_bias", torch::zeros({channels}), false);
    const int64_t groups = channels % 8 == 0 ? 8 : channels;
    return "torch.group_norm(" + x + ", " + std::to_string(groups) + ", self." + name + "_weight, self." + name +
           "_bias, 1e-05)";
  }

  /// Batch norm, or group norm in the DP-ready variants.
  std::string norm(const std::string& name, const std::string& x, int64_t channels) {
    return group_norm_ ? group_norm(name, x, channels) : batch_norm(name, x, channels);
  }
  void use_group_norm(bool on) { group_norm_ = on; }

  void define(const std::string& source) { module_.define(source); }

 private:
  static void init_uniform(torch::Tensor& t, double bound) {
    torch::NoGradGuard g;
    t.uniform_(-bound, bound);
  }
  torch::jit::Module module_;
  bool group_norm_ = false;
};

std::vector<int64_t> norm_view(size_t dims, size_t count) {
  std::vector<int64_t> view(dims + 1, 1);
  if (count > 1) view[1] = int64_t(count);
  return view;
}

void add_normalization(ScriptBuilder& b, const ArchitectureOptions& o) {
  size_t n = o.mean_.empty() ? 1 : o.mean_.size();
  auto view = norm_view(o.input_shape_.size(), n);
  torch::Tensor mean = o.mean_.empty() ? torch::zeros(view) : torch::tensor(o.mean_, torch::kFloat).view(view);
  torch::Tensor stdv = o.std_.empty() ? torch::ones(view) : torch::tensor(o.std_, torch::kFloat).view(view);
  b.buffer("norm_mean", mean);
  b.buffer("norm_std", stdv);
}

const char* kNormalize = "        x = (x - self.norm_mean) / self.norm_std\n";
// Every architecture defines feature_maps(x): its intermediate activations,
// shallow to deep, the last being the penultimate features (detectors use the
// earlier ones); features(x) is that last one.
const char* kFeatureMaps = "    def feature_maps(self, x) -> List[Tensor]:\n";
const char* kFeatures =
    "    def features(self, x):\n"
    "        return self.feature_maps(x)[-1]\n";
const char* kForward =
    "    def forward(self, x):\n"
    "        h = torch.dropout(self.features(x), self.dropout_p, self.training)\n"
    "        return self.head(h)\n";

void build_mlp(ScriptBuilder& b, const ArchitectureOptions& o) {
  AEGIS_CHECK(o.input_shape_.size() == 1, InvalidArgument,
              "mlp takes one-dimensional samples (features); got " << o.input_shape_.size() << " dimensions");
  AEGIS_CHECK(!o.hidden_.empty(), InvalidArgument, "mlp needs at least one hidden layer");
  std::ostringstream src;
  src << kFeatureMaps << kNormalize << "        x = torch.flatten(x, 1)\n        maps: List[Tensor] = []\n";
  int64_t in = o.input_shape_[0];
  for (size_t i = 0; i < o.hidden_.size(); ++i) {
    AEGIS_CHECK(o.hidden_[i] > 0, InvalidArgument, "mlp hidden width must be > 0");
    if (i > 0) src << "        x = torch.dropout(x, self.dropout_p, self.training)\n";
    src << "        x = torch.relu(" << b.linear("fc" + std::to_string(i + 1), "x", in, o.hidden_[i]) << ")\n";
    src << "        maps.append(x)\n";
    in = o.hidden_[i];
  }
  src << "        return maps\n" << kFeatures;
  src << "    def head(self, h):\n        return " << b.linear("out", "h", in, o.num_classes_) << "\n";
  src << kForward;
  b.define(src.str());
}

void build_cnn(ScriptBuilder& b, const ArchitectureOptions& o) {
  AEGIS_CHECK(o.input_shape_.size() == 3 && o.input_shape_[1] == 28 && o.input_shape_[2] == 28,
              InvalidArgument, "cnn takes [C, 28, 28] images");
  int64_t c = o.input_shape_[0];
  std::ostringstream src;
  src << kFeatureMaps << kNormalize
      << "        h1 = torch.relu(" << b.conv("conv1", "x", c, 32, 3, 1, 1, true) << ")\n"
      << "        h2 = torch.relu(" << b.conv("conv2", "torch.max_pool2d(h1, [2, 2])", 32, 64, 3, 1, 1, true) << ")\n"
      << "        x = torch.flatten(torch.max_pool2d(h2, [2, 2]), 1)\n"
      << "        x = torch.dropout(x, self.dropout_p, self.training)\n"
      << "        return [h1, h2, torch.relu(" << b.linear("fc1", "x", 64 * 7 * 7, 128) << ")]\n"
      << kFeatures
      << "    def head(self, h):\n        return " << b.linear("fc2", "h", 128, o.num_classes_) << "\n"
      << kForward;
  b.define(src.str());
}

/// The CNN Tramer and Boneh 2021 (after Papernot et al. 2021) train with
/// DP-SGD: 26k parameters instead of cnn's 420k, so the noise, whose norm
/// grows with the square root of the parameter count, drowns less signal;
/// tanh, whose bounded activations keep per-sample gradients small relative
/// to the clipping norm.
void build_cnn_dp(ScriptBuilder& b, const ArchitectureOptions& o) {
  AEGIS_CHECK(o.input_shape_.size() == 3 && o.input_shape_[1] == 28 && o.input_shape_[2] == 28,
              InvalidArgument, "cnn-dp takes [C, 28, 28] images");
  int64_t c = o.input_shape_[0];
  std::ostringstream src;
  src << kFeatureMaps << kNormalize
      << "        h1 = torch.tanh(" << b.conv("conv1", "x", c, 16, 8, 2, 3, true) << ")\n"
      << "        h2 = torch.tanh(" << b.conv("conv2", "torch.max_pool2d(h1, [2, 2], [1, 1])", 16, 32, 4, 2, 0, true)
      << ")\n"
      << "        x = torch.flatten(torch.max_pool2d(h2, [2, 2], [1, 1]), 1)\n"
      << "        return [h1, h2, torch.tanh(" << b.linear("fc1", "x", 32 * 4 * 4, 32) << ")]\n"
      << kFeatures
      << "    def head(self, h):\n        return " << b.linear("fc2", "h", 32, o.num_classes_) << "\n"
      << kForward;
  b.define(src.str());
}

/// A basic residual block: conv-bn-relu-conv-bn plus a (projected) shortcut
/// (group norm instead of batch norm in resnet-gn).
std::string resnet_block(ScriptBuilder& b, const std::string& name, int64_t in, int64_t out, int64_t stride) {
  std::ostringstream s;
  s << "        y = torch.relu(" << b.norm(name + "_bn1", b.conv(name + "_conv1", "x", in, out, 3, stride, 1, false), out) << ")\n";
  s << "        y = " << b.norm(name + "_bn2", b.conv(name + "_conv2", "y", out, out, 3, 1, 1, false), out) << "\n";
  if (stride != 1 || in != out) {
    s << "        x = torch.relu(y + " << b.norm(name + "_bnp", b.conv(name + "_proj", "x", in, out, 1, stride, 0, false), out) << ")\n";
  } else {
    s << "        x = torch.relu(y + x)\n";
  }
  return s.str();
}

void build_resnet(ScriptBuilder& b, const ArchitectureOptions& o) {
  AEGIS_CHECK(o.input_shape_.size() == 3 && o.input_shape_[1] >= 8 && o.input_shape_[2] >= 8,
              InvalidArgument, "resnet takes [C, H, W] images of at least 8x8 (32x32 is its design size)");
  int64_t c = o.input_shape_[0];
  std::ostringstream src;
  src << kFeatureMaps << kNormalize
      << "        x = torch.relu(" << b.norm("bn0", b.conv("conv0", "x", c, 16, 3, 1, 1, false), 16) << ")\n"
      << "        maps: List[Tensor] = [x]\n"
      << resnet_block(b, "s1", 16, 16, 1) << "        maps.append(x)\n"
      << resnet_block(b, "s2", 16, 32, 2) << "        maps.append(x)\n"
      << resnet_block(b, "s3", 32, 64, 2) << "        maps.append(x)\n"
      << "        maps.append(torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1))\n"
      << "        return maps\n"
      << kFeatures
      << "    def head(self, h):\n        return " << b.linear("fc", "h", 64, o.num_classes_) << "\n"
      << kForward;
  b.define(src.str());
}

}  // namespace

std::vector<std::string> architecture_names() { return {"mlp", "cnn", "cnn-dp", "resnet", "resnet-gn"}; }

std::shared_ptr<ScriptClassifier> build_architecture(const ArchitectureOptions& o) {
  AEGIS_CHECK(o.num_classes_ >= 2, InvalidArgument, "a classifier needs at least 2 classes, got " << o.num_classes_);
  AEGIS_CHECK(o.dropout_ >= 0 && o.dropout_ < 1, InvalidArgument, "dropout must be in [0, 1), got " << o.dropout_);
  AEGIS_CHECK(o.mean_.size() == o.std_.size(), InvalidArgument, "mean and std differ in length");
  for (int64_t d : o.input_shape_) AEGIS_CHECK(d > 0, InvalidArgument, "input shape has a non-positive dimension");

  ScriptBuilder b(o.name_ == "mlp" ? "MLP" : o.name_ == "cnn" ? "CNN" : o.name_ == "cnn-dp" ? "CNNDP" : o.name_ == "resnet-gn" ? "ResNetGN" : "ResNet");
  add_normalization(b, o);
  b.attribute_float("dropout_p", o.dropout_);
  if (o.name_ == "mlp") {
    build_mlp(b, o);
  } else if (o.name_ == "cnn") {
    build_cnn(b, o);
  } else if (o.name_ == "cnn-dp") {
    build_cnn_dp(b, o);
  } else if (o.name_ == "resnet" || o.name_ == "resnet-gn") {
    b.use_group_norm(o.name_ == "resnet-gn");
    build_resnet(b, o);
  } else {
    AEGIS_FAIL(InvalidArgument, "unknown architecture '" << o.name_ << "' (choose mlp, cnn, cnn-dp, resnet or resnet-gn)");
  }

  ModelMeta meta;
  meta.architecture = o.name_;
  meta.input_shape = o.input_shape_;
  meta.num_classes = o.num_classes_;
  meta.clip_min = o.clip_min_;
  meta.clip_max = o.clip_max_;
  meta.class_names = o.class_names_;
  meta.provenance["architecture"] = {{"name", o.name_}, {"dropout", o.dropout_}};
  if (o.name_ == "mlp") meta.provenance["architecture"]["hidden"] = o.hidden_;
  if (!o.mean_.empty()) meta.provenance["architecture"]["normalization"] = {{"mean", o.mean_}, {"std", o.std_}};
  return std::make_shared<ScriptClassifier>(std::move(b.module()), std::move(meta));
}

}  // namespace aegis
