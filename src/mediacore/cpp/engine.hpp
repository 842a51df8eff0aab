// The real-time media engine: native I/O threads carrying RTP legs, bridges,
// conferences, players and recorders, driven by coarse verbs and reporting
// through a batched event queue. No Python on this side: a packet is received,
// relayed or decoded, mixed, encoded, recorded and sent without leaving C++.
//
// Threads. `threads` workers (default: one per core), each with its own epoll
// set, command queue and 20 ms media clock (a timerfd). Every object lives on
// exactly one worker: legs are placed by their `affinity` key (give all legs
// of a call the same key), a room lives where it was created, and a leg that
// joins a room on another worker is moved there first. One writer thread does
// all recording disk I/O, so a slow disk never stalls a media thread.
//
// Control. Every Engine method may be called from any thread. A verb checks
// its arguments and the object registry (so a bad id or a full port range is
// an exception at the call), then hands the work to the owning worker through
// its command queue and waits until the worker has applied it: when a verb
// returns, it is in effect (a packet sent after bridge() returns is relayed).
// The wait is one wake-up of the worker, tens of microseconds; the GIL is
// released meanwhile. Nothing here takes the GIL or calls Python.
//
// Events. Workers append to one bounded queue and signal an eventfd when it
// goes from empty to non-empty; the consumer (Trio, or a plain thread) waits
// for the fd to be readable and drains a whole batch at once. A full queue
// drops and counts (stats().events_dropped); it never blocks a media thread.
//
// Media paths. A room is a set of legs (and players) with a mixer. A room of
// two legs with the same codec and nothing that needs audio relays packets as
// they arrive, rewriting SSRC, sequence number, timestamp and payload type so
// each side sees one continuous stream. Recording, in-band DTMF detection,
// players, a third party or a codec mismatch switch it to decoding: every
// 20 ms tick each leg's jitter buffer yields a frame, the mixer makes what
// each party hears, and each leg encodes its own. With only a recorder or
// detector attached, packets are still relayed untouched and a decoded copy
// feeds the tap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec.hpp"

