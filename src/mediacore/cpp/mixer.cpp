#include "mixer.hpp"

#include <algorithm>
#include <stdexcept>

#include "g711.hpp"

namespace mediacore {

namespace {

constexpr std::int32_t kHalf = 1 << (Mixer::kGainShift - 1);

// Linear ramp from g0 to g1 over n samples; sample i is at
// (g0 * (n - 1 - i) + g1 * (i + 1)) / n, so the last one is exactly g1.
// Gains are in 0..kMaxGain, so every term is non-negative and fits in int32.
inline std::int32_t ramp_gain(std::int32_t g0, std::int32_t g1, std::size_t i, std::size_t n) noexcept {
  const auto ni = static_cast<std::int32_t>(n);
  const auto ii = static_cast<std::int32_t>(i);
  return (g0 * (ni - 1 - ii) + g1 * (ii + 1)) / ni;
}

inline std::int32_t scale(std::int32_t x, std::int32_t g) noexcept { return (x * g + kHalf) >> Mixer::kGainShift; }

// Saturate to int16; returns how many samples were clipped.
inline std::uint64_t saturate(const std::int32_t* acc, std::int16_t* out, std::size_t n) noexcept {
  std::uint32_t clipped = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t v = acc[i];
    clipped += static_cast<std::uint32_t>(v > 32767) + static_cast<std::uint32_t>(v < -32768);
    out[i] = static_cast<std::int16_t>(std::clamp<std::int32_t>(v, -32768, 32767));
  }
  return clipped;
}

}  // namespace

Mixer::Mixer(int sample_rate, int frame_ms, int max_slots) : rate_(sample_rate) {
  if (sample_rate != 8000 && sample_rate != 16000 && sample_rate != 48000)
    throw std::invalid_argument("mixer sample_rate must be 8000, 16000 or 48000");
  if (frame_ms < 1 || frame_ms > 120) throw std::invalid_argument("mixer frame_ms must be 1..120");
  if (max_slots < 1 || max_slots > kMaxSlots) throw std::invalid_argument("mixer max_slots must be 1..1024");
  n_ = static_cast<std::size_t>(sample_rate / 1000 * frame_ms);
  max_slots_ = static_cast<std::size_t>(max_slots);
  slots_.reserve(max_slots_);
  bus_.assign(n_, 0);
  acc_.assign(n_, 0);
  in_ptr_.assign(max_slots_, nullptr);
  eff_ptr_.assign(max_slots_, nullptr);
  out_ptr_.assign(max_slots_, nullptr);
}

int Mixer::slot_bound() const noexcept {
  for (std::size_t s = slots_.size(); s > 0; --s)
    if (slots_[s - 1].used) return static_cast<int>(s);
  return 0;
}

bool Mixer::has_slot(int slot) const noexcept { return valid(slot); }

int Mixer::add_slot(bool conference) {
  std::size_t id = 0;
  while (id < slots_.size() && slots_[id].used) ++id;
  if (id == max_slots_) return -1;
  if (id == slots_.size()) slots_.emplace_back();
  Slot& s = slots_[id];
  s = Slot{};
  s.used = true;
  s.member = conference;
  s.in.assign(n_, 0);
  s.out.assign(n_, 0);
  s.ramped.assign(n_, 0);
  return static_cast<int>(id);
}

int Mixer::remove_slot(int slot) {
  if (!valid(slot)) return -1;
  edge_count_ -= slots_[slot].incoming.size();
  slots_[slot].incoming.clear();
  for (Slot& other : slots_) {
    auto& edges = other.incoming;
    const auto before = edges.size();
    edges.erase(std::remove_if(edges.begin(), edges.end(), [slot](const Edge& e) { return e.src == slot; }),
                edges.end());
    edge_count_ -= before - edges.size();
  }
  slots_[slot] = Slot{};
  while (!slots_.empty() && !slots_.back().used) slots_.pop_back();
  return 0;
}

