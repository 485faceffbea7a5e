#pragma once
/// aegis::Error: the one exception type the library throws for anything a
/// caller can get wrong or the world can do to us (missing file, corrupt data,
/// bad argument). Caught once at each boundary: the CLI prints one line and
/// exits, the gateway answers with an HTTP status and a JSON body.
///
///   AEGIS_CHECK(eps >= 0, InvalidArgument, "eps must be >= 0, got " << eps);

#include <sstream>
#include <stdexcept>
#include <string>

namespace aegis {

enum class ErrorKind {
  InvalidArgument,   ///< the caller passed something unusable (CLI exit 2, HTTP 400)
  NotFound,          ///< a file, model, key or record that does not exist (HTTP 404)
  CorruptData,       ///< bytes that do not parse or fail an integrity check (HTTP 422)
  ShapeMismatch,     ///< data and model disagree on shape or classes (HTTP 400)
  PermissionDenied,  ///< authentication or authorisation refused (HTTP 403)
  Unauthenticated,   ///< no or unknown credentials (HTTP 401)
  RateLimited,       ///< too many requests (HTTP 429)
  Unsupported,       ///< a valid request aegis cannot do (yet) (HTTP 501)
  Io,                ///< the operating system refused a read or write
  Internal,          ///< our own bug: an invariant broke
};

/// Short stable name of a kind, e.g. "invalid_argument".
const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

/// Turns any exception (ours, LibTorch's c10::Error with its stack dump,
/// std::exception) into one line fit for a user: no backtrace, no newlines.
std::string one_line_message(const std::exception& e);

}  // namespace aegis

#define AEGIS_CHECK(cond, kind, msg)                               \
  do {                                                             \
    if (!(cond)) {                                                 \
      std::ostringstream aegis_check_os_;                          \
      aegis_check_os_ << msg;                                      \
      throw ::aegis::Error(::aegis::ErrorKind::kind, aegis_check_os_.str()); \
    }                                                              \
  } while (0)

#define AEGIS_FAIL(kind, msg) AEGIS_CHECK(false, kind, msg)
