// The gateway's costs and its monitor's detection figures:
//  - Latency: one request of a batch through the full gateway over loopback
//    HTTP (auth, validation, limits, monitor, inference, output, audit log),
//    against the in-process forward of the same batch (the yardstick).
//    Counters p50_us / p99_us per configuration; `strip` > 0 adds the STRIP
//    detection filter with that many overlays; `state` 1 adds a rate limit,
//    a daily quota and a response rule with the state in this process, 2 the
//    same with the state in Redis (a redis-server started here), so the
//    difference is what sharing the state between replicas costs.
//  - Monitor: queries until a Square-style probe (random square patches of
//    +-eps around one Fashion-MNIST test image, as Square attack queries look)
//    raises a k-NN alert, with the threshold calibrated for 1% false
//    positives on training images; and the false-positive rate on benign
//    test-set traffic in random order.
//  - MonitorVsAttacks: the same monitor (k-NN and PRADA) watching the query
//    stream of the real attacks, run against a trained CNN through a
//    classifier that shows every query to the monitor under one key: Square
//    (Linf 0.1, 1000 queries) on 20 test images, one key each; KnockoffNets
//    extraction (2000 natural-image queries) and Papernot's Jacobian-based
//    augmentation extraction (1600 queries). Counters: queries until the
//    first alert, attacks caught before they succeeded, alert rates.
//    AEGIS_BENCH_MODEL may name the model (default: a CNN trained here for
//    one epoch on 10000 images).
//
//   build/bench/serve_bench --benchmark_counters_tabular=true
//
// Throughput under concurrent load is measured with wrk: bench/serve_load.sh.

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "aegis/attacks/extraction/jacobian_augmentation.h"
#include "aegis/attacks/extraction/knockoff.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/architectures.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"
#include "aegis/defenses/detectors/strip_detector.h"
#include "aegis/defenses/training/trainer.h"
#include "aegis/serve/gateway.h"
#include "aegis/serve/internal/httplib.h"
#include "aegis/serve/query_monitor.h"
#include "aegis/serve/redis_client.h"
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

/// A redis-server child on a free loopback port, without persistence.
class BenchRedis {
 public:
  BenchRedis() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    port_ = ntohs(a.sin_port);
    pid_ = fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning", "--logfile", "/dev/null", static_cast<char*>(nullptr));
      _exit(127);
    }
    serve::RedisClient probe(serve::RedisOptions(url()).retry_after(0.0));
    for (int i = 0; i < 100 && !(ok_ = probe.ping()); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~BenchRedis() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool ok() const { return ok_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
  bool ok_ = false;
};

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
  std::unique_ptr<BenchRedis> redis;
  if (state.range(3) > 0) {
    // Rate limit, daily quota and a response rule, so that every request
    // reads and writes the state: in this process (1) or in Redis (2).
    m.rate.requests = serve::RateLimit{1e6, 1e6};
    m.rate.daily_samples = int64_t(1) << 40;
    // A rule that never fires (no detector here) but fills its window every request.
    m.rules.push_back(serve::ResponseRule{"detector", 10, 0.5, serve::ResponseAction::Quarantine, 0.1});
    if (state.range(3) == 2) {
      redis = std::make_unique<BenchRedis>();
      if (!redis->ok()) {
        state.SkipWithError("redis-server is not installed");
        return;
      }
      c.server.state_path = redis->url();
    }
  }
  if (state.range(2) > 0) {
    // STRIP with N overlays (the figures do not depend on what it flags).
    const int64_t n = state.range(2);
    m.detection_policy = serve::DetectionPolicy::Flag;
    m.detector_factory = [n](ClassifierPtr model) {
      auto d = STRIPDetector::fit(model, torch::rand({n, 1, 28, 28}), STRIPOptions().overlays(n).pool(n));
      d->set_threshold(0.0);
      return std::unique_ptr<Detector>(std::move(d));
    };
  }
  c.models.push_back(m);
  serve::Gateway gw(c, serve::GatewayOptions{nullptr, nullptr, keys});
  serve::GatewayServer server(gw);
  int port = server.bind("127.0.0.1", 0);
  server.start();
  httplib::Client client("127.0.0.1", port);
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
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

// A classifier that shows every sample it is asked about to a QueryMonitor
// under one key, as the gateway does, and remembers when it first alerted.
class MonitoredClassifier : public Classifier {
 public:
  MonitoredClassifier(Classifier& inner, serve::MonitorOptions opt)
      : Classifier(inner.meta()), inner_(inner), monitor_(std::move(opt)) {}
  bool has_gradients() const override { return false; }
  int64_t seen = 0, first_alert = -1, alerts = 0, knn_alerts = 0, prada_alerts = 0;

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override {
    for (int64_t i = 0; i < x.size(0); ++i) {
      serve::MonitorVerdict v = monitor_.observe("attacker", x.slice(0, i, i + 1));
      ++seen;
      if (v.alert) {
        ++alerts;
        (v.source == "prada" ? prada_alerts : knn_alerts) += 1;
        if (first_alert < 0) first_alert = seen;
      }
    }
    return inner_.logits(x);
  }

 private:
  Classifier& inner_;
  serve::QueryMonitor monitor_;
};

std::shared_ptr<ScriptClassifier> trained_model(const Dataset& train_data) {
  if (const char* p = std::getenv("AEGIS_BENCH_MODEL"); p && *p) return ScriptClassifier::load(p);
  seed_everything(0);
  auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10));
  train(*m, train_data, nullptr, TrainOptions().epochs(1));
  return m;
}

