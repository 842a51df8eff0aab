// Audio codec objects: the one interface the jitter buffer, the recorder, the
// mixer paths and the engine use to turn RTP payloads into PCM and back.
//
// Conventions (all of mediacore/cpp):
// - PCM is mono int16 in host order at the codec's PCM rate (8, 16 or 48 kHz).
// - Objects are owned by one thread and are not thread-safe.
// - The per-frame methods never allocate, never throw, and report bad input as
//   a negative return value. Constructors may throw std::invalid_argument for
//   bad configuration (pybind11 turns it into ValueError).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace mediacore {

enum class CodecId : std::uint8_t { PCMU = 0, PCMA = 1, L16 = 2, OPUS = 3 };

std::string_view codec_name(CodecId id) noexcept;

class AudioDecoder {
 public:
  virtual ~AudioDecoder() = default;
  virtual CodecId id() const noexcept = 0;
  // Rate of the PCM this decoder produces.
  virtual int sample_rate() const noexcept = 0;
  // Samples (at sample_rate()) that `payload` decodes to, or -1 if corrupt.
  virtual int samples_in(const std::uint8_t* payload, std::size_t size) const noexcept = 0;
  // Decode one payload; returns samples written (<= capacity) or -1.
  virtual int decode(const std::uint8_t* payload, std::size_t size, std::int16_t* out,
                     std::size_t capacity) noexcept = 0;
  // Codec-native concealment of `samples` lost samples (Opus PLC). Returns the
  // samples written, or -1 when the codec has none (G.711: the jitter buffer
  // conceals with its own PLC).
  virtual int conceal(std::int16_t* /*out*/, std::size_t /*samples*/) noexcept { return -1; }
  // Rebuild the lost frame before `next_payload` from its in-band FEC (Opus
  // LBRR). Returns samples written, or -1 when there is no FEC to use.
  virtual int decode_fec(const std::uint8_t* /*next_payload*/, std::size_t /*size*/, std::int16_t* /*out*/,
                         std::size_t /*samples*/) noexcept {
    return -1;
  }
  virtual void reset() noexcept = 0;
};

class AudioEncoder {
 public:
  virtual ~AudioEncoder() = default;
  virtual CodecId id() const noexcept = 0;
  // Rate of the PCM this encoder takes.
  virtual int sample_rate() const noexcept = 0;
  // Encode one frame of `samples`; returns payload bytes (<= capacity) or -1.
  virtual int encode(const std::int16_t* pcm, std::size_t samples, std::uint8_t* out,
                     std::size_t capacity) noexcept = 0;
  virtual void reset() noexcept = 0;
};

// G.711 and L16 (8 kHz mono, RFC 3551). Stateless apart from the id.
class G711Decoder final : public AudioDecoder {
 public:
  explicit G711Decoder(CodecId id);  // PCMU or PCMA
  CodecId id() const noexcept override { return id_; }
  int sample_rate() const noexcept override { return 8000; }
  int samples_in(const std::uint8_t* payload, std::size_t size) const noexcept override;
  int decode(const std::uint8_t* payload, std::size_t size, std::int16_t* out,
             std::size_t capacity) noexcept override;
  void reset() noexcept override {}

 private:
  CodecId id_;
};

class G711Encoder final : public AudioEncoder {
 public:
  explicit G711Encoder(CodecId id);  // PCMU or PCMA
  CodecId id() const noexcept override { return id_; }
  int sample_rate() const noexcept override { return 8000; }
  int encode(const std::int16_t* pcm, std::size_t samples, std::uint8_t* out,
             std::size_t capacity) noexcept override;
  void reset() noexcept override {}

 private:
  CodecId id_;
};

class L16Decoder final : public AudioDecoder {
 public:
  explicit L16Decoder(int sample_rate = 8000);
  CodecId id() const noexcept override { return CodecId::L16; }
  int sample_rate() const noexcept override { return rate_; }
  int samples_in(const std::uint8_t* payload, std::size_t size) const noexcept override;
  int decode(const std::uint8_t* payload, std::size_t size, std::int16_t* out,
             std::size_t capacity) noexcept override;
  void reset() noexcept override {}

 private:
  int rate_;
};

class L16Encoder final : public AudioEncoder {
 public:
  explicit L16Encoder(int sample_rate = 8000);
  CodecId id() const noexcept override { return CodecId::L16; }
  int sample_rate() const noexcept override { return rate_; }
  int encode(const std::int16_t* pcm, std::size_t samples, std::uint8_t* out,
             std::size_t capacity) noexcept override;
  void reset() noexcept override {}

 private:
  int rate_;
};

}  // namespace mediacore
