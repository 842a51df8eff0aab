// libFuzzer target: the RFC 7587 fmtp parser and formatter (opus_codec.hpp).
//
// Any bytes are an fmtp string. Checks, beyond "no crash, no UB":
// - parse_fmtp reports an error, or yields values inside the RFC ranges;
// - an error's item is a view into the input;
// - format_fmtp of a parsed value parses back to the same value (ptime and
//   maxptime aside: they belong in a=ptime / a=maxptime), and never writes
//   past the capacity it is given;
// - encoder_settings_for always yields settings an OpusEncoder accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "opus_codec.hpp"

namespace op = mediacore::opus;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  op::Fmtp f;
  const op::FmtpParse r = op::parse_fmtp(text, f);
  if (r.error != op::FmtpError::None) {
    check(r.item.data() >= text.data() && r.item.data() + r.item.size() <= text.data() + text.size());
    check(!r.item.empty());
    return 0;
  }
  check(f.maxplaybackrate >= 8000 && f.maxplaybackrate <= 48000);
  check(f.sprop_maxcapturerate >= 8000 && f.sprop_maxcapturerate <= 48000);
  check(f.ptime >= 3 && f.ptime <= 120 && f.maxptime >= 3 && f.maxptime <= 120);
  check(f.minptime == 0 || (f.minptime >= 3 && f.minptime <= 120));
  check(f.maxaveragebitrate == 0 || (f.maxaveragebitrate >= 6000 && f.maxaveragebitrate <= 510000));

  // Format into a buffer with guard bytes, and into a truncating one.
  char buf[300];
  std::memset(buf, 0x5A, sizeof buf);
  const std::size_t n = op::format_fmtp(f, buf, 256);
  check(n <= 256);
  for (std::size_t i = 256; i < sizeof buf; ++i) check(buf[i] == 0x5A);
  char small[8];
  check(op::format_fmtp(f, small, size % sizeof small) == n);

  op::Fmtp back;
  check(op::parse_fmtp(std::string_view(buf, n), back).error == op::FmtpError::None);
  back.ptime = f.ptime;
  back.maxptime = f.maxptime;
  check(back == f);

  op::EncoderSettings base;
  base.sample_rate = 48000;
  base.channels = 2;
  const op::EncoderSettings s = op::encoder_settings_for(f, base);
  check(op::validate(s) == nullptr);
  check(s.bitrate >= 6000 && s.bitrate <= 510000);
  return 0;
}
