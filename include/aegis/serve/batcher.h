#pragma once
/// Dynamic batching: concurrent requests to one model are coalesced into one
/// forward of up to `max_batch` samples, waiting at most `max_delay_ms` for
/// company. Disabled, submit() runs the forward on the caller's thread.
/// Destruction finishes every queued request before returning, so a model
/// swapped out never drops a request already handed to it.
///
///   DynamicBatcher b(model, BatchingOptions{true, 64, 2.0}, [](int64_t n) {
///   metrics.observe_batch("m", n); }); torch::Tensor probs = b.submit(x);   //
///   [b, classes], blocks until done

#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "aegis/core/classifier.h"
#include "aegis/serve/config.h"

namespace aegis::serve {

class DynamicBatcher {
 public:
  DynamicBatcher(ClassifierPtr model, BatchingOptions options, std::function<void(int64_t)> on_batch = {});
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  /// Softmax probabilities for x [b, ...]; blocks until computed. Rethrows
  /// the forward's error.
  torch::Tensor submit(const torch::Tensor& x);

 private:
  struct Item {
    torch::Tensor x;
    std::promise<torch::Tensor> result;
  };
  void run();

  ClassifierPtr model_;
  BatchingOptions options_;
  std::function<void(int64_t)> on_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  int64_t queued_samples_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace aegis::serve
