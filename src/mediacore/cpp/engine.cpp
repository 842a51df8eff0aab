// Engine control side: the object registry, the verbs, the event queue and the
// recording writer thread. Media work happens in engine_worker.cpp.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>

#include "engine_internal.hpp"
#include "prompt.hpp"
#include "recorder.hpp"

namespace mediacore {

using engine::EventQueue;
using engine::Worker;

namespace engine {

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
std::int64_t now_ms() noexcept { return now_ns() / 1000000; }

EventQueue::EventQueue(std::size_t capacity) : capacity_(capacity) {
  if (capacity_ == 0) throw std::invalid_argument("event queue capacity must be positive");
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  pending_.reserve(capacity_);
}

EventQueue::~EventQueue() {
  if (fd_ >= 0) ::close(fd_);
}

bool EventQueue::push(Event&& event) noexcept {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() >= capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    wake = pending_.empty();
    pending_.push_back(std::move(event));
  }
  if (wake) {
    const std::uint64_t one = 1;
    // A full eventfd counter cannot happen (we write once per empty->non-empty).
    [[maybe_unused]] ssize_t r = ::write(fd_, &one, sizeof one);
  }
  return true;
}

std::size_t EventQueue::drain(std::vector<Event>& out) {
  out.clear();
  out.reserve(capacity_);  // keeps push() allocation-free after the swap
  std::uint64_t counter;
  {
    std::lock_guard<std::mutex> lock(mu_);
    [[maybe_unused]] ssize_t r = ::read(fd_, &counter, sizeof counter);
    pending_.swap(out);
  }
  delivered_.fetch_add(out.size(), std::memory_order_relaxed);
  return out.size();
}

}  // namespace engine

// ------------------------------------------------------------------ public API

Engine::Engine(const EngineConfig& config) : impl_(std::make_unique<Impl>(config)) {}

Engine::~Engine() { close(); }

void Engine::close() {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->close_all();
}

bool Engine::closed() const noexcept { return impl_->closed.load(); }
const EngineConfig& Engine::config() const noexcept { return impl_->config; }
int Engine::event_fd() const noexcept { return impl_->events.fd(); }

std::size_t Engine::drain_events(std::vector<Event>& out) { return impl_->events.drain(out); }

std::size_t Engine::wait_events(std::vector<Event>& out, int timeout_ms) {
  pollfd p{impl_->events.fd(), POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return impl_->events.drain(out);
}

namespace {
void validate_leg_config(const LegConfig& c) {
  switch (c.codec) {
    case CodecId::PCMU:
    case CodecId::PCMA:
      if (c.sample_rate != 8000) throw std::invalid_argument("G.711 legs run at 8000 Hz");
      break;
    case CodecId::L16:
    case CodecId::OPUS:
      if (c.sample_rate != 8000 && c.sample_rate != 16000 && c.sample_rate != 48000) {
        throw std::invalid_argument("sample_rate must be 8000, 16000 or 48000");
      }
      break;
    default:
      throw std::invalid_argument("unknown codec");
  }
  if (c.payload_type < 0 || c.payload_type > 127) throw std::invalid_argument("payload_type must be 0..127");
  if (c.telephone_event_pt > 127 || c.telephone_event_pt == c.payload_type) {
    throw std::invalid_argument("telephone_event_pt must be -1 or a payload type other than the codec's");
  }
  const int pt = c.ptime_ms;
  if (pt != 10 && pt != 20 && pt != 30 && pt != 40 && pt != 60) {
    throw std::invalid_argument("ptime_ms must be 10, 20, 30, 40 or 60");
  }
  if (c.codec == CodecId::OPUS && pt == 30) throw std::invalid_argument("Opus has no 30 ms frames");
  if (c.remote_port < 0 || c.remote_port > 65535 || c.remote_rtcp_port < 0 || c.remote_rtcp_port > 65535) {
    throw std::invalid_argument("remote port out of range");
  }
  if (!c.remote_host.empty()) Address::parse(c.remote_host, c.remote_port);  // throws with the reason
  if (c.media_timeout_ms < 0) throw std::invalid_argument("media_timeout_ms must be >= 0");
  if (c.opus_complexity < 0 || c.opus_complexity > 10) throw std::invalid_argument("opus_complexity must be 0..10");
  if (c.opus_packet_loss_percent < 0 || c.opus_packet_loss_percent > 100) {
    throw std::invalid_argument("opus_packet_loss_percent must be 0..100");
  }
}
}  // namespace

LegInfo Engine::create_leg(const LegConfig& config) {
  validate_leg_config(config);
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  auto leg = std::make_unique<engine::Leg>();
  if (!impl_->ports.allocate(&leg->sockets)) {
    throw std::runtime_error("no free RTP port pair in " + std::to_string(impl_->config.port_min) + "-" +
                             std::to_string(impl_->config.port_max));
  }
  const int w = impl_->worker_for_affinity(config.affinity);
  leg->id = impl_->new_id(Impl::Kind::Leg, w);
  leg->cfg = config;
  leg->ssrc = static_cast<std::uint32_t>(impl_->rng());
  leg->seq = static_cast<std::uint16_t>(impl_->rng());
  leg->ts = static_cast<std::uint32_t>(impl_->rng());
  leg->local_host = impl_->ports.bind_address().host();
  LegInfo info;
  info.id = leg->id;
  info.host = impl_->ports.bind_address().host();
  info.rtp_port = leg->sockets.rtp_port;
  info.rtcp_port = static_cast<std::uint16_t>(leg->sockets.rtp_port + 1);
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([l = leg.release()](Worker& wk) {
    wk.add_leg(std::unique_ptr<engine::Leg>(l));
  });
  return info;
}

void Engine::update_leg(ObjectId leg, const LegConfig& config) {
  validate_leg_config(config);
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const auto& e = impl_->find(leg, Impl::Kind::Leg, "leg");
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(e.worker)]->call([leg, config](Worker& w) { w.update_leg(leg, config); });
}

