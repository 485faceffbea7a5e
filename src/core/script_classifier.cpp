#include "aegis/core/script_classifier.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/script.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/integrity/encryption.h"

namespace aegis {

namespace fs = std::filesystem;

namespace {

torch::Tensor output_logits(const c10::IValue& out, const ModelMeta& meta, int64_t batch) {
  AEGIS_CHECK(out.isTensor(), Unsupported,
              "the model's forward returns " << out.tagKind()
                                             << "; aegis needs a tensor of logits [batch, classes]");
  torch::Tensor t = out.toTensor();
  AEGIS_CHECK(t.dim() == 2 && t.size(0) == batch, ShapeMismatch,
              "the model returned shape " << t.sizes() << " for a batch of " << batch
                                          << "; expected [batch, classes]");
  if (meta.num_classes > 0) {
    AEGIS_CHECK(t.size(1) == meta.num_classes, ShapeMismatch,
                "the model returned " << t.size(1) << " logits per sample but its metadata says "
                                      << meta.num_classes << " classes");
  }
  return t;
}

}  // namespace

ScriptClassifier::ScriptClassifier(torch::jit::Module module, ModelMeta meta)
    : Classifier(std::move(meta)), module_(std::move(module)) {
  meta_.validate();
  if (!meta_.mean.empty()) {
    std::vector<int64_t> view(meta_.input_shape.size() + 1, 1);
    if (meta_.mean.size() > 1) view[1] = int64_t(meta_.mean.size());
    norm_mean_ = torch::tensor(meta_.mean, torch::kFloat).view(view);
    norm_std_ = torch::tensor(meta_.std, torch::kFloat).view(view);
  }
  set_training(false);
}

std::shared_ptr<ScriptClassifier> ScriptClassifier::load(const std::string& path,
                                                         const ModelOverrides& o,
                                                         torch::Device device) {
  AEGIS_CHECK(fs::exists(path), NotFound, "model file not found: " << path);
  AEGIS_CHECK(fs::is_regular_file(path), InvalidArgument, "model path is not a file: " << path);
  torch::jit::ExtraFilesMap extra{{kMetaFile, ""}};
  torch::jit::Module module;
  std::string decrypted;  // only for encrypted archives
  if (is_encrypted_file(path)) decrypted = decrypt_file_to_bytes(path, EncryptionKey::resolve(o.key_file_, path));
  try {
    if (decrypted.empty()) {
      module = torch::jit::load(path, device, extra);
    } else {
      std::istringstream in(decrypted);
      module = torch::jit::load(in, device, extra);
    }
  } catch (const std::exception& e) {
    AEGIS_FAIL(CorruptData, "cannot load " << path << ": not a TorchScript archive ("
                                            << one_line_message(e) << ")");
  }
  module.eval();

  ModelMeta meta;
  bool have_meta = !extra[kMetaFile].empty();
  if (have_meta) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(extra[kMetaFile]);
    } catch (const std::exception& e) {
      AEGIS_FAIL(CorruptData, path << ": aegis.json is not valid JSON (" << one_line_message(e) << ")");
    }
    meta = ModelMeta::from_json(j);
  }
  if (o.input_shape_) meta.input_shape = *o.input_shape_;
  if (o.num_classes_) meta.num_classes = *o.num_classes_;
  if (o.clip_min_) meta.clip_min = *o.clip_min_;
  if (o.clip_max_) meta.clip_max = *o.clip_max_;
  if (o.mean_) meta.mean = *o.mean_;
  if (o.std_) meta.std = *o.std_;
  if (o.class_names_) meta.class_names = *o.class_names_;
  if (meta.input_shape.empty() && o.fallback_input_shape_ && !o.fallback_input_shape_->empty()) {
    meta.input_shape = *o.fallback_input_shape_;
    std::ostringstream shape;
    for (size_t i = 0; i < meta.input_shape.size(); ++i) shape << (i ? "," : "") << meta.input_shape[i];
    log_info("note: " + path + " carries no aegis metadata; taking the input shape " + shape.str() +
             " from the data (aegis model meta writes it into the archive)");
  }
  AEGIS_CHECK(!meta.input_shape.empty(), InvalidArgument,
              path << " carries no aegis metadata: give the input shape (--input-shape, e.g. 1,28,28)");

  // Probe once with a mid-range input: it checks that the module accepts the
  // declared shape and tells the number of classes when nobody did.
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), meta.input_shape.begin(), meta.input_shape.end());
  torch::Tensor probe = torch::full(shape, (meta.clip_min + meta.clip_max) / 2, torch::kFloat).to(device);
  if (!meta.mean.empty()) {
    std::vector<int64_t> view(shape.size(), 1);
    if (meta.mean.size() > 1) view[1] = int64_t(meta.mean.size());
    AEGIS_CHECK(meta.mean.size() == 1 || int64_t(meta.mean.size()) == meta.input_shape[0], InvalidArgument,
                "normalisation has " << meta.mean.size() << " values for " << meta.input_shape[0] << " channels");
    probe = (probe - torch::tensor(meta.mean, torch::kFloat).view(view).to(device)) /
            torch::tensor(meta.std, torch::kFloat).view(view).to(device);
  }
  c10::IValue out;
  try {
    torch::NoGradGuard no_grad;
    out = module.forward({probe});
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    AEGIS_FAIL(ShapeMismatch, path << " rejects inputs of shape " << probe.sizes() << ": "
                                   << one_line_message(e));
  }
  AEGIS_CHECK(out.isTensor() && out.toTensor().dim() == 2, Unsupported,
              path << ": forward must return logits [batch, classes]");
  int64_t classes = out.toTensor().size(1);
  if (meta.num_classes == 0) meta.num_classes = classes;
  AEGIS_CHECK(meta.num_classes == classes, ShapeMismatch,
              path << " returns " << classes << " logits but " << meta.num_classes
                   << " classes were declared");
  auto model = std::make_shared<ScriptClassifier>(std::move(module), std::move(meta));
  model->device_ = device;
  if (model->norm_mean_.defined()) {
    model->norm_mean_ = model->norm_mean_.to(device);
    model->norm_std_ = model->norm_std_.to(device);
  }
  return model;
}

