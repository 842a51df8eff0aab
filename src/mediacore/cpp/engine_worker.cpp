// Engine media threads: one epoll loop per worker with its legs, rooms,
// players and recorder taps. Everything here runs on the worker's thread
// except post()/call(), which are the only way in.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "dtmf.hpp"
#include "engine_internal.hpp"
#include "mixer.hpp"
#include "opus_codec.hpp"
#include "playout.hpp"
#include "prompt.hpp"
#include "recorder.hpp"
#include "resampler.hpp"
#include "rtp.hpp"
#include "rtcp.hpp"
#include "rtp_stats.hpp"
#include "emodel.hpp"
#include "tones.hpp"

namespace mediacore::engine {

namespace {

constexpr std::int64_t kHousekeepingMs = 100;
// A latched leg whose source has been silent this long follows a new source
// (the far end moved: re-INVITE, transfer, NAT rebinding).
constexpr std::int64_t kRelatchSilenceMs = 2000;

int rtp_clock(const LegConfig& c) {
  // RFC 7587: Opus always uses a 48 kHz RTP clock; the others tick at their rate.
  return c.codec == CodecId::OPUS ? 48000 : c.sample_rate;
}

bool can_receive(const LegConfig& c) { return c.direction == Direction::SendRecv || c.direction == Direction::RecvOnly; }
bool can_send(const LegConfig& c) { return c.direction == Direction::SendRecv || c.direction == Direction::SendOnly; }

std::unique_ptr<AudioDecoder> make_decoder(const LegConfig& c) {
  switch (c.codec) {
    case CodecId::PCMU:
    case CodecId::PCMA: return std::make_unique<G711Decoder>(c.codec);
    case CodecId::L16: return std::make_unique<L16Decoder>(c.sample_rate);
    case CodecId::OPUS: return std::make_unique<OpusDecoder>(c.sample_rate, 1);
  }
  return nullptr;
}

std::unique_ptr<AudioEncoder> make_encoder(const LegConfig& c) {
  switch (c.codec) {
    case CodecId::PCMU:
    case CodecId::PCMA: return std::make_unique<G711Encoder>(c.codec);
    case CodecId::L16: return std::make_unique<L16Encoder>(c.sample_rate);
    case CodecId::OPUS: {
      opus::EncoderSettings s;
      s.sample_rate = c.sample_rate;
      s.channels = 1;
      s.bitrate = c.opus_bitrate;
      s.complexity = c.opus_complexity;
      s.fec = c.opus_fec;
      s.packet_loss_percent = c.opus_packet_loss_percent;
      s.dtx = c.opus_dtx;
      s.frame_ms = c.ptime_ms;
      return std::make_unique<OpusEncoder>(s);
    }
  }
  return nullptr;
}

char digit_char(std::uint8_t event) {
  static const char kDigits[] = "0123456789*#ABCD";
  return event < 16 ? kDigits[event] : (event == 16 ? '!' : '?');
}

int digit_event(char d) {
  if (d >= '0' && d <= '9') return d - '0';
  if (d == '*') return 10;
  if (d == '#') return 11;
  if (d >= 'A' && d <= 'D') return 12 + (d - 'A');
  if (d >= 'a' && d <= 'd') return 12 + (d - 'a');
  return -1;
}

bool seq_ahead(std::uint16_t a, std::uint16_t b) { return static_cast<std::int16_t>(a - b) >= 0; }
bool ts_ahead(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) >= 0; }

}  // namespace

// ------------------------------------------------------------------ lifecycle

Worker::Worker(Engine::Impl& engine, int index) : engine_(engine), index_(index) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  cmdfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  timerfd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epfd_ < 0 || cmdfd_ < 0 || timerfd_ < 0) {
    throw std::runtime_error(std::string("engine worker setup: ") + std::strerror(errno));
  }
  watch(cmdfd_, &cmd_poll_);
  watch(timerfd_, &timer_poll_);
  rx_buf_.resize(static_cast<std::size_t>(kBatch) * kMaxDatagram);
  rx_addr_.resize(kBatch);
}

