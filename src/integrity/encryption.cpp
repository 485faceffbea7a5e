// Encryption at rest with libsodium secretstream (see encryption.h).

#include "aegis/integrity/encryption.h"

#include <sodium.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "aegis/core/error.h"
#include "aegis/core/sha256.h"

namespace fs = std::filesystem;

namespace aegis {

namespace {

constexpr size_t kPrefix = 16;  // magic(8) version(1) reserved(3) chunk_size(4)
constexpr size_t kHeader = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr size_t kAbytes = crypto_secretstream_xchacha20poly1305_ABYTES;

void init_sodium() { AEGIS_CHECK(sodium_init() >= 0, Internal, "libsodium failed to initialise"); }

bool parse_hex_key(std::string text, std::array<uint8_t, 32>& out) {
  std::string hex;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) hex += c;
  size_t len = 0;
  if (hex.size() != 64) return false;
  int rc = sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, nullptr);
  sodium_memzero(hex.data(), hex.size());
  return rc == 0 && len == 32;
}

std::string prefix_for(uint32_t chunk) {
  std::string p(kEncryptedMagic);
  p += char(1);               // version
  p += std::string(3, '\0');  // reserved
  for (int i = 0; i < 4; ++i) p += char((chunk >> (8 * i)) & 0xff);
  return p;
}

uint64_t encrypt_stream(std::istream& in, std::ostream& out, const EncryptionKey& key, uint32_t chunk) {
  init_sodium();
  AEGIS_CHECK(chunk >= 1024 && chunk <= (64u << 20), InvalidArgument,
              "chunk size must be in [1 KiB, 64 MiB], got " << chunk);
  std::string prefix = prefix_for(chunk);
  crypto_secretstream_xchacha20poly1305_state st;
  unsigned char header[kHeader];
  crypto_secretstream_xchacha20poly1305_init_push(&st, header, key.data());
  out.write(prefix.data(), std::streamsize(prefix.size()));
  out.write(reinterpret_cast<const char*>(header), kHeader);
  std::vector<unsigned char> plain(chunk), cipher(chunk + kAbytes);
  uint64_t chunks = 0;
  while (true) {
    in.read(reinterpret_cast<char*>(plain.data()), std::streamsize(chunk));
    size_t n = size_t(in.gcount());
    AEGIS_CHECK(!in.bad(), Io, "error reading the input");
    bool last = in.eof() || in.peek() == std::char_traits<char>::eof();
    unsigned long long clen = 0;
    crypto_secretstream_xchacha20poly1305_push(
        &st, cipher.data(), &clen, plain.data(), n, reinterpret_cast<const unsigned char*>(prefix.data()), kPrefix,
        last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    out.write(reinterpret_cast<const char*>(cipher.data()), std::streamsize(clen));
    AEGIS_CHECK(out.good(), Io, "error writing the output");
    ++chunks;
    if (last) break;
  }
  sodium_memzero(plain.data(), plain.size());
  return chunks;
}

uint64_t decrypt_stream(std::istream& in, const std::string& name, const EncryptionKey& key, uint64_t max_bytes,
                        const std::function<void(const unsigned char*, size_t)>& sink) {
  init_sodium();
  std::string prefix(kPrefix, '\0');
  in.read(prefix.data(), kPrefix);
  AEGIS_CHECK(size_t(in.gcount()) == kPrefix && prefix.compare(0, 8, kEncryptedMagic) == 0, CorruptData,
              name << " is not an aegis encrypted file");
  AEGIS_CHECK(prefix[8] == 1, Unsupported,
              name << ": encrypted-file version " << int(prefix[8]) << " is not supported");
  uint32_t chunk = 0;
  for (int i = 3; i >= 0; --i) chunk = (chunk << 8) | uint8_t(prefix[12 + size_t(i)]);
  AEGIS_CHECK(chunk >= 1024 && chunk <= (64u << 20), CorruptData, name << ": bad chunk size " << chunk);
  unsigned char header[kHeader];
  in.read(reinterpret_cast<char*>(header), kHeader);
  AEGIS_CHECK(size_t(in.gcount()) == kHeader, CorruptData, name << ": truncated header");
  crypto_secretstream_xchacha20poly1305_state st;
  AEGIS_CHECK(crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key.data()) == 0, CorruptData,
              name << ": invalid stream header");
  std::vector<unsigned char> cipher(chunk + kAbytes), plain(chunk);
  uint64_t chunks = 0, total = 0;
  while (true) {
    in.read(reinterpret_cast<char*>(cipher.data()), std::streamsize(cipher.size()));
    size_t n = size_t(in.gcount());
    AEGIS_CHECK(!in.bad(), Io, "error reading " << name);
    AEGIS_CHECK(n > 0, CorruptData,
                name << " is truncated: the stream ends after chunk " << chunks << " without its final chunk");
    unsigned long long plen = 0;
    unsigned char tag = 0;
    int rc = crypto_secretstream_xchacha20poly1305_pull(&st, plain.data(), &plen, &tag, cipher.data(), n,
                                                        reinterpret_cast<const unsigned char*>(prefix.data()), kPrefix);
    AEGIS_CHECK(rc == 0, CorruptData,
                name << ": chunk " << chunks << " does not authenticate (" << (chunks == 0 ? "wrong key, or " : "")
                     << "the file was tampered with, truncated or its chunks reordered)");
    total += plen;
    AEGIS_CHECK(total <= max_bytes, CorruptData, name << " decrypts to more than " << max_bytes << " bytes");
    sink(plain.data(), size_t(plen));
    ++chunks;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
      AEGIS_CHECK(in.peek() == std::char_traits<char>::eof(), CorruptData,
                  name << ": data follows the final chunk (appended or spliced)");
      break;
    }
  }
  sodium_memzero(plain.data(), plain.size());
  return chunks;
}

