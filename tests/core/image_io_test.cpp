#include "aegis/core/image_io.h"

#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "support/test_support.h"

namespace aegis {
namespace {

TEST(ImageIo, TiledLayoutAndValues) {
  torch::Tensor imgs = torch::zeros({3, 1, 2, 2});
  imgs[1].fill_(1.0);
  imgs[2].fill_(0.5);
  torch::Tensor g = tile_images(imgs, ImageGridOptions().columns(2).padding(1));
  // 2 rows x 2 columns of 2x2 images with 1px padding: 7 x 7, one channel.
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{1, 7, 7}));
  EXPECT_FLOAT_EQ(g[0][1][4].item<float>(), 1.0f);  // second image, first row
  EXPECT_FLOAT_EQ(g[0][4][1].item<float>(), 0.5f);  // third image, second row
  EXPECT_FLOAT_EQ(g[0][0][0].item<float>(), 0.0f);  // padding
  torch::Tensor scaled = tile_images(imgs.narrow(0, 0, 1), ImageGridOptions().padding(0).scale(3));
  EXPECT_EQ(scaled.sizes(), (std::vector<int64_t>{1, 6, 6}));
  // The range maps to [0, 1], clipped outside.
  torch::Tensor r = tile_images(torch::full({1, 1, 1, 1}, 3.0), ImageGridOptions().padding(0).range(-1, 1));
  EXPECT_FLOAT_EQ(r.item<float>(), 1.0f);
}

TEST(ImageIo, WritesPngsThatReadBack) {
  testing::TempDir dir;
  torch::Tensor img = torch::linspace(0, 1, 12).view({1, 3, 4});
  std::string p = dir.file("sub/one.png");
  write_png(p, img);
  int w = 0, h = 0, c = 0;
  unsigned char* data = stbi_load(p.c_str(), &w, &h, &c, 0);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(w, 4);
  EXPECT_EQ(h, 3);
  EXPECT_EQ(c, 1);
  EXPECT_EQ(data[0], 0);
  EXPECT_EQ(data[11], 255);
  stbi_image_free(data);
  write_tiled_png(dir.file("rgb.png"), torch::rand({5, 3, 8, 8}));
  data = stbi_load(dir.file("rgb.png").c_str(), &w, &h, &c, 0);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(c, 3);
  EXPECT_EQ(w, 3 * 8 + 4 * 2);  // ceil(sqrt(5)) = 3 columns
  stbi_image_free(data);
}

TEST(ImageIo, GridCaptionsAreDarkTextBesideEachRow) {
  torch::Tensor a = torch::ones({2, 1, 28, 28}), b = torch::ones({2, 1, 28, 28});
  torch::Tensor plain = image_grid({a, b}, 0, 1, 3);
  torch::Tensor captioned = image_grid({a, b}, 0, 1, 3, {{"true  Bag", "adv   Sandal"}, {"true  Coat", "adv   Coat"}});
  EXPECT_EQ(captioned.size(1), plain.size(1));
  ASSERT_GT(captioned.size(2), plain.size(2) + 40);
  // The images are white (1) and so is the background: every dark pixel is text, right of the images.
  EXPECT_EQ(plain.lt(0.5).sum().item<int64_t>(), 0);
  torch::Tensor strip = captioned.narrow(2, plain.size(2), captioned.size(2) - plain.size(2));
  const int64_t row = 84 + 2;  // each row's text stays in its own row
  EXPECT_GT(strip.narrow(1, 0, row).lt(0.5).sum().item<int64_t>(), 100);
  EXPECT_GT(strip.narrow(1, row, row).lt(0.5).sum().item<int64_t>(), 100);
  EXPECT_EQ(captioned.narrow(2, 0, plain.size(2)).lt(0.5).sum().item<int64_t>(), 0);
  EXPECT_THROW(image_grid({a, b}, 0, 1, 3, {{"only one"}}), Error);
}

TEST(ImageIo, RejectsBadShapesAndRanges) {
  EXPECT_THROW(tile_images(torch::zeros({2, 2, 4, 4})), Error);  // 2 channels
  EXPECT_THROW(tile_images(torch::zeros({4, 4})), Error);
  EXPECT_THROW(tile_images(torch::zeros({1, 1, 4, 4}), ImageGridOptions().range(1, 1)), Error);
  EXPECT_THROW(tile_images(torch::zeros({1, 1, 4, 4}), ImageGridOptions().scale(0)), Error);
  try {
    write_png("/proc/aegis-no/such.png", torch::zeros({1, 4, 4}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
  }
}

}  // namespace
}  // namespace aegis