Worker::~Worker() {
  if (thread_.joinable()) stop_and_join();
  for (int fd : {epfd_, cmdfd_, timerfd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void Worker::start() {
  const int tick_ms = engine_config().tick_ms;
  itimerspec spec{};
  spec.it_interval.tv_nsec = static_cast<long>(tick_ms) * 1000000L;
  spec.it_value = spec.it_interval;
  ::timerfd_settime(timerfd_, 0, &spec, nullptr);
  running_ = true;
  window_start_ns_ = now_ns();
  thread_ = std::thread([this] { run(); });
}

void Worker::stop_and_join() {
  if (!thread_.joinable()) return;
  post([](Worker& w) { w.running_ = false; });
  thread_.join();
}

void Worker::post(std::function<void(Worker&)> fn) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    wake = cmds_.empty();
    cmds_.push_back(std::move(fn));
  }
  if (wake) {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(cmdfd_, &one, sizeof one);
  }
}

void Worker::call(const std::function<void(Worker&)>& fn) {
  if (!thread_.joinable() || std::this_thread::get_id() == thread_.get_id()) {
    fn(*this);
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  post([&](Worker& w) {
    fn(w);
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
}

void Worker::watch(int fd, Pollable* p) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = p;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

void Worker::unwatch(int fd) { ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void Worker::run() {
  epoll_event evs[128];
  while (running_) {
    const int n = ::epoll_wait(epfd_, evs, 128, 1000);
    const std::int64_t t0 = now_ns();
    bool commands = false;
    // Sockets and the clock first, commands last: a command may destroy a
    // leg whose readiness is later in this same batch.
    for (int i = 0; i < n; ++i) {
      auto* p = static_cast<Pollable*>(evs[i].data.ptr);
      switch (p->kind) {
        case Pollable::kCommand: commands = true; break;
        case Pollable::kTimer: {
          std::uint64_t expirations = 0;
          if (::read(timerfd_, &expirations, sizeof expirations) == sizeof expirations && expirations > 1) {
            overruns_ += expirations - 1;
          }
          tick(now_ms());
          break;
        }
        case Pollable::kRtp: on_rtp_readable(p->leg); break;
        case Pollable::kRtcp: on_rtcp_readable(p->leg); break;
      }
    }
    if (commands) drain_commands();
    const std::int64_t t1 = now_ns();
    window_busy_ns_ += static_cast<std::uint64_t>(t1 - t0);
    busy_ns_.fetch_add(static_cast<std::uint64_t>(t1 - t0), std::memory_order_relaxed);
    if (t1 - window_start_ns_ >= 1000000000LL) {
      load_.store(static_cast<double>(window_busy_ns_) / static_cast<double>(t1 - window_start_ns_),
                  std::memory_order_relaxed);
      window_busy_ns_ = 0;
      window_start_ns_ = t1;
    }
  }
}

void Worker::drain_commands() {
  std::uint64_t counter;
  [[maybe_unused]] ssize_t r = ::read(cmdfd_, &counter, sizeof counter);
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    cmds_running_.swap(cmds_);
  }
  for (auto& fn : cmds_running_) fn(*this);
  cmds_running_.clear();
}

const EngineConfig& Worker::engine_config() const noexcept { return engine_.config; }

void Worker::emit(Event&& e) {
  if (e.time_ms == 0) e.time_ms = now_ms();
  engine_.events.push(std::move(e));
}

// ------------------------------------------------------------------ legs

void Worker::add_leg(std::unique_ptr<Leg> leg) {
  Leg* l = leg.get();
  l->worker = this;
  l->rtp_poll.leg = l;
  l->rtcp_poll.leg = l;
  l->stats.leg = l->id;
  l->stats.local_port = l->sockets.rtp_port;
  l->stats.local_ssrc = l->ssrc;
  if (l->last_rx_ms == 0) l->last_rx_ms = now_ms();  // the media timeout counts from creation
  if (l->next_stats_ms == 0) l->next_stats_ms = now_ms() + engine_config().stats_interval_ms;
  apply_config(l, l->cfg, true);
  watch(l->sockets.rtp_fd, &l->rtp_poll);
  watch(l->sockets.rtcp_fd, &l->rtcp_poll);
  legs_[l->id] = std::move(leg);
  // A moved leg keeps its room membership on the old worker undone already
  // (take_leg detached it), so nothing else to restore here.
}

void Worker::apply_config(Leg* l, const LegConfig& cfg, bool fresh) {
  const bool codec_changed = fresh || cfg.codec != l->cfg.codec || cfg.sample_rate != l->cfg.sample_rate ||
                             cfg.payload_type != l->cfg.payload_type || cfg.ptime_ms != l->cfg.ptime_ms ||
                             cfg.opus_bitrate != l->cfg.opus_bitrate || cfg.opus_fec != l->cfg.opus_fec ||
                             cfg.opus_dtx != l->cfg.opus_dtx;
  const bool remote_changed =
      fresh || cfg.remote_host != l->cfg.remote_host || cfg.remote_port != l->cfg.remote_port ||
      cfg.remote_rtcp_port != l->cfg.remote_rtcp_port;
  l->cfg = cfg;
  if (remote_changed) {
    l->sdp_rtp = Address{};
    l->sdp_rtcp = Address{};
    if (!cfg.remote_host.empty() && cfg.remote_port > 0) {
      l->sdp_rtp = Address::parse(cfg.remote_host, cfg.remote_port);
      l->sdp_rtcp = Address::parse(cfg.remote_host, cfg.remote_rtcp_port ? cfg.remote_rtcp_port : cfg.remote_port + 1);
    }
    // A new far end: learn its address again from its packets.
    l->latched = false;
    l->latched_rtp = Address{};
    l->latched_rtcp = Address{};
    l->stats.latched = false;
  }
  if (codec_changed) {
    l->playout.reset();
    l->encoder.reset();
    l->up.reset();
    l->down.reset();
    l->tx_fifo.clear();
    l->next_marker = true;
  }
  if (cfg.telephone_event_pt >= 0) {
    if (!l->te_rx || codec_changed) {
      TelephoneEventReceiverConfig rc;
      rc.clock_rate = rtp_clock(cfg);
      l->te_rx = std::make_unique<TelephoneEventReceiver>(rc);
    }
  } else {
    l->te_rx.reset();
  }
  if (codec_changed) l->te_tx.reset();
  if (!cfg.detect_inband_dtmf) l->detector.reset();
  if (l->room) recompute_room(l->room);
}

void Worker::update_leg(ObjectId id, const LegConfig& cfg) {
  Leg* l = leg(id);
  if (!l) return;
  apply_config(l, cfg, false);
}

Leg* Worker::leg(ObjectId id) {
  auto it = legs_.find(id);
  return it == legs_.end() ? nullptr : it->second.get();
}

Room* Worker::room(ObjectId id) {
  auto it = rooms_.find(id);
  return it == rooms_.end() ? nullptr : it->second.get();
}

std::unique_ptr<Leg> Worker::take_leg(ObjectId id) {
  auto it = legs_.find(id);
  if (it == legs_.end()) return nullptr;
  Leg* l = it->second.get();
  detach_from_room(l);
  dtmf_legs_.erase(std::remove(dtmf_legs_.begin(), dtmf_legs_.end(), l), dtmf_legs_.end());
  tap_legs_.erase(std::remove(tap_legs_.begin(), tap_legs_.end(), l), tap_legs_.end());
  unwatch(l->sockets.rtp_fd);
  unwatch(l->sockets.rtcp_fd);
  std::unique_ptr<Leg> out = std::move(it->second);
  legs_.erase(it);
  // Taps move with the leg.
  for (RecorderTap* t : out->recorders) {
    auto rit = std::find_if(recorder_store_.begin(), recorder_store_.end(),
                            [t](const std::unique_ptr<RecorderTap>& p) { return p.get() == t; });
    if (rit != recorder_store_.end()) {
      out->moving_recorders.push_back(std::move(*rit));
      recorder_store_.erase(rit);
    }
    recorders_.erase(t->id);
  }
  out->worker = nullptr;
  return out;
}

void Worker::destroy_leg(ObjectId id) {
  std::unique_ptr<Leg> l = take_leg(id);
  if (!l) return;
  for (auto& t : l->moving_recorders) {
    stop_recorder(t->recorder);
    engine_.retire(t->id);
  }
  engine_.ports.release(&l->sockets);
}

// ------------------------------------------------------------------ receive

void Worker::on_rtp_readable(Leg* leg) {
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  for (int i = 0; i < kBatch; ++i) {
    iov[i].iov_base = rx_buf_.data() + static_cast<std::size_t>(i) * kMaxDatagram;
    iov[i].iov_len = kMaxDatagram;
    msgs[i].msg_hdr = msghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &rx_addr_[static_cast<std::size_t>(i)];
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    msgs[i].msg_len = 0;
  }
  const int n = ::recvmmsg(leg->sockets.rtp_fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
  if (n <= 0) return;
  const std::int64_t now = now_ms();
  for (int i = 0; i < n; ++i) {
    const std::size_t size = msgs[i].msg_len;
    ++packets_in_;
    bytes_in_ += size;
    if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
      ++leg->stats.dropped_oversize;
      continue;
    }
    const Address from = Address::from_sockaddr(static_cast<const sockaddr*>(msgs[i].msg_hdr.msg_name),
                                                msgs[i].msg_hdr.msg_namelen);
    handle_rtp(leg, rx_buf_.data() + static_cast<std::size_t>(i) * kMaxDatagram, size, from, now);
  }
}

void Worker::on_rtcp_readable(Leg* leg) {
  std::uint8_t buf[kMaxDatagram];
  sockaddr_storage from{};
  for (int i = 0; i < kBatch; ++i) {
    socklen_t fromlen = sizeof from;
    const ssize_t n = ::recvfrom(leg->sockets.rtcp_fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                                 reinterpret_cast<sockaddr*>(&from), &fromlen);
    if (n < 0) return;
    ++packets_in_;
    bytes_in_ += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) > sizeof buf) {
      ++leg->stats.dropped_oversize;
      continue;
    }
    handle_rtcp(leg, buf, static_cast<std::size_t>(n), Address::from_sockaddr(reinterpret_cast<sockaddr*>(&from), fromlen),
                now_ms());
  }
}

bool Worker::accept_source(Leg* leg, const Address& from, std::int64_t now) {
  if (leg->latched) {
    if (from == leg->latched_rtp) return true;
    if (leg->cfg.latch && now - leg->last_rx_ms > kRelatchSilenceMs) {
      latch(leg, from);
      return true;
    }
    ++leg->stats.dropped_unexpected_source;
    return false;
  }
  if (leg->cfg.latch) {
    latch(leg, from);
    return true;
  }
  // Strict mode: only the address the SDP named.
  if (leg->sdp_rtp.valid() && from == leg->sdp_rtp) return true;
  ++leg->stats.dropped_unexpected_source;
  return false;
}

void Worker::latch(Leg* leg, const Address& from) {
  leg->latched = true;
  leg->latched_rtp = from;
  // RTCP goes to the next port of where RTP comes from, until RTCP itself
  // tells us otherwise (symmetric RTCP).
  leg->latched_rtcp = from;
  leg->latched_rtcp.set_port(static_cast<std::uint16_t>(from.port() + 1));
  leg->stats.latched = true;
  Event e;
  e.type = EventType::Latched;
  e.leg = leg->id;
  e.text = from.to_string();
  emit(std::move(e));
}

void Worker::handle_rtp(Leg* leg, std::uint8_t* data, std::size_t size, const Address& from, std::int64_t now) {
  rtp::PacketView v;
  if (rtp::parse(data, size, &v) != rtp::kOk) {
    ++leg->stats.dropped_malformed;
    return;
  }
  // RTCP multiplexed on the RTP port (RFC 5761 section 4): payload types 64-95
  // with the marker bit make up RTCP packet types 192-223.
  if (v.payload_type >= 64 && v.payload_type <= 95 && v.marker) {
    handle_rtcp(leg, data, size, from, now);
    return;
  }
  if (!accept_source(leg, from, now)) return;
  ++leg->stats.packets_received;
  leg->stats.bytes_received += size;
  leg->last_rx_ms = now;
  if (leg->timed_out) {
    leg->timed_out = false;
    Event e;
    e.type = EventType::MediaResumed;
    e.leg = leg->id;
    emit(std::move(e));
  }
  if (!can_receive(leg->cfg)) return;  // we asked for no media (sendonly/inactive): count, drop

  const bool is_audio = v.payload_type == leg->cfg.payload_type;
  const bool is_event = leg->cfg.telephone_event_pt >= 0 && v.payload_type == leg->cfg.telephone_event_pt;
  if (!is_audio && !is_event) {
    ++leg->stats.dropped_unknown_payload_type;  // comfort noise (13), unannounced codecs
    return;
  }
  if (!leg->have_remote_ssrc || v.ssrc != leg->remote_ssrc) {
    leg->have_remote_ssrc = true;
    leg->remote_ssrc = v.ssrc;
    leg->stats.remote_ssrc = v.ssrc;
    rtp_stats::Config sc;
    sc.clock_rate = static_cast<std::uint32_t>(rtp_clock(leg->cfg));
    leg->rx_stats = std::make_unique<rtp_stats::ReceiveStats>(v.ssrc, sc);
  }
  if (is_audio) leg->rx_stats->on_packet(v.sequence_number, v.timestamp, now_ns(), v.payload_size);

  if (is_event) {
    if (leg->te_rx) {
      TelephoneEventReport reports[TelephoneEventReceiver::kMaxReportsPerPacket];
      const int n = leg->te_rx->receive(v.timestamp, v.marker, v.payload, v.payload_size, now, reports,
                                        TelephoneEventReceiver::kMaxReportsPerPacket);
      for (int i = 0; i < n; ++i) on_telephone_event(leg, reports[i]);
    }
    // Forward the events themselves when relaying and the far side speaks
    // telephone-event too; otherwise on_telephone_event regenerates them.
    if (leg->relay_to && leg->relay_to->cfg.telephone_event_pt >= 0) {
      relay(leg, leg->relay_to, data, size, v, true, now);
    }
    return;
  }
  if (leg->relay_to) relay(leg, leg->relay_to, data, size, v, false, now);
  if (leg->playout) {
    leg->playout->put(v.sequence_number, v.timestamp, v.ssrc, v.marker, v.payload, v.payload_size,
                      static_cast<double>(now));
  }
}

void Worker::on_telephone_event(Leg* leg, const TelephoneEventReport& r) {
  const char d = digit_char(r.event);
  if (d == '?') return;
  const int clock = rtp_clock(leg->cfg);
  const int duration_ms = static_cast<int>(static_cast<std::int64_t>(r.duration) * 1000 / clock);
  const bool begin = r.kind == TelephoneEventReportKind::kStart;
  emit_digit(leg, d, duration_ms, DtmfSource::Rfc4733, begin);
  // Two-party rooms that are not relaying the event packets pass the digit on.
  if (!begin && leg->room && leg->room->options.forward_dtmf && leg->room->legs.size() == 2) {
    Leg* other = leg->room->legs[0] == leg ? leg->room->legs[1] : leg->room->legs[0];
    const bool relayed = leg->relay_to == other && other->cfg.telephone_event_pt >= 0;
    if (!relayed && d != '!') {
      send_dtmf(other->id, std::string(1, d), std::max(40, duration_ms), 60);
    }
  }
}

void Worker::emit_digit(Leg* leg, char digit, int duration_ms, DtmfSource source, bool begin) {
  if (begin) {
    // Barge-in: a digit stops the prompts that asked for it.
    if (Room* r = leg->room) {
      for (std::size_t i = 0; i < r->players.size();) {
        Player* p = r->players[i].get();
        if (p->spec.stop_on_dtmf && (p->target_leg == leg || p->target_leg == nullptr)) {
          finish_player(r, i, PlaybackEnd::Dtmf);
        } else {
          ++i;
        }
      }
    }
  } else {
    ++leg->stats.dtmf_digits;
  }
  Event e;
  e.type = begin ? EventType::DtmfBegin : EventType::Dtmf;
  e.leg = leg->id;
  e.digit = digit;
  e.source = source;
  e.duration_ms = duration_ms;
  emit(std::move(e));
}

// ------------------------------------------------------------------ send

void Worker::send_rtp(Leg* leg, const std::uint8_t* data, std::size_t size) {
  const Address& to = leg->latched ? leg->latched_rtp : leg->sdp_rtp;
  if (!to.valid()) return;
  const ssize_t n = ::sendto(leg->sockets.rtp_fd, data, size, MSG_DONTWAIT, to.sa(), to.length);
  if (n < 0) {
    ++leg->stats.send_errors;
    return;
  }
  ++packets_out_;
  bytes_out_ += size;
  ++leg->stats.packets_sent;
  leg->stats.bytes_sent += size;
}

void Worker::relay(Leg* from, Leg* to, std::uint8_t* data, std::size_t size, const rtp::PacketView& v, bool event,
                   std::int64_t now) {
  if (!can_send(to->cfg)) return;
  // One continuous stream per side: when the source stream starts (or its
  // SSRC changes) map its sequence numbers and timestamps onto where our
  // stream towards `to` stands, then keep the offsets so that loss and
  // reordering pass through unchanged.
  bool marker = v.marker;
  if (!from->relay_mapped || from->relay_src_ssrc != v.ssrc) {
    std::uint32_t next_ts = to->ts;
    if (to->tx_started) {
      next_ts += static_cast<std::uint32_t>((now - to->last_tx_ms) * rtp_clock(to->cfg) / 1000);
    }
    from->relay_seq_delta = static_cast<std::uint16_t>(to->seq - v.sequence_number);
    from->relay_ts_delta = next_ts - v.timestamp;
    from->relay_src_ssrc = v.ssrc;
    from->relay_mapped = true;
    marker = true;
  }
  const auto seq = static_cast<std::uint16_t>(v.sequence_number + from->relay_seq_delta);
  const std::uint32_t ts = v.timestamp + from->relay_ts_delta;
  rtp::set_ssrc(data, to->ssrc);
  rtp::set_sequence_number(data, seq);
  rtp::set_timestamp(data, ts);
  const int pt = event ? to->cfg.telephone_event_pt : to->cfg.payload_type;
  rtp::set_payload_type(data, static_cast<std::uint8_t>(pt));
  if (marker && !v.marker) data[1] |= 0x80;
  if (!to->tx_started || seq_ahead(seq, to->seq)) to->seq = static_cast<std::uint16_t>(seq + 1);
  const std::uint32_t frame = static_cast<std::uint32_t>(to->cfg.ptime_ms * rtp_clock(to->cfg) / 1000);
  if (!event && (!to->tx_started || ts_ahead(ts + frame, to->ts))) to->ts = ts + frame;
  to->tx_started = true;
  to->last_tx_ms = now;
  ++from->stats.packets_relayed;
  const std::uint64_t before = to->stats.packets_sent;
  send_rtp(to, data, size);
  if (to->stats.packets_sent != before) {
    ++to->rtcp_packets_sent;
    to->rtcp_octets_sent += v.payload_size;
    to->last_sent_rtp_ts = ts;
    to->last_sent_ms = now;
  }
}

void Worker::originate(Leg* leg, std::uint8_t payload_type, bool marker, std::uint32_t ts,
                       const std::uint8_t* payload, std::size_t size) {
  rtp::PacketSpec spec;
  spec.marker = marker;
  spec.payload_type = payload_type;
  spec.sequence_number = leg->seq;
  spec.timestamp = ts;
  spec.ssrc = leg->ssrc;
  spec.payload = payload;
  spec.payload_size = size;
  std::uint8_t buf[kMaxDatagram];
  const std::ptrdiff_t n = rtp::serialize(spec, buf, sizeof buf);
  if (n < 0) return;
  leg->seq = static_cast<std::uint16_t>(leg->seq + 1);
  const std::uint64_t before = leg->stats.packets_sent;
  send_rtp(leg, buf, static_cast<std::size_t>(n));
  if (leg->stats.packets_sent != before) {
    ++leg->rtcp_packets_sent;
    leg->rtcp_octets_sent += size;
    leg->last_sent_rtp_ts = ts;
    leg->last_sent_ms = now_ms();
  }
}

// ------------------------------------------------------------------ RTCP

namespace {
std::int64_t wallclock_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}
}  // namespace

void Worker::handle_rtcp(Leg* leg, const std::uint8_t* data, std::size_t size, const Address& from, std::int64_t now) {
  // Reduced-size rules (RFC 5506): real peers send compounds that do not
  // start with SR/RR (baresip's BYE at hang-up, its APP keep-alives); strict
  // RFC 3550 A.2 validation would drop them. Every packet is still checked.
  rtcp::CompoundReader reader(data, size, /*reduced_size=*/true);
  if (reader.validate() != rtcp::kOk) {
    ++leg->stats.rtcp_malformed;
    return;
  }
  // RTCP must come from the host we exchange RTP with.
  const Address& peer = leg->latched ? leg->latched_rtp : leg->sdp_rtp;
  if (peer.valid() && !from.same_host(peer)) {
    ++leg->stats.dropped_unexpected_source;
    return;
  }
  if (leg->latched && from.same_host(leg->latched_rtp)) leg->latched_rtcp = from;  // symmetric RTCP
  ++leg->stats.rtcp_received;
  const std::uint32_t arrival_mid = rtp_stats::ntp_middle32(rtp_stats::ntp_from_unix_ns(wallclock_ns()));
  rtcp::PacketView p;
  while (reader.next(&p) == 1) {
    if (p.packet_type == rtcp::kSR || p.packet_type == rtcp::kRR) {
      rtcp::ReportView r;
      if (rtcp::parse_report(p, &r) != rtcp::kOk) continue;
      if (r.has_sender_info && leg->rx_stats && r.ssrc == leg->rx_stats->ssrc()) {
        leg->rx_stats->on_sender_report(r.sender.ntp_timestamp, now_ns());
      }
      for (int i = 0; i < r.report_count; ++i) {
        const rtcp::ReportBlock b = r.block(i);
        if (b.ssrc != leg->ssrc) continue;
        leg->stats.remote_fraction_lost = b.fraction_lost / 256.0;
        leg->stats.remote_jitter_ms = 1000.0 * b.jitter / rtp_clock(leg->cfg);
        if (b.last_sr != 0) {
          const std::int64_t q16 = rtp_stats::rtt_q16(arrival_mid, b.last_sr, b.delay_since_last_sr);
          if (q16 >= 0) leg->stats.rtt_ms = 1000.0 * static_cast<double>(q16) / 65536.0;
        }
      }
    } else if (p.packet_type == rtcp::kBYE) {
      rtcp::ByeView bye;
      if (rtcp::parse_bye(p, &bye) != rtcp::kOk) continue;
      for (int i = 0; i < bye.source_count; ++i) {
        if (leg->have_remote_ssrc && bye.source(i) == leg->remote_ssrc) {
          Event e;
          e.type = EventType::RtcpBye;
          e.leg = leg->id;
          if (bye.has_reason) e.text.assign(reinterpret_cast<const char*>(bye.reason), bye.reason_size);
          emit(std::move(e));
        }
      }
    }
  }
  (void)now;
}

void Worker::send_rtcp(Leg* leg, std::int64_t now) {
  const Address& to = leg->latched ? leg->latched_rtcp : leg->sdp_rtcp;
  if (!to.valid()) return;
  std::uint8_t buf[512];
  rtcp::Writer w(buf, sizeof buf);
  rtcp::ReportBlock block;
  int blocks = 0;
  if (leg->rx_stats && leg->rx_stats->snapshot().valid) {
    block = leg->rx_stats->report_block(now_ns());
    blocks = 1;
  }
  int rc;
  if (leg->rtcp_packets_sent > leg->rtcp_packets_at_last_report) {
    rtcp::SenderInfo info;
    info.ntp_timestamp = rtp_stats::ntp_from_unix_ns(wallclock_ns());
    info.rtp_timestamp = leg->last_sent_rtp_ts +
                         static_cast<std::uint32_t>((now - leg->last_sent_ms) * rtp_clock(leg->cfg) / 1000);
    info.packet_count = static_cast<std::uint32_t>(leg->rtcp_packets_sent);
    info.octet_count = static_cast<std::uint32_t>(leg->rtcp_octets_sent);
    rc = w.sender_report(leg->ssrc, info, blocks ? &block : nullptr, blocks);
  } else {
    rc = w.receiver_report(leg->ssrc, blocks ? &block : nullptr, blocks);
  }
  if (rc < 0) return;
  // Every compound packet carries a CNAME (RFC 3550 6.1).
  const std::string cname = "hotline-" + std::to_string(leg->ssrc) + "@" + leg->local_host;
  rtcp::SdesItem item;
  item.type = rtcp::kCname;
  item.data = reinterpret_cast<const std::uint8_t*>(cname.data());
  item.size = std::min<std::size_t>(cname.size(), 255);
  rtcp::SdesChunk chunk;
  chunk.ssrc = leg->ssrc;
  chunk.items = &item;
  chunk.item_count = 1;
  if (w.sdes(&chunk, 1) < 0) return;
  leg->rtcp_packets_at_last_report = leg->rtcp_packets_sent;
  const ssize_t n = ::sendto(leg->sockets.rtcp_fd, buf, w.size(), MSG_DONTWAIT, to.sa(), to.length);
  if (n > 0) {
    ++leg->stats.rtcp_sent;
    ++packets_out_;
    bytes_out_ += static_cast<std::uint64_t>(n);
  }
}

// ------------------------------------------------------------------ rooms

void Worker::add_room(std::unique_ptr<Room> room) {
  Room* r = room.get();
  const int tick_ms = engine_config().tick_ms;
  r->mixer = std::make_unique<Mixer>(r->options.sample_rate, tick_ms, Mixer::kMaxSlots);
  rooms_[r->id] = std::move(room);
}

Room* Worker::implicit_room_for(Leg* l) {
  if (l->room) return l->room;
  auto room = std::make_unique<Room>();
  room->id = 0;  // not in the registry: lives and dies with the leg's solo use
  room->implicit = true;
  room->options.sample_rate = l->cfg.sample_rate;
  room->options.forward_dtmf = false;
  Room* r = room.get();
  const int tick_ms = engine_config().tick_ms;
  r->mixer = std::make_unique<Mixer>(r->options.sample_rate, tick_ms, 64);
  implicit_rooms_.push_back(std::move(room));
  r->legs.push_back(l);
  l->room = r;
  l->slot = r->mixer->add_slot(true);
  tap_legs_.erase(std::remove(tap_legs_.begin(), tap_legs_.end(), l), tap_legs_.end());
  recompute_room(r);
  return r;
}

void Worker::join(ObjectId room_id, ObjectId leg_id, bool member) {
  Room* r = room(room_id);
  Leg* l = leg(leg_id);
  if (!r || !l || l->room == r) return;
  detach_from_room(l);
  r->legs.push_back(l);
  l->room = r;
  l->slot = r->mixer->add_slot(member);
  tap_legs_.erase(std::remove(tap_legs_.begin(), tap_legs_.end(), l), tap_legs_.end());
  // Room-wide players are heard by newcomers too.
  for (auto& p : r->players) {
    if (!p->target_leg) r->mixer->set_edge(p->slot, l->slot, gain_q12(p->spec.gain));
  }
  recompute_room(r);
}

void Worker::leave(ObjectId room_id, ObjectId leg_id) {
  Leg* l = leg(leg_id);
  if (!l || !l->room || l->room->id != room_id || l->room->implicit) return;
  detach_from_room(l);
}

void Worker::detach_from_room(Leg* l) {
  Room* r = l->room;
  if (!r) return;
  for (std::size_t i = 0; i < r->players.size();) {
    if (r->players[i]->target_leg == l) {
      finish_player(r, i, PlaybackEnd::Stopped);
    } else {
      ++i;
    }
  }
  r->legs.erase(std::remove(r->legs.begin(), r->legs.end(), l), r->legs.end());
  if (l->slot >= 0) r->mixer->remove_slot(l->slot);
  for (Leg* other : r->legs) {
    if (other->relay_to == l) other->relay_to = nullptr;
  }
  l->relay_to = nullptr;
  l->relay_mapped = false;
  l->room = nullptr;
  l->slot = -1;
  if (!l->recorders.empty() || l->detector) {
    if (std::find(tap_legs_.begin(), tap_legs_.end(), l) == tap_legs_.end()) tap_legs_.push_back(l);
  }
  if (r->implicit && r->legs.empty()) {
    while (!r->players.empty()) finish_player(r, 0, PlaybackEnd::Stopped);
    implicit_rooms_.erase(std::remove_if(implicit_rooms_.begin(), implicit_rooms_.end(),
                                         [r](const std::unique_ptr<Room>& p) { return p.get() == r; }),
                          implicit_rooms_.end());
    return;
  }
  recompute_room(r);
}

void Worker::destroy_room(ObjectId id) {
  Room* r = room(id);
  if (!r) return;
  while (!r->players.empty()) finish_player(r, 0, PlaybackEnd::Stopped);
  while (!r->legs.empty()) detach_from_room(r->legs.back());
  for (RecorderTap* t : std::vector<RecorderTap*>(r->recorders)) recorder_control(t->id, 2);
  rooms_.erase(id);
}

void Worker::recompute_room(Room* r) {
  bool relay = r->legs.size() == 2 && r->players.empty() && r->recorders.empty() && !r->customized;
  if (relay) {
    const LegConfig& a = r->legs[0]->cfg;
    const LegConfig& b = r->legs[1]->cfg;
    relay = a.codec == b.codec && a.sample_rate == b.sample_rate && !a.detect_inband_dtmf && !b.detect_inband_dtmf;
  }
  r->relay = relay;
  for (Leg* l : r->legs) {
    Leg* peer = relay ? (r->legs[0] == l ? r->legs[1] : r->legs[0]) : nullptr;
    if (l->relay_to != peer) {
      l->relay_to = peer;
      l->relay_mapped = false;
    }
    const bool tapped = !l->recorders.empty() || l->detector != nullptr;
    const bool peer_tapped = peer && (!peer->recorders.empty() || peer->detector != nullptr);
    // Decode what is heard or recorded: everything when mixing, and in relay
    // mode only what a tap needs (a recorder hears both sides).
    const bool decode = !relay || tapped || peer_tapped;
    if (decode) {
      ensure_decoding(l, r->options.sample_rate);
    } else {
      l->playout.reset();
    }
    if (!relay) ensure_encoding(l, r->options.sample_rate);
  }
}

void Worker::ensure_decoding(Leg* l, int room_rate) {
  if (l->cfg.detect_inband_dtmf && !l->detector) {
    DtmfDetectorConfig dc;
    dc.sample_rate = l->cfg.sample_rate;
    l->detector = std::make_unique<DtmfDetector>(dc);
  }
  const int tick_ms = engine_config().tick_ms;
  if (!l->playout) {
    PlayoutConfig pc;
    pc.buffer.clock_rate = rtp_clock(l->cfg);
    pc.buffer.frame_samples = tick_ms * rtp_clock(l->cfg) / 1000;
    l->playout = std::make_unique<Playout>(make_decoder(l->cfg), pc);
  }
  if (l->cfg.sample_rate != room_rate) {
    if (!l->up || l->up->to_rate() != room_rate) l->up = std::make_unique<Resampler>(l->cfg.sample_rate, room_rate);
  } else {
    l->up.reset();
  }
  l->leg_frame.assign(static_cast<std::size_t>(l->cfg.sample_rate * tick_ms / 1000), 0);
  l->in_frame.assign(static_cast<std::size_t>(room_rate * tick_ms / 1000), 0);
}

void Worker::ensure_encoding(Leg* l, int room_rate) {
  if (!l->encoder) l->encoder = make_encoder(l->cfg);
  if (l->cfg.sample_rate != room_rate) {
    if (!l->down || l->down->from_rate() != room_rate) {
      l->down = std::make_unique<Resampler>(room_rate, l->cfg.sample_rate);
    }
  } else {
    l->down.reset();
  }
}

std::int32_t Worker::gain_q12(double gain) noexcept {
  return static_cast<std::int32_t>(std::lround(gain * Mixer::kUnityGain));
}

void Worker::set_edge(ObjectId room_id, ObjectId from, ObjectId to, double gain, bool clear) {
  Room* r = room(room_id);
  Leg* a = leg(from);
  Leg* b = leg(to);
  if (!r || !a || !b || a->room != r || b->room != r) return;
  if (clear) {
    r->mixer->clear_edge(a->slot, b->slot);
  } else {
    r->mixer->set_edge(a->slot, b->slot, gain_q12(gain));
  }
  r->customized = true;
  recompute_room(r);
}

void Worker::supervise(ObjectId room_id, ObjectId sup, ObjectId caller, ObjectId agent, int mode) {
  Room* r = room(room_id);
  Leg* s = leg(sup);
  Leg* c = leg(caller);
  Leg* a = leg(agent);
  if (!r || !s || !c || !a || c->room != r || a->room != r) return;
  if (s->room != r) join(room_id, sup, false);
  r->mixer->set_supervisor(s->slot, c->slot, a->slot, static_cast<SupervisorMode>(mode));
  r->customized = true;
  recompute_room(r);
}

void Worker::set_mute(ObjectId room_id, ObjectId leg_id, bool muted) {
  Room* r = room(room_id);
  Leg* l = leg(leg_id);
  if (!r || !l || l->room != r) return;
  r->mixer->set_mute(l->slot, muted);
  r->customized = true;
  recompute_room(r);
}

// ------------------------------------------------------------------ players

int Worker::rate_for(ObjectId target) {
  if (Leg* l = leg(target)) return l->room ? l->room->options.sample_rate : l->cfg.sample_rate;
  if (Room* r = room(target)) return r->options.sample_rate;
  return 0;
}

void Worker::add_player(ObjectId target, std::unique_ptr<Player> player) {
  Room* r = nullptr;
  Leg* target_leg = nullptr;
  if (Leg* l = leg(target)) {
    target_leg = l;
    r = implicit_room_for(l);
  } else {
    r = room(target);
  }
  Player* p = player.get();
  if (!r || (p->prompt && p->prompt->sample_rate != r->options.sample_rate)) {
    // The target vanished (or moved to a room of another rate) before this ran.
    Event e;
    e.type = EventType::PlaybackFinished;
    e.object = p->id;
    e.leg = target_leg ? target_leg->id : 0;
    e.code = static_cast<std::int32_t>(PlaybackEnd::LegGone);
    if (p->id) emit(std::move(e));
    if (p->id) engine_.retire(p->id);
    return;
  }
  const int rate = r->options.sample_rate;
  p->target_leg = target_leg;
  switch (p->spec.kind) {
    case PlayKind::File: break;
    case PlayKind::Tone: {
      p->tone = std::make_unique<TonePlayer>(rate);
      const auto region = p->spec.region == "eu" ? tones::Region::kEU
                          : p->spec.region == "cn" ? tones::Region::kCN : tones::Region::kUS;
      const auto tone = p->spec.tone == "busy"         ? tones::ProgressTone::kBusy
                        : p->spec.tone == "congestion" ? tones::ProgressTone::kCongestion
                        : p->spec.tone == "dial"       ? tones::ProgressTone::kDial
                                                       : tones::ProgressTone::kRingback;
      p->tone->play(tones::call_progress(region, tone));
      if (p->spec.duration_ms > 0) p->samples_left = static_cast<std::int64_t>(p->spec.duration_ms) * rate / 1000;
      break;
    }
    case PlayKind::Silence:
      p->samples_left = static_cast<std::int64_t>(p->spec.duration_ms) * rate / 1000;
      break;
    case PlayKind::Digits: {
      p->tone = std::make_unique<TonePlayer>(rate);
      const int on = p->spec.duration_ms > 0 ? p->spec.duration_ms : 100;
      for (char d : p->spec.digits) {
        tones::ToneSpec spec{};
        if (tones::dtmf_digit(d, -10.0, 0.0, static_cast<std::uint32_t>(on), 100, &spec)) p->tone->enqueue(spec);
      }
      break;
    }
  }
  p->slot = r->mixer->add_slot(false);
  if (p->slot < 0) return;
  if (target_leg) {
    r->mixer->set_edge(p->slot, target_leg->slot, gain_q12(p->spec.gain));
  } else {
    for (Leg* l : r->legs) r->mixer->set_edge(p->slot, l->slot, gain_q12(p->spec.gain));
  }
  if (p->id) player_rooms_[p->id] = r;
  r->players.push_back(std::move(player));
  recompute_room(r);
}

void Worker::finish_player(Room* r, std::size_t index, PlaybackEnd why) {
  std::unique_ptr<Player> p = std::move(r->players[index]);
  r->players.erase(r->players.begin() + static_cast<std::ptrdiff_t>(index));
  if (p->slot >= 0) r->mixer->remove_slot(p->slot);
  if (p->id) {
    player_rooms_.erase(p->id);
    Event e;
    e.type = EventType::PlaybackFinished;
    e.object = p->id;
    e.leg = p->target_leg ? p->target_leg->id : 0;
    e.code = static_cast<std::int32_t>(why);
    emit(std::move(e));
    engine_.retire(p->id);
  }
  recompute_room(r);
}

void Worker::stop_player(ObjectId id, PlaybackEnd why) {
  auto it = player_rooms_.find(id);
  if (it == player_rooms_.end()) return;
  Room* r = it->second;
  for (std::size_t i = 0; i < r->players.size(); ++i) {
    if (r->players[i]->id == id) {
      finish_player(r, i, why);
      return;
    }
  }
}

void Worker::fill_player(Player* p, std::int16_t* out, std::size_t n) {
  std::size_t done = 0;
  switch (p->spec.kind) {
    case PlayKind::File: {
      const auto& pcm = p->prompt->pcm;
      while (done < n && !p->finished) {
        if (p->position >= pcm.size()) {
          ++p->loops_done;
          if (p->spec.loops != 0 && p->loops_done >= p->spec.loops) {
            p->finished = true;
            break;
          }
          p->position = 0;
          if (pcm.empty()) {
            p->finished = true;
            break;
          }
        }
        const std::size_t k = std::min(n - done, pcm.size() - p->position);
        std::memcpy(out + done, pcm.data() + p->position, k * sizeof(std::int16_t));
        p->position += k;
        done += k;
      }
      // The prompt may end exactly on a frame boundary.
      if (!p->finished && p->position >= pcm.size() && p->spec.loops != 0 && p->loops_done + 1 >= p->spec.loops) {
        p->finished = true;
      }
      std::fill(out + done, out + n, 0);
      return;
    }
    case PlayKind::Tone:
    case PlayKind::Digits:
      p->tone->read(out, n);
      if (p->spec.kind == PlayKind::Digits && p->tone->done()) p->finished = true;
      break;
    case PlayKind::Silence:
      std::fill(out, out + n, 0);
      break;
  }
  if (p->samples_left >= 0) {
    p->samples_left -= static_cast<std::int64_t>(n);
    if (p->samples_left <= 0) p->finished = true;
  }
}

// ------------------------------------------------------------------ recorders

void Worker::add_recorder(ObjectId target, std::unique_ptr<RecorderTap> tap) {
  RecorderTap* t = tap.get();
  if (Leg* l = leg(target)) {
    t->leg = l;
    l->recorders.push_back(t);
    if (l->room) {
      recompute_room(l->room);
    } else {
      ensure_decoding(l, l->cfg.sample_rate);
      if (std::find(tap_legs_.begin(), tap_legs_.end(), l) == tap_legs_.end()) tap_legs_.push_back(l);
    }
  } else if (Room* r = room(target)) {
    t->room = r;
    // A member that says nothing and hears everyone: the room's mix.
    t->slot = r->mixer->add_slot(true);
    r->mixer->set_mute(t->slot, true);
    r->recorders.push_back(t);
    recompute_room(r);
  } else {
    stop_recorder(t->recorder);
    engine_.retire(t->id);
    return;
  }
  recorders_[t->id] = t;
  recorder_store_.push_back(std::move(tap));
}

void Worker::stop_recorder(const std::shared_ptr<Recorder>& recorder) {
  if (recorder->stop() != 0) pending_stops_.push_back(recorder);
}

void Worker::recorder_control(ObjectId id, int op) {
  auto it = recorders_.find(id);
  if (it == recorders_.end()) return;
  RecorderTap* t = it->second;
  if (op == 0) {
    t->recorder->pause();
    return;
  }
  if (op == 1) {
    t->recorder->resume();
    return;
  }
  stop_recorder(t->recorder);
  recorders_.erase(it);
  if (t->leg) {
    Leg* l = t->leg;
    l->recorders.erase(std::remove(l->recorders.begin(), l->recorders.end(), t), l->recorders.end());
    if (l->room) {
      recompute_room(l->room);
    } else if (l->recorders.empty() && !l->detector) {
      tap_legs_.erase(std::remove(tap_legs_.begin(), tap_legs_.end(), l), tap_legs_.end());
    }
  } else if (t->room) {
    Room* r = t->room;
    r->recorders.erase(std::remove(r->recorders.begin(), r->recorders.end(), t), r->recorders.end());
    if (t->slot >= 0) r->mixer->remove_slot(t->slot);
    recompute_room(r);
  }
  recorder_store_.erase(std::remove_if(recorder_store_.begin(), recorder_store_.end(),
                                       [t](const std::unique_ptr<RecorderTap>& p) { return p.get() == t; }),
                        recorder_store_.end());
}

// ------------------------------------------------------------------ the media clock

void Worker::pull_input(Leg* l, std::int64_t now) {
  if (!l->playout) {
    std::fill(l->in_frame.begin(), l->in_frame.end(), 0);
    return;
  }
  const int n = l->playout->tick(static_cast<double>(now), l->leg_frame.data(), l->leg_frame.size());
  if (n < static_cast<int>(l->leg_frame.size())) {
    std::fill(l->leg_frame.begin() + std::max(0, n), l->leg_frame.end(), 0);
  }
  if (l->detector) {
    DtmfEvent evs[8];
    const std::size_t k = l->detector->process(l->leg_frame.data(), l->leg_frame.size(), evs, 8);
    for (std::size_t i = 0; i < k; ++i) {
      const bool begin = evs[i].kind == DtmfEventKind::kStart;
      const int ms = begin ? 0
                           : static_cast<int>((evs[i].end_sample - evs[i].start_sample) * 1000 /
                                              static_cast<std::uint64_t>(l->cfg.sample_rate));
      emit_digit(l, evs[i].digit, ms, DtmfSource::Inband, begin);
    }
  }
  if (l->up) {
    const std::ptrdiff_t m = l->up->process(l->leg_frame.data(), l->leg_frame.size(), l->in_frame.data(),
                                            l->in_frame.size());
    if (m < static_cast<std::ptrdiff_t>(l->in_frame.size())) {
      std::fill(l->in_frame.begin() + std::max<std::ptrdiff_t>(0, m), l->in_frame.end(), 0);
    }
  } else {
    std::copy(l->leg_frame.begin(), l->leg_frame.end(), l->in_frame.begin());
  }
}

void Worker::tap_leg(Leg* l, const std::int16_t* heard) {
  const std::size_t n = l->in_frame.size();
  for (RecorderTap* t : l->recorders) {
    if (t->spec.stereo) {
      t->recorder->write(l->in_frame.data(), heard, n);
    } else {
      scratch_.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        const int s = l->in_frame[i] + heard[i];
        scratch_[i] = static_cast<std::int16_t>(std::clamp(s, -32768, 32767));
      }
      t->recorder->write(scratch_.data(), nullptr, n);
    }
  }
}

