#pragma once
// cpp-httplib as Debian ships it: a compiled library (libcpp-httplib.so) whose
// classes were built with OpenSSL, zlib and Brotli support (see
// cpp-httplib.pc). Its header must be read with the same settings, so every
// aegis file includes it through here rather than <httplib.h> directly.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif
#include <httplib.h>
