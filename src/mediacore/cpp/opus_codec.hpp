// Opus (RFC 6716) through libopus, carried in RTP as RFC 7587 defines.
//
// - OpusEncoder / OpusDecoder implement AudioEncoder / AudioDecoder
//   (codec.hpp). The libopus state is allocated once, in the constructor;
//   encode, decode, conceal (libopus PLC) and decode_fec (in-band FEC, the
//   LBRR data of RFC 6716 section 4.2.4) allocate nothing, never throw and
//   return -1 for bad input.
// - PCM rates 8000, 16000 or 48000; the RTP clock of Opus is always 48000 Hz
//   whatever the PCM rate (RFC 7587 section 4.1): rtp_ticks() converts.
// - Encoder frames are 10, 20, 40 or 60 ms (the durations the voice mode can
//   use, RFC 7587 section 4.2, table 2); anything else is -1. The decoder takes
//   any valid packet up to 120 ms.
// - Channels 1 (the product's norm) or 2. Sample counts are per channel, as in
//   libopus: a stereo buffer of n samples holds 2n interleaved values, so for
//   mono this is exactly codec.hpp's convention.
// - Fmtp: the SDP format parameters of RFC 7587 section 6.1, parsed without
//   allocating (defaults per section 6.1), mapped onto our encoder settings
//   as section 7.1 asks of a sender, and formatted for our own offer/answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "codec.hpp"

namespace mediacore {
namespace opus {

inline constexpr int kRtpClockRate = 48000;  // RFC 7587 section 4.1
// Largest packet our encoder writes (libopus's recommended max_data_bytes).
inline constexpr std::size_t kMaxPacketBytes = 4000;
// Longest packet a decoder accepts (RFC 6716 section 3.2.5): 120 ms.
inline constexpr int kMaxPacketMs = 120;

enum class Application : std::uint8_t { Voip = 0, Audio = 1, RestrictedLowDelay = 2 };

// The five audio bandwidths of RFC 7587 section 3 (table 1), by the
// sampling rate that carries them.
enum class Bandwidth : std::uint8_t { Narrow = 0, Medium = 1, Wide = 2, SuperWide = 3, Full = 4 };

bool valid_rate(int sample_rate) noexcept;  // 8000, 16000 or 48000
// The libopus version string (e.g. "libopus 1.3.1").
const char* libopus_version() noexcept;
// The sampling rate of a bandwidth: 8000, 12000, 16000, 24000 or 48000.
int bandwidth_rate(Bandwidth bandwidth) noexcept;
// The widest bandwidth a receiver playing at `rate` Hz can render (any rate
// below 12000 gives narrowband).
Bandwidth bandwidth_for_rate(int rate) noexcept;

// RTP timestamp increment for `samples` at `sample_rate` (RFC 7587 4.1), and back.
inline std::uint32_t rtp_ticks(std::uint32_t samples, int sample_rate) noexcept {
  return sample_rate > 0 ? samples * static_cast<std::uint32_t>(kRtpClockRate / sample_rate) : 0;
}
inline std::uint32_t samples_for_rtp_ticks(std::uint32_t ticks, int sample_rate) noexcept {
  return sample_rate > 0 ? ticks / static_cast<std::uint32_t>(kRtpClockRate / sample_rate) : 0;
}

// What one packet holds, read from its TOC byte and frame layout (RFC 6716
// section 3). `valid` is false when the packet breaks section 3.4's rules.
enum class Mode : std::uint8_t { Silk = 0, Hybrid = 1, Celt = 2 };
struct PacketInfo {
  bool valid = false;
  Mode mode = Mode::Silk;
  Bandwidth bandwidth = Bandwidth::Narrow;
  int channels = 1;
  int frames = 0;
  int samples_per_frame_48k = 0;  // frame duration in 48 kHz samples
  bool has_fec = false;           // the first frame carries LBRR (SILK/hybrid only)
};
PacketInfo inspect_packet(const std::uint8_t* payload, std::size_t size) noexcept;
// Samples per channel the packet decodes to at `sample_rate`, or -1.
int packet_samples(const std::uint8_t* payload, std::size_t size, int sample_rate) noexcept;

struct EncoderSettings {
  int sample_rate = 16000;
  int channels = 1;
  Application application = Application::Voip;
  int bitrate = 0;  // b/s, 6000..510000; 0 lets libopus choose
  int complexity = 5;  // 0..10
  bool fec = false;   // in-band FEC (LBRR); active only with packet_loss_percent > 0
  int packet_loss_percent = 0;  // 0..100, the expected loss the encoder protects against
  bool dtx = false;
  bool cbr = false;
  Bandwidth max_bandwidth = Bandwidth::Full;
  int frame_ms = 20;  // what the engine should send (10/20/40/60); encode() takes any of them
};

// Why a setting is rejected (nullptr when all are valid): names the field.
const char* validate(const EncoderSettings& settings) noexcept;

struct OpusEncoderStats {
  std::uint64_t frames = 0;          // encoded
  std::uint64_t bytes = 0;           // payload bytes written
  std::uint64_t dtx_frames = 0;      // frames that came out as 1-2 bytes (nothing to send)
  std::uint64_t rejected_frames = 0; // wrong size, too small an output, libopus error
};

}  // namespace opus

class OpusEncoder final : public AudioEncoder {
 public:
  // Throws std::invalid_argument naming the bad setting.
  explicit OpusEncoder(const opus::EncoderSettings& settings);
  ~OpusEncoder() override;
  OpusEncoder(const OpusEncoder&) = delete;
  OpusEncoder& operator=(const OpusEncoder&) = delete;