void Worker::encode_and_send(Leg* l, const std::int16_t* pcm, std::size_t n, std::int64_t now) {
  if (!can_send(l->cfg) || !l->encoder) return;
  const std::size_t old = l->tx_fifo.size();
  if (l->down) {
    l->tx_fifo.resize(old + l->down->output_size(n));
    const std::ptrdiff_t m = l->down->process(pcm, n, l->tx_fifo.data() + old, l->tx_fifo.size() - old);
    l->tx_fifo.resize(old + static_cast<std::size_t>(std::max<std::ptrdiff_t>(0, m)));
  } else {
    l->tx_fifo.insert(l->tx_fifo.end(), pcm, pcm + n);
  }
  const int clock = rtp_clock(l->cfg);
  const auto frame = static_cast<std::size_t>(l->cfg.ptime_ms * l->cfg.sample_rate / 1000);
  const auto ts_step = static_cast<std::uint32_t>(l->cfg.ptime_ms * clock / 1000);
  std::size_t pos = 0;
  while (l->tx_fifo.size() - pos >= frame) {
    // After a pause in our stream (relay hand-over, hold), move the timestamp
    // on by the time that passed so the far end's jitter buffer sees real time.
    if (l->tx_started && now - l->last_tx_ms > 3 * l->cfg.ptime_ms) {
      l->ts += static_cast<std::uint32_t>((now - l->last_tx_ms - l->cfg.ptime_ms) * clock / 1000);
      l->next_marker = true;
    }
    std::uint8_t payload[1500];
    const int bytes = l->encoder->encode(l->tx_fifo.data() + pos, frame, payload, sizeof payload);
    // Opus DTX: one or two bytes mean "nothing to send" (RFC 7587 3.1.3).
    if (bytes > 2 || (bytes > 0 && l->cfg.codec != CodecId::OPUS)) {
      originate(l, static_cast<std::uint8_t>(l->cfg.payload_type), l->next_marker, l->ts, payload,
                static_cast<std::size_t>(bytes));
      l->next_marker = false;
    }
    l->ts += ts_step;
    l->tx_started = true;
    l->last_tx_ms = now;
    pos += frame;
  }
  l->tx_fifo.erase(l->tx_fifo.begin(), l->tx_fifo.begin() + static_cast<std::ptrdiff_t>(pos));
}