void ScriptClassifier::save(const std::string& path) const {
  fs::path target(path);
  if (target.has_parent_path() && !target.parent_path().empty()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    AEGIS_CHECK(!ec, Io, "cannot create directory " << target.parent_path().string() << ": " << ec.message());
  }
  std::string tmp = path + ".tmp";
  torch::jit::ExtraFilesMap extra{{kMetaFile, meta_.to_json().dump(2)}};
  try {
    module_.save(tmp, extra);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    AEGIS_FAIL(Io, "cannot write " << path << ": " << one_line_message(e));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  AEGIS_CHECK(!ec, Io, "cannot write " << path << ": " << ec.message());
}

std::vector<torch::Tensor> ScriptClassifier::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& p : module_.parameters()) out.push_back(p);
  return out;
}

int64_t ScriptClassifier::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : module_.parameters()) n += p.numel();
  return n;
}

std::vector<std::pair<std::string, torch::Tensor>> ScriptClassifier::named_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module_.named_parameters()) out.emplace_back(p.name, p.value);
  for (const auto& b : module_.named_buffers()) out.emplace_back(b.name, b.value);
  return out;
}

void ScriptClassifier::set_training(bool on) {
  module_.train(on);
  for (auto p : module_.parameters()) p.requires_grad_(on);
  training_ = on;
}

bool ScriptClassifier::has_features() const { return module_.find_method("features").has_value(); }

torch::Tensor ScriptClassifier::features(const torch::Tensor& x) {
  check_input(x);
  auto method = module_.find_method("features");
  AEGIS_CHECK(method.has_value(), Unsupported,
              "this model defines no features() method (penultimate-layer features)");
  count_queries(x.size(0));
  c10::IValue out = (*method)({normalize(x)});
  AEGIS_CHECK(out.isTensor(), Unsupported, "features() must return a tensor");
  return out.toTensor().flatten(1);
}

bool ScriptClassifier::has_feature_maps() const { return module_.find_method("feature_maps").has_value(); }

std::vector<torch::Tensor> ScriptClassifier::feature_maps(const torch::Tensor& x) {
  auto method = module_.find_method("feature_maps");
  if (!method.has_value()) return {features(x)};
  check_input(x);
  count_queries(x.size(0));
  c10::IValue out = (*method)({normalize(x)});
  AEGIS_CHECK(out.isTensorList(), Unsupported, "feature_maps() must return a list of tensors");
  std::vector<torch::Tensor> maps = out.toTensorVector();
  AEGIS_CHECK(!maps.empty(), Unsupported, "feature_maps() returned no tensors");
  return maps;
}

void ScriptClassifier::to(torch::Device device) {
  module_.to(device);
  if (norm_mean_.defined()) {
    norm_mean_ = norm_mean_.to(device);
    norm_std_ = norm_std_.to(device);
  }
  device_ = device;
}

std::shared_ptr<ScriptClassifier> ScriptClassifier::clone() const {
  torch::jit::Module copy = module_.deepcopy();
  auto out = std::make_shared<ScriptClassifier>(std::move(copy), meta_);
  out->to(device_);
  return out;
}

torch::Tensor ScriptClassifier::normalize(const torch::Tensor& x) const {
  torch::Tensor in = x.device() == device_ ? x : x.to(device_);
  if (in.scalar_type() != torch::kFloat) in = in.to(torch::kFloat);
  if (!norm_mean_.defined()) return in;
  return (in - norm_mean_) / norm_std_;
}

torch::Tensor ScriptClassifier::compute_logits(const torch::Tensor& x, bool /*grad*/) {
  c10::IValue out = module_.forward({normalize(x)});
  return output_logits(out, meta_, x.size(0));
}

}  // namespace aegis
