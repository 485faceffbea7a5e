#include "aegis/core/png_grid.h"

#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "support/test_support.h"

namespace aegis {
namespace {

TEST(ImageIo, GridLayoutAndValues) {
  torch::Tensor imgs = torch::zeros({3, 1, 2, 2});
  imgs[1].fill_(1.0);
  imgs[2].fill_(0.5);
  torch::Tensor g = image_grid(imgs, ImageGridOptions().columns(2).padding(1));
  // 2 rows x 2 columns of 2x2 images with 1px padding: 7 x 7, one channel.
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{7, 7, 1}));
  EXPECT_EQ(g[1][4][0].item<uint8_t>(), 255);  // second image, first row
  EXPECT_EQ(g[4][1][0].item<uint8_t>(), 128);  // third image, second row
  EXPECT_EQ(g[0][0][0].item<uint8_t>(), 0);    // padding
  torch::Tensor scaled = image_grid(imgs.narrow(0, 0, 1), ImageGridOptions().padding(0).scale(3));
  EXPECT_EQ(scaled.sizes(), (std::vector<int64_t>{6, 6, 1}));
}

TEST(ImageIo, WritesPngsThatReadBack) {
  testing::TempDir dir;
  torch::Tensor img = torch::linspace(0, 1, 12).view({1, 3, 4});
  std::string p = dir.file("sub/one.png");
  write_png(img, p);
  int w = 0, h = 0, c = 0;
  unsigned char* data = stbi_load(p.c_str(), &w, &h, &c, 0);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(w, 4);
  EXPECT_EQ(h, 3);
  EXPECT_EQ(c, 1);
  EXPECT_EQ(data[0], 0);
  EXPECT_EQ(data[11], 255);
  stbi_image_free(data);
  write_png_grid(torch::rand({5, 3, 8, 8}), dir.file("rgb.png"));
  data = stbi_load(dir.file("rgb.png").c_str(), &w, &h, &c, 0);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(c, 3);
  EXPECT_EQ(w, 3 * 8 + 4 * 2);  // ceil(sqrt(5)) = 3 columns
  stbi_image_free(data);
}

TEST(ImageIo, RejectsBadShapesAndRanges) {
  EXPECT_THROW(image_grid(torch::zeros({2, 2, 4, 4})), Error);  // 2 channels
  EXPECT_THROW(image_grid(torch::zeros({4, 4})), Error);
  EXPECT_THROW(image_grid(torch::zeros({1, 1, 4, 4}), ImageGridOptions().range(1, 1)), Error);
  EXPECT_THROW(image_grid(torch::zeros({1, 1, 4, 4}), ImageGridOptions().scale(0)), Error);
  try {
    write_png(torch::zeros({1, 4, 4}), "/proc/aegis-no/such.png");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
  }
}

}  // namespace
}  // namespace aegis