void Engine::destroy_leg(ObjectId leg) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const auto e = impl_->find(leg, Impl::Kind::Leg, "leg");
  impl_->registry.erase(leg);
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(e.worker)]->call([leg](Worker& w) { w.destroy_leg(leg); });
}

ObjectId Engine::create_room(const RoomOptions& options) {
  if (options.sample_rate != 8000 && options.sample_rate != 16000 && options.sample_rate != 48000) {
    throw std::invalid_argument("room sample_rate must be 8000, 16000 or 48000");
  }
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->worker_for_affinity(options.affinity);
  auto room = std::make_unique<engine::Room>();
  room->options = options;
  room->id = impl_->new_id(Impl::Kind::Room, w);
  const ObjectId id = room->id;
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([r = room.release()](Worker& wk) {
    wk.add_room(std::unique_ptr<engine::Room>(r));
  });
  return id;
}

ObjectId Engine::bridge(ObjectId a, ObjectId b, const RoomOptions& options) {
  if (a == b) throw std::invalid_argument("cannot bridge a leg to itself");
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(a, Impl::Kind::Leg, "leg").worker;
  impl_->find(b, Impl::Kind::Leg, "leg");
  impl_->move_leg(b, w);
  auto room = std::make_unique<engine::Room>();
  room->options = options;
  room->id = impl_->new_id(Impl::Kind::Room, w);
  const ObjectId id = room->id;
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([r = room.release(), a, b, id](Worker& wk) {
    wk.add_room(std::unique_ptr<engine::Room>(r));
    wk.join(id, a, true);
    wk.join(id, b, true);
  });
  return id;
}

void Engine::join(ObjectId room, ObjectId leg, bool conference_member) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(room, Impl::Kind::Room, "room").worker;
  impl_->find(leg, Impl::Kind::Leg, "leg");
  impl_->move_leg(leg, w);
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call(
      [room, leg, conference_member](Worker& wk) { wk.join(room, leg, conference_member); });
}

void Engine::leave(ObjectId room, ObjectId leg) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(room, Impl::Kind::Room, "room").worker;
  impl_->find(leg, Impl::Kind::Leg, "leg");
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([room, leg](Worker& wk) { wk.leave(room, leg); });
}

void Engine::set_edge(ObjectId room, ObjectId from_leg, ObjectId to_leg, double gain) {
  if (!(gain >= 0.0 && gain <= 8.0)) throw std::invalid_argument("gain must be within 0.0..8.0");
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(room, Impl::Kind::Room, "room").worker;
  impl_->find(from_leg, Impl::Kind::Leg, "leg");
  impl_->find(to_leg, Impl::Kind::Leg, "leg");
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call(
      [=](Worker& wk) { wk.set_edge(room, from_leg, to_leg, gain, false); });
}

void Engine::clear_edge(ObjectId room, ObjectId from_leg, ObjectId to_leg) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(room, Impl::Kind::Room, "room").worker;
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([=](Worker& wk) { wk.set_edge(room, from_leg, to_leg, 0, true); });
}