namespace mediacore {

using ObjectId = std::uint32_t;  // legs, rooms, players and recorders; never 0

// What we do on a leg, from our side: send, receive, both or neither. An SDP
// a=sendonly from the remote means we only receive (RecvOnly).
enum class Direction : std::uint8_t { SendRecv = 0, SendOnly = 1, RecvOnly = 2, Inactive = 3 };

struct EngineConfig {
  std::string bind_host = "127.0.0.1";
  int port_min = 20000;
  int port_max = 29999;
  int threads = 0;                   // 0: one per online CPU
  int tick_ms = 20;                  // media clock period
  int stats_interval_ms = 5000;      // periodic Stats events per leg; 0 = off
  int rtcp_interval_ms = 5000;       // mean RTCP report interval (randomized 0.5x-1.5x)
  std::size_t event_queue_capacity = 65536;
  int socket_buffer_bytes = 0;       // SO_RCVBUF/SO_SNDBUF on RTP sockets; 0 = system default
  int writer_flush_ms = 200;         // recording writer thread period
};

struct LegConfig {
  CodecId codec = CodecId::PCMU;
  int payload_type = 0;
  int sample_rate = 8000;            // PCM rate: 8000 for G.711; 8000/16000/48000 for Opus and L16
  int ptime_ms = 20;
  int telephone_event_pt = -1;       // RFC 4733 payload type; -1 = not negotiated
  std::string remote_host;           // from the SDP (c=); empty = unknown yet
  int remote_port = 0;               // from the SDP (m=); 0 = unknown yet
  int remote_rtcp_port = 0;          // 0 = remote_port + 1
  bool latch = true;                 // symmetric RTP: learn the remote from its packets (NAT)
  Direction direction = Direction::SendRecv;
  int media_timeout_ms = 30000;      // no RTP this long while receiving -> MediaTimeout; 0 = off
  bool detect_inband_dtmf = false;   // Goertzel detector on the decoded audio
  // Opus encoder settings (RFC 7587 fmtp of the remote side, mapped).
  int opus_bitrate = 0;              // 0 = libopus default for the rate
  bool opus_fec = false;
  bool opus_dtx = false;
  int opus_complexity = 5;
  int opus_packet_loss_percent = 0;
  std::uint32_t affinity = 0;        // legs with the same key share a worker
};

enum class EventType : std::uint8_t {
  DtmfBegin = 1,          // a digit started (RFC 4733 start or in-band onset)
  Dtmf = 2,               // a digit ended: digit, duration_ms, source
  PlaybackFinished = 3,   // object = player; code = PlaybackEnd
  MediaTimeout = 4,       // no RTP for media_timeout_ms
  MediaResumed = 5,       // RTP again after a timeout
  Stats = 6,              // periodic per-leg statistics (stats)
  RecordingFinished = 7,  // object = recorder; value = bytes written; duration_ms
  Latched = 8,            // the leg learned its remote address from a packet (text = address)
  RtcpBye = 9,            // the remote sent an RTCP BYE
  RecordingError = 10,    // object = recorder; the writer could not write (text = reason)
};

enum class DtmfSource : std::uint8_t { None = 0, Rfc4733 = 1, Inband = 2 };
enum class PlaybackEnd : std::int32_t { Completed = 0, Stopped = 1, Dtmf = 2, LegGone = 3 };

struct LegStats {
  ObjectId leg = 0;
  std::uint16_t local_port = 0;
  std::uint32_t local_ssrc = 0;
  std::uint32_t remote_ssrc = 0;
  bool latched = false;
  std::uint64_t packets_received = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t packets_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::int64_t packets_lost = 0;                // RFC 3550 A.3 cumulative (may be negative with duplicates)
  std::uint64_t packets_late = 0;               // arrived after their playout time
  std::uint64_t packets_duplicated = 0;
  std::uint64_t packets_relayed = 0;
  std::uint64_t dropped_malformed = 0;
  std::uint64_t dropped_unexpected_source = 0;
  std::uint64_t dropped_oversize = 0;
  std::uint64_t dropped_unknown_payload_type = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t rtcp_received = 0;
  std::uint64_t rtcp_sent = 0;
  std::uint64_t rtcp_malformed = 0;
  std::uint64_t dtmf_digits = 0;
  std::uint64_t concealed_samples = 0;
  double jitter_ms = 0;                          // RFC 3550 A.8 interarrival jitter
  double jitter_buffer_delay_ms = 0;             // mean playout delay of decoded audio
  double rtt_ms = -1;                            // from RTCP LSR/DLSR; -1 = unknown
  double remote_fraction_lost = -1;              // from the remote's report about us; -1 = none
  double remote_jitter_ms = -1;
  double mos = 0;                                // E-model (ITU-T G.107) estimate; 0 = no audio yet
};

struct Event {
  EventType type = EventType::Stats;
  ObjectId leg = 0;
  ObjectId object = 0;
  std::int64_t time_ms = 0;      // engine monotonic clock
  char digit = 0;
  DtmfSource source = DtmfSource::None;
  std::int32_t duration_ms = 0;
  std::int32_t code = 0;
  std::int64_t value = 0;
  std::string text;
  LegStats stats;                // for Stats events
};

struct WorkerStats {
  std::uint32_t legs = 0;
  std::uint32_t rooms = 0;
  std::uint64_t packets_in = 0;
  std::uint64_t packets_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t ticks = 0;
  std::uint64_t tick_overruns = 0;   // ticks that started a whole period late
  double load = 0;                   // busy fraction of the last stats window (0..1)
  std::uint64_t busy_ns = 0;         // cumulative time spent working
};

struct EngineStats {
  std::vector<WorkerStats> workers;
  std::uint32_t legs = 0;
  std::uint32_t rooms = 0;
  std::uint32_t players = 0;
  std::uint32_t recorders = 0;
  std::uint32_t port_pairs_total = 0;
  std::uint32_t port_pairs_in_use = 0;
  std::uint64_t port_exhausted = 0;
  std::uint64_t events_delivered = 0;
  std::uint64_t events_dropped = 0;
  std::uint64_t commands = 0;
  std::uint64_t recorder_bytes_written = 0;
  std::uint64_t recorder_overruns = 0;
};

struct LegInfo {
  ObjectId id = 0;
  std::string host;
  std::uint16_t rtp_port = 0;
  std::uint16_t rtcp_port = 0;
};

struct RoomOptions {
  int sample_rate = 8000;          // the mixer's rate
  std::uint32_t affinity = 0;      // worker placement when the room starts empty
  bool forward_dtmf = true;        // two-party rooms: a digit from one side is sent to the other
};

enum class PlayKind : std::uint8_t { File = 0, Tone = 1, Silence = 2, Digits = 3 };

struct PlaySpec {
  PlayKind kind = PlayKind::File;
  std::string path;                // File: a WAV (PCM16 or G.711, mono, any of 8/16/48 kHz)
  std::string tone;                // Tone: ringback | busy | congestion | dial | waiting
  std::string region = "us";       // Tone: us | eu | cn
  std::string digits;              // Digits: in-band DTMF to play
  int duration_ms = 0;             // Silence/Tone: 0 = until stopped (tones) or instant (silence)
  int loops = 1;                   // File: 0 = forever
  bool stop_on_dtmf = false;       // barge-in: a digit from the target leg stops it
  double gain = 1.0;
};

enum class RecordFormat : std::uint8_t { Wav = 0, WavUlaw = 1, WavAlaw = 2, OggOpus = 3 };

struct RecordSpec {
  std::string path;
  RecordFormat format = RecordFormat::Wav;
  bool stereo = true;              // left: what `caller` says; right: what `caller` hears
  ObjectId caller = 0;             // the leg whose side is the left channel (0: the first leg)
  int sample_rate = 0;             // 0: the call's rate (the room's, or the leg's own)
  int opus_bitrate = 0;            // OggOpus
};

class Engine {
 public:
  explicit Engine(const EngineConfig& config);  // throws std::invalid_argument / std::runtime_error
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Stops every worker and the writer, finalizes recordings and frees every
  // port. Idempotent; the destructor calls it.
  void close();
  bool closed() const noexcept;
  const EngineConfig& config() const noexcept;