std::string temp_path(const std::string& out) { return out + ".tmp" + std::to_string(::getpid()); }

}  // namespace

EncryptionKey EncryptionKey::generate() {
  init_sodium();
  EncryptionKey k;
  crypto_secretstream_xchacha20poly1305_keygen(k.bytes_.data());
  return k;
}

EncryptionKey EncryptionKey::from_file(const std::string& path) {
  AEGIS_CHECK(fs::exists(path), NotFound, "key file not found: " << path);
  AEGIS_CHECK(fs::is_regular_file(path) && fs::file_size(path) <= 4096, CorruptData, "not a key file: " << path);
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EncryptionKey k;
  bool ok = text.size() == 32 ? (std::memcpy(k.bytes_.data(), text.data(), 32), true) : parse_hex_key(text, k.bytes_);
  sodium_memzero(text.data(), text.size());
  AEGIS_CHECK(ok, CorruptData, path << " does not hold a 32-byte key (64 hex characters)");
  return k;
}

EncryptionKey EncryptionKey::from_env(const std::string& variable) {
  const char* v = std::getenv(variable.c_str());
  AEGIS_CHECK(v != nullptr && *v, NotFound, "environment variable " << variable << " is not set");
  EncryptionKey k;
  AEGIS_CHECK(parse_hex_key(v, k.bytes_), CorruptData, variable << " does not hold a 32-byte key (64 hex characters)");
  return k;
}

EncryptionKey EncryptionKey::resolve(const std::string& key_file, const std::string& what) {
  if (!key_file.empty()) return from_file(key_file);
  if (const char* f = std::getenv("AEGIS_KEY_FILE"); f && *f) return from_file(f);
  if (const char* v = std::getenv("AEGIS_KEY"); v && *v) return from_env("AEGIS_KEY");
  AEGIS_FAIL(PermissionDenied,
             what << " is encrypted: give its key file (--key-file) or set AEGIS_KEY_FILE or AEGIS_KEY");
}

