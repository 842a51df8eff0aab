// Conference mixer: N-party mix-minus with a per-edge gain matrix.
//
// Modelled on pjmedia's conference bridge (numbered slots, connect(src, sink,
// level)); no standard defines the bits, so the arithmetic is specified here
// and mirrored exactly by the plain-numpy model in tests/mediacore/test_mixer.py.
//
// A slot is one party: its input frame is what the party says, its output
// frame is what it hears. What slot d hears is
//
//     out[d] = sat16( sum over s of  G[s][d] * in[s] )
//
// where G is the gain matrix, in Q12 fixed point (4096 = unity, at most 8.0).
// G is never stored densely. It is
//   - the *bus* default: a slot that is a conference member (the default for
//     add_slot) talks to and hears every other member at unity gain, and
//   - sparse explicit edges (set_edge / connect) that override the default for
//     one ordered pair: muted, listen-only, whisper, barge, other levels.
// So a tick costs O(N + E) frames of work, not O(N^2): the bus sum is formed
// once and each member hears "bus minus its own contribution" plus, for each
// explicit edge into it, (its gain minus the default) times the source.
// Supervisor listen/whisper/barge are only edges (set_supervisor).
//
// Arithmetic, bit for bit:
//   - an explicit edge contributes (x * g + 2048) >> 12 per sample (arithmetic
//     shift); a default (unity) pair contributes x exactly;
//   - accumulation is int32 (bounded: at most kMaxSlots sources at gain 8.0),
//     saturated to int16 once, at the end (counted in stats().clipped_samples).
// Glitch-free switching: a change of an explicit edge's gain, of mute or of
// deaf takes effect at the next tick and ramps linearly over that tick's frame:
//   g(i) = (g_prev * (n - 1 - i) + g_new * (i + 1)) / n   (integer division),
// so the last sample of the frame is at the new gain and no step is heard.
// Mute ramps the slot's input (and so every edge from it); deaf ramps the
// saturated output. Joining or leaving the bus is a step at the tick boundary.
// A slot whose input was not set since the last tick is silent for that tick.
//
// Threading: owned by one thread. Set-up calls (add_slot, set_edge...) may
// allocate; the per-tick calls (input/set_input/mix/output) never allocate,
// never throw, and report bad arguments as a negative return value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec.hpp"

namespace mediacore {

struct MixerStats {
  std::uint64_t ticks = 0;            // mix() calls
  std::uint64_t clipped_samples = 0;  // output samples saturated to int16
  std::uint32_t slots = 0;            // slots in use
  std::uint32_t edges = 0;            // explicit edges (all destinations)
};

enum class SupervisorMode : std::uint8_t {
  OFF = 0,      // the supervisor neither hears nor is heard
  LISTEN = 1,   // caller -> sup, agent -> sup
  WHISPER = 2,  // listen + sup -> agent (the caller does not hear the supervisor)
  BARGE = 3,    // listen + sup -> agent + sup -> caller
};

class Mixer {
 public:
  static constexpr int kGainShift = 12;
  static constexpr std::int32_t kUnityGain = 1 << kGainShift;  // 1.0 in Q12
  static constexpr std::int32_t kMaxGain = 8 * kUnityGain;      // 8.0 (+18 dB)
  static constexpr int kMaxSlots = 1024;

  // sample_rate 8000, 16000 or 48000; frame_ms 1..120; max_slots 1..kMaxSlots.
  // Throws std::invalid_argument otherwise.
  Mixer(int sample_rate, int frame_ms = 20, int max_slots = 256);

  int sample_rate() const noexcept { return rate_; }
  std::size_t frame_samples() const noexcept { return n_; }
  int max_slots() const noexcept { return static_cast<int>(max_slots_); }
  // One past the highest slot id in use (0 when empty): the row count that
  // mix(inputs, rows, outputs) needs.
  int slot_bound() const noexcept;
  bool has_slot(int slot) const noexcept;