  // ---- events
  int event_fd() const noexcept;
  // Moves every pending event into `out` (cleared first) and re-arms the fd.
  std::size_t drain_events(std::vector<Event>& out);
  // Blocks up to timeout_ms (-1: forever) for events, then drains.
  std::size_t wait_events(std::vector<Event>& out, int timeout_ms);

  // ---- legs
  LegInfo create_leg(const LegConfig& config);
  void update_leg(ObjectId leg, const LegConfig& config);
  void destroy_leg(ObjectId leg);

  // ---- rooms: bridges and conferences
  ObjectId bridge(ObjectId a, ObjectId b, const RoomOptions& options = {});
  ObjectId create_room(const RoomOptions& options = {});
  void join(ObjectId room, ObjectId leg, bool conference_member = true);
  void leave(ObjectId room, ObjectId leg);
  void set_edge(ObjectId room, ObjectId from_leg, ObjectId to_leg, double gain);
  void clear_edge(ObjectId room, ObjectId from_leg, ObjectId to_leg);
  // 0 off, 1 listen, 2 whisper, 3 barge (see mixer.hpp SupervisorMode).
  void supervise(ObjectId room, ObjectId supervisor, ObjectId caller, ObjectId agent, int mode);
  void set_mute(ObjectId room, ObjectId leg, bool muted);
  void destroy_room(ObjectId room);

  // ---- players, recorders, DTMF
  // Target: a leg (only it hears) or a room (every member hears).
  ObjectId play(ObjectId target, const PlaySpec& spec);
  void stop_playback(ObjectId player);
  // Target: a leg or a room.
  ObjectId record(ObjectId target, const RecordSpec& spec);
  void pause_recording(ObjectId recorder);
  void resume_recording(ObjectId recorder);
  void stop_recording(ObjectId recorder);
  // RFC 4733 events when the leg negotiated telephone-event, in-band tones otherwise.
  void send_dtmf(ObjectId leg, const std::string& digits, int duration_ms = 100, int pause_ms = 100);

  // ---- queries
  LegStats leg_stats(ObjectId leg);
  // Many legs at once, in the order given: one round trip per worker instead
  // of one per leg (what a periodic poll of thousands of legs needs).
  std::vector<LegStats> leg_stats(const std::vector<ObjectId>& legs);
  EngineStats stats();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mediacore
