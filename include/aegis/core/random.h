#pragma once
/// Reproducibility: one seed controls every random choice aegis makes.
/// seed_everything seeds LibTorch's global generator (weight init, dropout,
/// random starts); code that needs its own stream derives a generator from
/// the seed and a purpose, so adding a random choice elsewhere never shifts
/// the ones already made.
///
///   seed_everything(7);
///   auto gen = make_generator(7, "shuffle");
///   torch::Tensor p = torch::randperm(n, gen, torch::kLong);

#include <cstdint>
#include <string_view>

#include <ATen/core/Generator.h>

namespace aegis {

void seed_everything(uint64_t seed);
/// A CPU generator seeded from (seed, purpose).
at::Generator make_generator(uint64_t seed, std::string_view purpose = {});
/// A 64-bit seed derived from (seed, purpose).
uint64_t derive_seed(uint64_t seed, std::string_view purpose);

/// Uses every core for LibTorch's intra-op pool (Debian's LibTorch may start
/// with one thread). AEGIS_THREADS overrides.
void configure_threads();

}  // namespace aegis