  // ---- set-up (may allocate) ----
  // The lowest free id, or -1 when max_slots are in use.
  int add_slot(bool conference = true);
  // Removes the slot and every edge into or out of it. 0, or -1 if no such slot.
  int remove_slot(int slot);
  // Explicit gain (Q12, 0..kMaxGain) from src to dst, overriding the bus.
  // src == dst is allowed (sidetone). 0, or -1 for a bad slot or gain.
  int set_edge(int src, int dst, std::int32_t gain_q12);
  // Drop the explicit edge: the pair goes back to the bus default (ramped).
  // 0 if there was one, 1 if there was none, -1 for a bad slot.
  int clear_edge(int src, int dst) noexcept;
  // The gain the next tick ends at for src -> dst (explicit or default), or -1.
  std::int32_t gain(int src, int dst) const noexcept;
  // 1 if src -> dst has an explicit edge, 0 if not, -1 for a bad slot.
  int has_edge(int src, int dst) const noexcept;
  int set_conference(int slot, bool member) noexcept;
  int set_mute(int slot, bool mute) noexcept;
  int set_deaf(int slot, bool deaf) noexcept;
  int conference(int slot) const noexcept;  // 1/0, -1 bad slot
  int muted(int slot) const noexcept;
  int deaf(int slot) const noexcept;
  // Sets the four edges between a supervisor and the two parties of a call.
  int set_supervisor(int supervisor, int caller, int agent, SupervisorMode mode);

  // ---- per tick (never allocate) ----
  // The slot's input frame (frame_samples() samples) to fill for this tick;
  // marks the input as present. nullptr for a bad slot.
  std::int16_t* input(int slot) noexcept;
  // Copies one frame in; -1 for a bad slot or a wrong sample count.
  int set_input(int slot, const std::int16_t* pcm, std::size_t samples) noexcept;
  // Mix the inputs set since the last tick into every slot's output.
  void mix() noexcept;
  // What the slot hears after the last tick; nullptr for a bad slot.
  const std::int16_t* output(int slot) const noexcept;
  // Batched tick: row r of `inputs` (rows x frame_samples, row-major) is slot
  // r's input and row r of `outputs` what it hears; rows of unused ids are
  // ignored in and zero out. Needs rows >= slot_bound(). Returns 0 or -1.
  int mix(const std::int16_t* inputs, std::size_t rows, std::int16_t* outputs) noexcept;
  // The same with G.711 codes in and out (decode, mix, encode): the
  // per-tick work of a G.711 conference in one call. law is PCMU or PCMA.
  int mix_g711(const std::uint8_t* inputs, std::size_t rows, std::uint8_t* outputs, CodecId law) noexcept;

  MixerStats stats() const noexcept;

 private:
  struct Edge {
    int src;
    std::int32_t gain;  // target gain, Q12
    std::int32_t prev;  // gain applied at the end of the last tick
    bool releasing;     // cleared: ramps to the default, then is removed
  };
  struct Slot {
    bool used = false;
    bool member = false;
    bool muted = false, muted_prev = false;
    bool deaf = false, deaf_prev = false;
    bool has_input = false;
    std::vector<std::int16_t> in, out, ramped;
    std::vector<Edge> incoming;  // explicit edges into this slot
  };

  bool valid(int slot) const noexcept {
    return slot >= 0 && static_cast<std::size_t>(slot) < slots_.size() && slots_[slot].used;
  }
  std::int32_t default_gain(int src, int dst) const noexcept {
    return (src != dst && slots_[src].member && slots_[dst].member) ? kUnityGain : 0;
  }
  Edge* find_edge(int src, int dst) noexcept;
  const Edge* find_edge(int src, int dst) const noexcept;
  // The core: per-slot input pointers (nullptr = silent) to per-slot outputs.
  void mix_core(const std::int16_t* const* in, std::int16_t* const* out) noexcept;

  int rate_;
  std::size_t n_;
  std::size_t max_slots_;
  std::vector<Slot> slots_;
  std::size_t edge_count_ = 0;
  std::vector<std::int32_t> bus_, acc_;
  std::vector<const std::int16_t*> in_ptr_, eff_ptr_;
  std::vector<std::int16_t*> out_ptr_;
  std::uint64_t ticks_ = 0;
  std::uint64_t clipped_ = 0;
};

}  // namespace mediacore
