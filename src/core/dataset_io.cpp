#include "aegis/core/dataset_io.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

namespace fs = std::filesystem;

std::string read_file_bytes(const std::string& path, uint64_t max_bytes) {
  AEGIS_CHECK(fs::exists(path), NotFound, "file not found: " << path);
  AEGIS_CHECK(fs::is_regular_file(path), InvalidArgument, "not a regular file: " << path);
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files unchanged
  AEGIS_CHECK(f != nullptr, Io, "cannot open " << path);
  std::string out;
  std::vector<char> buf(1 << 20);
  while (true) {
    int n = gzread(f, buf.data(), unsigned(buf.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      AEGIS_FAIL(CorruptData, path << ": corrupt or truncated gzip data (" << msg << ")");
    }
    if (n == 0) break;
    if (out.size() + size_t(n) > max_bytes) {
      gzclose(f);
      AEGIS_FAIL(CorruptData, path << ": decompresses to more than " << max_bytes << " bytes");
    }
    out.append(buf.data(), size_t(n));
  }
  // gzread reports a truncated stream as a short read plus an error state.
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string msg_copy = msg ? msg : "";
  gzclose(f);
  AEGIS_CHECK(err == Z_OK || err == Z_STREAM_END, CorruptData,
              path << ": corrupt or truncated gzip data (" << msg_copy << ")");
  return out;
}

// ---- IDX ---------------------------------------------------------------------

torch::Tensor parse_idx(const std::string& bytes, const std::string& what) {
  AEGIS_CHECK(bytes.size() >= 4, CorruptData, what << ": too short for an IDX header");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  AEGIS_CHECK(p[0] == 0 && p[1] == 0, CorruptData, what << ": not an IDX file (bad magic)");
  uint8_t type = p[2];
  int ndim = p[3];
  AEGIS_CHECK(ndim >= 1 && ndim <= 8, CorruptData, what << ": IDX with " << ndim << " dimensions");
  size_t header = 4 + 4 * size_t(ndim);
  AEGIS_CHECK(bytes.size() >= header, CorruptData, what << ": truncated IDX header");
  std::vector<int64_t> dims;
  uint64_t count = 1;
  for (int i = 0; i < ndim; ++i) {
    const uint8_t* d = p + 4 + 4 * i;
    uint64_t v = (uint64_t(d[0]) << 24) | (uint64_t(d[1]) << 16) | (uint64_t(d[2]) << 8) | d[3];
    AEGIS_CHECK(v > 0 || i == 0, CorruptData, what << ": zero-length dimension " << i);
    AEGIS_CHECK(v == 0 || count <= (uint64_t{1} << 40) / v, CorruptData, what << ": IDX dimensions too large");
    count *= v;
    dims.push_back(int64_t(v));
  }
  torch::ScalarType st;
  size_t elem;
  switch (type) {
    case 0x08: st = torch::kUInt8; elem = 1; break;
    case 0x09: st = torch::kInt8; elem = 1; break;
    case 0x0B: st = torch::kInt16; elem = 2; break;
    case 0x0C: st = torch::kInt32; elem = 4; break;
    case 0x0D: st = torch::kFloat; elem = 4; break;
    case 0x0E: st = torch::kDouble; elem = 8; break;
    default: AEGIS_FAIL(CorruptData, what << ": unknown IDX element type 0x" << std::hex << int(type));
  }
  uint64_t need = count * elem;
  AEGIS_CHECK(bytes.size() - header == need, CorruptData,
              what << ": IDX header promises " << need << " data bytes but " << (bytes.size() - header)
                   << " follow (truncated or corrupt)");
  torch::Tensor t = torch::empty(dims, torch::TensorOptions().dtype(st));
  auto* dst = static_cast<uint8_t*>(t.data_ptr());
  if (need > 0) std::memcpy(dst, p + header, need);  // an empty tensor has no storage
  if (elem > 1) {  // IDX is big-endian
    for (uint64_t i = 0; i < count; ++i) std::reverse(dst + i * elem, dst + (i + 1) * elem);
  }
  return t;
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path) {
  torch::Tensor images = parse_idx(read_file_bytes(images_path), images_path);
  torch::Tensor labels = parse_idx(read_file_bytes(labels_path), labels_path);
  AEGIS_CHECK(images.dim() >= 2, CorruptData, images_path << ": images must have at least 2 dimensions");
  AEGIS_CHECK(labels.dim() == 1, CorruptData, labels_path << ": labels must be one-dimensional");
  AEGIS_CHECK(images.size(0) == labels.size(0), CorruptData,
              images_path << " has " << images.size(0) << " images but " << labels_path << " has "
                          << labels.size(0) << " labels");
  Dataset d;
  torch::Tensor x = images.to(torch::kFloat);
  if (images.scalar_type() == torch::kUInt8) x = x / 255.0;
  if (x.dim() == 3) x = x.unsqueeze(1);  // [N, H, W] -> [N, 1, H, W]
  d.x = x.contiguous();
  d.y = labels.to(torch::kLong);
  d.source = images_path;
  return d;
}

// ---- NPY ---------------------------------------------------------------------

namespace {

std::string header_value(const std::string& header, const std::string& key, const std::string& what) {
  auto k = header.find("'" + key + "'");
  AEGIS_CHECK(k != std::string::npos, CorruptData, what << ": NPY header has no '" << key << "'");
  auto colon = header.find(':', k);
  AEGIS_CHECK(colon != std::string::npos, CorruptData, what << ": malformed NPY header");
  size_t start = header.find_first_not_of(' ', colon + 1);
  AEGIS_CHECK(start != std::string::npos, CorruptData, what << ": malformed NPY header");
  if (header[start] == '(') {
    auto end = header.find(')', start);
    AEGIS_CHECK(end != std::string::npos, CorruptData, what << ": malformed NPY shape");
    return header.substr(start, end - start + 1);
  }
  if (header[start] == '\'') {
    auto end = header.find('\'', start + 1);
    AEGIS_CHECK(end != std::string::npos, CorruptData, what << ": malformed NPY header");
    return header.substr(start + 1, end - start - 1);
  }
  auto end = header.find_first_of(",}", start);
  AEGIS_CHECK(end != std::string::npos, CorruptData, what << ": malformed NPY header");
  return header.substr(start, end - start);
}

}  // namespace

torch::Tensor parse_npy(const std::string& bytes, const std::string& what) {
  AEGIS_CHECK(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, CorruptData,
              what << ": not an NPY file (bad magic)");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  uint8_t major = p[6];
  size_t header_len, offset;
  if (major == 1) {
    header_len = size_t(p[8]) | (size_t(p[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    AEGIS_CHECK(bytes.size() >= 12, CorruptData, what << ": truncated NPY header");
    header_len = size_t(p[8]) | (size_t(p[9]) << 8) | (size_t(p[10]) << 16) | (size_t(p[11]) << 24);
    offset = 12;
  } else {
    AEGIS_FAIL(CorruptData, what << ": unsupported NPY version " << int(major));
  }
  AEGIS_CHECK(header_len <= bytes.size() - offset, CorruptData, what << ": truncated NPY header");
  std::string header = bytes.substr(offset, header_len);
  offset += header_len;

  std::string descr = header_value(header, "descr", what);
  std::string fortran = header_value(header, "fortran_order", what);
  std::string shape_s = header_value(header, "shape", what);
  AEGIS_CHECK(fortran.find("False") != std::string::npos, CorruptData,
              what << ": Fortran-ordered NPY arrays are not supported (save with np.ascontiguousarray)");

  static const std::map<std::string, std::pair<torch::ScalarType, size_t>> kTypes = {
      {"<f4", {torch::kFloat, 4}}, {"<f8", {torch::kDouble, 8}}, {"|u1", {torch::kUInt8, 1}},
      {"<u1", {torch::kUInt8, 1}}, {"|i1", {torch::kInt8, 1}},   {"<i2", {torch::kInt16, 2}},
      {"<i4", {torch::kInt32, 4}}, {"<i8", {torch::kLong, 8}},   {"|b1", {torch::kBool, 1}}};
  auto it = kTypes.find(descr);
  AEGIS_CHECK(it != kTypes.end(), CorruptData,
              what << ": unsupported NPY dtype '" << descr << "' (use float32/float64/uint8/int32/int64, little-endian)");

  std::vector<int64_t> dims;
  uint64_t count = 1;
  std::string inner = shape_s.substr(1, shape_s.size() - 2);
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    if (item.empty()) continue;
    int64_t v = -1;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    AEGIS_CHECK(ec == std::errc() && ptr == item.data() + item.size() && v >= 0, CorruptData,
                what << ": bad NPY shape " << shape_s);
    AEGIS_CHECK(v == 0 || count <= (uint64_t{1} << 40) / uint64_t(v), CorruptData, what << ": NPY shape too large");
    count *= uint64_t(v);
    dims.push_back(v);
  }
  AEGIS_CHECK(dims.size() <= 8, CorruptData, what << ": NPY array with " << dims.size() << " dimensions");
  uint64_t need = count * it->second.second;
  AEGIS_CHECK(bytes.size() - offset == need, CorruptData,
              what << ": NPY header promises " << need << " data bytes but " << (bytes.size() - offset)
                   << " follow (truncated or corrupt)");
  torch::Tensor t = torch::empty(dims, torch::TensorOptions().dtype(it->second.first));
  if (need) std::memcpy(t.data_ptr(), bytes.data() + offset, need);
  return t;
}

void save_npy(const torch::Tensor& tensor, const std::string& path) {
  torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  std::string descr;
  switch (t.scalar_type()) {
    case torch::kFloat: descr = "<f4"; break;
    case torch::kDouble: descr = "<f8"; break;
    case torch::kUInt8: descr = "|u1"; break;
    case torch::kInt32: descr = "<i4"; break;
    case torch::kLong: descr = "<i8"; break;
    case torch::kBool: descr = "|b1"; break;
    default: AEGIS_FAIL(InvalidArgument, "cannot save dtype " << t.dtype() << " as NPY");
  }
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += std::to_string(t.size(i)) + (t.dim() == 1 || i + 1 < t.dim() ? "," : "");
  shape += ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::ofstream out(path, std::ios::binary);
  AEGIS_CHECK(out.good(), Io, "cannot write " << path);
  out.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = uint16_t(header.size());
  char lb[2] = {char(len & 0xff), char(len >> 8)};
  out.write(lb, 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(static_cast<const char*>(t.data_ptr()), std::streamsize(t.numel() * t.element_size()));
  AEGIS_CHECK(out.good(), Io, "error writing " << path);
}

Dataset load_npy(const std::string& x_path, const std::string& y_path) {
  torch::Tensor x = parse_npy(read_file_bytes(x_path), x_path);
  torch::Tensor y = parse_npy(read_file_bytes(y_path), y_path);
  AEGIS_CHECK(x.dim() >= 2, CorruptData, x_path << ": samples must be [N, ...]");
  AEGIS_CHECK(y.dim() == 1, CorruptData, y_path << ": labels must be one-dimensional");
  AEGIS_CHECK(!y.is_floating_point() && y.scalar_type() != torch::kBool, CorruptData,
              y_path << ": labels must be integers, got " << y.dtype());
  AEGIS_CHECK(x.size(0) == y.size(0), CorruptData,
              x_path << " has " << x.size(0) << " samples but " << y_path << " has " << y.size(0) << " labels");
  Dataset d;
  bool bytes = x.scalar_type() == torch::kUInt8;
  d.x = x.to(torch::kFloat);
  if (bytes) d.x = d.x / 255.0;
  d.x = d.x.contiguous();
  d.y = y.to(torch::kLong);
  d.source = x_path;
  return d;
}

// ---- CSV ---------------------------------------------------------------------

namespace {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') { cur += '"'; ++i; }
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  for (auto& s : out) {
    size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
    s = a == std::string::npos ? "" : s.substr(a, b - a + 1);
  }
  return out;
}

bool parse_double(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace

Dataset load_csv(const std::string& path, const std::string& label_column) {
  std::string text = read_file_bytes(path, uint64_t{4} << 30);
  std::stringstream in(text);
  std::string line;
  AEGIS_CHECK(std::getline(in, line), CorruptData, path << ": empty CSV file");
  std::vector<std::string> header = split_csv_line(line);
  int64_t label_idx = -1;
  for (size_t i = 0; i < header.size(); ++i) if (header[i] == label_column) label_idx = int64_t(i);
  if (label_idx < 0) {
    int64_t v = -1;
    auto [ptr, ec] = std::from_chars(label_column.data(), label_column.data() + label_column.size(), v);
    if (ec == std::errc() && ptr == label_column.data() + label_column.size() && v >= 0 && v < int64_t(header.size()))
      label_idx = v;
  }
  AEGIS_CHECK(label_idx >= 0, InvalidArgument, path << ": no label column '" << label_column << "' in the header");
  AEGIS_CHECK(header.size() >= 2, CorruptData, path << ": a CSV needs at least one feature column and a label");

  std::vector<float> values;
  std::vector<std::string> raw_labels;
  size_t features = header.size() - 1;
  int64_t row = 1;
  while (std::getline(in, line)) {
    ++row;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto cells = split_csv_line(line);
    AEGIS_CHECK(cells.size() == header.size(), CorruptData,
                path << ":" << row << ": " << cells.size() << " fields, the header has " << header.size());
    for (size_t i = 0; i < cells.size(); ++i) {
      if (int64_t(i) == label_idx) { raw_labels.push_back(cells[i]); continue; }
      double v;
      AEGIS_CHECK(parse_double(cells[i], v), CorruptData,
                  path << ":" << row << ": column '" << header[i] << "' is not a number: '" << cells[i] << "'");
      AEGIS_CHECK(std::isfinite(v), CorruptData, path << ":" << row << ": column '" << header[i] << "' is NaN or Inf");
      values.push_back(float(v));
    }
  }
  int64_t n = int64_t(raw_labels.size());
  AEGIS_CHECK(n > 0, CorruptData, path << ": no data rows");

  // Labels: integers as given, otherwise strings mapped to sorted class names.
  std::vector<int64_t> labels(n);
  std::vector<std::string> class_names;
  bool numeric = true;
  for (auto& s : raw_labels) {
    int64_t v;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) { numeric = false; break; }
  }
  if (numeric) {
    for (int64_t i = 0; i < n; ++i) std::from_chars(raw_labels[i].data(), raw_labels[i].data() + raw_labels[i].size(), labels[i]);
  } else {
    std::set<std::string> names(raw_labels.begin(), raw_labels.end());
    class_names.assign(names.begin(), names.end());
    for (int64_t i = 0; i < n; ++i)
      labels[i] = std::lower_bound(class_names.begin(), class_names.end(), raw_labels[i]) - class_names.begin();
  }

  torch::Tensor x = torch::from_blob(values.data(), {n, int64_t(features)}, torch::kFloat).clone();
  torch::Tensor lo = std::get<0>(x.min(0)), hi = std::get<0>(x.max(0));
  torch::Tensor range = hi - lo;
  x = torch::where(range > 0, (x - lo) / torch::where(range > 0, range, torch::ones_like(range)), torch::zeros_like(x));

  Dataset d;
  d.x = x.contiguous();
  d.y = torch::tensor(labels, torch::kLong);
  d.class_names = class_names;
  d.source = path;
  std::vector<std::string> feature_names;
  for (size_t i = 0; i < header.size(); ++i) if (int64_t(i) != label_idx) feature_names.push_back(header[i]);
  std::vector<float> lov(lo.data_ptr<float>(), lo.data_ptr<float>() + features);
  std::vector<float> hiv(hi.data_ptr<float>(), hi.data_ptr<float>() + features);
  d.preprocessing = {{"scaling", "min-max"}, {"features", feature_names}, {"min", lov}, {"max", hiv},
                     {"label_column", header[size_t(label_idx)]}};
  return d;
}

}  // namespace aegis
