// Forward and forward+backward throughput of the built-in models at batch
// sizes 1, 32 and 256: the yardstick every attack benchmark is measured
// against (an attack iteration is at best one forward+backward).
//
//   build/bench/models_bench --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "aegis/core/architectures.h"
#include "aegis/core/random.h"

namespace {

std::shared_ptr<aegis::ScriptClassifier> make(const std::string& arch) {
  aegis::seed_everything(0);
  if (arch == "mlp") return aegis::build_architecture(aegis::ArchitectureOptions("mlp", {784}, 10));
  if (arch == "resnet") return aegis::build_architecture(aegis::ArchitectureOptions("resnet", {3, 32, 32}, 10));
  return aegis::build_architecture(aegis::ArchitectureOptions("cnn", {1, 28, 28}, 10));
}

void Forward(benchmark::State& state, const std::string& arch) {
  aegis::configure_threads();
  auto model = make(arch);
  std::vector<int64_t> shape = {state.range(0)};
  for (auto d : model->meta().input_shape) shape.push_back(d);
  torch::Tensor x = torch::rand(shape);
  for (int i = 0; i < 3; ++i) model->logits(x);  // warm the TorchScript executor
  for (auto _ : state) benchmark::DoNotOptimize(model->logits(x));
  state.counters["images/s"] = benchmark::Counter(double(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
}

/// One raw forward+backward with respect to the input (what an attack step costs).
void ForwardBackward(benchmark::State& state, const std::string& arch) {
  aegis::configure_threads();
  auto model = make(arch);
  std::vector<int64_t> shape = {state.range(0)};
  for (auto d : model->meta().input_shape) shape.push_back(d);
  torch::Tensor x = torch::rand(shape);
  torch::Tensor y = torch::randint(0, 10, {state.range(0)}, torch::kLong);
  for (int i = 0; i < 3; ++i) model->loss_gradient(x, y);
  for (auto _ : state) benchmark::DoNotOptimize(model->loss_gradient(x, y));
  state.counters["images/s"] = benchmark::Counter(double(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(Forward, cnn, std::string("cnn"))->Arg(1)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ForwardBackward, cnn, std::string("cnn"))->Arg(1)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Forward, mlp, std::string("mlp"))->Arg(1)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ForwardBackward, mlp, std::string("mlp"))->Arg(1)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Forward, resnet, std::string("resnet"))->Arg(1)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ForwardBackward, resnet, std::string("resnet"))->Arg(1)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
