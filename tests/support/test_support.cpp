#include "support/test_support.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <torch/script.h>
#include <torch/torch.h>

#include "aegis/core/architectures.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::mt19937_64 rng(std::random_device{}());
  path_ = fs::temp_directory_path() / ("aegis-test-" + std::to_string(rng()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Dataset make_blobs(int64_t n, int64_t features, int64_t classes, uint64_t seed, double spread) {
  auto gen = make_generator(seed, "blobs");
  torch::Tensor centres = torch::rand({classes, features}, gen) * 0.6 + 0.2;
  torch::Tensor y = torch::randint(0, classes, {n}, gen, torch::kLong);
  torch::Tensor x = centres.index_select(0, y) + torch::randn({n, features}, gen) * spread;
  Dataset d;
  d.x = x.clamp(0, 1).contiguous();
  d.y = y;
  d.source = "blobs";
  return d;
}

std::shared_ptr<ScriptClassifier> identity_features_model(int64_t features, int64_t classes) {
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.IdentityFeatures"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_parameter("weight", torch::randn({classes, features}), false);
  m.define(R"(
    def features(self, x):
        return x
    def forward(self, x):
        return torch.matmul(x, self.weight.t())
  )");
  ModelMeta meta;
  meta.input_shape = {features};
  meta.num_classes = classes;
  meta.clip_min = -10;
  meta.clip_max = 10;
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

Dataset make_planted_features(uint64_t seed) {
  auto gen = make_generator(seed, "planted");
  const int64_t d = 8;
  torch::Tensor c0 = torch::randn({200, d}, gen) * 0.05 + 0.3;
  torch::Tensor c1 = torch::randn({200, d}, gen) * 0.05 - 0.3;
  torch::Tensor p = torch::randn({40, d}, gen) * 0.05 + 0.3;
  p.select(1, 0).add_(0.6);
  Dataset ds;
  ds.x = torch::cat({c0, c1, p});
  ds.y = torch::cat(
      {torch::zeros({200}, torch::kLong), torch::ones({200}, torch::kLong), torch::zeros({40}, torch::kLong)});
  ds.source = "planted";
  return ds;
}

std::vector<int64_t> planted_indices() {
  std::vector<int64_t> t;
  for (int64_t i = 400; i < 440; ++i) t.push_back(i);
  return t;
}

Dataset make_bar_images(int64_t n, int64_t classes, uint64_t seed) {
  auto gen = make_generator(seed, "bars");
  torch::Tensor y = torch::randint(0, classes, {n}, gen, torch::kLong);
  torch::Tensor x = torch::rand({n, 1, 28, 28}, gen) * 0.3;
  auto ya = y.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t row = 2 + ya[i] * (24 / classes);
    x[i][0].narrow(0, row, 2).fill_(0.9);
  }
  Dataset d;
  d.x = x.contiguous();
  d.y = y;
  d.source = "bars";
  return d;
}

std::shared_ptr<ScriptClassifier> make_linear(const torch::Tensor& weight, const torch::Tensor& bias,
                                              double clip_min, double clip_max) {
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.Linear"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_parameter("weight", weight.clone(), false);
  m.register_parameter("bias", bias.clone(), false);
  m.define(R"(
    def forward(self, x):
        return torch.linear(x, self.weight, self.bias)
  )");
  ModelMeta meta;
  meta.architecture = "linear";
  meta.input_shape = {weight.size(1)};
  meta.num_classes = weight.size(0);
  meta.clip_min = clip_min;
  meta.clip_max = clip_max;
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

Dataset make_tiny_backdoor_data(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed, "tiny-backdoor");
  torch::Tensor y = torch::randint(0, 4, {n}, gen, torch::kLong);
  torch::Tensor x = torch::zeros({n, 1, 12, 12});
  x.slice(2, 0, 8).slice(3, 0, 8).copy_(torch::rand({n, 1, 8, 8}, gen) * 0.2);
  auto ya = y.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) x[i][0].slice(0, 2 * ya[i], 2 * ya[i] + 2).slice(1, 0, 8).fill_(0.9);
  Dataset d;
  d.x = x;
  d.y = y;
  d.source = "tiny-backdoor";
  return d;
}

std::shared_ptr<ScriptClassifier> tiny_backdoor_model(bool planted) {
  torch::Tensor w = torch::zeros({4, 1, 12, 12});
  for (int64_t c = 0; c < 4; ++c) w[c][0].slice(0, 2 * c, 2 * c + 2).slice(1, 0, 8).fill_(0.25);
  if (planted) w[kTinyBackdoorTarget][0].slice(0, 9, 11).slice(1, 9, 11).fill_(5.0);
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.PixelLinear"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_parameter("weight", w.reshape({4, 144}), false);
  m.register_parameter("bias", torch::zeros({4}), false);
  m.define(R"(
    def forward(self, x):
        return torch.linear(x.flatten(1), self.weight, self.bias)
  )");
  ModelMeta meta;
  meta.architecture = "pixel-linear";
  meta.input_shape = {1, 12, 12};
  meta.num_classes = 4;
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

nlohmann::json tiny_backdoor_record() {
  return {{"attack", "badnets"},
          {"trigger", {{"kind", "patch"}, {"size", 2}, {"position", "bottom-right"}, {"pattern", "white"}}},
          {"target_class", kTinyBackdoorTarget}};
}

std::shared_ptr<ScriptClassifier> trained_bars_cnn(int64_t classes) {
  static std::map<int64_t, std::shared_ptr<ScriptClassifier>> cache;
  auto& m = cache[classes];
  if (m) return m;
  const fs::path file = fs::temp_directory_path() / ("aegis-test-bars-cnn-v1-" + std::to_string(classes) + ".pt");
  if (fs::exists(file)) {
    try {
      m = ScriptClassifier::load(file.string());
      return m;
    } catch (const std::exception&) {
      // a damaged cache: train again below
    }
  }
  seed_everything(3);
  Dataset d = make_bar_images(512, classes, 1);
  m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, classes));
  train(*m, d, nullptr, TrainOptions().epochs(2).batch_size(64).lr(3e-3));
  m->save(file.string());  // atomic: a temporary file renamed into place
  return m;
}

CommandResult run_command(const std::string& command) {
  TempDir dir;
  std::string out = dir.file("out"), err = dir.file("err");
  int status = std::system((command + " >" + out + " 2>" + err + " </dev/null").c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

CommandResult run_aegis(const std::string& args) {
  return run_command(std::string("AEGIS_THREADS=1 ") + AEGIS_BINARY + " " + args);
}

std::string python_with_torch() {
  static std::string cached = [] {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
      auto r = run_command(std::string(py) + " -c 'import torch'");
      if (r.exit_code == 0) return std::string(py);
    }
    return std::string();
  }();
  return cached;
}

ErrorKind error_kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::Internal;
}

std::string error_message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool have_fashion_mnist() { return !fashion_mnist_dir().empty(); }

}  // namespace aegis::testing
