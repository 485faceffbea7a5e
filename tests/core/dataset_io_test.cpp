#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <fstream>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::TempDir;

std::string idx_bytes(uint8_t type, std::vector<uint32_t> dims, const std::string& payload) {
  std::string s = {0, 0, char(type), char(dims.size())};
  for (uint32_t d : dims) {
    s += char(d >> 24);
    s += char(d >> 16);
    s += char(d >> 8);
    s += char(d);
  }
  return s + payload;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
}

ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::Internal;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Idx, ParsesBigEndianTypes) {
  std::string payload;
  for (int v : {1, -2, 300}) {
    uint32_t u = uint32_t(v);
    payload += {char(u >> 24), char(u >> 16), char(u >> 8), char(u)};
  }
  torch::Tensor t = parse_idx(idx_bytes(0x0C, {3}, payload));
  EXPECT_EQ(t.scalar_type(), torch::kInt);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1, -2, 300}, torch::kInt)));
}

TEST(Idx, LoadsPlainAndGzipImagesScaledToUnitRange) {
  TempDir dir;
  std::string pixels;
  for (int i = 0; i < 2 * 3 * 3; ++i) pixels += char(i * 15);
  write(dir.file("img"), idx_bytes(0x08, {2, 3, 3}, pixels));
  write_gz(dir.file("lab.gz"), idx_bytes(0x08, {2}, std::string("\x04\x07", 2)));
  Dataset d = load_idx(dir.file("img"), dir.file("lab.gz"));
  EXPECT_EQ(d.x.sizes(), (std::vector<int64_t>{2, 1, 3, 3}));
  EXPECT_FLOAT_EQ(d.x.max().item<float>(), 255.0f / 255.0f);
  EXPECT_FLOAT_EQ(d.x.flatten()[1].item<float>(), 15.0f / 255.0f);
  EXPECT_TRUE(torch::equal(d.y, torch::tensor({4, 7}, torch::kLong)));
}

TEST(Idx, RejectsTruncatedCorruptAndMismatchedFiles) {
  TempDir dir;
  EXPECT_EQ(kind_of([] { parse_idx(std::string("\x00\x00", 2)); }), ErrorKind::CorruptData);
  EXPECT_EQ(kind_of([] { parse_idx(std::string("\x01\x00\x08\x01\x00\x00\x00\x01x", 9)); }), ErrorKind::CorruptData);
  // Header promises 10 bytes, 9 follow.
  EXPECT_NE(message_of([] { parse_idx(idx_bytes(0x08, {10}, std::string(9, 'a'))); }).find("truncated"),
            std::string::npos);
  EXPECT_EQ(kind_of([] { parse_idx(idx_bytes(0x42, {1}, "a")); }), ErrorKind::CorruptData);
  // Dimensions whose product overflows.
  EXPECT_EQ(kind_of([] { parse_idx(idx_bytes(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, "")); }),
            ErrorKind::CorruptData);
  // A gzip stream cut in the middle.
  write_gz(dir.file("full.gz"), idx_bytes(0x08, {1000}, std::string(1000, 'x')));
  std::ifstream in(dir.file("full.gz"), std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), {});
  write(dir.file("cut.gz"), gz.substr(0, gz.size() / 2));
  EXPECT_EQ(kind_of([&] { read_file_bytes(dir.file("cut.gz")); }), ErrorKind::CorruptData);
  // Images and labels disagree in count.
  write(dir.file("img"), idx_bytes(0x08, {2, 2, 2}, std::string(8, 'a')));
  write(dir.file("lab"), idx_bytes(0x08, {3}, "abc"));
  EXPECT_NE(message_of([&] { load_idx(dir.file("img"), dir.file("lab")); }).find("3 labels"), std::string::npos);
  EXPECT_EQ(kind_of([&] { load_idx(dir.file("missing"), dir.file("lab")); }), ErrorKind::NotFound);
}

TEST(Npy, RoundTripsEveryWrittenType) {
  TempDir dir;
  std::vector<torch::Tensor> tensors = {torch::rand({3, 2, 2}), torch::arange(5, torch::kLong),
                                        torch::randint(0, 255, {4, 4}).to(torch::kUInt8),
                                        torch::arange(7, torch::kInt), torch::rand({2, 3}, torch::kDouble)};
  for (const auto& t : tensors) {
    save_npy(t, dir.file("t.npy"));
    torch::Tensor back = parse_npy(read_file_bytes(dir.file("t.npy")));
    EXPECT_EQ(back.scalar_type(), t.scalar_type());
    EXPECT_TRUE(torch::equal(back, t));
  }
}

TEST(Npy, LoadsUint8ImagesScaledAndRejectsBadFiles) {
  TempDir dir;
  save_npy(torch::full({2, 1, 2, 2}, 255, torch::kUInt8), dir.file("x.npy"));
  save_npy(torch::tensor({0, 1}, torch::kLong), dir.file("y.npy"));
  Dataset d = load_npy(dir.file("x.npy"), dir.file("y.npy"));
  EXPECT_FLOAT_EQ(d.x.min().item<float>(), 1.0f);

  save_npy(torch::rand({2}), dir.file("yf.npy"));
  EXPECT_NE(message_of([&] { load_npy(dir.file("x.npy"), dir.file("yf.npy")); }).find("integers"), std::string::npos);
  save_npy(torch::tensor({0, 1, 2}, torch::kLong), dir.file("y3.npy"));
  EXPECT_EQ(kind_of([&] { load_npy(dir.file("x.npy"), dir.file("y3.npy")); }), ErrorKind::CorruptData);

  std::string good = read_file_bytes(dir.file("x.npy"));
  EXPECT_NE(message_of([&] { parse_npy(good.substr(0, good.size() - 1)); }).find("truncated"), std::string::npos);
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_NE(message_of([&] { parse_npy(fortran); }).find("Fortran"), std::string::npos);
  std::string big_endian = good;
  big_endian.replace(big_endian.find("|u1"), 3, ">u2");
  EXPECT_NE(message_of([&] { parse_npy(big_endian); }).find("dtype"), std::string::npos);
  EXPECT_EQ(kind_of([] { parse_npy("not numpy at all"); }), ErrorKind::CorruptData);
}

