#include "aegis/serve/monitor_sync.h"

#include <torch/torch.h>

#include <cstring>
#include <random>

#include "aegis/core/error.h"

namespace aegis::serve {

MonitorSync::MonitorSync(std::shared_ptr<RedisClient> redis, const std::string& prefix, const std::string& model,
                         int64_t max_entries)
    : redis_(std::move(redis)), stream_(prefix + "mon:" + model), max_entries_(max_entries) {
  AEGIS_CHECK(redis_ != nullptr, InvalidArgument, "monitor sync needs a Redis client");
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  replica_ = buf;
  try {
    join();
  } catch (const Error&) {
    // Redis is down at start: join on the first request instead.
  }
}

void MonitorSync::join() {
  RedisValue tail = redis_->command({"XREVRANGE", stream_, "+", "-", "COUNT", "1"});
  last_id_ = tail.elements.empty() ? "0-0" : tail.elements[0].elements[0].str;
}

std::vector<std::pair<std::string, torch::Tensor>> MonitorSync::exchange(const std::string& key,
                                                                          const torch::Tensor& x) {
  torch::Tensor flat = x.detach().to(torch::kFloat).reshape({x.size(0), -1}).contiguous();
  std::string bytes(size_t(flat.numel()) * sizeof(float), '\0');
  std::memcpy(bytes.data(), flat.data_ptr<float>(), bytes.size());
  std::lock_guard<std::mutex> lock(mu_);
  if (last_id_.empty()) join();
  std::vector<RedisValue> r = redis_->pipeline(
      {{"XRANGE", stream_, "(" + last_id_, "+"},
       {"XADD", stream_, "MAXLEN", "~", std::to_string(max_entries_), "*", "r", replica_, "k", key, "n",
        std::to_string(flat.size(0)), "x", bytes}});
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const RedisValue& e : r[0].elements) {
    if (e.elements.size() != 2) continue;
    last_id_ = e.elements[0].str;
    std::string from, k, data;
    int64_t n = 0;
    const auto& f = e.elements[1].elements;
    for (size_t i = 0; i + 1 < f.size(); i += 2) {
      if (f[i].str == "r") from = f[i + 1].str;
      if (f[i].str == "k") k = f[i + 1].str;
      if (f[i].str == "n") n = std::atoll(f[i + 1].str.c_str());
      if (f[i].str == "x") data = f[i + 1].str;
    }
    if (from == replica_ || n <= 0 || data.size() % (size_t(n) * sizeof(float)) != 0) continue;
    const int64_t d = int64_t(data.size() / sizeof(float)) / n;
    if (d != flat.size(1)) continue;  // another model's shape: not comparable
    torch::Tensor t = torch::empty({n, d}, torch::kFloat);
    std::memcpy(t.data_ptr<float>(), data.data(), data.size());
    out.emplace_back(std::move(k), std::move(t));
  }
  // Our own entry is read back next time and skipped; moving past it here is
  // not safe (another replica's entry may land between the two commands).
  return out;
}

}  // namespace aegis::serve