void Engine::supervise(ObjectId room, ObjectId supervisor, ObjectId caller, ObjectId agent, int mode) {
  if (mode < 0 || mode > 3) throw std::invalid_argument("mode must be 0 (off), 1 (listen), 2 (whisper) or 3 (barge)");
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(room, Impl::Kind::Room, "room").worker;
  for (ObjectId l : {supervisor, caller, agent}) impl_->find(l, Impl::Kind::Leg, "leg");
  impl_->move_leg(supervisor, w);
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([=](Worker& wk) { wk.supervise(room, supervisor, caller, agent, mode); });
}

void Engine::set_mute(ObjectId room, ObjectId leg, bool muted) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(room, Impl::Kind::Room, "room").worker;
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([=](Worker& wk) { wk.set_mute(room, leg, muted); });
}

void Engine::destroy_room(ObjectId room) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(room, Impl::Kind::Room, "room").worker;
  impl_->registry.erase(room);
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([room](Worker& wk) { wk.destroy_room(room); });
}

ObjectId Engine::play(ObjectId target, const PlaySpec& spec) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  auto it = impl_->registry.find(target);
  if (it == impl_->registry.end() || (it->second.kind != Impl::Kind::Leg && it->second.kind != Impl::Kind::Room)) {
    throw std::out_of_range("no such leg or room " + std::to_string(target));
  }
  const int w = it->second.worker;
  auto player = std::make_unique<engine::Player>();
  player->spec = spec;
  switch (spec.kind) {
    case PlayKind::File:
      if (spec.loops < 0) throw std::invalid_argument("loops must be >= 0 (0 = forever)");
      // Decoded here, in the caller's thread, at the rate the target mixes
      // at, and shared with every other call playing it.
      player->prompt = impl_->prompts.get(spec.path, impl_->rate_for(target, w));
      break;
    case PlayKind::Tone:
      if (spec.tone != "ringback" && spec.tone != "busy" && spec.tone != "congestion" && spec.tone != "dial") {
        throw std::invalid_argument("tone must be ringback, busy, congestion or dial");
      }
      if (spec.region != "us" && spec.region != "eu" && spec.region != "cn") {
        throw std::invalid_argument("region must be us, eu or cn");
      }
      break;
    case PlayKind::Silence:
      if (spec.duration_ms < 0) throw std::invalid_argument("duration_ms must be >= 0");
      break;
    case PlayKind::Digits:
      if (spec.digits.empty() || spec.digits.find_first_not_of("0123456789*#ABCDabcd") != std::string::npos) {
        throw std::invalid_argument("digits must be 0-9, *, #, A-D");
      }
      break;
  }
  if (!(spec.gain >= 0.0 && spec.gain <= 8.0)) throw std::invalid_argument("gain must be within 0.0..8.0");
  player->id = impl_->new_id(Impl::Kind::Player, w);
  const ObjectId id = player->id;
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([target, p = player.release()](Worker& wk) {
    wk.add_player(target, std::unique_ptr<engine::Player>(p));
  });
  return id;
}

void Engine::stop_playback(ObjectId player) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  auto it = impl_->registry.find(player);
  if (it == impl_->registry.end() || it->second.kind != Impl::Kind::Player) return;  // already finished
  const int w = it->second.worker;
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([player](Worker& wk) { wk.stop_player(player, PlaybackEnd::Stopped); });
}

ObjectId Engine::record(ObjectId target, const RecordSpec& spec) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  auto it = impl_->registry.find(target);
  if (it == impl_->registry.end() || (it->second.kind != Impl::Kind::Leg && it->second.kind != Impl::Kind::Room)) {
    throw std::out_of_range("no such leg or room " + std::to_string(target));
  }
  const int w = it->second.worker;
  const int rate = impl_->rate_for(target, w);
  if (spec.sample_rate != 0 && spec.sample_rate != rate) {
    throw std::invalid_argument("recording at " + std::to_string(spec.sample_rate) + " Hz on a " +
                                std::to_string(rate) + " Hz call: leave sample_rate 0 to use the call's rate");
  }
  RecorderConfig rc;
  rc.sample_rate = rate;
  rc.channels = spec.stereo ? 2 : 1;
  rc.bitrate = spec.opus_bitrate;
  switch (spec.format) {
    case RecordFormat::Wav: rc.format = RecordingFormat::WAV_PCM16; break;
    case RecordFormat::WavUlaw: rc.format = RecordingFormat::WAV_ULAW; break;
    case RecordFormat::WavAlaw: rc.format = RecordingFormat::WAV_ALAW; break;
    case RecordFormat::OggOpus: rc.format = RecordingFormat::OGG_OPUS; break;
  }
  auto recorder = std::make_shared<Recorder>(rc);  // throws for a bad combination
  const int fd = ::open(spec.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) throw std::invalid_argument(spec.path + ": " + std::strerror(errno));
  auto tap = std::make_unique<engine::RecorderTap>();
  tap->spec = spec;
  tap->spec.sample_rate = rate;
  tap->recorder = recorder;
  tap->id = impl_->new_id(Impl::Kind::Recorder, w);
  const ObjectId id = tap->id;
  {
    std::lock_guard<std::mutex> wl(impl_->writer_mu);
    impl_->writing.push_back(Impl::Writing{id, recorder, fd, target, rate});
  }
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call([target, t = tap.release()](Worker& wk) {
    wk.add_recorder(target, std::unique_ptr<engine::RecorderTap>(t));
  });
  return id;
}

