#pragma once
/// SHA-256 through OpenSSL: one-shot, incremental, and over files in chunks
/// (so multi-GB files never sit in memory).
///
///   std::string hex = sha256_hex("abc");
///   Sha256 h; h.update(a); h.update(b); std::string digest = h.hex();

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace aegis {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  /// Finishes and returns the 32 raw bytes; the object is reset afterwards.
  std::array<uint8_t, 32> digest();
  /// Finishes and returns lowercase hex.
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
/// Streams the file in 1 MiB chunks. Throws NotFound / Io.
std::string sha256_file(const std::string& path);
/// Lowercase hex of raw bytes.
std::string to_hex(const uint8_t* data, size_t size);

}  // namespace aegis
