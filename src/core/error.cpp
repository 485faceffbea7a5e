#include "aegis/core/error.h"

#include <c10/util/Exception.h>

namespace aegis {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidArgument: return "invalid_argument";
    case ErrorKind::NotFound: return "not_found";
    case ErrorKind::CorruptData: return "corrupt_data";
    case ErrorKind::ShapeMismatch: return "shape_mismatch";
    case ErrorKind::PermissionDenied: return "permission_denied";
    case ErrorKind::Unauthenticated: return "unauthenticated";
    case ErrorKind::RateLimited: return "rate_limited";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::Io: return "io";
    case ErrorKind::Internal: return "internal";
  }
  return "unknown";
}

std::string one_line_message(const std::exception& e) {
  std::string msg;
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    msg = c10->what_without_backtrace();
  } else {
    msg = e.what();
  }
  // LibTorch messages carry a backtrace or a TorchScript source excerpt after
  // the first line; the first non-empty line is the message.
  size_t start = msg.find_first_not_of(" \n\t");
  if (start == std::string::npos) return "unknown error";
  size_t end = msg.find('\n', start);
  std::string line = msg.substr(start, end == std::string::npos ? std::string::npos : end - start);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
}

}  // namespace aegis
