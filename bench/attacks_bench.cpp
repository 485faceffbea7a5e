// Attack throughput on the built-in CNN at batch 256, as ratios against the
// yardstick measured in the same process: one raw forward+backward (what an
// attack iteration costs at best) and one raw forward (what a black-box query
// costs at best).
//
//   build/bench/attacks_bench --benchmark_counters_tabular=true
//
// Counters: ms/iter (per attack iteration), vs_fwd_bwd (that over one raw
// forward+backward of the same batch; 1.0 is the limit), queries/s and
// vs_forward for Square, vs_fwd_bwd for attacks on already-broken samples.

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>

#include "aegis/attacks/evasion/apgd.h"
#include "aegis/attacks/evasion/pgd.h"
#include "aegis/attacks/evasion/square.h"
#include "aegis/core/architectures.h"
#include "aegis/core/random.h"

namespace {

constexpr int64_t kBatch = 256;

struct Setup {
  std::shared_ptr<aegis::ScriptClassifier> model;
  torch::Tensor x, y;
  double fwd_bwd_ms = 0, fwd_ms = 0;
};

double median_ms(const std::function<void()>& f, int reps = 7) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto s = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Setup& setup() {
  static Setup s = [] {
    aegis::configure_threads();
    aegis::seed_everything(0);
    Setup s;
    s.model = aegis::build_architecture(aegis::ArchitectureOptions("cnn", {1, 28, 28}, 10));
    s.x = torch::rand({kBatch, 1, 28, 28});
    // Labels the model already gives: nothing is broken at the start.
    s.y = s.model->predict(s.x);
    for (int i = 0; i < 3; ++i) s.model->loss_gradient(s.x, s.y);
    s.fwd_bwd_ms = median_ms([&] { s.model->loss_gradient(s.x, s.y); });
    s.fwd_ms = median_ms([&] { s.model->logits(s.x); });
    return s;
  }();
  return s;
}

void report_iteration(benchmark::State& state, double total_ms_per_run, int64_t iterations) {
  const Setup& s = setup();
  state.counters["ms/iter"] = total_ms_per_run / double(iterations);
  state.counters["fwd_bwd_ms"] = s.fwd_bwd_ms;
  state.counters["vs_fwd_bwd"] = total_ms_per_run / double(iterations) / s.fwd_bwd_ms;
}

/// PGD iterations with nothing to stop early (tiny eps, early stop off).
void PGDIteration(benchmark::State& state) {
  Setup& s = setup();
  const int64_t steps = 10;
  aegis::PGD pgd(aegis::PGDOptions(1e-3).steps(steps).early_stop(false));
  double ms = 0;
  int64_t runs = 0;
  for (auto _ : state) {
    auto t = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(pgd.run(*s.model, s.x, s.y));
    ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
    ++runs;
  }
  // PGD runs steps forward+backward passes plus one final and one verification forward.
  report_iteration(state, ms / double(runs), steps);
}

void APGDIteration(benchmark::State& state) {
  Setup& s = setup();
  const int64_t steps = 10;
  aegis::APGD apgd(aegis::APGDOptions(1e-3).steps(steps).early_stop(false).loss(state.range(0) ? "dlr" : "ce"));
  double ms = 0;
  int64_t runs = 0;
  for (auto _ : state) {
    auto t = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(apgd.run(*s.model, s.x, s.y));
    ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
    ++runs;
  }
  // APGD runs steps + 1 forward+backward passes (the start point too) and one verification forward.
  report_iteration(state, ms / double(runs), steps);
}

/// Square queries per second when nothing breaks, against raw forward throughput.
void SquareQueries(benchmark::State& state) {
  Setup& s = setup();
  const int64_t queries = 50;
  aegis::Square sq(aegis::SquareOptions(1e-4).queries(queries));
  int64_t total = 0;
  double ms = 0;
  for (auto _ : state) {
    auto t = std::chrono::steady_clock::now();
    auto r = sq.run(*s.model, s.x, s.y);
    ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
    total += r.queries;
  }
  const double qps = double(total) / (ms / 1000.0);
  state.counters["queries/s"] = qps;
  state.counters["forward_images/s"] = double(kBatch) / (s.fwd_ms / 1000.0);
  state.counters["vs_forward"] = qps / (double(kBatch) / (s.fwd_ms / 1000.0));
}

/// An attack on samples that are already adversarial (wrong labels): early
/// stopping leaves one forward+backward of cost, whatever the step count.
void BrokenSamples(benchmark::State& state, const std::string& which) {
  Setup& s = setup();
  torch::Tensor wrong = (s.y + 1) % 10;
  const int64_t steps = 100;
  std::unique_ptr<aegis::Attack> a;
  if (which == "pgd")
    a = std::make_unique<aegis::PGD>(aegis::PGDOptions(0.1).steps(steps));
  else
    a = std::make_unique<aegis::APGD>(aegis::APGDOptions(0.1).steps(steps));
  double ms = 0;
  int64_t runs = 0;
  for (auto _ : state) {
    auto t = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(a->run(*s.model, s.x, wrong));
    ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
    ++runs;
  }
  state.counters["vs_fwd_bwd"] = ms / double(runs) / s.fwd_bwd_ms;
}

}  // namespace

BENCHMARK(PGDIteration)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(APGDIteration)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(SquareQueries)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BrokenSamples, pgd100, std::string("pgd"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BrokenSamples, apgd100, std::string("apgd"))->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
