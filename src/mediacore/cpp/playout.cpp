#include "playout.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "time_stretch.hpp"

namespace mediacore {

namespace {
JitterBufferConfig for_playout(JitterBufferConfig c) {
  c.adapt_frames = false;  // the playout time-stretches instead
  return c;
}

int plc_rate(int rate) { return (rate == 8000 || rate == 16000 || rate == 48000) ? rate : 8000; }
}  // namespace

Playout::Playout(std::unique_ptr<AudioDecoder> decoder, const PlayoutConfig& config)
    : config_(config),
      decoder_(std::move(decoder)),
      buffer_(for_playout(config.buffer)),
      plc_(plc_rate(decoder_ ? decoder_->sample_rate() : 8000)),
      native_plc_(decoder_ && decoder_->id() == CodecId::OPUS),
      pcm_rate_(decoder_ ? decoder_->sample_rate() : 0) {
  if (!decoder_) throw std::invalid_argument("Playout needs a decoder");
  if (pcm_rate_ != 8000 && pcm_rate_ != 16000 && pcm_rate_ != 48000)
    throw std::invalid_argument("decoder sample rate must be 8000, 16000 or 48000");
  const long long frame = static_cast<long long>(config.buffer.frame_samples) * pcm_rate_;
  if (frame % config.buffer.clock_rate)
    throw std::invalid_argument("frame_samples does not give a whole number of PCM samples");
  pcm_frame_ = static_cast<int>(frame / config.buffer.clock_rate);
  if (!(config.accelerate_above_ms >= 0) || !(config.decelerate_below_ms >= 0))
    throw std::invalid_argument("accelerate_above_ms and decelerate_below_ms must be >= 0");
  ms_per_pcm_ = 1000.0 / pcm_rate_;
  // Room for: leftover frames, one pulled-ahead packet of up to 120 ms, and
  // an inserted period.
  const std::size_t cap = static_cast<std::size_t>(4 * pcm_frame_ + pcm_rate_ * 120 / 1000 + 2 * stretch::max_lag(pcm_rate_));
  sync_.assign(cap, 0);
  kinds_.assign(cap, static_cast<std::uint8_t>(FrameKind::Empty));
  scratch_.assign(cap, 0);
}

void Playout::shift_pending(int from, int delta) noexcept {
  for (int i = 0; i < pending_count_; ++i) {
    if (pending_[i].position >= from) pending_[i].position = std::max(from, pending_[i].position + delta);
  }
}

void Playout::pull(double now_ms) noexcept {
  const JitterFrame f = buffer_.get(now_ms);
  const int room = static_cast<int>(sync_.size()) - len_;
  std::int16_t* dst = sync_.data() + len_;
  int n = 0;
  FrameKind kind = f.kind;
  const int frame_pcm = static_cast<int>(static_cast<long long>(f.samples) * pcm_rate_ / config_.buffer.clock_rate);
  const int want = std::clamp(frame_pcm, 1, room);
  if (kind == FrameKind::Normal) {
    n = decoder_->decode(f.payload, f.size, dst, static_cast<std::size_t>(room));
    if (n <= 0) {
      ++decode_errors_;
      kind = FrameKind::Concealed;
    } else {
      const long long rtp = static_cast<long long>(n) * config_.buffer.clock_rate / pcm_rate_;
      buffer_.set_packet_samples(static_cast<int>(rtp));
      if (!native_plc_) plc_.good(dst, dst, static_cast<std::size_t>(n));
      if (play_log_ && pending_count_ < kMaxPending) pending_[pending_count_++] = {f.sequence, f.arrival_ms, len_};
    }
  }
  if (kind == FrameKind::Concealed) {
    n = want;
    int done = -1;
    if (native_plc_) {
      if (config_.use_fec && f.next_payload) {
        done = decoder_->decode_fec(f.next_payload, f.next_size, dst, static_cast<std::size_t>(n));
        if (done > 0) fec_samples_ += static_cast<std::uint64_t>(done);
      }
      if (done <= 0) done = decoder_->conceal(dst, static_cast<std::size_t>(n));
      if (done > 0) n = std::min(done, room);
    } else {
      // G.711/L16 decoders are stateless: decoding the next packet early is
      // free, and lets the PLC end the gap on it (two-sided concealment).
      const int next_n = f.next_payload ? decoder_->decode(f.next_payload, f.next_size, scratch_.data(),
                                                           scratch_.size())
                                        : -1;
      if (next_n > 0) {
        plc_.conceal_before(scratch_.data(), static_cast<std::size_t>(next_n), dst, static_cast<std::size_t>(n));
      } else {
        plc_.conceal(dst, static_cast<std::size_t>(n));
      }
      done = n;
    }
    if (done <= 0) std::memset(dst, 0, static_cast<std::size_t>(n) * sizeof(std::int16_t));
  } else if (kind == FrameKind::Empty) {
    n = want;
    std::memset(dst, 0, static_cast<std::size_t>(n) * sizeof(std::int16_t));
    // Silence ends any erasure; a loss right after it conceals silence.
    if (!native_plc_) plc_.reset();
  }
  std::memset(kinds_.data() + len_, static_cast<int>(kind), static_cast<std::size_t>(n));
  len_ += n;
}

bool Playout::all_normal() const noexcept {
  for (int i = 0; i < len_; ++i)
    if (kinds_[static_cast<std::size_t>(i)] != static_cast<std::uint8_t>(FrameKind::Normal)) return false;
  return len_ > 0;
}

double Playout::next_pull_delay_ms(double now_ms) const noexcept {
  // After this tick plays one frame, the next packet is pulled at the first
  // tick that finds less than a frame left: its margin is the delay then.
  const int left = std::max(0, len_ - pcm_frame_);
  const double frame_ms = pcm_frame_ * ms_per_pcm_;
  return buffer_.playout_delay_ms(now_ms + frame_ms * (1 + left / pcm_frame_));
}

bool Playout::remove_samples(const stretch::Options& o) noexcept {
  if (!all_normal() || o.max_change < 1) return false;
  const int m = stretch::accelerate(sync_.data(), static_cast<std::size_t>(len_), pcm_rate_, scratch_.data(),
                                    scratch_.size(), o);
  if (m <= 0 || m >= len_) return false;
  const int removed = len_ - m;
  std::memcpy(sync_.data(), scratch_.data(), static_cast<std::size_t>(m) * sizeof(std::int16_t));
  shift_pending(removed, -removed);
  len_ = m;
  removed_ += static_cast<std::uint64_t>(removed);
  return true;
}

bool Playout::insert_samples(const stretch::Options& o) noexcept {
  if (!all_normal() || len_ < 2 * stretch::min_lag(pcm_rate_)) return false;
  const int m = stretch::preemptive_expand(sync_.data(), static_cast<std::size_t>(len_), pcm_rate_, scratch_.data(),
                                           scratch_.size(), o);
  if (m <= len_) return false;
  const int inserted = m - len_;
  std::memcpy(sync_.data(), scratch_.data(), static_cast<std::size_t>(m) * sizeof(std::int16_t));
  std::memset(kinds_.data() + len_, static_cast<int>(FrameKind::Normal), static_cast<std::size_t>(inserted));
  shift_pending(inserted, inserted);
  len_ = m;
  inserted_ += static_cast<std::uint64_t>(inserted);
  return true;
}

// The delay that matters is the margin M of the next packet: how long after
// its send time (against the transit reference) it is pulled, which happens on
// the 20 ms clock, so M moves in whole frames; the samples left in the sync
// buffer when it is pulled (L) delay it further without helping. Stretching
// moves L; when L crosses a frame boundary, M moves by a frame. So:
//   M < target                 insert (a period, or in silence enough to cross);
//   M >= target + frame + h    remove (pulling the next packet early if it is
//                              here), which lowers M by a frame once L wraps;
//   otherwise, in silence      cut the leftover L: less delay at no risk.
void Playout::stretch(double now_ms) noexcept {
  if (!buffer_.playing()) return;
  const double target = buffer_.target_delay_ms();
  const double frame_ms = pcm_frame_ * ms_per_pcm_;
  const double margin = next_pull_delay_ms(now_ms);
  const int left = len_ - pcm_frame_;  // leftover after this tick (L)
  stretch::Options o;
  if (margin < target - config_.decelerate_below_ms) {
    o.max_quiet_samples = std::max(1, pcm_frame_ - left % pcm_frame_);
    o.allow_voiced = margin < target - config_.decelerate_speech_below_ms;
    insert_samples(o);
  } else if (margin >= target + frame_ms + config_.accelerate_above_ms) {
    o.allow_voiced = margin >= target + frame_ms + config_.accelerate_speech_above_ms;
    const int need = pcm_frame_ + stretch::max_lag(pcm_rate_);
    while (len_ < need && buffer_.next_ready() && len_ + 3 * pcm_frame_ < static_cast<int>(sync_.size())) {
      pull(now_ms);
    }
    o.max_change = len_ - pcm_frame_;  // keep a whole frame to play
    // In silence, cut at most the excess over the target.
    o.max_quiet_samples = std::min(o.max_change, static_cast<int>((margin - target) / ms_per_pcm_));
    if (o.max_change >= stretch::min_lag(pcm_rate_)) remove_samples(o);
  } else if (left > 0 && stretch::rms(sync_.data(), static_cast<std::size_t>(len_)) <= o.quiet_rms) {
    o.max_change = left;
    o.max_quiet_samples = left;
    remove_samples(o);
  }
}

int Playout::tick(double now_ms, std::int16_t* out, std::size_t capacity, FrameKind* kind_out) noexcept {
  if (!out || capacity < static_cast<std::size_t>(pcm_frame_) || !std::isfinite(now_ms)) return -1;
  for (int guard = 0; len_ < pcm_frame_ && guard < 64; ++guard) pull(now_ms);
  if (config_.time_stretch) stretch(now_ms);
  for (int guard = 0; len_ < pcm_frame_ && guard < 64; ++guard) pull(now_ms);

  bool any_normal = false, any_concealed = false;
  for (int i = 0; i < pcm_frame_; ++i) {
    const auto kind = static_cast<FrameKind>(kinds_[static_cast<std::size_t>(i)]);
    if (kind == FrameKind::Concealed) {
      any_concealed = true;
      ++concealed_;
      if (last_sample_kind_ != FrameKind::Concealed) ++events_;
    } else if (kind == FrameKind::Normal) {
      any_normal = true;
    }
    last_sample_kind_ = kind;
  }
  if (any_concealed && stretch::rms(sync_.data(), static_cast<std::size_t>(pcm_frame_)) < 1.0) {
    for (int i = 0; i < pcm_frame_; ++i)
      if (kinds_[static_cast<std::size_t>(i)] == static_cast<std::uint8_t>(FrameKind::Concealed)) ++silent_concealed_;
  }
  std::memcpy(out, sync_.data(), static_cast<std::size_t>(pcm_frame_) * sizeof(std::int16_t));

  // Packets whose first sample was just played.
  int kept = 0;
  for (int i = 0; i < pending_count_; ++i) {
    Pending p = pending_[i];
    if (p.position < pcm_frame_) {
      if (play_log_ && play_log_->size() < play_log_->capacity())
        play_log_->push_back({p.sequence, p.arrival_ms, now_ms + p.position * ms_per_pcm_});
    } else {
      p.position -= pcm_frame_;
      pending_[kept++] = p;
    }
  }
  pending_count_ = kept;

  len_ -= pcm_frame_;
  std::memmove(sync_.data(), sync_.data() + pcm_frame_, static_cast<std::size_t>(len_) * sizeof(std::int16_t));
  std::memmove(kinds_.data(), kinds_.data() + pcm_frame_, static_cast<std::size_t>(len_));
  output_samples_ += static_cast<std::uint64_t>(pcm_frame_);
  last_kind_ = any_concealed ? FrameKind::Concealed : any_normal ? FrameKind::Normal : FrameKind::Empty;
  if (kind_out) *kind_out = last_kind_;
  return pcm_frame_;
}

JitterStats Playout::stats() const noexcept {
  JitterStats s = buffer_.stats();
  // The packet layer counts in RTP clock units; report samples at the PCM rate.
  const double k = static_cast<double>(pcm_rate_) / config_.buffer.clock_rate;
  s.jitter_buffer_delay *= k;
  s.jitter_buffer_target_delay *= k;
  s.jitter_buffer_minimum_delay *= k;
  s.jitter_buffer_emitted_count = static_cast<std::uint64_t>(static_cast<double>(s.jitter_buffer_emitted_count) * k);
  s.total_samples_received = output_samples_;
  s.concealed_samples = concealed_;
  s.silent_concealed_samples = silent_concealed_;
  s.concealment_events = events_;
  s.inserted_samples_for_deceleration = inserted_;
  s.removed_samples_for_acceleration = removed_ + static_cast<std::uint64_t>(
      static_cast<double>(buffer_.stats().removed_samples_for_acceleration) * k);
  return s;
}

}  // namespace mediacore
