// The gateway's costs and its monitor's detection figures:
//  - Latency: one request of a batch through the full gateway over loopback
//    HTTP (auth, validation, limits, monitor, inference, output, audit log),
//    against the in-process forward of the same batch (the yardstick).
//    Counters p50_us / p99_us per configuration.
//  - Monitor: queries until a Square-style probe (random square patches of
//    +-eps around one Fashion-MNIST test image, as Square attack queries look)
//    raises a k-NN alert, with the threshold calibrated for 1% false
//    positives on training images; and the false-positive rate on benign
//    test-set traffic in random order.
//
//   build/bench/serve_bench --benchmark_counters_tabular=true
//
// Throughput under concurrent load is measured with wrk: bench/serve_load.sh.

#include <benchmark/benchmark.h>
#include "aegis/serve/internal/httplib.h"
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "aegis/core/architectures.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/random.h"
#include "aegis/serve/gateway.h"
#include "aegis/serve/query_monitor.h"
#include "aegis/serve/server.h"

namespace {

using namespace aegis;
using Clock = std::chrono::steady_clock;

void percentiles(benchmark::State& state, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
}

std::string model_path() {
  static std::string path = [] {
    seed_everything(0);
    auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10));
    std::string p = (std::filesystem::temp_directory_path() / "aegis_serve_bench_model.pt").string();
    m->save(p);
    return p;
  }();
  return path;
}

void InProcessForward(benchmark::State& state) {
  configure_threads();
  auto model = ScriptClassifier::load(model_path());
  torch::Tensor x = torch::rand({state.range(0), 1, 28, 28});
  for (int i = 0; i < 3; ++i) model->probabilities(x);
  std::vector<double> us;
  for (auto _ : state) {
    auto t0 = Clock::now();
    benchmark::DoNotOptimize(model->probabilities(x));
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  percentiles(state, us);
}

void GatewayRequest(benchmark::State& state) {
  configure_threads();
  auto keys = std::make_shared<serve::KeyStore>();
  const std::string key = keys->create(serve::KeyOptions(serve::Role::Predict)).key;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "aegis_serve_bench";
  std::filesystem::remove_all(dir);
  serve::ServeConfig c;
  c.server.port = 0;
  c.server.audit_path = (dir / "audit.db").string();
  serve::ModelConfig m;
  m.name = "m";
  m.path = model_path();
  m.monitor = state.range(1) != 0;
  m.monitor_options.knn_threshold(1.0);
  c.models.push_back(m);
  serve::Gateway gw(c, serve::GatewayOptions{nullptr, nullptr, keys});
  serve::GatewayServer server(gw);
  int port = server.bind("127.0.0.1", 0);
  server.start();
  httplib::Client client("127.0.0.1", port);
  client.set_keep_alive(true);
  torch::Tensor x = torch::rand({state.range(0), 1, 28, 28});
  const float* d = x.data_ptr<float>();
  const std::string body = nlohmann::json{{"inputs",
                                           {{{"name", "x"},
                                             {"shape", x.sizes().vec()},
                                             {"datatype", "FP32"},
                                             {"data", std::vector<float>(d, d + x.numel())}}}}}
                               .dump();
  httplib::Headers h = {{"Authorization", "Bearer " + key}};
  for (int i = 0; i < 3; ++i) client.Post("/v2/models/m/infer", h, body, "application/json");
  std::vector<double> us;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto r = client.Post("/v2/models/m/infer", h, body, "application/json");
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!r || r->status != 200) state.SkipWithError("request failed");
  }
  percentiles(state, us);
  server.stop();
}

// Square-style probe: each query changes one random square of the image by
// +-eps (the Square attack's update), around the same starting image.
void MonitorDetection(benchmark::State& state) {
  configure_threads();
  Dataset train, test;
  try {
    train = load_dataset(DataSpec("fashion-mnist").split("train").limit(3000));
    test = load_dataset(DataSpec("fashion-mnist").split("test").limit(4000)).shuffled(1);
  } catch (const std::exception& e) {
    state.SkipWithError(("Fashion-MNIST is needed: " + std::string(e.what())).c_str());
    return;
  }
  serve::MonitorOptions opt =
      serve::MonitorOptions().k(static_cast<int64_t>(state.range(0))).history(1000).prada(false);
  for (auto _ : state) {
    const double thr = serve::calibrate_knn_threshold(train.shuffled(2).x, opt, 0.01);
    opt.knn_threshold(thr);
    // Benign traffic: one key sending the test set in random order.
    serve::QueryMonitor benign(opt);
    int64_t alerts = 0;
    for (int64_t i = 0; i < test.size(); ++i) alerts += benign.observe("user", test.x.slice(0, i, i + 1)).alert;
    state.counters["knn_threshold"] = thr;
    state.counters["benign_fpr"] = static_cast<double>(alerts) / test.size();
    // Probes around 20 images, eps 0.1, squares of 5x5 pixels.
    auto gen = make_generator(3, "square-probe");
    std::vector<double> until;
    for (int64_t img = 0; img < 20; ++img) {
      serve::QueryMonitor mon(opt);
      torch::Tensor x = test.x[img].unsqueeze(0).clone();
      int64_t q = 0;
      for (; q < 2000; ++q) {
        int64_t r = torch::randint(0, 24, {1}, gen).item<int64_t>(),
                col = torch::randint(0, 24, {1}, gen).item<int64_t>();
        double sign = torch::rand({1}, gen).item<double>() < 0.5 ? -0.1 : 0.1;
        torch::Tensor probe = test.x[img].unsqueeze(0).clone();
        probe.slice(2, r, r + 5).slice(3, col, col + 5).add_(sign);
        probe = torch::max(torch::min(probe, x + 0.1), x - 0.1).clamp(0, 1);
        if (mon.observe("attacker", probe).alert) break;
      }
      until.push_back(static_cast<double>(q + 1));
    }
    std::sort(until.begin(), until.end());
    state.counters["square_queries_to_detect_median"] = until[until.size() / 2];
    state.counters["square_queries_to_detect_max"] = until.back();
  }
}

}  // namespace

BENCHMARK(InProcessForward)->Arg(1)->Arg(32)->Unit(benchmark::kMicrosecond)->Iterations(300);
BENCHMARK(GatewayRequest)
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({32, 0})
    ->Args({32, 1})
    ->ArgNames({"batch", "monitor"})
    ->Unit(benchmark::kMicrosecond)
    ->Iterations(300);
BENCHMARK(MonitorDetection)->Arg(20)->ArgName("k")->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK_MAIN();
