#include "aegis/serve/infer_request.h"

#include <gtest/gtest.h>

#include "aegis/core/error.h"

namespace aegis::serve {
namespace {

std::string error_of(const std::string& body, const ParseLimits& limits = {}) {
  try {
    parse_infer_request(body, limits);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    return e.what();
  }
  return "";
}

TEST(InferRequest, DecodesFlatAndNestedData) {
  auto r = parse_infer_request(
      R"({"id":"r1","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6.5]]}],)"
      R"("outputs":[{"name":"label"}],"parameters":{"a":1}})");
  EXPECT_EQ(r.id, "r1");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.inputs[0].data, (std::vector<float>{1, 2, 3, 4, 5, 6.5}));
  EXPECT_EQ(r.outputs, std::vector<std::string>{"label"});
  auto flat = parse_infer_request(R"({"inputs":[{"name":"x","shape":[3],"datatype":"UINT8","data":[0,255,7]}]})");
  EXPECT_EQ(flat.inputs[0].data, (std::vector<float>{0, 255, 7}));
}

TEST(InferRequest, EveryMalformedInputHasAReason) {
  EXPECT_NE(error_of("not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("[]").find("JSON object"), std::string::npos);
  EXPECT_NE(error_of("{}").find("\"inputs\""), std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[]})").find("empty"), std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]})").find("name"), std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":[1]}]})").find("unsupported"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]})").find("shape says 2"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1,2]}]})").find("more elements"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[]}]})").find("negative"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]})").find("string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[300]}]})").find("out of range"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]})").find("non-integer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],)"
                     R"("parameters":{"binary_data_size":4}}]})")
                .find("binary"),
            std::string::npos);
}

TEST(InferRequest, LimitsHoldAgainstHugeShapesAndDeepNesting) {
  // A shape claiming 2^62 elements is refused before any allocation.
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[2147483648,2147483648],"datatype":"FP32","data":[]}]})")
                .find("limit"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[5],"datatype":"FP32","data":[1,2,3,4,5]}]})",
                     ParseLimits().max_elements(4))
                .find("limit"),
            std::string::npos);
  std::string deep = R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":)" + std::string(100000, '[') +
                     "1" + std::string(100000, ']') + "}]}";
  EXPECT_NE(error_of(deep).find("nested"), std::string::npos);
  EXPECT_NE(error_of(R"({"inputs":[{"name":"x","shape":[1,1,1,1,1,1,1,1,1],"datatype":"FP32","data":[1]}]})")
                .find("dimensions"),
            std::string::npos);
}

TEST(InferRequest, OverflowingNumbersAreMarkedNonFinite) {
  auto r = parse_infer_request(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1e39, 0.5]}]})");
  EXPECT_TRUE(r.inputs[0].non_finite);
  auto ok = parse_infer_request(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP64","data":[1e30, 0.5]}]})");
  EXPECT_FALSE(ok.inputs[0].non_finite);
}

}  // namespace
}  // namespace aegis::serve
