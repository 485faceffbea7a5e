#pragma once
/// Encryption at rest for models and datasets: libsodium's secretstream
/// (XChaCha20-Poly1305) over 1 MiB chunks, so files of any size stream and
/// truncation, reordering, dropping or tampering of chunks are all detected.
/// Keys are 32 random bytes kept in a key file (hex, mode 0600) or an
/// environment variable; never on a command line. File format: see
/// docs/encryption.md.
///
///   EncryptionKey key = EncryptionKey::generate();  key.save("model.key");
///   encrypt_file("model.pt", "model.pt.enc", key);
///   std::string plain = decrypt_file_to_bytes("model.pt.enc", EncryptionKey::from_file("model.key"));
///   // loaders: ScriptClassifier::load("model.pt.enc", ModelOverrides().key_file("model.key"))
///   //          read_file_bytes("train.idx.enc") with $AEGIS_KEY_FILE or $AEGIS_KEY set

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace aegis {

/// The 8-byte magic that starts every encrypted file.
inline constexpr std::string_view kEncryptedMagic{"AEGISENC", 8};

/// A 32-byte secretstream key, wiped from memory when destroyed.
class EncryptionKey {
 public:
  static constexpr size_t kBytes = 32;
  /// Fresh random key (libsodium's CSPRNG).
  static EncryptionKey generate();
  /// Reads a key file: 64 hex characters (whitespace ignored) or 32 raw bytes.
  /// Throws NotFound / CorruptData; warns nothing, but refuses nothing about modes.
  static EncryptionKey from_file(const std::string& path);
  /// Reads 64 hex characters from an environment variable. Throws NotFound if unset.
  static EncryptionKey from_env(const std::string& variable);
  /// The key for a loader: `key_file` if given, else $AEGIS_KEY_FILE, else
  /// $AEGIS_KEY. Throws PermissionDenied naming `what` when there is none.
  static EncryptionKey resolve(const std::string& key_file, const std::string& what);

  EncryptionKey(const EncryptionKey& o) : bytes_(o.bytes_) {}
  EncryptionKey& operator=(const EncryptionKey& o) = default;
  ~EncryptionKey();

  /// Writes the key as hex to a new file (mode 0600; refuses to overwrite).
  void save(const std::string& path) const;
  /// A short public identifier (first 16 hex chars of SHA-256 of the key),
  /// for telling keys apart; it reveals nothing useful about the key.
  std::string id() const;
  const uint8_t* data() const { return bytes_.data(); }

 private:
  EncryptionKey() = default;
  std::array<uint8_t, kBytes> bytes_{};
};

struct EncryptOptions {
  /// Plaintext bytes per chunk (default 1 MiB; 1 KiB .. 64 MiB).
  uint32_t chunk_size_ = 1u << 20;
  EncryptOptions& chunk_size(uint32_t v) { chunk_size_ = v; return *this; }
};

/// True when the file (or bytes) start with the encrypted-file magic.
bool is_encrypted_file(const std::string& path);
bool is_encrypted(std::string_view bytes);

/// Encrypts `in` to `out` (written to a temporary file, renamed into place).
/// Returns the number of chunks.
uint64_t encrypt_file(const std::string& in, const std::string& out, const EncryptionKey& key,
                      const EncryptOptions& options = {});
/// Decrypts `in` to `out` (temporary file renamed into place only when the
/// whole stream authenticated). Throws CorruptData naming the failed chunk
/// (wrong key, tampered, reordered or truncated).
uint64_t decrypt_file(const std::string& in, const std::string& out, const EncryptionKey& key);
/// Decrypts a whole file into memory (for loaders), up to `max_bytes`.
std::string decrypt_file_to_bytes(const std::string& path, const EncryptionKey& key,
                                  uint64_t max_bytes = uint64_t{8} << 30);

/// In-memory forms (tests, small payloads).
std::string encrypt_bytes(std::string_view plain, const EncryptionKey& key, const EncryptOptions& options = {});
std::string decrypt_bytes(std::string_view cipher, const EncryptionKey& key, uint64_t max_bytes = uint64_t{8} << 30);

}  // namespace aegis
