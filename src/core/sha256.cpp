#include "aegis/core/sha256.h"

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "aegis/core/error.h"

namespace aegis {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  AEGIS_CHECK(impl_->ctx && EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1, Internal,
              "OpenSSL SHA-256 initialisation failed");
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::update(const void* data, size_t size) {
  AEGIS_CHECK(EVP_DigestUpdate(impl_->ctx, data, size) == 1, Internal, "OpenSSL SHA-256 update failed");
}

std::array<uint8_t, 32> Sha256::digest() {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  AEGIS_CHECK(EVP_DigestFinal_ex(impl_->ctx, out.data(), &len) == 1 && len == 32, Internal,
              "OpenSSL SHA-256 final failed");
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
  return out;
}

std::string Sha256::hex() {
  auto d = digest();
  return to_hex(d.data(), d.size());
}

std::string to_hex(const uint8_t* data, size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex();
}

std::string sha256_file(const std::string& path) {
  AEGIS_CHECK(std::filesystem::exists(path), NotFound, "file not found: " << path);
  std::ifstream in(path, std::ios::binary);
  AEGIS_CHECK(in.good(), Io, "cannot open " << path);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    std::streamsize n = in.gcount();
    if (n > 0) h.update(buf.data(), size_t(n));
  }
  AEGIS_CHECK(in.eof(), Io, "error reading " << path);
  return h.hex();
}

}  // namespace aegis