  CodecId id() const noexcept override { return CodecId::OPUS; }
  int sample_rate() const noexcept override { return settings_.sample_rate; }
  int channels() const noexcept { return settings_.channels; }
  // Encode one 10/20/40/60 ms frame (`samples` per channel). Returns payload
  // bytes, or -1. A result of 1-2 bytes is a DTX frame: RFC 7587 section
  // 3.1.3 lets the sender skip it (the receiver conceals).
  int encode(const std::int16_t* pcm, std::size_t samples, std::uint8_t* out,
             std::size_t capacity) noexcept override;
  void reset() noexcept override;

  // Runtime controls (e.g. from RTCP loss reports); false for a bad value.
  bool set_bitrate(int bitrate) noexcept;  // 0 = libopus's choice
  bool set_complexity(int complexity) noexcept;
  bool set_packet_loss_percent(int percent) noexcept;
  bool set_fec(bool on) noexcept;
  bool set_dtx(bool on) noexcept;
  bool set_cbr(bool on) noexcept;
  bool set_max_bandwidth(opus::Bandwidth bandwidth) noexcept;

  const opus::EncoderSettings& settings() const noexcept { return settings_; }
  // The bitrate libopus is using (resolves bitrate 0), b/s.
  int effective_bitrate() const noexcept;
  // Samples (at sample_rate()) the encoder looks ahead: its algorithmic delay.
  int lookahead() const noexcept;
  const opus::OpusEncoderStats& stats() const noexcept { return stats_; }

 private:
  // libopus's ::OpusEncoder, kept opaque so that this header does not put a
  // second OpusEncoder in the global namespace (code with `using namespace
  // mediacore` would find two).
  void* enc_ = nullptr;
  opus::EncoderSettings settings_;
  opus::OpusEncoderStats stats_;
};

namespace opus {
struct OpusDecoderStats {
  std::uint64_t packets = 0;          // decoded normally
  std::uint64_t samples = 0;          // per channel, from decoded packets
  std::uint64_t concealed_samples = 0;  // per channel, from conceal()
  std::uint64_t concealment_events = 0; // conceal() calls
  std::uint64_t fec_recovered = 0;      // frames rebuilt by decode_fec()
  std::uint64_t fec_samples = 0;        // per channel, from decode_fec()
  std::uint64_t fec_unavailable = 0;    // decode_fec() found no usable FEC
  std::uint64_t corrupt_packets = 0;    // refused as invalid
};
}  // namespace opus

class OpusDecoder final : public AudioDecoder {
 public:
  // Throws std::invalid_argument for a rate other than 8000/16000/48000 or
  // channels other than 1 or 2.
  explicit OpusDecoder(int sample_rate = 16000, int channels = 1);
  ~OpusDecoder() override;
  OpusDecoder(const OpusDecoder&) = delete;
  OpusDecoder& operator=(const OpusDecoder&) = delete;

  CodecId id() const noexcept override { return CodecId::OPUS; }
  int sample_rate() const noexcept override { return rate_; }
  int channels() const noexcept { return channels_; }
  // Samples per channel the payload decodes to, or -1 if it is not a valid packet.
  int samples_in(const std::uint8_t* payload, std::size_t size) const noexcept override;
  // Decode one packet into out (room for `capacity` samples per channel).
  // Returns samples per channel, or -1 (invalid, empty, or too little room).
  int decode(const std::uint8_t* payload, std::size_t size, std::int16_t* out,
             std::size_t capacity) noexcept override;
  // libopus packet loss concealment for `samples` lost samples per channel (a
  // multiple of 2.5 ms, at most 120 ms); -1 otherwise.
  int conceal(std::int16_t* out, std::size_t samples) noexcept override;
  // Rebuild the `samples` lost just before next_payload from the FEC it
  // carries. -1 (and nothing decoded) when next_payload is invalid or holds
  // no FEC covering that much: the caller conceals instead. When `samples`
  // exceeds the FEC frame, libopus conceals the head and decodes FEC for the
  // tail. Decode next_payload normally afterwards.
  int decode_fec(const std::uint8_t* next_payload, std::size_t size, std::int16_t* out,
                 std::size_t samples) noexcept override;
  void reset() noexcept override;

  // Duration (samples per channel) of the last packet decoded or concealed.
  int last_packet_duration() const noexcept;
  const opus::OpusDecoderStats& stats() const noexcept { return stats_; }

 private:
  bool valid_loss_span(std::size_t samples) const noexcept;