void Worker::tick_room(Room* r, std::int64_t now) {
  const std::size_t n = r->mixer->frame_samples();
  if (r->relay) {
    bool tapped = false;
    for (Leg* l : r->legs) tapped = tapped || !l->recorders.empty() || l->detector;
    if (!tapped) return;
    for (Leg* l : r->legs) pull_input(l, now);
    for (Leg* l : r->legs) {
      Leg* peer = r->legs[0] == l ? r->legs[1] : r->legs[0];
      tap_leg(l, peer->in_frame.data());
    }
    return;
  }
  for (Leg* l : r->legs) {
    pull_input(l, now);
    if (l->slot >= 0) r->mixer->set_input(l->slot, l->in_frame.data(), n);
  }
  for (auto& p : r->players) {
    if (p->slot < 0) continue;
    std::int16_t* in = r->mixer->input(p->slot);
    if (in) fill_player(p.get(), in, n);
  }
  r->mixer->mix();
  for (Leg* l : r->legs) {
    const std::int16_t* heard = r->mixer->output(l->slot);
    if (!heard) continue;
    tap_leg(l, heard);
    encode_and_send(l, heard, n, now);
  }
  for (RecorderTap* t : r->recorders) {
    const std::int16_t* mix = r->mixer->output(t->slot);
    if (mix) t->recorder->write(mix, t->spec.stereo ? mix : nullptr, n);
  }
  for (std::size_t i = 0; i < r->players.size();) {
    if (r->players[i]->finished) {
      finish_player(r, i, PlaybackEnd::Completed);
    } else {
      ++i;
    }
  }
}

