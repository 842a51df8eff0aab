#include "opus_codec.hpp"

#include <opus/opus.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

namespace mediacore {
namespace opus {
namespace {

int to_libopus(Application a) {
  switch (a) {
    case Application::Voip: return OPUS_APPLICATION_VOIP;
    case Application::Audio: return OPUS_APPLICATION_AUDIO;
    case Application::RestrictedLowDelay: return OPUS_APPLICATION_RESTRICTED_LOWDELAY;
  }
  return OPUS_APPLICATION_VOIP;
}

int to_libopus(Bandwidth b) {
  switch (b) {
    case Bandwidth::Narrow: return OPUS_BANDWIDTH_NARROWBAND;
    case Bandwidth::Medium: return OPUS_BANDWIDTH_MEDIUMBAND;
    case Bandwidth::Wide: return OPUS_BANDWIDTH_WIDEBAND;
    case Bandwidth::SuperWide: return OPUS_BANDWIDTH_SUPERWIDEBAND;
    case Bandwidth::Full: return OPUS_BANDWIDTH_FULLBAND;
  }
  return OPUS_BANDWIDTH_FULLBAND;
}

Bandwidth from_libopus_bandwidth(int b) {
  switch (b) {
    case OPUS_BANDWIDTH_NARROWBAND: return Bandwidth::Narrow;
    case OPUS_BANDWIDTH_MEDIUMBAND: return Bandwidth::Medium;
    case OPUS_BANDWIDTH_WIDEBAND: return Bandwidth::Wide;
    case OPUS_BANDWIDTH_SUPERWIDEBAND: return Bandwidth::SuperWide;
    default: return Bandwidth::Full;
  }
}

bool valid_bandwidth(Bandwidth b) { return static_cast<unsigned>(b) <= 4u; }
bool valid_application(Application a) { return static_cast<unsigned>(a) <= 2u; }
bool valid_bitrate(int b) { return b == 0 || (b >= 6000 && b <= 510000); }
bool valid_frame_ms(int ms) { return ms == 10 || ms == 20 || ms == 40 || ms == 60; }

// The PCM rate (of ours) that carries a bandwidth.
int pcm_rate_for(Bandwidth b) {
  switch (b) {
    case Bandwidth::Narrow: return 8000;
    case Bandwidth::Medium:
    case Bandwidth::Wide: return 16000;
    default: return 48000;
  }
}

}  // namespace

bool valid_rate(int sample_rate) noexcept {
  return sample_rate == 8000 || sample_rate == 16000 || sample_rate == 48000;
}

const char* libopus_version() noexcept { return opus_get_version_string(); }

int bandwidth_rate(Bandwidth bandwidth) noexcept {
  switch (bandwidth) {
    case Bandwidth::Narrow: return 8000;
    case Bandwidth::Medium: return 12000;
    case Bandwidth::Wide: return 16000;
    case Bandwidth::SuperWide: return 24000;
    case Bandwidth::Full: return 48000;
  }
  return 48000;
}

Bandwidth bandwidth_for_rate(int rate) noexcept {
  if (rate >= 48000) return Bandwidth::Full;
  if (rate >= 24000) return Bandwidth::SuperWide;
  if (rate >= 16000) return Bandwidth::Wide;
  if (rate >= 12000) return Bandwidth::Medium;
  return Bandwidth::Narrow;
}

PacketInfo inspect_packet(const std::uint8_t* payload, std::size_t size) noexcept {
  PacketInfo info;
  if (payload == nullptr || size == 0 || size > static_cast<std::size_t>(INT_MAX)) return info;
  // opus_packet_parse checks RFC 6716 section 3.4's rules R1-R7 (frame
  // lengths, padding, at most 120 ms) and reads only `size` bytes.
  const unsigned char* frames[48];
  opus_int16 sizes[48];
  unsigned char toc = 0;
  const int count = opus_packet_parse(payload, static_cast<opus_int32>(size), &toc, frames, sizes, nullptr);
  if (count <= 0) return info;
  const int config = payload[0] >> 3;  // RFC 6716 section 3.1, table 2
  info.mode = config < 12 ? Mode::Silk : (config < 16 ? Mode::Hybrid : Mode::Celt);
  info.bandwidth = from_libopus_bandwidth(opus_packet_get_bandwidth(payload));
  info.channels = opus_packet_get_nb_channels(payload);
  info.frames = count;
  info.samples_per_frame_48k = opus_packet_get_samples_per_frame(payload, 48000);
  if (count * info.samples_per_frame_48k > kMaxPacketMs * 48) return info;
  if (info.mode != Mode::Celt && sizes[0] > 0) {
    // RFC 6716 section 4.2.3: a SILK (or hybrid) frame starts with one VAD
    // flag per 20 ms SILK frame, then the LBRR flag; for stereo the side
    // channel repeats both. They are binary symbols of probability 1/2 at the
    // very start of the range coder, so they are the first byte's top bits.
    const int silk_frames = std::max(1, info.samples_per_frame_48k / 960);
    const unsigned first = frames[0][0];
    bool lbrr = ((first >> (7 - silk_frames)) & 1u) != 0;
    if (info.channels == 2) lbrr = lbrr || ((first >> (6 - 2 * silk_frames)) & 1u) != 0;
    info.has_fec = lbrr;
  }
  info.valid = true;
  return info;
}

int packet_samples(const std::uint8_t* payload, std::size_t size, int sample_rate) noexcept {
  if (!valid_rate(sample_rate)) return -1;
  const PacketInfo info = inspect_packet(payload, size);
  if (!info.valid) return -1;
  return info.frames * info.samples_per_frame_48k / (48000 / sample_rate);
}

const char* validate(const EncoderSettings& s) noexcept {
  if (!valid_rate(s.sample_rate)) return "sample_rate must be 8000, 16000 or 48000";
  if (s.channels != 1 && s.channels != 2) return "channels must be 1 or 2";
  if (!valid_application(s.application)) return "application must be voip, audio or restricted-lowdelay";
  if (!valid_bitrate(s.bitrate)) return "bitrate must be 6000..510000 b/s (or 0 for automatic)";
  if (s.complexity < 0 || s.complexity > 10) return "complexity must be 0..10";
  if (s.packet_loss_percent < 0 || s.packet_loss_percent > 100) return "packet_loss_percent must be 0..100";
  if (!valid_bandwidth(s.max_bandwidth)) return "max_bandwidth is not an Opus bandwidth";
  if (!valid_frame_ms(s.frame_ms)) return "frame_ms must be 10, 20, 40 or 60";
  return nullptr;
}

}  // namespace opus

// ---------------------------------------------------------------- encoder

namespace {
::OpusEncoder* libopus(void* p) { return static_cast<::OpusEncoder*>(p); }
::OpusDecoder* libopus_dec(void* p) { return static_cast<::OpusDecoder*>(p); }
}  // namespace

OpusEncoder::OpusEncoder(const opus::EncoderSettings& settings) : settings_(settings) {
  if (const char* why = opus::validate(settings)) throw std::invalid_argument(why);
  int err = OPUS_OK;
  ::OpusEncoder* enc = opus_encoder_create(settings.sample_rate, settings.channels,
                                           opus::to_libopus(settings.application), &err);
  enc_ = enc;
  if (enc == nullptr || err != OPUS_OK) {
    throw std::invalid_argument(std::string("libopus refused the encoder: ") + opus_strerror(err));
  }
  const bool ok = set_bitrate(settings.bitrate) && set_complexity(settings.complexity) &&
                  set_packet_loss_percent(settings.packet_loss_percent) && set_fec(settings.fec) &&
                  set_dtx(settings.dtx) && set_cbr(settings.cbr) && set_max_bandwidth(settings.max_bandwidth);
  if (!ok) {
    opus_encoder_destroy(enc);
    throw std::invalid_argument("libopus refused an encoder setting");
  }
}

OpusEncoder::~OpusEncoder() { opus_encoder_destroy(libopus(enc_)); }

int OpusEncoder::encode(const std::int16_t* pcm, std::size_t samples, std::uint8_t* out,
                        std::size_t capacity) noexcept {
  const auto ten_ms = static_cast<std::size_t>(settings_.sample_rate / 100);
  const std::size_t tens = samples / ten_ms;
  const bool frame_ok = samples % ten_ms == 0 && (tens == 1 || tens == 2 || tens == 4 || tens == 6);
  if (pcm == nullptr || out == nullptr || !frame_ok || capacity == 0) {
    ++stats_.rejected_frames;
    return -1;
  }
  const auto room = static_cast<opus_int32>(std::min(capacity, opus::kMaxPacketBytes));
  const int n = opus_encode(libopus(enc_), pcm, static_cast<int>(samples), out, room);
  if (n < 0) {
    ++stats_.rejected_frames;
    return -1;
  }
  ++stats_.frames;
  stats_.bytes += static_cast<std::uint64_t>(n);
  if (n <= 2) ++stats_.dtx_frames;
  return n;
}

void OpusEncoder::reset() noexcept { opus_encoder_ctl(libopus(enc_), OPUS_RESET_STATE); }

bool OpusEncoder::set_bitrate(int bitrate) noexcept {
  if (!opus::valid_bitrate(bitrate)) return false;
  if (opus_encoder_ctl(libopus(enc_), OPUS_SET_BITRATE(bitrate == 0 ? OPUS_AUTO : bitrate)) != OPUS_OK) return false;
  settings_.bitrate = bitrate;
  return true;
}

bool OpusEncoder::set_complexity(int complexity) noexcept {
  if (complexity < 0 || complexity > 10) return false;
  if (opus_encoder_ctl(libopus(enc_), OPUS_SET_COMPLEXITY(complexity)) != OPUS_OK) return false;
  settings_.complexity = complexity;
  return true;
}

bool OpusEncoder::set_packet_loss_percent(int percent) noexcept {
  if (percent < 0 || percent > 100) return false;
  if (opus_encoder_ctl(libopus(enc_), OPUS_SET_PACKET_LOSS_PERC(percent)) != OPUS_OK) return false;
  settings_.packet_loss_percent = percent;
  return true;
}

bool OpusEncoder::set_fec(bool on) noexcept {
  if (opus_encoder_ctl(libopus(enc_), OPUS_SET_INBAND_FEC(on ? 1 : 0)) != OPUS_OK) return false;
  settings_.fec = on;
  return true;
}

bool OpusEncoder::set_dtx(bool on) noexcept {
  if (opus_encoder_ctl(libopus(enc_), OPUS_SET_DTX(on ? 1 : 0)) != OPUS_OK) return false;
  settings_.dtx = on;
  return true;
}

bool OpusEncoder::set_cbr(bool on) noexcept {
  if (opus_encoder_ctl(libopus(enc_), OPUS_SET_VBR(on ? 0 : 1)) != OPUS_OK) return false;
  settings_.cbr = on;
  return true;
}

bool OpusEncoder::set_max_bandwidth(opus::Bandwidth bandwidth) noexcept {
  if (!opus::valid_bandwidth(bandwidth)) return false;
  if (opus_encoder_ctl(libopus(enc_), OPUS_SET_MAX_BANDWIDTH(opus::to_libopus(bandwidth))) != OPUS_OK) return false;
  settings_.max_bandwidth = bandwidth;
  return true;
}

int OpusEncoder::effective_bitrate() const noexcept {
  opus_int32 bitrate = 0;
  return opus_encoder_ctl(libopus(enc_), OPUS_GET_BITRATE(&bitrate)) == OPUS_OK ? static_cast<int>(bitrate) : -1;
}

int OpusEncoder::lookahead() const noexcept {
  opus_int32 samples = 0;
  return opus_encoder_ctl(libopus(enc_), OPUS_GET_LOOKAHEAD(&samples)) == OPUS_OK ? static_cast<int>(samples) : -1;
}

// ---------------------------------------------------------------- decoder

OpusDecoder::OpusDecoder(int sample_rate, int channels) : rate_(sample_rate), channels_(channels) {
  if (!opus::valid_rate(sample_rate)) throw std::invalid_argument("sample_rate must be 8000, 16000 or 48000");
  if (channels != 1 && channels != 2) throw std::invalid_argument("channels must be 1 or 2");
  int err = OPUS_OK;
  ::OpusDecoder* dec = opus_decoder_create(sample_rate, channels, &err);
  dec_ = dec;
  if (dec == nullptr || err != OPUS_OK) {
    throw std::invalid_argument(std::string("libopus refused the decoder: ") + opus_strerror(err));
  }
}

OpusDecoder::~OpusDecoder() { opus_decoder_destroy(libopus_dec(dec_)); }

int OpusDecoder::samples_in(const std::uint8_t* payload, std::size_t size) const noexcept {
  return opus::packet_samples(payload, size, rate_);
}

int OpusDecoder::decode(const std::uint8_t* payload, std::size_t size, std::int16_t* out,
                        std::size_t capacity) noexcept {
  const int n = opus::packet_samples(payload, size, rate_);
  if (n < 0) {
    ++stats_.corrupt_packets;
    return -1;
  }
  if (out == nullptr || static_cast<std::size_t>(n) > capacity) return -1;
  // frame_size = the packet's own duration: libopus then writes exactly n
  // samples per channel and never more.
  const int got = opus_decode(libopus_dec(dec_), payload, static_cast<opus_int32>(size), out, n, 0);
  if (got < 0) {
    ++stats_.corrupt_packets;
    return -1;
  }
  ++stats_.packets;
  stats_.samples += static_cast<std::uint64_t>(got);
  return got;
}

bool OpusDecoder::valid_loss_span(std::size_t samples) const noexcept {
  const auto quantum = static_cast<std::size_t>(rate_ / 400);  // 2.5 ms
  const auto longest = static_cast<std::size_t>(rate_ / 1000 * opus::kMaxPacketMs);
  return samples > 0 && samples % quantum == 0 && samples <= longest;
}

int OpusDecoder::conceal(std::int16_t* out, std::size_t samples) noexcept {
  if (out == nullptr || !valid_loss_span(samples)) return -1;
  const int got = opus_decode(libopus_dec(dec_), nullptr, 0, out, static_cast<int>(samples), 0);
  if (got < 0) return -1;
  ++stats_.concealment_events;
  stats_.concealed_samples += static_cast<std::uint64_t>(got);
  return got;
}

int OpusDecoder::decode_fec(const std::uint8_t* next_payload, std::size_t size, std::int16_t* out,
                            std::size_t samples) noexcept {
  if (out == nullptr || !valid_loss_span(samples)) return -1;
  const opus::PacketInfo info = opus::inspect_packet(next_payload, size);
  if (!info.valid) {
    ++stats_.corrupt_packets;
    return -1;
  }
  // LBRR rebuilds one frame of the next packet's frame duration; a shorter
  // loss cannot use it (libopus would only conceal).
  const auto fec_span = static_cast<std::size_t>(info.samples_per_frame_48k / (48000 / rate_));
  if (!info.has_fec || samples < fec_span) {
    ++stats_.fec_unavailable;
    return -1;
  }
  const int got = opus_decode(libopus_dec(dec_), next_payload, static_cast<opus_int32>(size), out, static_cast<int>(samples), 1);
  if (got < 0) {
    ++stats_.corrupt_packets;
    return -1;
  }
  ++stats_.fec_recovered;
  stats_.fec_samples += static_cast<std::uint64_t>(got);
  return got;
}

void OpusDecoder::reset() noexcept { opus_decoder_ctl(libopus_dec(dec_), OPUS_RESET_STATE); }

int OpusDecoder::last_packet_duration() const noexcept {
  opus_int32 samples = 0;
  return opus_decoder_ctl(libopus_dec(dec_), OPUS_GET_LAST_PACKET_DURATION(&samples)) == OPUS_OK ? static_cast<int>(samples) : -1;
}

// ---------------------------------------------------------------- RFC 7587 fmtp

namespace opus {
namespace {

enum class Param {
  MaxPlaybackRate,
  SpropMaxCaptureRate,
  MaxPtime,
  Ptime,
  MinPtime,
  MaxAverageBitrate,
  Stereo,
  SpropStereo,
  Cbr,
  UseInbandFec,
  UseDtx,
  Unknown,
};

struct Known {
  std::string_view name;  // lower case
  Param param;
};

constexpr Known kKnown[] = {
    {"maxplaybackrate", Param::MaxPlaybackRate},
    {"sprop-maxcapturerate", Param::SpropMaxCaptureRate},
    {"maxptime", Param::MaxPtime},
    {"ptime", Param::Ptime},
    {"minptime", Param::MinPtime},
    {"maxaveragebitrate", Param::MaxAverageBitrate},
    {"stereo", Param::Stereo},
    {"sprop-stereo", Param::SpropStereo},
    {"cbr", Param::Cbr},
    {"useinbandfec", Param::UseInbandFec},
    {"usedtx", Param::UseDtx},
};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

Param lookup(std::string_view name) {
  for (const Known& k : kKnown) {
    if (k.name.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i) same = lower(name[i]) == k.name[i];
    if (same) return k.param;
  }
  return Param::Unknown;
}

// Decimal digits only; saturates at 10^9 (more than any parameter can use).
bool parse_number(std::string_view v, int& out) {
  if (v.empty()) return false;
  long long value = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    value = std::min(value * 10 + (c - '0'), 1000000000LL);
  }
  out = static_cast<int>(value);
  return true;
}

int clamp_rate(int v) { return std::clamp(v, 8000, 48000); }
int clamp_ms(int v) { return std::clamp(v, 3, kMaxPacketMs); }
bool valid_average_bitrate(int v) { return v >= 6000 && v <= 510000; }

// Writes what fits; counts everything (snprintf-style).
struct Writer {
  char* out;
  std::size_t capacity;
  std::size_t length = 0;