  void* dec_ = nullptr;  // libopus's ::OpusDecoder (see OpusEncoder::enc_)
  int rate_;
  int channels_;
  opus::OpusDecoderStats stats_;
};

namespace opus {

// ------------------------------------------------------------ RFC 7587 fmtp
//
// The parameters of the audio/opus media type (RFC 7587 section 6.1), with
// its defaults. ptime, maxptime (and WebRTC's minptime, which RFC 7587 does
// not define) belong in a=ptime / a=maxptime lines per section 7, but peers
// put them in a=fmtp too, so the parser reads them there.
struct Fmtp {
  int maxplaybackrate = 48000;       // Hz, 8000..48000
  int sprop_maxcapturerate = 48000;  // Hz, 8000..48000
  int maxptime = 120;                // ms, 3..120
  int ptime = 20;                    // ms, 3..120
  int minptime = 0;                  // ms, 0 = not given
  int maxaveragebitrate = 0;         // b/s, 6000..510000; 0 = not given
  bool stereo = false;
  bool sprop_stereo = false;
  bool cbr = false;
  bool useinbandfec = false;
  bool usedtx = false;

  bool operator==(const Fmtp& o) const noexcept;
  bool operator!=(const Fmtp& o) const noexcept { return !(*this == o); }
};

enum class FmtpError : int {
  None = 0,
  MissingValue = -1,  // a known parameter without "=value"
  NotANumber = -2,    // a numeric parameter whose value is not decimal digits
  NotABoolean = -3,   // a flag whose value is not 0 or 1
};

struct FmtpParse {
  FmtpError error = FmtpError::None;
  std::string_view item;  // the offending "name=value" (a view into the input)
};

// Parse the parameter part of an a=fmtp line ("maxplaybackrate=16000;
// useinbandfec=1"). Rules (tolerant, as RFC 7587 section 7.1 asks a receiver
// to be of unknown parameters):
// - items split on ';', blanks (space, tab, CR, LF) around names, '=' and
//   values ignored, empty items skipped, names case-insensitive;
// - unknown parameters ignored whatever their form; a repeated one: last wins;
// - numbers are decimal digits (huge values saturate); out-of-range values
//   are clamped (rates to 8000..48000, times to 3..120 ms) except
//   maxaveragebitrate, which outside 6000..510000 is ignored (section 6.1);
// - a known parameter with no value, a non-numeric number or a flag other
//   than 0/1 is an error: `out` then holds the parameters before it.
// Never allocates; reads only [text.data(), text.data() + text.size()).
FmtpParse parse_fmtp(std::string_view text, Fmtp& out) noexcept;

// Our a=fmtp parameters in canonical form: the section 6.1 parameters whose
// value differs from the default (plus minptime if set), "; "-separated, in
// a fixed order; ptime and maxptime are left out (they go in a=ptime and
// a=maxptime, section 7). Writes at most `capacity` bytes (no terminator)
// and returns the full length, so a result > capacity means truncated.
std::size_t format_fmtp(const Fmtp& fmtp, char* out, std::size_t capacity) noexcept;

// The fmtp that tells a remote sender what our decoder wants: play at
// `decoder_rate`, `channels` (2 = stereo=1), FEC/DTX/CBR preferences, a cap
// on the bitrate (0 = none), and what we capture (`capture_rate`, stereo capture).
Fmtp fmtp_for_decoder(int decoder_rate, int channels, bool fec, bool dtx, bool cbr = false,
                      int max_average_bitrate = 0, int capture_rate = 48000,
                      bool capture_stereo = false) noexcept;

// The RFC 7587 section 3.1.1 bitrate that applies when the remote gave no
// maxaveragebitrate: the top of the recommended range for the mode and
// bandwidth (voice: NB 12 kb/s, MB/WB 20 kb/s, SWB/FB 40 kb/s; audio mode:
// 64 kb/s mono, 128 kb/s stereo).
int default_max_average_bitrate(Application application, Bandwidth bandwidth, int channels) noexcept;

// Frame duration to send: among 10/20/40/60 ms those within [minptime,
// maxptime], the largest not above ptime (else the smallest); 10 ms when
// maxptime is below 10 ms (we do not send 2.5/5 ms frames).
int frame_ms_for(const Fmtp& remote) noexcept;

// OUR encoder settings for sending to a peer that sent `remote` (section 7.1):
// - max bandwidth: no wider than their maxplaybackrate renders, and the PCM
//   rate lowered to the smallest of 8/16/48 kHz that still carries it;
// - bitrate: base.bitrate (0: the section 3.1.1 figure for the bandwidth we
//   code), capped by their maxaveragebitrate or, absent that, by the section
//   3.1.1 figure for their maxplaybackrate (the RFC's default);
// - mono unless they asked for stereo=1 (and base is stereo);
// - fec = useinbandfec, dtx = usedtx, cbr = cbr; frame_ms from ptime;
// - application, complexity and the loss hint come from base.
EncoderSettings encoder_settings_for(const Fmtp& remote, const EncoderSettings& base) noexcept;

}  // namespace opus
}  // namespace mediacore
