// Zip central-directory reader for scanning (see zip_reader.h).

#include "integrity/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "aegis/core/error.h"

namespace aegis::zip {

namespace {

uint64_t le(const std::string& b, size_t off, int n) {
  AEGIS_CHECK(off + size_t(n) <= b.size(), CorruptData, "zip: record truncated");
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | uint8_t(b[off + size_t(i)]);
  return v;
}

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50, kZip64EocdSig = 0x06064b50,
                   kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kMaxEntries = 1'000'000;

}  // namespace

std::string MemorySource::read(uint64_t offset, size_t n) const {
  AEGIS_CHECK(offset <= bytes_.size() && n <= bytes_.size() - offset, CorruptData,
              "zip: read past the end of the archive (offset " << offset << ", " << n << " bytes)");
  return std::string(bytes_.substr(size_t(offset), n));
}

FileSource::FileSource(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  AEGIS_CHECK(in_.good(), Io, "cannot open " << path);
  in_.seekg(0, std::ios::end);
  size_ = uint64_t(in_.tellg());
}

std::string FileSource::read(uint64_t offset, size_t n) const {
  AEGIS_CHECK(offset <= size_ && n <= size_ - offset, CorruptData,
              "zip: read past the end of " << path_ << " (offset " << offset << ", " << n << " bytes)");
  std::string out(n, '\0');
  in_.clear();
  in_.seekg(std::streamoff(offset));
  in_.read(out.data(), std::streamsize(n));
  AEGIS_CHECK(size_t(in_.gcount()) == n, Io, "error reading " << path_);
  return out;
}

bool looks_like_zip(std::string_view head) {
  return head.size() >= 4 && (head.substr(0, 4) == std::string_view("PK\x03\x04", 4) ||
                              head.substr(0, 4) == std::string_view("PK\x05\x06", 4));
}

std::vector<Entry> read_directory(const ByteSource& src) {
  const uint64_t size = src.size();
  AEGIS_CHECK(size >= 22, CorruptData, "zip: too short for an end-of-central-directory record");
  size_t tail_len = size_t(std::min<uint64_t>(size, 22 + 65535));
  std::string tail = src.read(size - tail_len, tail_len);
  size_t eocd = std::string::npos;
  for (size_t i = tail_len - 22 + 1; i-- > 0;) {
    if (le(tail, i, 4) == kEocdSig) {
      eocd = i;
      break;
    }
  }
  AEGIS_CHECK(eocd != std::string::npos, CorruptData, "zip: no end-of-central-directory record");
  uint64_t eocd_abs = size - tail_len + eocd;
  uint64_t count = le(tail, eocd + 10, 2), cd_size = le(tail, eocd + 12, 4), cd_offset = le(tail, eocd + 16, 4);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    AEGIS_CHECK(eocd_abs >= 20, CorruptData, "zip: zip64 locator missing");
    std::string loc = src.read(eocd_abs - 20, 20);
    AEGIS_CHECK(le(loc, 0, 4) == kZip64LocatorSig, CorruptData, "zip: zip64 locator missing");
    uint64_t z64 = le(loc, 8, 8);
    std::string rec = src.read(z64, 56);
    AEGIS_CHECK(le(rec, 0, 4) == kZip64EocdSig, CorruptData, "zip: bad zip64 end record");
    count = le(rec, 32, 8);
    cd_size = le(rec, 40, 8);
    cd_offset = le(rec, 48, 8);
  }
  AEGIS_CHECK(count <= kMaxEntries, CorruptData, "zip: " << count << " entries is more than the limit " << kMaxEntries);
  AEGIS_CHECK(cd_offset <= size && cd_size <= size - cd_offset, CorruptData,
              "zip: central directory lies outside the archive");
  std::string cd = src.read(cd_offset, size_t(cd_size));
  std::vector<Entry> out;
  size_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    AEGIS_CHECK(le(cd, pos, 4) == kCentralSig, CorruptData, "zip: bad central directory entry " << i);
    Entry e;
    e.flags = uint16_t(le(cd, pos + 8, 2));
    e.method = uint16_t(le(cd, pos + 10, 2));
    e.crc32 = uint32_t(le(cd, pos + 16, 4));
    e.compressed = le(cd, pos + 20, 4);
    e.uncompressed = le(cd, pos + 24, 4);
    size_t name_len = size_t(le(cd, pos + 28, 2)), extra_len = size_t(le(cd, pos + 30, 2)),
           comment_len = size_t(le(cd, pos + 32, 2));
    e.local_offset = le(cd, pos + 42, 4);
    AEGIS_CHECK(pos + 46 + name_len + extra_len + comment_len <= cd.size(), CorruptData,
                "zip: central directory entry " << i << " is truncated");
    e.name = cd.substr(pos + 46, name_len);
    // Zip64 extended information: the 0xFFFFFFFF fields, in order.
    size_t x = pos + 46 + name_len, xend = x + extra_len;
    while (x + 4 <= xend) {
      uint64_t id = le(cd, x, 2), len = le(cd, x + 2, 2);
      AEGIS_CHECK(x + 4 + len <= xend, CorruptData, "zip: bad extra field in " << e.name);
      if (id == 0x0001) {
        size_t f = x + 4, fend = x + 4 + size_t(len);
        auto take = [&](uint64_t& v) {
          if (v != 0xFFFFFFFF) return;
          AEGIS_CHECK(f + 8 <= fend, CorruptData, "zip: short zip64 field in " << e.name);
          v = le(cd, f, 8);
          f += 8;
        };
        take(e.uncompressed);
        take(e.compressed);
        take(e.local_offset);
      }
      x += 4 + size_t(len);
    }
    pos += 46 + name_len + extra_len + comment_len;
    std::string lh = src.read(e.local_offset, 30);
    AEGIS_CHECK(le(lh, 0, 4) == kLocalSig, CorruptData, "zip: bad local header for " << e.name);
    size_t lname = size_t(le(lh, 26, 2)), lextra = size_t(le(lh, 28, 2));
    e.local_name = src.read(e.local_offset + 30, lname);
    e.data_offset = e.local_offset + 30 + lname + lextra;
    AEGIS_CHECK(e.data_offset <= size && e.compressed <= size - e.data_offset, CorruptData,
                "zip: data of " << e.name << " lies outside the archive");
    out.push_back(std::move(e));
  }
  return out;
}