  void put(std::string_view s) {
    for (char c : s) {
      if (length < capacity) out[length] = c;
      ++length;
    }
  }
  void put(int v) {
    char digits[12];
    int n = 0;
    unsigned u = static_cast<unsigned>(v < 0 ? 0 : v);
    do {
      digits[n++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0 && n < 12);
    while (n > 0) put(std::string_view(&digits[--n], 1));
  }
  void param(std::string_view name, int v) {
    if (length > 0) put("; ");
    put(name);
    put("=");
    put(v);
  }
};

}  // namespace

bool Fmtp::operator==(const Fmtp& o) const noexcept {
  return maxplaybackrate == o.maxplaybackrate && sprop_maxcapturerate == o.sprop_maxcapturerate &&
         maxptime == o.maxptime && ptime == o.ptime && minptime == o.minptime &&
         maxaveragebitrate == o.maxaveragebitrate && stereo == o.stereo && sprop_stereo == o.sprop_stereo &&
         cbr == o.cbr && useinbandfec == o.useinbandfec && usedtx == o.usedtx;
}

FmtpParse parse_fmtp(std::string_view text, Fmtp& out) noexcept {
  out = Fmtp{};
  std::size_t pos = 0;
  while (true) {
    std::size_t end = text.find(';', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = trim(text.substr(pos, end - pos));
    if (!item.empty()) {
      const std::size_t eq = item.find('=');
      const Param param = lookup(trim(item.substr(0, eq)));
      if (param != Param::Unknown) {
        const std::string_view value = eq == std::string_view::npos ? std::string_view{} : trim(item.substr(eq + 1));
        if (value.empty()) return {FmtpError::MissingValue, item};
        int number = 0;
        const bool is_number = parse_number(value, number);
        switch (param) {
          case Param::Stereo:
          case Param::SpropStereo:
          case Param::Cbr:
          case Param::UseInbandFec:
          case Param::UseDtx: {
            if (value != "0" && value != "1") return {FmtpError::NotABoolean, item};
            const bool flag = value == "1";
            if (param == Param::Stereo) out.stereo = flag;
            if (param == Param::SpropStereo) out.sprop_stereo = flag;
            if (param == Param::Cbr) out.cbr = flag;
            if (param == Param::UseInbandFec) out.useinbandfec = flag;
            if (param == Param::UseDtx) out.usedtx = flag;
            break;
          }
          default:
            if (!is_number) return {FmtpError::NotANumber, item};
            if (param == Param::MaxPlaybackRate) out.maxplaybackrate = clamp_rate(number);
            if (param == Param::SpropMaxCaptureRate) out.sprop_maxcapturerate = clamp_rate(number);
            if (param == Param::MaxPtime) out.maxptime = clamp_ms(number);
            if (param == Param::Ptime) out.ptime = clamp_ms(number);
            if (param == Param::MinPtime) out.minptime = clamp_ms(number);
            if (param == Param::MaxAverageBitrate && valid_average_bitrate(number)) out.maxaveragebitrate = number;
            break;
        }
      }
    }
    if (end == text.size()) break;
    pos = end + 1;
  }
  return {};
}

std::size_t format_fmtp(const Fmtp& f, char* out, std::size_t capacity) noexcept {
  const Fmtp defaults;
  Writer w{out, out == nullptr ? 0 : capacity};
  if (f.maxplaybackrate != defaults.maxplaybackrate) w.param("maxplaybackrate", f.maxplaybackrate);
  if (f.sprop_maxcapturerate != defaults.sprop_maxcapturerate) w.param("sprop-maxcapturerate", f.sprop_maxcapturerate);
  if (f.maxaveragebitrate != 0) w.param("maxaveragebitrate", f.maxaveragebitrate);
  if (f.stereo) w.param("stereo", 1);
  if (f.sprop_stereo) w.param("sprop-stereo", 1);
  if (f.cbr) w.param("cbr", 1);
  if (f.useinbandfec) w.param("useinbandfec", 1);
  if (f.usedtx) w.param("usedtx", 1);
  if (f.minptime != 0) w.param("minptime", f.minptime);
  return w.length;
}

Fmtp fmtp_for_decoder(int decoder_rate, int channels, bool fec, bool dtx, bool cbr, int max_average_bitrate,
                      int capture_rate, bool capture_stereo) noexcept {
  Fmtp f;
  f.maxplaybackrate = clamp_rate(decoder_rate);
  f.sprop_maxcapturerate = clamp_rate(capture_rate);
  f.stereo = channels == 2;
  f.sprop_stereo = capture_stereo;
  f.useinbandfec = fec;
  f.usedtx = dtx;
  f.cbr = cbr;
  f.maxaveragebitrate = valid_average_bitrate(max_average_bitrate) ? max_average_bitrate : 0;
  return f;
}

int default_max_average_bitrate(Application application, Bandwidth bandwidth, int channels) noexcept {
  if (application == Application::Audio) return channels == 2 ? 128000 : 64000;
  switch (bandwidth) {
    case Bandwidth::Narrow: return 12000;
    case Bandwidth::Medium:
    case Bandwidth::Wide: return 20000;
    default: return 40000;
  }
}

int frame_ms_for(const Fmtp& remote) noexcept {
  constexpr int kChoices[] = {10, 20, 40, 60};
  int best = 0;
  int smallest = 0;
  for (int ms : kChoices) {
    if (ms > remote.maxptime || ms < remote.minptime) continue;
    if (smallest == 0) smallest = ms;
    if (ms <= remote.ptime) best = ms;
  }
  if (best != 0) return best;
  return smallest != 0 ? smallest : 10;
}

EncoderSettings encoder_settings_for(const Fmtp& remote, const EncoderSettings& base) noexcept {
  EncoderSettings s = base;
  const Bandwidth theirs = bandwidth_for_rate(remote.maxplaybackrate);
  s.max_bandwidth = std::min(base.max_bandwidth, theirs);
  s.sample_rate = std::min(base.sample_rate, pcm_rate_for(s.max_bandwidth));
  s.channels = remote.stereo ? base.channels : 1;
  // Their limit: maxaveragebitrate, or by default the section 3.1.1 figure
  // for their maxplaybackrate.
  const int cap = remote.maxaveragebitrate != 0
                      ? remote.maxaveragebitrate
                      : default_max_average_bitrate(base.application, theirs, s.channels);
  // Our choice when base leaves it to us: the section 3.1.1 figure for the
  // bandwidth we actually code (our PCM rate may carry less than they render).
  const Bandwidth coded = std::min(s.max_bandwidth, bandwidth_for_rate(s.sample_rate));
  const int wanted = base.bitrate != 0 ? base.bitrate : default_max_average_bitrate(base.application, coded, s.channels);
  s.bitrate = std::min(wanted, cap);
  s.fec = remote.useinbandfec;
  s.dtx = remote.usedtx;
  s.cbr = remote.cbr;
  s.frame_ms = frame_ms_for(remote);
  return s;
}

}  // namespace opus
}  // namespace mediacore
