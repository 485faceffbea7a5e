#include "aegis/core/random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace aegis {

uint64_t derive_seed(uint64_t seed, std::string_view purpose) {
  // FNV-1a over the purpose, mixed with the seed by splitmix64.
  uint64_t h = 1469598103934665603ULL;
  for (char c : purpose) {
    h ^= uint8_t(c);
    h *= 1099511628211ULL;
  }
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (h | 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void seed_everything(uint64_t seed) { torch::manual_seed(seed); }

at::Generator make_generator(uint64_t seed, std::string_view purpose) {
  return at::make_generator<at::CPUGeneratorImpl>(purpose.empty() ? seed : derive_seed(seed, purpose));
}

void configure_threads() {
  int threads = int(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("AEGIS_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) threads = v;
  }
  if (threads > 0) at::set_num_threads(threads);
}

}  // namespace aegis