void MonitorVsAttacks(benchmark::State& state) {
  configure_threads();
  set_default_progress_mode(ProgressMode::Quiet);
  Dataset train_data, test;
  try {
    train_data = load_dataset(DataSpec("fashion-mnist").split("train").limit(20000));
    test = load_dataset(DataSpec("fashion-mnist").split("test").limit(200));
  } catch (const std::exception& e) {
    state.SkipWithError(("Fashion-MNIST is needed: " + std::string(e.what())).c_str());
    return;
  }
  Dataset fit = train_data.subset(torch::arange(0, 10000));
  Dataset calibration = train_data.subset(torch::arange(10000, 13000));
  Dataset pool = train_data.subset(torch::arange(13000, 20000));
  for (auto _ : state) {
    auto victim = trained_model(fit);
    serve::MonitorOptions opt = serve::MonitorOptions().k(20).history(1000);
    opt.knn_threshold(serve::calibrate_knn_threshold(calibration.x, opt, 0.01));
    // Square on 20 correctly classified test images, a fresh key each.
    torch::Tensor correct = (victim->predict(test.x) == test.y).nonzero().flatten().slice(0, 0, 20);
    std::vector<double> until;
    int64_t caught_first = 0, succeeded = 0;
    for (int64_t j = 0; j < correct.size(0); ++j) {
      int64_t i = correct[j].item<int64_t>();
      MonitoredClassifier mon(*victim, opt);
      auto square = make_attack("square", {{"eps", 0.1}, {"queries", 1000}, {"seed", j}});
      AttackResult r = square->run(mon, test.x.slice(0, i, i + 1), test.y.slice(0, i, i + 1));
      const bool success = r.success[0].item<bool>();
      succeeded += success;
      until.push_back(mon.first_alert < 0 ? 1e9 : double(mon.first_alert));
      // Caught: an alert came before the query that broke the sample (or the attack never broke it).
      if (mon.first_alert > 0 && (!success || mon.first_alert < r.queries)) ++caught_first;
    }
    std::sort(until.begin(), until.end());
    state.counters["square_attacks"] = double(until.size());
    state.counters["square_succeeded"] = double(succeeded);
    state.counters["square_alert_before_success"] = double(caught_first);
    state.counters["square_queries_to_alert_median"] = until[until.size() / 2];
    // KnockoffNets: natural in-distribution queries, scores returned.
    {
      MonitoredClassifier mon(*victim, opt);
      knockoff_extraction(
          mon, pool,
          KnockoffOptions().budget(2000).substitute(SurrogateModelOptions().train(TrainOptions().epochs(1))));
      state.counters["knockoff_queries"] = double(mon.seen);
      state.counters["knockoff_first_alert"] = double(mon.first_alert);
      state.counters["knockoff_alert_rate"] = double(mon.alerts) / double(std::max<int64_t>(1, mon.seen));
      state.counters["knockoff_prada_alerts"] = double(mon.prada_alerts);
    }
    // Papernot et al.'s Jacobian-based augmentation: synthetic queries near earlier ones.
    {
      MonitoredClassifier mon(*victim, opt);
      jacobian_extraction(mon, pool,
                          JacobianAugmentationOptions().budget(1600).substitute(
                              SurrogateModelOptions().train(TrainOptions().epochs(2))));
      state.counters["jacobian_queries"] = double(mon.seen);
      state.counters["jacobian_first_alert"] = double(mon.first_alert);
      state.counters["jacobian_alert_rate"] = double(mon.alerts) / double(std::max<int64_t>(1, mon.seen));
      state.counters["jacobian_prada_alerts"] = double(mon.prada_alerts);
    }
  }
}

}  // namespace

BENCHMARK(InProcessForward)->Arg(1)->Arg(32)->Unit(benchmark::kMicrosecond)->Iterations(300);
BENCHMARK(GatewayRequest)
    ->Args({1, 0, 0, 0})
    ->Args({1, 1, 0, 0})
    ->Args({32, 0, 0, 0})
    ->Args({32, 1, 0, 0})
    ->Args({1, 0, 100, 0})
    ->Args({1, 0, 20, 0})
    ->Args({1, 0, 0, 1})
    ->Args({1, 0, 0, 2})
    ->Args({32, 0, 0, 1})
    ->Args({32, 0, 0, 2})
    ->Args({1, 1, 0, 2})
    ->ArgNames({"batch", "monitor", "strip", "state"})
    ->Unit(benchmark::kMicrosecond)
    ->Iterations(300);
BENCHMARK(MonitorDetection)->Arg(20)->ArgName("k")->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(MonitorVsAttacks)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK_MAIN();
