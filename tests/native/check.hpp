// Tiny assertion helper for the native self-checks (tests/native/check_*.cpp).
//
// Each check program is a plain executable built with ASan + UBSan by
// tests/native/test_native.py. It exits 0 when every CHECK held, 1 otherwise,
// and prints each failure as "file:line: CHECK(expr) failed" (plus the two
// values for CHECK_EQ). A failed CHECK does not stop the program, so one run
// reports every broken property; REQUIRE stops it (use it before code that
// would be undefined if the condition were false).
//
//   #include "check.hpp"
//   int main() {
//     CHECK(parse(buf, n, &v) == 0);
//     CHECK_EQ(v.ssrc, 0x12345678u);
//     return check::finish();
//   }
#pragma once

#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace check {

inline int& failures() {
  static int count = 0;
  return count;
}
inline int& passes() {
  static int count = 0;
  return count;
}

inline void report(const char* file, int line, const char* what) {
  ++failures();
  std::fprintf(stderr, "%s:%d: %s failed\n", file, line, what);
}

template <typename T>
void print_value(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    std::fprintf(stderr, "%s", v ? "true" : "false");
  } else if constexpr (std::is_floating_point_v<T>) {
    std::fprintf(stderr, "%.17g", static_cast<double>(v));
  } else if constexpr (std::is_enum_v<T>) {
    std::fprintf(stderr, "%lld", static_cast<long long>(v));
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    std::fprintf(stderr, "%lld", static_cast<long long>(v));
  } else if constexpr (std::is_integral_v<T>) {
    std::fprintf(stderr, "%llu", static_cast<unsigned long long>(v));
  } else if constexpr (std::is_pointer_v<T>) {
    std::fprintf(stderr, "%p", static_cast<const void*>(v));
  } else {
    std::fprintf(stderr, "<value>");
  }
}

// Integer comparison that is exact across signedness (like C++20 std::cmp_equal).
template <typename A, typename B>
bool values_equal(const A& a, const B& b) {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B> && !std::is_same_v<A, bool> &&
                !std::is_same_v<B, bool>) {
    if constexpr (std::is_signed_v<A> == std::is_signed_v<B>) {
      return a == b;
    } else if constexpr (std::is_signed_v<A>) {
      return a >= 0 && static_cast<std::make_unsigned_t<A>>(a) == b;
    } else {
      return b >= 0 && a == static_cast<std::make_unsigned_t<B>>(b);
    }
  } else {
    return a == b;
  }
}

template <typename A, typename B>
bool equal(const char* file, int line, const char* a_text, const char* b_text, const A& a, const B& b) {
  if (values_equal(a, b)) {
    ++passes();
    return true;
  }
  ++failures();
  std::fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: ", file, line, a_text, b_text);
  print_value(a);
  std::fprintf(stderr, " != ");
  print_value(b);
  std::fprintf(stderr, "\n");
  return false;
}

// Print a summary and return the process exit code (0 only if nothing failed
// and at least one CHECK ran).
inline int finish(const char* name = nullptr) {
  std::fprintf(stderr, "%s: %d checks passed, %d failed\n", name ? name : "check", passes(), failures());
  if (passes() == 0 && failures() == 0) return 1;  // a check program that checked nothing is broken
  return failures() == 0 ? 0 : 1;
}

}  // namespace check

#define CHECK(cond)                                      \
  do {                                                   \
    if (cond) {                                          \
      ++::check::passes();                               \
    } else {                                             \
      ::check::report(__FILE__, __LINE__, "CHECK(" #cond ")"); \
    }                                                    \
  } while (0)

#define CHECK_EQ(a, b) ::check::equal(__FILE__, __LINE__, #a, #b, (a), (b))

// Like CHECK, but exits at once (status 1) when the condition is false.
#define REQUIRE(cond)                                               \
  do {                                                              \
    if (cond) {                                                     \
      ++::check::passes();                                          \
    } else {                                                        \
      ::check::report(__FILE__, __LINE__, "REQUIRE(" #cond ")");    \
      std::exit(1);                                                 \
    }                                                               \
  } while (0)
