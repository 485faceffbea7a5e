#pragma once
// Internal: a zip central-directory reader for scanning untrusted archives
// without extracting them. Reads the end-of-central-directory record (zip64
// too), every central entry, and on request one entry's bytes (stored or
// deflated, with a size cap). Everything is bounds-checked; bad input throws
// CorruptData.

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace aegis::zip {

/// Random access to the archive's bytes (a file, or memory for fuzzing).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  /// Exactly `n` bytes at `offset`; throws CorruptData past the end.
  virtual std::string read(uint64_t offset, size_t n) const = 0;
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  uint64_t size() const override { return bytes_.size(); }
  std::string read(uint64_t offset, size_t n) const override;

 private:
  std::string_view bytes_;
};

class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  uint64_t size() const override { return size_; }
  std::string read(uint64_t offset, size_t n) const override;

 private:
  std::string path_;
  mutable std::ifstream in_;
  uint64_t size_ = 0;
};

struct Entry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc32 = 0;
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  uint64_t local_offset = 0;
  uint64_t data_offset = 0;  ///< set by read_directory from the local header
  std::string local_name;    ///< the name the local header gives
};

/// True when the bytes start like a zip archive (local header or empty-archive EOCD).
bool looks_like_zip(std::string_view head);

/// Every entry of the central directory, with local headers resolved.
std::vector<Entry> read_directory(const ByteSource& src);

/// One entry's uncompressed bytes (method 0 or 8). Throws CorruptData when
/// it would exceed `max_bytes`, is encrypted, or does not inflate.
std::string read_entry(const ByteSource& src, const Entry& e, uint64_t max_bytes);

}  // namespace aegis::zip
