#include "aegis/serve/batcher.h"

#include <torch/torch.h>

#include <chrono>

namespace aegis::serve {

DynamicBatcher::DynamicBatcher(ClassifierPtr model, BatchingOptions options, std::function<void(int64_t)> on_batch)
    : model_(std::move(model)), options_(options), on_batch_(std::move(on_batch)) {
  if (options_.enabled) worker_ = std::thread([this] { run(); });
}

DynamicBatcher::~DynamicBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

torch::Tensor DynamicBatcher::submit(const torch::Tensor& x) {
  if (!options_.enabled) {
    torch::Tensor p = model_->probabilities(x);
    if (on_batch_) on_batch_(x.size(0));
    return p;
  }
  std::future<torch::Tensor> f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Item{x, {}});
    f = queue_.back().result.get_future();
    queued_samples_ += x.size(0);
  }
  cv_.notify_all();
  return f.get();
}

void DynamicBatcher::run() {
  torch::NoGradGuard ng;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    // Wait for company until the batch is full, the delay passes or we stop.
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                               std::chrono::duration<double, std::milli>(options_.max_delay_ms));
    cv_.wait_until(lock, deadline, [&] { return stop_ || queued_samples_ >= options_.max_batch; });
    std::vector<Item> batch;
    int64_t n = 0;
    while (!queue_.empty() && (batch.empty() || n + queue_.front().x.size(0) <= options_.max_batch)) {
      n += queue_.front().x.size(0);
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_samples_ -= n;
    lock.unlock();
    try {
      std::vector<torch::Tensor> xs;
      for (auto& it : batch) xs.push_back(it.x);
      torch::Tensor probs = model_->probabilities(torch::cat(xs));
      if (on_batch_) on_batch_(n);
      int64_t at = 0;
      for (auto& it : batch) {
        it.result.set_value(probs.slice(0, at, at + it.x.size(0)).clone());
        at += it.x.size(0);
      }
    } catch (...) {
      for (auto& it : batch) it.result.set_exception(std::current_exception());
    }
    lock.lock();
  }
}

}  // namespace aegis::serve