TEST(Csv, ScalesFeaturesAndRecordsTheScaling) {
  TempDir dir;
  write(dir.file("d.csv"), "a,b,label\n0,10,1\n5,20,0\n10,30,1\n");
  Dataset d = load_csv(dir.file("d.csv"));
  EXPECT_EQ(d.x.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_TRUE(torch::allclose(d.x, torch::tensor({{0.0f, 0.0f}, {0.5f, 0.5f}, {1.0f, 1.0f}})));
  EXPECT_TRUE(torch::equal(d.y, torch::tensor({1, 0, 1}, torch::kLong)));
  EXPECT_EQ(d.preprocessing["min"], (std::vector<float>{0, 10}));
  EXPECT_EQ(d.preprocessing["max"], (std::vector<float>{10, 30}));
  EXPECT_EQ(d.preprocessing["features"], (std::vector<std::string>{"a", "b"}));
}

TEST(Csv, StringLabelsBecomeSortedClassNames) {
  TempDir dir;
  write(dir.file("d.csv"), "species,x\n\"setosa\",1\nvirginica,2\nsetosa,3\n");
  Dataset d = load_csv(dir.file("d.csv"), "species");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"setosa", "virginica"}));
  EXPECT_TRUE(torch::equal(d.y, torch::tensor({0, 1, 0}, torch::kLong)));
}

TEST(Csv, RejectsBadRows) {
  TempDir dir;
  write(dir.file("a.csv"), "x,label\n1,0\nabc,1\n");
  EXPECT_NE(message_of([&] { load_csv(dir.file("a.csv")); }).find("a.csv:3"), std::string::npos);
  write(dir.file("b.csv"), "x,label\n1,0,5\n");
  EXPECT_NE(message_of([&] { load_csv(dir.file("b.csv")); }).find("3 fields"), std::string::npos);
  write(dir.file("c.csv"), "x,y\n1,0\n");
  EXPECT_EQ(kind_of([&] { load_csv(dir.file("c.csv")); }), ErrorKind::InvalidArgument);
  write(dir.file("d.csv"), "x,label\nnan,0\n");
  EXPECT_EQ(kind_of([&] { load_csv(dir.file("d.csv")); }), ErrorKind::CorruptData);
  write(dir.file("e.csv"), "");
  EXPECT_EQ(kind_of([&] { load_csv(dir.file("e.csv")); }), ErrorKind::CorruptData);
}

TEST(LoadDataset, DispatchesBySpecAndExplainsMistakes) {
  TempDir dir;
  write(dir.file("d.csv"), "x,label\n0,0\n1,1\n2,1\n");
  EXPECT_EQ(load_dataset(DataSpec(dir.file("d.csv"))).size(), 3);
  EXPECT_EQ(load_dataset(DataSpec(dir.file("d.csv")).limit(2)).size(), 2);
  save_npy(torch::rand({4, 3}), dir.file("x.npy"));
  EXPECT_NE(message_of([&] { load_dataset(DataSpec(dir.file("x.npy"))); }).find("--labels"), std::string::npos);
  EXPECT_EQ(kind_of([&] { load_dataset(DataSpec(dir.file("nope.csv"))); }), ErrorKind::NotFound);
  save_npy(torch::tensor({0, -1, 1, 0}, torch::kLong), dir.file("neg.npy"));
  EXPECT_NE(message_of([&] { load_dataset(DataSpec(dir.file("x.npy")).labels(dir.file("neg.npy"))); }).find("negative"),
            std::string::npos);
  save_npy(torch::full({4, 3}, std::nanf("")), dir.file("nan.npy"));
  save_npy(torch::tensor({0, 1, 1, 0}, torch::kLong), dir.file("y.npy"));
  EXPECT_NE(message_of([&] { load_dataset(DataSpec(dir.file("nan.npy")).labels(dir.file("y.npy"))); }).find("NaN"),
            std::string::npos);
  EXPECT_EQ(kind_of([&] { load_dataset(DataSpec("fashion-mnist").split("validation")); }),
            testing::have_fashion_mnist() ? ErrorKind::InvalidArgument : ErrorKind::NotFound);
}

TEST(FashionMnist, LoadsTheDebianPackage) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  Dataset test = load_dataset(DataSpec("fashion-mnist").split("test"));
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.sample_shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(test.num_classes(), 10);
  EXPECT_GE(test.x.min().item<float>(), 0.0f);
  EXPECT_LE(test.x.max().item<float>(), 1.0f);
  EXPECT_EQ(torch::bincount(test.y).min().item<int64_t>(), 1000);
}

}  // namespace
}  // namespace aegis
