// Engine internals shared by engine.cpp (control side) and engine_worker.cpp
// (media threads). Not part of the public API.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <functional>
#include <random>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <unordered_map>
#include <vector>

#include "dtmf.hpp"
#include "engine.hpp"
#include "mixer.hpp"
#include "playout.hpp"
#include "recorder.hpp"
#include "resampler.hpp"
#include "tones.hpp"
#include "net.hpp"
#include "prompt.hpp"
#include "rtp.hpp"
#include "rtp_stats.hpp"
#include "telephone_event.hpp"

namespace mediacore {


namespace engine {

// Monotonic clock in ms and ns (the one place the engine reads time).
std::int64_t now_ms() noexcept;
std::int64_t now_ns() noexcept;

// ------------------------------------------------------------------ events

// Bounded multi-producer queue of events with an eventfd that is readable
// while events are pending. push() never blocks and never allocates once the
// queue is constructed (events carry a small std::string, which only
// allocates for text longer than the small-string buffer).
class EventQueue {
 public:
  explicit EventQueue(std::size_t capacity);
  ~EventQueue();
  int fd() const noexcept { return fd_; }
  bool push(Event&& event) noexcept;
  std::size_t drain(std::vector<Event>& out);
  std::uint64_t delivered() const noexcept { return delivered_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::size_t capacity_;
  int fd_;
  std::mutex mu_;
  std::vector<Event> pending_;
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

// ------------------------------------------------------------------ media objects

struct Leg;
struct Room;
class Worker;

struct Pollable {
  enum Kind : std::uint8_t { kCommand, kTimer, kRtp, kRtcp } kind;
  Leg* leg;
};


struct Player {
  ObjectId id = 0;
  PlaySpec spec;
  Leg* target_leg = nullptr;       // nullptr: every member of the room hears it
  int slot = -1;                   // mixer slot
  std::shared_ptr<const PromptCache::Entry> prompt;  // File: decoded at the room's rate
  std::size_t position = 0;
  int loops_done = 0;
  std::unique_ptr<TonePlayer> tone;
  std::int64_t samples_left = -1;  // -1: unbounded
  std::string digits_left;         // Digits: what remains to play
  bool finished = false;
};

struct RecorderTap {
  ObjectId id = 0;
  RecordSpec spec;
  std::shared_ptr<Recorder> recorder;  // shared with the writer thread
  Leg* leg = nullptr;                  // a leg's recorder: left what it says, right what it hears
  Room* room = nullptr;                // a room's recorder: the mix, from a muted member slot
  int slot = -1;
};

struct Leg {
  ObjectId id = 0;
  LegConfig cfg;
  Worker* worker = nullptr;
  SocketPair sockets;
  Pollable rtp_poll{Pollable::kRtp, nullptr};
  Pollable rtcp_poll{Pollable::kRtcp, nullptr};

  // Addresses: from the SDP, and learned from packets (symmetric RTP).
  Address sdp_rtp, sdp_rtcp;
  Address latched_rtp, latched_rtcp;
  bool latched = false;
  std::string local_host;
  std::int64_t last_rx_ms = 0;
  bool timed_out = false;
  std::int64_t next_stats_ms = 0;
  std::int64_t next_rtcp_ms = 0;

  // Our outgoing stream: one SSRC, continuous sequence and timestamp.
  std::uint32_t ssrc = 0;
  std::uint16_t seq = 0;
  std::uint32_t ts = 0;             // timestamp of the next packet we originate
  bool tx_started = false;
  std::int64_t last_tx_ms = 0;
  bool next_marker = true;

  // What RTCP sender reports count (RFC 3550 6.4.1).
  std::uint64_t rtcp_packets_sent = 0;
  std::uint64_t rtcp_octets_sent = 0;       // payload octets
  std::uint64_t rtcp_packets_at_last_report = 0;
  std::uint32_t last_sent_rtp_ts = 0;
  std::int64_t last_sent_ms = 0;

  // The remote's stream.
  std::uint32_t remote_ssrc = 0;
  bool have_remote_ssrc = false;
  std::unique_ptr<rtp_stats::ReceiveStats> rx_stats;

  // Relay (two-party room, same codec): packets from this leg go out of `relay_to`.
  Leg* relay_to = nullptr;
  bool relay_mapped = false;
  std::uint32_t relay_src_ssrc = 0;
  std::uint16_t relay_seq_delta = 0;
  std::uint32_t relay_ts_delta = 0;

  // DTMF.
  std::unique_ptr<TelephoneEventReceiver> te_rx;
  std::unique_ptr<TelephoneEventSender> te_tx;
  std::uint32_t te_tx_origin = 0;   // RTP timestamp of our DTMF clock's origin
  std::int64_t te_tx_origin_ms = 0;

  Room* room = nullptr;
  int slot = -1;

  // Decoding and encoding, created when a path needs them.
  std::unique_ptr<Playout> playout;
  std::unique_ptr<AudioEncoder> encoder;
  std::unique_ptr<DtmfDetector> detector;
  std::unique_ptr<Resampler> up;     // leg rate -> room rate
  std::unique_ptr<Resampler> down;   // room rate -> leg rate
  std::vector<std::int16_t> leg_frame;   // this tick's decoded input, at the leg's rate
  std::vector<std::int16_t> in_frame;    // the same at the room's rate
  std::vector<std::int16_t> tx_fifo;     // PCM at the leg's rate waiting to fill a ptime
  std::vector<RecorderTap*> recorders;   // taps on this leg
  std::vector<std::unique_ptr<RecorderTap>> moving_recorders;  // owned while moving between workers

  LegStats stats;
};

struct Room {
  ObjectId id = 0;
  RoomOptions options;
  bool implicit = false;             // made by play()/record() on a leg with no room
  std::vector<Leg*> legs;
  std::vector<std::unique_ptr<Player>> players;
  std::vector<RecorderTap*> recorders;  // room recorders (a muted member hearing everyone)
  std::unique_ptr<Mixer> mixer;
  bool relay = false;                // current path for a two-party room
  bool customized = false;           // edges, mutes or supervision set: always mix
};

// ------------------------------------------------------------------ worker

class Worker {
 public:
  Worker(Engine::Impl& engine, int index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  void start();
  void stop_and_join();
  // Runs fn on the worker thread, in order. Thread-safe.
  void post(std::function<void(Worker&)> fn);
  // Runs fn on the worker thread and waits for it to finish.
  void call(const std::function<void(Worker&)>& fn);
  int index() const noexcept { return index_; }

  // --- everything below runs on the worker thread ---
  void add_leg(std::unique_ptr<Leg> leg);
  std::unique_ptr<Leg> take_leg(ObjectId id);   // detaches (for a move to another worker)
  void destroy_leg(ObjectId id);
  void update_leg(ObjectId id, const LegConfig& cfg);
  void add_room(std::unique_ptr<Room> room);
  void destroy_room(ObjectId id);
  void join(ObjectId room, ObjectId leg, bool member);
  void leave(ObjectId room, ObjectId leg);
  void set_edge(ObjectId room, ObjectId from, ObjectId to, double gain, bool clear);
  void supervise(ObjectId room, ObjectId sup, ObjectId caller, ObjectId agent, int mode);
  void set_mute(ObjectId room, ObjectId leg, bool muted);
  int rate_for(ObjectId target);  // the PCM rate a player or recorder on `target` runs at; 0 = unknown
  void add_player(ObjectId target, std::unique_ptr<Player> player);
  void stop_player(ObjectId id, PlaybackEnd why);
  void add_recorder(ObjectId target, std::unique_ptr<RecorderTap> tap);
  void recorder_control(ObjectId id, int op);   // 0 pause, 1 resume, 2 stop
  void stop_recorder(const std::shared_ptr<Recorder>& recorder);
  void send_dtmf(ObjectId leg, const std::string& digits, int duration_ms, int pause_ms);
  LegStats leg_stats(ObjectId id);
  WorkerStats stats();
  void close_all();

 private:
  const EngineConfig& engine_config() const noexcept;
  Leg* leg(ObjectId id);
  Room* room(ObjectId id);
  void run();
  void drain_commands();
  void apply_config(Leg* leg, const LegConfig& cfg, bool fresh);
  void on_rtp_readable(Leg* leg);
  void on_rtcp_readable(Leg* leg);
  bool accept_source(Leg* leg, const Address& from, std::int64_t now);
  void latch(Leg* leg, const Address& from);
  void handle_rtp(Leg* leg, std::uint8_t* data, std::size_t size, const Address& from, std::int64_t now);
  void handle_rtcp(Leg* leg, const std::uint8_t* data, std::size_t size, const Address& from, std::int64_t now);
  void on_telephone_event(Leg* leg, const TelephoneEventReport& report);
  void relay(Leg* from, Leg* to, std::uint8_t* data, std::size_t size, const rtp::PacketView& v, bool event,
             std::int64_t now);
  void send_rtp(Leg* leg, const std::uint8_t* data, std::size_t size);
  void send_rtcp(Leg* leg, std::int64_t now);
  void originate(Leg* leg, std::uint8_t payload_type, bool marker, std::uint32_t ts,
                 const std::uint8_t* payload, std::size_t size);
  void tick(std::int64_t now);
  void tick_room(Room* room, std::int64_t now);
  bool tick_dtmf_sender(Leg* leg, std::int64_t now);
  void pull_input(Leg* leg, std::int64_t now);
  void tap_leg(Leg* leg, const std::int16_t* heard);
  void encode_and_send(Leg* leg, const std::int16_t* pcm, std::size_t n, std::int64_t now);
  void housekeeping(std::int64_t now);
  void refresh_stats(Leg* leg);
  void emit(Event&& e);
  void emit_digit(Leg* leg, char digit, int duration_ms, DtmfSource source, bool begin);
  void recompute_room(Room* room);
  void detach_from_room(Leg* leg);
  void ensure_decoding(Leg* leg, int room_rate);
  void ensure_encoding(Leg* leg, int room_rate);
  void finish_player(Room* room, std::size_t index, PlaybackEnd why);
  void fill_player(Player* p, std::int16_t* out, std::size_t n);
  Room* implicit_room_for(Leg* leg);
  void watch(int fd, Pollable* p);
  void unwatch(int fd);
  static std::int32_t gain_q12(double gain) noexcept;

  Engine::Impl& engine_;
  int index_;
  int epfd_ = -1;
  int cmdfd_ = -1;
  int timerfd_ = -1;
  Pollable cmd_poll_{Pollable::kCommand, nullptr};
  Pollable timer_poll_{Pollable::kTimer, nullptr};
  std::thread thread_;
  std::atomic<bool> running_{false};

  std::mutex cmd_mu_;
  std::vector<std::function<void(Worker&)>> cmds_;
  std::vector<std::function<void(Worker&)>> cmds_running_;

  std::unordered_map<ObjectId, std::unique_ptr<Leg>> legs_;
  std::unordered_map<ObjectId, std::unique_ptr<Room>> rooms_;
  std::vector<std::unique_ptr<Room>> implicit_rooms_;     // a leg's own room for prompts and tones
  std::unordered_map<ObjectId, Room*> player_rooms_;      // player id -> room
  std::unordered_map<ObjectId, RecorderTap*> recorders_;  // recorder id -> tap
  std::vector<std::unique_ptr<RecorderTap>> recorder_store_;
  std::vector<Leg*> tap_legs_;    // legs outside rooms whose input is recorded or scanned for DTMF
  std::vector<Leg*> dtmf_legs_;   // legs sending RFC 4733 events
  // Recordings whose stop() found the buffer full: retried every tick, while
  // the writer thread drains.
  std::vector<std::shared_ptr<Recorder>> pending_stops_;

  // Receive batch buffers (recvmmsg), shared by every leg of this worker.
  static constexpr int kBatch = 32;
  static constexpr std::size_t kMaxDatagram = 2048;
  std::vector<std::uint8_t> rx_buf_;
  std::vector<sockaddr_storage> rx_addr_;

  std::int64_t next_housekeeping_ms_ = 0;
  std::int64_t window_start_ns_ = 0;
  std::uint64_t window_busy_ns_ = 0;
  std::atomic<double> load_{0};
  std::atomic<std::uint64_t> busy_ns_{0};
  std::uint64_t packets_in_ = 0, packets_out_ = 0, bytes_in_ = 0, bytes_out_ = 0;
  std::uint64_t ticks_ = 0, overruns_ = 0;
  std::vector<std::int16_t> scratch_;
  std::vector<std::int16_t> scratch_silence_;
  std::minstd_rand rng_{12345};
};

}  // namespace engine
// The engine's shared state: registry, workers, ports, events, writer thread.
// Defined here so workers can reach the ports, the event queue and retire().
struct Engine::Impl {
  enum class Kind : std::uint8_t { Leg, Room, Player, Recorder };
  struct Entry {
    Kind kind;
    int worker;
  };

  EngineConfig config;
  PortAllocator ports;
  engine::EventQueue events;
  PromptCache prompts;
  std::vector<std::unique_ptr<engine::Worker>> workers;
  std::atomic<bool> closed{false};

  // Control: verbs are serialized so that a move between workers cannot
  // interleave with another verb on the same object.
  std::mutex control;
  std::unordered_map<ObjectId, Entry> registry;
  ObjectId next_id = 1;
  std::mt19937 rng{std::random_device{}()};
  std::uint64_t commands = 0;

  // Players and recorders that ended on their own; workers report them here
  // (they must not take `control`), and the next verb forgets them.
  std::mutex retired_mu;
  std::vector<ObjectId> retired;

  // Recording writer thread.
  struct Writing {
    ObjectId id;
    std::shared_ptr<Recorder> recorder;
    int fd;
    ObjectId leg;
    int sample_rate;
  };
  std::mutex writer_mu;
  std::condition_variable writer_cv;
  std::vector<Writing> writing;
  std::thread writer;
  bool writer_stop = false;
  std::atomic<std::uint64_t> recorder_bytes{0};
  std::atomic<std::uint64_t> recorder_overruns{0};

  explicit Impl(const EngineConfig& cfg)
      : config(cfg),
        ports(cfg.bind_host, cfg.port_min, cfg.port_max, cfg.socket_buffer_bytes),
        events(cfg.event_queue_capacity) {
    if (cfg.tick_ms < 5 || cfg.tick_ms > 60 || cfg.tick_ms % 5) {
      throw std::invalid_argument("tick_ms must be a multiple of 5 between 5 and 60");
    }
    if (cfg.threads < 0 || cfg.threads > 256) throw std::invalid_argument("threads must be 0..256");
    int n = cfg.threads;
    if (n == 0) n = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) workers.push_back(std::make_unique<engine::Worker>(*this, i));
    for (auto& w : workers) w->start();
    writer = std::thread([this] { writer_loop(); });
  }

  void retire(ObjectId id) {
    std::lock_guard<std::mutex> lock(retired_mu);
    retired.push_back(id);
  }

  // Call with `control` held, at the start of every verb.
  void purge_retired() {
    std::vector<ObjectId> ids;
    {
      std::lock_guard<std::mutex> lock(retired_mu);
      ids.swap(retired);
    }
    for (ObjectId id : ids) {
      auto it = registry.find(id);
      if (it != registry.end() && (it->second.kind == Kind::Player || it->second.kind == Kind::Recorder)) {
        registry.erase(it);
      }
    }
  }

  // The PCM rate a player or recorder on `target` will run at.
  int rate_for(ObjectId target, int worker) {
    int rate = 0;
    workers[static_cast<std::size_t>(worker)]->call([&](engine::Worker& w) { rate = w.rate_for(target); });
    if (rate == 0) throw std::out_of_range("no such leg or room " + std::to_string(target));
    return rate;
  }

  ObjectId new_id(Kind kind, int worker) {
    ObjectId id = next_id++;
    if (next_id == 0) next_id = 1;
    registry[id] = Entry{kind, worker};
    return id;
  }

  const Entry& find(ObjectId id, Kind kind, const char* what) {
    auto it = registry.find(id);
    if (it == registry.end() || it->second.kind != kind) {
      throw std::out_of_range(std::string("no such ") + what + " " + std::to_string(id));
    }
    return it->second;
  }

  int worker_for_affinity(std::uint32_t affinity) const {
    return static_cast<int>(affinity % workers.size());
  }

  void check_open() {
    if (closed.load()) throw std::runtime_error("engine is closed");
    purge_retired();
  }

  // Moves a leg to another worker; control must be held.
  void move_leg(ObjectId id, int to) {
    Entry& e = registry.at(id);
    if (e.worker == to) return;
    std::unique_ptr<engine::Leg> leg;
    workers[static_cast<std::size_t>(e.worker)]->call([&](engine::Worker& w) { leg = w.take_leg(id); });
    if (!leg) return;
    auto* raw = leg.release();
    workers[static_cast<std::size_t>(to)]->call([&](engine::Worker& w) { w.add_leg(std::unique_ptr<engine::Leg>(raw)); });
    e.worker = to;
  }

  void writer_loop() {
    std::vector<Writing> batch;
    std::unique_lock<std::mutex> lock(writer_mu);
    for (;;) {
      writer_cv.wait_for(lock, std::chrono::milliseconds(config.writer_flush_ms));
      batch = writing;  // copies shared_ptrs; drains happen without the lock
      const bool stopping = writer_stop;
      lock.unlock();
      std::vector<ObjectId> done;
      for (auto& w : batch) {
        const long n = w.recorder->drain(w.fd, false);
        if (n > 0) recorder_bytes.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
        if (n < 0) {
          Event e;
          e.type = EventType::RecordingError;
          e.object = w.id;
          e.leg = w.leg;
          e.time_ms = engine::now_ms();
          e.text = std::string("write failed: ") + std::strerror(errno);
          events.push(std::move(e));
        }
        if (stopping && !w.recorder->stopped()) {
          // The media threads have exited, so this thread may end the
          // recording itself: stop() refuses while the buffer is full.
          for (int i = 0; i < 1000 && w.recorder->stop() == 1; ++i) w.recorder->drain(w.fd, false);
        }
        if (w.recorder->stopped()) {
          // Everything queued, final header included, goes out before close.
          while (!w.recorder->complete()) {
            const long m = w.recorder->drain(w.fd, true);
            if (m > 0) recorder_bytes.fetch_add(static_cast<std::uint64_t>(m), std::memory_order_relaxed);
            if (m <= 0 && !w.recorder->complete()) break;
          }
          ::fsync(w.fd);
          ::close(w.fd);
          const RecorderStats st = w.recorder->stats();
          recorder_overruns.fetch_add(st.overruns, std::memory_order_relaxed);
          Event e;
          e.type = EventType::RecordingFinished;
          e.object = w.id;
          e.leg = w.leg;
          e.time_ms = engine::now_ms();
          e.value = static_cast<std::int64_t>(st.bytes_written);
          e.duration_ms = static_cast<std::int32_t>(st.samples_recorded * 1000 / static_cast<std::uint64_t>(w.sample_rate));
          events.push(std::move(e));
          done.push_back(w.id);
        }
      }
      batch.clear();
      lock.lock();
      if (!done.empty()) {
        writing.erase(std::remove_if(writing.begin(), writing.end(),
                                     [&](const Writing& w) {
                                       return std::find(done.begin(), done.end(), w.id) != done.end();
                                     }),
                      writing.end());
      }
      if (writer_stop && writing.empty()) return;
    }
  }

  void close_all() {
    if (closed.exchange(true)) return;
    for (auto& w : workers) w->call([](engine::Worker& wk) { wk.close_all(); });
    for (auto& w : workers) w->stop_and_join();
    {
      std::lock_guard<std::mutex> lock(writer_mu);
      writer_stop = true;
    }
    writer_cv.notify_all();
    if (writer.joinable()) writer.join();
    registry.clear();
  }
};

}  // namespace mediacore