Mixer::Edge* Mixer::find_edge(int src, int dst) noexcept {
  for (Edge& e : slots_[dst].incoming)
    if (e.src == src) return &e;
  return nullptr;
}

const Mixer::Edge* Mixer::find_edge(int src, int dst) const noexcept {
  for (const Edge& e : slots_[dst].incoming)
    if (e.src == src) return &e;
  return nullptr;
}

int Mixer::set_edge(int src, int dst, std::int32_t gain_q12) {
  if (!valid(src) || !valid(dst) || gain_q12 < 0 || gain_q12 > kMaxGain) return -1;
  if (Edge* e = find_edge(src, dst)) {
    e->gain = gain_q12;
    e->releasing = false;
    return 0;
  }
  // A new edge starts from the gain the pair had: the bus default.
  slots_[dst].incoming.push_back(Edge{src, gain_q12, default_gain(src, dst), false});
  ++edge_count_;
  return 0;
}

int Mixer::clear_edge(int src, int dst) noexcept {
  if (!valid(src) || !valid(dst)) return -1;
  Edge* e = find_edge(src, dst);
  if (e == nullptr || e->releasing) return 1;
  e->releasing = true;
  return 0;
}

std::int32_t Mixer::gain(int src, int dst) const noexcept {
  if (!valid(src) || !valid(dst)) return -1;
  const Edge* e = find_edge(src, dst);
  return (e != nullptr && !e->releasing) ? e->gain : default_gain(src, dst);
}

int Mixer::has_edge(int src, int dst) const noexcept {
  if (!valid(src) || !valid(dst)) return -1;
  const Edge* e = find_edge(src, dst);
  return (e != nullptr && !e->releasing) ? 1 : 0;
}

int Mixer::set_conference(int slot, bool member) noexcept {
  if (!valid(slot)) return -1;
  slots_[slot].member = member;
  return 0;
}

int Mixer::set_mute(int slot, bool mute) noexcept {
  if (!valid(slot)) return -1;
  slots_[slot].muted = mute;
  return 0;
}

int Mixer::set_deaf(int slot, bool deaf) noexcept {
  if (!valid(slot)) return -1;
  slots_[slot].deaf = deaf;
  return 0;
}

int Mixer::conference(int slot) const noexcept { return valid(slot) ? slots_[slot].member : -1; }
int Mixer::muted(int slot) const noexcept { return valid(slot) ? slots_[slot].muted : -1; }
int Mixer::deaf(int slot) const noexcept { return valid(slot) ? slots_[slot].deaf : -1; }

int Mixer::set_supervisor(int supervisor, int caller, int agent, SupervisorMode mode) {
  if (!valid(supervisor) || !valid(caller) || !valid(agent)) return -1;
  if (supervisor == caller || supervisor == agent || caller == agent) return -1;
  const bool hears = mode != SupervisorMode::OFF;
  const bool to_agent = mode == SupervisorMode::WHISPER || mode == SupervisorMode::BARGE;
  const bool to_caller = mode == SupervisorMode::BARGE;
  set_edge(caller, supervisor, hears ? kUnityGain : 0);
  set_edge(agent, supervisor, hears ? kUnityGain : 0);
  set_edge(supervisor, agent, to_agent ? kUnityGain : 0);
  set_edge(supervisor, caller, to_caller ? kUnityGain : 0);
  return 0;
}

std::int16_t* Mixer::input(int slot) noexcept {
  if (!valid(slot)) return nullptr;
  slots_[slot].has_input = true;
  return slots_[slot].in.data();
}

int Mixer::set_input(int slot, const std::int16_t* pcm, std::size_t samples) noexcept {
  if (!valid(slot) || pcm == nullptr || samples != n_) return -1;
  std::copy(pcm, pcm + n_, slots_[slot].in.data());
  slots_[slot].has_input = true;
  return 0;
}

const std::int16_t* Mixer::output(int slot) const noexcept { return valid(slot) ? slots_[slot].out.data() : nullptr; }