namespace {
void recorder_op(Engine::Impl& impl, ObjectId recorder, int op) {
  std::lock_guard<std::mutex> lock(impl.control);
  impl.check_open();
  const int w = impl.find(recorder, Engine::Impl::Kind::Recorder, "recorder").worker;
  if (op == 2) impl.registry.erase(recorder);
  ++impl.commands;
  impl.workers[static_cast<std::size_t>(w)]->call([recorder, op](Worker& wk) { wk.recorder_control(recorder, op); });
}
}  // namespace

void Engine::pause_recording(ObjectId recorder) { recorder_op(*impl_, recorder, 0); }
void Engine::resume_recording(ObjectId recorder) { recorder_op(*impl_, recorder, 1); }
void Engine::stop_recording(ObjectId recorder) { recorder_op(*impl_, recorder, 2); }

void Engine::send_dtmf(ObjectId leg, const std::string& digits, int duration_ms, int pause_ms) {
  if (digits.empty() || digits.find_first_not_of("0123456789*#ABCDabcd") != std::string::npos) {
    throw std::invalid_argument("digits must be 0-9, *, #, A-D");
  }
  if (duration_ms < 40 || duration_ms > 5000) throw std::invalid_argument("duration_ms must be 40..5000");
  if (pause_ms < 40 || pause_ms > 5000) throw std::invalid_argument("pause_ms must be 40..5000");
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(leg, Impl::Kind::Leg, "leg").worker;
  ++impl_->commands;
  impl_->workers[static_cast<std::size_t>(w)]->call(
      [=](Worker& wk) { wk.send_dtmf(leg, digits, duration_ms, pause_ms); });
}

LegStats Engine::leg_stats(ObjectId leg) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  const int w = impl_->find(leg, Impl::Kind::Leg, "leg").worker;
  LegStats out;
  impl_->workers[static_cast<std::size_t>(w)]->call([&](Worker& wk) { out = wk.leg_stats(leg); });
  return out;
}

std::vector<LegStats> Engine::leg_stats(const std::vector<ObjectId>& legs) {
  std::lock_guard<std::mutex> lock(impl_->control);
  impl_->check_open();
  std::vector<LegStats> out(legs.size());
  std::vector<std::vector<std::size_t>> by_worker(impl_->workers.size());
  for (std::size_t i = 0; i < legs.size(); ++i) {
    by_worker[static_cast<std::size_t>(impl_->find(legs[i], Impl::Kind::Leg, "leg").worker)].push_back(i);
  }
  for (std::size_t w = 0; w < by_worker.size(); ++w) {
    if (by_worker[w].empty()) continue;
    impl_->workers[w]->call([&](Worker& wk) {
      for (std::size_t i : by_worker[w]) out[i] = wk.leg_stats(legs[i]);
    });
  }
  return out;
}

EngineStats Engine::stats() {
  std::lock_guard<std::mutex> lock(impl_->control);
  EngineStats s;
  for (const auto& [id, e] : impl_->registry) {
    switch (e.kind) {
      case Impl::Kind::Leg: ++s.legs; break;
      case Impl::Kind::Room: ++s.rooms; break;
      case Impl::Kind::Player: ++s.players; break;
      case Impl::Kind::Recorder: ++s.recorders; break;
    }
  }
  if (!impl_->closed.load()) {
    for (auto& w : impl_->workers) {
      WorkerStats ws;
      w->call([&](Worker& wk) { ws = wk.stats(); });
      s.workers.push_back(ws);
    }
  }
  const auto ps = impl_->ports.stats();
  s.port_pairs_total = ps.pairs_total;
  s.port_pairs_in_use = ps.pairs_in_use;
  s.port_exhausted = ps.exhausted;
  s.events_delivered = impl_->events.delivered();
  s.events_dropped = impl_->events.dropped();
  s.commands = impl_->commands;
  s.recorder_bytes_written = impl_->recorder_bytes.load();
  s.recorder_overruns = impl_->recorder_overruns.load();
  return s;
}

}  // namespace mediacore
