// libFuzzer target: the engine's prompt WAV reader (src/mediacore/cpp/prompt.cpp).
// Any bytes either parse into consistent audio or give an error message; the
// reader never reads outside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "prompt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mediacore::WavAudio wav;
  const std::string err = mediacore::parse_wav(data, size, &wav);
  if (err.empty()) {
    // What parsed must be self-consistent.
    if (wav.channels < 1 || wav.channels > 2) std::abort();
    if (wav.sample_rate != 8000 && wav.sample_rate != 16000 && wav.sample_rate != 48000) std::abort();
    if (wav.pcm.size() % static_cast<std::size_t>(wav.channels) != 0) std::abort();
    if (wav.pcm.size() > size) std::abort();  // never more samples than input bytes
  }
  return 0;
}
