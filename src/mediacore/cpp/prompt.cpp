#include "prompt.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <tuple>

#include "g711.hpp"
#include "resampler.hpp"

namespace mediacore {

namespace {
std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}
std::uint16_t le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }

constexpr std::uint16_t kFormatPcm = 1;
constexpr std::uint16_t kFormatAlaw = 6;
constexpr std::uint16_t kFormatUlaw = 7;
constexpr std::uint16_t kFormatExtensible = 0xFFFE;
}  // namespace

std::string parse_wav(const std::uint8_t* data, std::size_t size, WavAudio* out) {
  if (size < 12 || std::memcmp(data, "RIFF", 4) != 0 || std::memcmp(data + 8, "WAVE", 4) != 0) {
    return "not a RIFF/WAVE file";
  }
  std::size_t pos = 12;
  bool have_fmt = false;
  std::uint16_t format = 0, channels = 0, bits = 0;
  std::uint32_t rate = 0;
  while (pos + 8 <= size) {
    const std::uint8_t* chunk = data + pos;
    const std::uint32_t declared = le32(chunk + 4);
    const std::size_t body = pos + 8;
    // A chunk that claims more than the file holds is read to the end (a
    // recording whose header was never finalized).
    const std::size_t avail = size - body;
    const std::size_t length = declared > avail ? avail : declared;
    if (std::memcmp(chunk, "fmt ", 4) == 0) {
      if (length < 16) return "fmt chunk shorter than 16 bytes";
      format = le16(data + body);
      channels = le16(data + body + 2);
      rate = le32(data + body + 4);
      bits = le16(data + body + 14);
      if (format == kFormatExtensible) {
        if (length < 40) return "WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes";
        format = le16(data + body + 24);  // first two bytes of the subformat GUID
      }
      have_fmt = true;
    } else if (std::memcmp(chunk, "data", 4) == 0) {
      if (!have_fmt) return "data chunk before fmt chunk";
      if (channels < 1 || channels > 2) return "unsupported channel count " + std::to_string(channels);
      if (rate != 8000 && rate != 16000 && rate != 48000) {
        return "unsupported sample rate " + std::to_string(rate) + " (8000, 16000 or 48000)";
      }
      out->sample_rate = static_cast<int>(rate);
      out->channels = channels;
      const std::uint8_t* audio = data + body;
      if (format == kFormatPcm && bits == 16) {
        const std::size_t n = length / 2;
        out->pcm.resize(n);
        for (std::size_t i = 0; i < n; ++i) out->pcm[i] = static_cast<std::int16_t>(le16(audio + 2 * i));
      } else if ((format == kFormatAlaw || format == kFormatUlaw) && bits == 8) {
        out->pcm.resize(length);
        if (format == kFormatAlaw) {
          g711::alaw_decode(audio, length, out->pcm.data());
        } else {
          g711::ulaw_decode(audio, length, out->pcm.data());
        }
      } else {
        return "unsupported encoding (format " + std::to_string(format) + ", " + std::to_string(bits) +
               " bits): use 16-bit PCM, A-law or mu-law";
      }
      out->pcm.resize(out->pcm.size() - out->pcm.size() % channels);
      return "";
    }
    pos = body + length + (length & 1);  // chunks are padded to even sizes
  }
  return have_fmt ? "no data chunk" : "no fmt chunk";
}

std::shared_ptr<const PromptCache::Entry> PromptCache::get(const std::string& path, int sample_rate) {
  if (sample_rate != 8000 && sample_rate != 16000 && sample_rate != 48000) {
    throw std::invalid_argument("prompt sample rate must be 8000, 16000 or 48000");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::invalid_argument(path + ": cannot open prompt file");
  const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  const Key key{path, sample_rate};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.mtime_ns == mtime && it->second.size == st.st_size) return it->second.entry;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(path + ": cannot open prompt file");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  WavAudio wav;
  const std::string err = parse_wav(bytes.data(), bytes.size(), &wav);
  if (!err.empty()) throw std::invalid_argument(path + ": " + err);
  if (wav.channels != 1) throw std::invalid_argument(path + ": prompts must be mono");
  auto entry = std::make_shared<Entry>();
  entry->sample_rate = sample_rate;
  if (wav.sample_rate == sample_rate) {
    entry->pcm = std::move(wav.pcm);
  } else {
    Resampler rs(wav.sample_rate, sample_rate);
    entry->pcm.resize(rs.output_size(wav.pcm.size()) + 64);
    std::ptrdiff_t n = rs.process(wav.pcm.data(), wav.pcm.size(), entry->pcm.data(), entry->pcm.size());
    if (n < 0) throw std::invalid_argument(path + ": resampling failed");
    std::ptrdiff_t tail = rs.flush(entry->pcm.data() + n, entry->pcm.size() - static_cast<std::size_t>(n));
    entry->pcm.resize(static_cast<std::size_t>(n + (tail > 0 ? tail : 0)));
    // Drop the filter's group delay so the prompt starts with its first sound.
    const auto delay = static_cast<std::size_t>(rs.delay());
    entry->pcm.erase(entry->pcm.begin(), entry->pcm.begin() + static_cast<std::ptrdiff_t>(std::min(delay, entry->pcm.size())));
  }
  std::lock_guard<std::mutex> lock(mu_);
  cache_[key] = Cached{entry, mtime, static_cast<std::int64_t>(st.st_size)};
  return entry;
}

std::size_t PromptCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

void PromptCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.clear();
}

}  // namespace mediacore
