#include "codec.hpp"

#include <stdexcept>

#include "g711.hpp"

namespace mediacore {

std::string_view codec_name(CodecId id) noexcept {
  switch (id) {
    case CodecId::PCMU: return "PCMU";
    case CodecId::PCMA: return "PCMA";
    case CodecId::L16: return "L16";
    case CodecId::OPUS: return "opus";
  }
  return "?";
}

namespace {
void require_g711(CodecId id) {
  if (id != CodecId::PCMU && id != CodecId::PCMA) throw std::invalid_argument("G.711 codec must be PCMU or PCMA");
}
void require_l16_rate(int rate) {
  if (rate != 8000 && rate != 16000 && rate != 48000) throw std::invalid_argument("L16 rate must be 8000, 16000 or 48000");
}
}  // namespace

G711Decoder::G711Decoder(CodecId id) : id_(id) { require_g711(id); }

int G711Decoder::samples_in(const std::uint8_t*, std::size_t size) const noexcept {
  return static_cast<int>(size);
}

int G711Decoder::decode(const std::uint8_t* payload, std::size_t size, std::int16_t* out,
                        std::size_t capacity) noexcept {
  if (size > capacity) return -1;
  if (id_ == CodecId::PCMU) {
    g711::ulaw_decode(payload, size, out);
  } else {
    g711::alaw_decode(payload, size, out);
  }
  return static_cast<int>(size);
}

G711Encoder::G711Encoder(CodecId id) : id_(id) { require_g711(id); }

int G711Encoder::encode(const std::int16_t* pcm, std::size_t samples, std::uint8_t* out,
                        std::size_t capacity) noexcept {
  if (samples > capacity) return -1;
  if (id_ == CodecId::PCMU) {
    g711::ulaw_encode(pcm, samples, out);
  } else {
    g711::alaw_encode(pcm, samples, out);
  }
  return static_cast<int>(samples);
}

L16Decoder::L16Decoder(int sample_rate) : rate_(sample_rate) { require_l16_rate(sample_rate); }

int L16Decoder::samples_in(const std::uint8_t*, std::size_t size) const noexcept {
  return (size % 2) ? -1 : static_cast<int>(size / 2);
}

int L16Decoder::decode(const std::uint8_t* payload, std::size_t size, std::int16_t* out,
                       std::size_t capacity) noexcept {
  if (size % 2 || size / 2 > capacity) return -1;
  l16::decode(payload, size / 2, out);
  return static_cast<int>(size / 2);
}

L16Encoder::L16Encoder(int sample_rate) : rate_(sample_rate) { require_l16_rate(sample_rate); }

int L16Encoder::encode(const std::int16_t* pcm, std::size_t samples, std::uint8_t* out,
                       std::size_t capacity) noexcept {
  if (2 * samples > capacity) return -1;
  l16::encode(pcm, samples, out);
  return static_cast<int>(2 * samples);
}

}  // namespace mediacore
