#pragma once
/// The request parser and tensor decoder of the gateway: turns the untrusted
/// body of an Open Inference Protocol v2 `POST /v2/models/{name}/infer`
/// (JSON tensors, flat or nested row-major `data`) into plain float buffers.
/// Kept free of LibTorch and of the server so it can be fuzzed on its own
/// (tests/fuzz/infer_request_fuzz.cpp). Every malformed input throws
/// Error(InvalidArgument) with a reason; nothing else escapes.
///
///   InferRequest r = parse_infer_request(body, ParseLimits().max_elements(1 <<
///   20)); const DecodedTensor& t = r.inputs[0];   // t.shape, t.data (float),
///   t.datatype

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace aegis::serve {

struct ParseLimits {
  int64_t max_elements_ = int64_t{1} << 22;  ///< total numbers over all inputs
  int64_t max_inputs_ = 4;                   ///< tensors in one request
  int64_t max_rank_ = 8;                     ///< dimensions of one tensor
  int64_t max_depth_ = 16;                   ///< nesting of JSON arrays and objects
  ParseLimits& max_elements(int64_t v) {
    max_elements_ = v;
    return *this;
  }
  ParseLimits& max_inputs(int64_t v) {
    max_inputs_ = v;
    return *this;
  }
  ParseLimits& max_rank(int64_t v) {
    max_rank_ = v;
    return *this;
  }
  ParseLimits& max_depth(int64_t v) {
    max_depth_ = v;
    return *this;
  }
};

/// One input tensor, decoded. Integer datatypes are converted to float.
struct DecodedTensor {
  std::string name;
  std::string datatype;  ///< FP32, FP64, FP16, UINT8, INT8, INT16, INT32, INT64
  std::vector<int64_t> shape;
  std::vector<float> data;  ///< row-major, product(shape) long
  /// True when some value was NaN or infinite (JSON has no NaN, but numbers
  /// like 1e999 overflow to infinity).
  bool non_finite = false;
};

struct InferRequest {
  std::string id;
  std::vector<DecodedTensor> inputs;
  /// `parameters` of the request (an object, possibly empty).
  nlohmann::json parameters = nlohmann::json::object();
  /// Names in `outputs` (empty = all).
  std::vector<std::string> outputs;
  /// The entries of an OIP `outputs` array the request asked for (all when
  /// it names none), in the array's order.
  nlohmann::json select_outputs(const nlohmann::json& all) const;
};

/// Parses and decodes. Throws Error(InvalidArgument) naming what is wrong.
InferRequest parse_infer_request(std::string_view body, const ParseLimits& limits = {});

/// True for a datatype name the decoder accepts.
bool is_supported_datatype(const std::string& datatype);

}  // namespace aegis::serve