void Mixer::mix() noexcept {
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    Slot& sl = slots_[s];
    in_ptr_[s] = (sl.used && sl.has_input) ? sl.in.data() : nullptr;
    out_ptr_[s] = sl.used ? sl.out.data() : nullptr;
  }
  mix_core(in_ptr_.data(), out_ptr_.data());
}

int Mixer::mix(const std::int16_t* inputs, std::size_t rows, std::int16_t* outputs) noexcept {
  const std::size_t bound = static_cast<std::size_t>(slot_bound());
  if (inputs == nullptr || outputs == nullptr || rows < bound) return -1;
  for (std::size_t s = 0; s < bound; ++s) {
    in_ptr_[s] = slots_[s].used ? inputs + s * n_ : nullptr;
    out_ptr_[s] = slots_[s].used ? outputs + s * n_ : nullptr;
  }
  mix_core(in_ptr_.data(), out_ptr_.data());
  for (std::size_t s = 0; s < rows; ++s)
    if (s >= bound || !slots_[s].used) std::fill(outputs + s * n_, outputs + (s + 1) * n_, std::int16_t{0});
  return 0;
}

int Mixer::mix_g711(const std::uint8_t* inputs, std::size_t rows, std::uint8_t* outputs, CodecId law) noexcept {
  const std::size_t bound = static_cast<std::size_t>(slot_bound());
  if (inputs == nullptr || outputs == nullptr || rows < bound) return -1;
  if (law != CodecId::PCMU && law != CodecId::PCMA) return -1;
  const bool ulaw = law == CodecId::PCMU;
  for (std::size_t s = 0; s < bound; ++s) {
    Slot& sl = slots_[s];
    if (!sl.used) {
      in_ptr_[s] = nullptr;
      out_ptr_[s] = nullptr;
      continue;
    }
    if (ulaw) {
      g711::ulaw_decode(inputs + s * n_, n_, sl.in.data());
    } else {
      g711::alaw_decode(inputs + s * n_, n_, sl.in.data());
    }
    in_ptr_[s] = sl.in.data();
    out_ptr_[s] = sl.out.data();
  }
  mix_core(in_ptr_.data(), out_ptr_.data());
  const std::uint8_t silence = ulaw ? g711::kUlawSilence : g711::kAlawSilence;
  for (std::size_t s = 0; s < rows; ++s) {
    std::uint8_t* row = outputs + s * n_;
    if (s >= bound || !slots_[s].used) {
      std::fill(row, row + n_, silence);
    } else if (ulaw) {
      g711::ulaw_encode(slots_[s].out.data(), n_, row);
    } else {
      g711::alaw_encode(slots_[s].out.data(), n_, row);
    }
  }
  return 0;
}