void Worker::tick(std::int64_t now) {
  ++ticks_;
  for (auto& [id, r] : rooms_) tick_room(r.get(), now);
  for (auto& r : implicit_rooms_) tick_room(r.get(), now);
  for (Leg* l : tap_legs_) {
    if (l->room) continue;
    pull_input(l, now);
    scratch_silence_.assign(l->in_frame.size(), 0);
    tap_leg(l, scratch_silence_.data());
  }
  if (!pending_stops_.empty()) {
    pending_stops_.erase(std::remove_if(pending_stops_.begin(), pending_stops_.end(),
                                        [](const std::shared_ptr<Recorder>& r) { return r->stop() == 0; }),
                         pending_stops_.end());
  }
  for (std::size_t i = 0; i < dtmf_legs_.size();) {
    if (tick_dtmf_sender(dtmf_legs_[i], now)) {
      ++i;
    } else {
      dtmf_legs_.erase(dtmf_legs_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  if (now >= next_housekeeping_ms_) {
    housekeeping(now);
    next_housekeeping_ms_ = now + kHousekeepingMs;
  }
}

// ------------------------------------------------------------------ DTMF out

void Worker::send_dtmf(ObjectId id, const std::string& digits, int duration_ms, int pause_ms) {
  Leg* l = leg(id);
  if (!l) return;
  if (l->cfg.telephone_event_pt < 0) {
    // No telephone-event negotiated: play the tones in-band to this leg.
    auto p = std::make_unique<Player>();
    p->spec.kind = PlayKind::Digits;
    p->spec.digits = digits;
    p->spec.duration_ms = duration_ms;
    add_player(id, std::move(p));
    return;
  }
  const int clock = rtp_clock(l->cfg);
  const std::int64_t now = now_ms();
  if (!l->te_tx) {
    TelephoneEventSenderConfig sc;
    sc.clock_rate = clock;
    sc.packet_interval = static_cast<std::uint32_t>(engine_config().tick_ms * clock / 1000);
    sc.min_gap = static_cast<std::uint32_t>(pause_ms * clock / 1000);
    l->te_tx = std::make_unique<TelephoneEventSender>(sc);
  }
  if (l->te_tx->idle()) {
    // Our stream's current timestamp: events share the audio's time base.
    l->te_tx_origin = l->ts + (l->tx_started ? static_cast<std::uint32_t>((now - l->last_tx_ms) * clock / 1000) : 0);
    l->te_tx_origin_ms = now;
  }
  for (char d : digits) {
    l->te_tx->enqueue(static_cast<std::uint8_t>(digit_event(d)), static_cast<std::uint32_t>(duration_ms * clock / 1000),
                      10);
  }
  if (std::find(dtmf_legs_.begin(), dtmf_legs_.end(), l) == dtmf_legs_.end()) dtmf_legs_.push_back(l);
}

bool Worker::tick_dtmf_sender(Leg* l, std::int64_t now) {
  if (!l->te_tx) return false;
  const int clock = rtp_clock(l->cfg);
  const std::uint32_t now_ts = l->te_tx_origin + static_cast<std::uint32_t>((now - l->te_tx_origin_ms) * clock / 1000);
  TelephoneEventPacket pkt;
  if (l->te_tx->tick(now_ts, &pkt) == 1 && can_send(l->cfg)) {
    std::uint8_t payload[4];
    telephone_event::EventBlock b{pkt.event, pkt.end, pkt.volume, pkt.duration};
    if (telephone_event::serialize(b, payload, sizeof payload) == 4) {
      originate(l, static_cast<std::uint8_t>(l->cfg.telephone_event_pt), pkt.marker, pkt.timestamp, payload, 4);
      l->tx_started = true;
      l->last_tx_ms = now;
    }
  }
  return !l->te_tx->idle();
}

// ------------------------------------------------------------------ housekeeping and stats

void Worker::refresh_stats(Leg* l) {
  LegStats& s = l->stats;
  if (l->rx_stats) {
    const rtp_stats::ReceiveSnapshot snap = l->rx_stats->snapshot();
    s.packets_lost = snap.lost;
    s.jitter_ms = 1000.0 * snap.jitter / rtp_clock(l->cfg);
  }
  if (l->playout) {
    const JitterStats j = l->playout->stats();
    s.packets_late = j.packets_late;
    s.packets_duplicated = j.packets_duplicated;
    s.concealed_samples = j.concealed_samples;
    if (j.jitter_buffer_emitted_count > 0) {
      s.jitter_buffer_delay_ms = 1000.0 * j.jitter_buffer_delay / static_cast<double>(j.jitter_buffer_emitted_count);
    }
  }
  // E-model: one-way delay is half the RTT (or 20 ms on loopback without
  // RTCP yet) plus our buffering and one packetization time.
  const std::int64_t expected = s.packets_lost + static_cast<std::int64_t>(s.packets_received);
  if (expected > 0 && s.packets_received > 0) {
    const double loss = 100.0 * static_cast<double>(std::max<std::int64_t>(0, s.packets_lost) +
                                                    static_cast<std::int64_t>(s.packets_late)) /
                        static_cast<double>(expected);
    const double delay = (s.rtt_ms > 0 ? s.rtt_ms / 2 : 0.0) + s.jitter_buffer_delay_ms + l->cfg.ptime_ms;
    const auto codec = l->cfg.codec == CodecId::OPUS ? emodel::Codec::OPUS : emodel::Codec::G711_PLC;
    s.mos = emodel::mos_from_r(emodel::estimate_r(codec, delay, std::min(loss, 100.0), 1.0));
  }
}

void Worker::housekeeping(std::int64_t now) {
  const EngineConfig& cfg = engine_config();
  for (auto& [id, lp] : legs_) {
    Leg* l = lp.get();
    if (l->cfg.media_timeout_ms > 0 && !l->timed_out && can_receive(l->cfg) &&
        now - l->last_rx_ms > l->cfg.media_timeout_ms) {
      l->timed_out = true;
      Event e;
      e.type = EventType::MediaTimeout;
      e.leg = l->id;
      e.duration_ms = static_cast<std::int32_t>(now - l->last_rx_ms);
      emit(std::move(e));
    }
    if (cfg.rtcp_interval_ms > 0 && now >= l->next_rtcp_ms) {
      if (l->next_rtcp_ms != 0) send_rtcp(l, now);
      // RFC 3550 6.3.1: randomized over [0.5, 1.5] of the interval.
      const double jitter = 0.5 + static_cast<double>(rng_() % 1000) / 1000.0;
      l->next_rtcp_ms = now + static_cast<std::int64_t>(cfg.rtcp_interval_ms * jitter);
    }
    if (cfg.stats_interval_ms > 0 && now >= l->next_stats_ms) {
      l->next_stats_ms = now + cfg.stats_interval_ms;
      refresh_stats(l);
      Event e;
      e.type = EventType::Stats;
      e.leg = l->id;
      e.stats = l->stats;
      emit(std::move(e));
    }
  }
}

LegStats Worker::leg_stats(ObjectId id) {
  Leg* l = leg(id);
  if (!l) return LegStats{};
  refresh_stats(l);
  return l->stats;
}

WorkerStats Worker::stats() {
  WorkerStats s;
  s.legs = static_cast<std::uint32_t>(legs_.size());
  s.rooms = static_cast<std::uint32_t>(rooms_.size() + implicit_rooms_.size());
  s.packets_in = packets_in_;
  s.packets_out = packets_out_;
  s.bytes_in = bytes_in_;
  s.bytes_out = bytes_out_;
  s.ticks = ticks_;
  s.tick_overruns = overruns_;
  s.load = load_.load(std::memory_order_relaxed);
  s.busy_ns = busy_ns_.load(std::memory_order_relaxed);
  return s;
}

void Worker::close_all() {
  // A stop() refused for a full buffer is completed by the writer thread
  // once this thread has exited (see Engine::Impl::writer_loop).
  for (auto& t : recorder_store_) t->recorder->stop();
  recorder_store_.clear();
  recorders_.clear();
  player_rooms_.clear();
  dtmf_legs_.clear();
  tap_legs_.clear();
  for (auto& [id, lp] : legs_) {
    for (auto& t : lp->moving_recorders) t->recorder->stop();
    lp->room = nullptr;
    lp->relay_to = nullptr;
    unwatch(lp->sockets.rtp_fd);
    unwatch(lp->sockets.rtcp_fd);
    engine_.ports.release(&lp->sockets);
  }
  rooms_.clear();
  implicit_rooms_.clear();
  legs_.clear();
}

}  // namespace mediacore::engine