std::string read_entry(const ByteSource& src, const Entry& e, uint64_t max_bytes) {
  AEGIS_CHECK(!(e.flags & 1), CorruptData, "zip: " << e.name << " is encrypted");
  if (e.method == 0) {
    AEGIS_CHECK(e.compressed <= max_bytes, CorruptData,
                "zip: " << e.name << " is larger than " << max_bytes << " bytes");
    return src.read(e.data_offset, size_t(e.compressed));
  }
  AEGIS_CHECK(e.method == 8, CorruptData, "zip: " << e.name << " uses unsupported compression method " << e.method);
  AEGIS_CHECK(e.compressed <= max_bytes, CorruptData, "zip: " << e.name << " is larger than " << max_bytes << " bytes");
  std::string in = src.read(e.data_offset, size_t(e.compressed));
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  AEGIS_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, Internal, "zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(in.data());
  zs.avail_in = uInt(in.size());
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buf, sizeof buf - zs.avail_out);
    if (out.size() > max_bytes) break;
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) break;
  }
  inflateEnd(&zs);
  AEGIS_CHECK(out.size() <= max_bytes, CorruptData,
              "zip: " << e.name << " inflates to more than " << max_bytes << " bytes");
  AEGIS_CHECK(rc == Z_STREAM_END, CorruptData, "zip: " << e.name << " does not inflate (corrupt deflate data)");
  return out;
}

}  // namespace aegis::zip