void Mixer::mix_core(const std::int16_t* const* in, std::int16_t* const* out) noexcept {
  const std::size_t n = n_;
  const std::size_t bound = slots_.size();
  std::int32_t* bus = bus_.data();
  std::int32_t* acc = acc_.data();

  // 1. Effective inputs (mute and its ramp applied) and the bus sum.
  bool bus_any = false;
  for (std::size_t s = 0; s < bound; ++s) {
    Slot& sl = slots_[s];
    const std::int16_t* x = sl.used ? in[s] : nullptr;
    if (x != nullptr) {
      const std::int32_t g0 = sl.muted_prev ? 0 : kUnityGain;
      const std::int32_t g1 = sl.muted ? 0 : kUnityGain;
      if (g0 == 0 && g1 == 0) {
        x = nullptr;
      } else if (g0 != g1) {
        std::int16_t* r = sl.ramped.data();
        for (std::size_t i = 0; i < n; ++i) r[i] = static_cast<std::int16_t>(scale(x[i], ramp_gain(g0, g1, i, n)));
        x = r;
      }
    }
    eff_ptr_[s] = x;
    if (x != nullptr && sl.member) {
      if (!bus_any) {
        for (std::size_t i = 0; i < n; ++i) bus[i] = x[i];
        bus_any = true;
      } else {
        for (std::size_t i = 0; i < n; ++i) bus[i] += x[i];
      }
    }
  }

  // 2. What each slot hears.
  for (std::size_t d = 0; d < bound; ++d) {
    Slot& sl = slots_[d];
    if (!sl.used) continue;
    std::int16_t* o = out[d];
    auto& edges = sl.incoming;

    if (sl.deaf && sl.deaf_prev) {
      std::fill(o, o + n, std::int16_t{0});
    } else {
      const std::int16_t* own = eff_ptr_[d];
      const bool from_bus = sl.member && bus_any;
      if (edges.empty() && !sl.deaf && !sl.deaf_prev && from_bus) {
        // The common conference case: bus minus own contribution, saturated.
        std::uint32_t clipped = 0;
        if (own != nullptr) {
          for (std::size_t i = 0; i < n; ++i) {
            const std::int32_t v = bus[i] - own[i];
            clipped += static_cast<std::uint32_t>(v > 32767) + static_cast<std::uint32_t>(v < -32768);
            o[i] = static_cast<std::int16_t>(std::clamp<std::int32_t>(v, -32768, 32767));
          }
        } else {
          clipped = static_cast<std::uint32_t>(saturate(bus, o, n));
        }
        clipped_ += clipped;
        continue;
      }

      if (from_bus) {
        if (own != nullptr) {
          for (std::size_t i = 0; i < n; ++i) acc[i] = bus[i] - own[i];
        } else {
          std::copy(bus, bus + n, acc);
        }
      } else {
        std::fill(acc, acc + n, 0);
      }
      for (const Edge& e : edges) {
        const std::int16_t* x = eff_ptr_[e.src];
        if (x == nullptr) continue;
        const std::int32_t def = default_gain(e.src, static_cast<int>(d));
        const std::int32_t g1 = e.releasing ? def : e.gain;
        const std::int32_t g0 = e.prev;
        const bool minus_default = def != 0;
        if (g0 == g1) {
          if (g1 == def) continue;
          if (g1 == kUnityGain) {
            for (std::size_t i = 0; i < n; ++i) acc[i] += x[i];
          } else if (g1 == 0) {
            for (std::size_t i = 0; i < n; ++i) acc[i] -= x[i];
          } else if (minus_default) {
            for (std::size_t i = 0; i < n; ++i) acc[i] += scale(x[i], g1) - x[i];
          } else {
            for (std::size_t i = 0; i < n; ++i) acc[i] += scale(x[i], g1);
          }
        } else {
          for (std::size_t i = 0; i < n; ++i)
            acc[i] += scale(x[i], ramp_gain(g0, g1, i, n)) - (minus_default ? x[i] : 0);
        }
      }

      if (sl.deaf == sl.deaf_prev) {
        clipped_ += saturate(acc, o, n);
      } else {
        clipped_ += saturate(acc, o, n);
        const std::int32_t g0 = sl.deaf_prev ? 0 : kUnityGain;
        const std::int32_t g1 = sl.deaf ? 0 : kUnityGain;
        for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<std::int16_t>(scale(o[i], ramp_gain(g0, g1, i, n)));
      }
    }

    // Edges end the tick at their target; cleared ones are now at the default.
    for (std::size_t k = 0; k < edges.size();) {
      Edge& e = edges[k];
      if (e.releasing) {
        e = edges.back();
        edges.pop_back();
        --edge_count_;
        continue;
      }
      e.prev = e.gain;
      ++k;
    }
  }

  for (std::size_t s = 0; s < bound; ++s) {
    Slot& sl = slots_[s];
    sl.muted_prev = sl.muted;
    sl.deaf_prev = sl.deaf;
    sl.has_input = false;
  }
  ++ticks_;
}

MixerStats Mixer::stats() const noexcept {
  MixerStats st;
  st.ticks = ticks_;
  st.clipped_samples = clipped_;
  for (const Slot& s : slots_) st.slots += s.used ? 1u : 0u;
  st.edges = static_cast<std::uint32_t>(edge_count_);
  return st;
}

}  // namespace mediacore