EncryptionKey::~EncryptionKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

void EncryptionKey::save(const std::string& path) const {
  AEGIS_CHECK(!fs::exists(path), InvalidArgument, "refusing to overwrite existing key file " << path);
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  char hex[2 * kBytes + 1];
  sodium_bin2hex(hex, sizeof hex, bytes_.data(), kBytes);
  std::string tmp = temp_path(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    AEGIS_CHECK(out.good(), Io, "cannot write " << tmp);
    fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    out << hex << "\n";
  }
  sodium_memzero(hex, sizeof hex);
  fs::rename(tmp, path);
}

std::string EncryptionKey::id() const {
  Sha256 h;
  h.update(bytes_.data(), kBytes);
  return h.hex().substr(0, 16);
}

bool is_encrypted(std::string_view bytes) { return bytes.substr(0, kEncryptedMagic.size()) == kEncryptedMagic; }

bool is_encrypted_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char buf[8] = {0};
  in.read(buf, 8);
  return in.gcount() == 8 && is_encrypted(std::string_view(buf, 8));
}

uint64_t encrypt_file(const std::string& in_path, const std::string& out_path, const EncryptionKey& key,
                      const EncryptOptions& options) {
  AEGIS_CHECK(fs::is_regular_file(in_path), NotFound, "file not found: " << in_path);
  std::ifstream in(in_path, std::ios::binary);
  AEGIS_CHECK(in.good(), Io, "cannot open " << in_path);
  std::string tmp = temp_path(out_path);
  uint64_t chunks = 0;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    AEGIS_CHECK(out.good(), Io, "cannot write " << tmp);
    try {
      chunks = encrypt_stream(in, out, key, options.chunk_size_);
    } catch (...) {
      fs::remove(tmp);
      throw;
    }
  }
  fs::rename(tmp, out_path);
  return chunks;
}

uint64_t decrypt_file(const std::string& in_path, const std::string& out_path, const EncryptionKey& key) {
  AEGIS_CHECK(fs::is_regular_file(in_path), NotFound, "file not found: " << in_path);
  std::ifstream in(in_path, std::ios::binary);
  std::string tmp = temp_path(out_path);
  uint64_t chunks = 0;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    AEGIS_CHECK(out.good(), Io, "cannot write " << tmp);
    try {
      chunks = decrypt_stream(in, in_path, key, UINT64_MAX, [&](const unsigned char* p, size_t n) {
        out.write(reinterpret_cast<const char*>(p), std::streamsize(n));
      });
      AEGIS_CHECK(out.good(), Io, "error writing " << tmp);
    } catch (...) {
      out.close();
      fs::remove(tmp);  // nothing unauthenticated is left behind
      throw;
    }
  }
  fs::rename(tmp, out_path);
  return chunks;
}

std::string decrypt_file_to_bytes(const std::string& path, const EncryptionKey& key, uint64_t max_bytes) {
  AEGIS_CHECK(fs::is_regular_file(path), NotFound, "file not found: " << path);
  std::ifstream in(path, std::ios::binary);
  std::string out;
  decrypt_stream(in, path, key, max_bytes,
                 [&](const unsigned char* p, size_t n) { out.append(reinterpret_cast<const char*>(p), n); });
  return out;
}

std::string encrypt_bytes(std::string_view plain, const EncryptionKey& key, const EncryptOptions& options) {
  std::istringstream in{std::string(plain)};
  std::ostringstream out;
  encrypt_stream(in, out, key, options.chunk_size_);
  return out.str();
}

std::string decrypt_bytes(std::string_view cipher, const EncryptionKey& key, uint64_t max_bytes) {
  std::istringstream in{std::string(cipher)};
  std::string out;
  decrypt_stream(in, "encrypted data", key, max_bytes,
                 [&](const unsigned char* p, size_t n) { out.append(reinterpret_cast<const char*>(p), n); });
  return out;
}

}  // namespace aegis
