// Prompt audio for the engine's players: a WAV reader and a cache of decoded
// prompts shared by every call that plays them.
//
// The reader accepts RIFF/WAVE with a `fmt ` chunk of PCM 16-bit (format 1 or
// WAVE_FORMAT_EXTENSIBLE with the PCM subformat), A-law (6) or mu-law (7),
// mono, at 8, 16 or 48 kHz, and skips any other chunk. A file that lies about
// its sizes (a recording cut short) is read up to its real end. The parser
// never reads outside the bytes it was given and reports what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace mediacore {

struct WavAudio {
  int sample_rate = 0;
  int channels = 0;
  std::vector<std::int16_t> pcm;  // interleaved when channels > 1
};

// Parses a whole WAV file image. Returns an empty string and fills *out on
// success, or a message saying what is wrong.
std::string parse_wav(const std::uint8_t* data, std::size_t size, WavAudio* out);

class PromptCache {
 public:
  struct Entry {
    int sample_rate;
    std::vector<std::int16_t> pcm;
  };
  // The prompt at `path` decoded to mono PCM at `sample_rate` (resampled if
  // needed). Loaded once per (path, rate) and shared; a file changed on disk
  // (size or mtime) is loaded again. Throws std::invalid_argument with the
  // path and the reason when the file cannot be used.
  std::shared_ptr<const Entry> get(const std::string& path, int sample_rate);
  std::size_t size() const;
  void clear();

 private:
  struct Key {
    std::string path;
    int rate;
    bool operator<(const Key& o) const { return std::tie(path, rate) < std::tie(o.path, o.rate); }
  };
  struct Cached {
    std::shared_ptr<const Entry> entry;
    std::int64_t mtime_ns;
    std::int64_t size;
  };
  mutable std::mutex mu_;
  std::map<Key, Cached> cache_;
};

}  // namespace mediacore
