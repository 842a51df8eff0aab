// pybind11 bindings of the jitter buffer, the playout stage, the PLC and the
// time-stretcher (see mediacore/jitter.py and mediacore/plc.py for the API).
//
// mediacore.jitter validates arguments and wraps results in dataclasses; the
// checks here are the last line of defence so nothing reaches C++ that could
// read outside an array. The run_trace() helpers run a whole network trace
// natively, without the GIL, for benchmarks and long simulations.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec.hpp"
#include "jitter_buffer.hpp"
#include "jitter_reference.hpp"
#include "playout.hpp"
#include "plc.hpp"
#include "time_stretch.hpp"

#if __has_include("opus_codec.hpp")
#include "opus_codec.hpp"
#endif

#if __has_include("opus_codec.hpp")
#define HAVE_OPUS_LIST "PCMU, PCMA, L16, opus"
#else
#define HAVE_OPUS_LIST "PCMU, PCMA, L16"
#endif

namespace py = pybind11;
using namespace mediacore;

namespace {

struct Bytes {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  py::buffer_info info;
};

Bytes borrow_bytes(const py::object& obj, const char* name) {
  if (py::isinstance<py::str>(obj)) throw py::value_error(std::string(name) + " must be bytes-like, got str");
  if (!PyObject_CheckBuffer(obj.ptr()))
    throw py::value_error(std::string(name) + " must be bytes-like, got " +
                          std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  Bytes b;
  b.info = py::reinterpret_borrow<py::buffer>(obj).request();
  if (b.info.ndim > 1 && !(b.info.strides.empty()))
    throw py::value_error(std::string(name) + " must be a one-dimensional bytes-like buffer");
  b.data = static_cast<const std::uint8_t*>(b.info.ptr);
  b.size = static_cast<std::size_t>(b.info.size * b.info.itemsize);
  return b;
}

template <typename T>
py::array_t<T, py::array::c_style> column(const py::object& obj, const char* name, py::ssize_t n) {
  auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a) throw py::value_error(std::string(name) + " must be array-like");
  if (a.ndim() != 1) throw py::value_error(std::string(name) + " must be one-dimensional");
  if (n >= 0 && a.shape(0) != n)
    throw py::value_error(std::string(name) + " has " + std::to_string(a.shape(0)) + " items, need " +
                          std::to_string(n));
  return a;
}

JitterBufferConfig make_config(int clock_rate, int frame_samples, int capacity, int max_payload, double min_delay_ms,
                               double max_delay_ms, double initial_delay_ms, double quantile, double forget_factor,
                               double reference_window_ms, double margin_ms, double max_hold_ms, bool adapt_frames) {
  JitterBufferConfig c;
  c.clock_rate = clock_rate;
  c.frame_samples = frame_samples;
  c.capacity = capacity;
  c.max_payload = max_payload;
  c.min_delay_ms = min_delay_ms;
  c.max_delay_ms = max_delay_ms;
  c.initial_delay_ms = initial_delay_ms;
  c.quantile = quantile;
  c.forget_factor = forget_factor;
  c.reference_window_ms = reference_window_ms;
  c.margin_ms = margin_ms;
  c.max_hold_ms = max_hold_ms;
  c.adapt_frames = adapt_frames;
  return c;
}

py::dict stats_dict(const JitterStats& s) {
  py::dict d;
  d["jitter_buffer_delay"] = s.jitter_buffer_delay;
  d["jitter_buffer_target_delay"] = s.jitter_buffer_target_delay;
  d["jitter_buffer_minimum_delay"] = s.jitter_buffer_minimum_delay;
  d["jitter_buffer_emitted_count"] = s.jitter_buffer_emitted_count;
  d["total_samples_received"] = s.total_samples_received;
  d["concealed_samples"] = s.concealed_samples;
  d["silent_concealed_samples"] = s.silent_concealed_samples;
  d["concealment_events"] = s.concealment_events;
  d["inserted_samples_for_deceleration"] = s.inserted_samples_for_deceleration;
  d["removed_samples_for_acceleration"] = s.removed_samples_for_acceleration;
  d["packets_received"] = s.packets_received;
  d["packets_duplicated"] = s.packets_duplicated;
  d["packets_late"] = s.packets_late;
  d["packets_reordered"] = s.packets_reordered;
  d["packets_lost"] = s.packets_lost;
  d["packets_discarded"] = s.packets_discarded;
  d["packets_invalid"] = s.packets_invalid;
  d["buffer_resets"] = s.buffer_resets;
  d["target_delay_ms"] = s.target_delay_ms;
  d["playout_delay_ms"] = s.playout_delay_ms;
  return d;
}

py::object bytes_or_none(const std::uint8_t* p, std::size_t n) {
  if (!p) return py::none();
  return py::bytes(reinterpret_cast<const char*>(p), n);
}

py::tuple frame_tuple(const JitterFrame& f) {
  return py::make_tuple(static_cast<int>(f.kind), f.timestamp, f.sequence, f.samples, f.marker,
                        bytes_or_none(f.payload, f.size), bytes_or_none(f.next_payload, f.next_size),
                        f.arrival_ms);
}

std::unique_ptr<AudioDecoder> make_decoder(const std::string& codec, int sample_rate) {
  if (codec == "PCMU") return std::make_unique<G711Decoder>(CodecId::PCMU);
  if (codec == "PCMA") return std::make_unique<G711Decoder>(CodecId::PCMA);
  if (codec == "L16") return std::make_unique<L16Decoder>(sample_rate);
#if __has_include("opus_codec.hpp")
  if (codec == "opus") return std::make_unique<mediacore::OpusDecoder>(sample_rate, 1);
#endif
  throw py::value_error("codec must be one of " + std::string(HAVE_OPUS_LIST) + ", got " + codec);
}

// The trace a run_trace() call replays: packets in arrival order.
struct Trace {
  py::array_t<std::uint16_t, py::array::c_style> seq;
  py::array_t<std::uint32_t, py::array::c_style> ts;
  py::array_t<std::uint8_t, py::array::c_style> marker;
  py::array_t<double, py::array::c_style> arrival;
  py::ssize_t n;
};

Trace read_trace(const py::object& seq, const py::object& ts, const py::object& marker, const py::object& arrival) {
  Trace t;
  t.seq = column<std::uint16_t>(seq, "seq", -1);
  t.n = t.seq.shape(0);
  t.ts = column<std::uint32_t>(ts, "timestamp", t.n);
  t.marker = column<std::uint8_t>(marker, "marker", t.n);
  t.arrival = column<double>(arrival, "arrival_ms", t.n);
  const double* a = t.arrival.data();
  for (py::ssize_t i = 0; i < t.n; ++i) {
    if (!std::isfinite(a[i])) throw py::value_error("arrival_ms must be finite (drop lost packets from the trace)");
    if (i && a[i] < a[i - 1]) throw py::value_error("arrival_ms must be non-decreasing (packets in arrival order)");
  }
  return t;
}

}  // namespace

PYBIND11_MODULE(_jitter, mod) {
  mod.doc() = "Native adaptive jitter buffer, playout with PLC and time-stretching.";
  mod.attr("NORMAL") = static_cast<int>(FrameKind::Normal);
  mod.attr("CONCEALED") = static_cast<int>(FrameKind::Concealed);
  mod.attr("EMPTY") = static_cast<int>(FrameKind::Empty);
  mod.attr("PUT_OK") = static_cast<int>(PutResult::Ok);
  mod.attr("PUT_DUPLICATE") = static_cast<int>(PutResult::Duplicate);
  mod.attr("PUT_LATE") = static_cast<int>(PutResult::Late);
  mod.attr("PUT_DISCARDED") = static_cast<int>(PutResult::Discarded);
  mod.attr("PUT_INVALID") = static_cast<int>(PutResult::Invalid);
  mod.attr("HISTOGRAM_BUCKETS") = DelayEstimator::kBuckets;
  py::list codecs;
  for (const char* c : {"PCMU", "PCMA", "L16"}) codecs.append(c);
#if __has_include("opus_codec.hpp")
  codecs.append("opus");
#endif
  mod.attr("CODECS") = py::tuple(codecs);

  py::class_<JitterBuffer>(mod, "JitterBuffer")
      .def(py::init([](int clock_rate, int frame_samples, int capacity, int max_payload, double min_delay_ms,
                       double max_delay_ms, double initial_delay_ms, double quantile, double forget_factor,
                       double reference_window_ms, double margin_ms, double max_hold_ms, bool adapt_frames) {
             return std::make_unique<JitterBuffer>(make_config(clock_rate, frame_samples, capacity, max_payload,
                                                               min_delay_ms, max_delay_ms, initial_delay_ms, quantile,
                                                               forget_factor, reference_window_ms, margin_ms,
                                                               max_hold_ms, adapt_frames));
           }),
           py::arg("clock_rate"), py::arg("frame_samples"), py::arg("capacity"), py::arg("max_payload"),
           py::arg("min_delay_ms"), py::arg("max_delay_ms"), py::arg("initial_delay_ms"), py::arg("quantile"),
           py::arg("forget_factor"), py::arg("reference_window_ms"), py::arg("margin_ms"), py::arg("max_hold_ms"),
           py::arg("adapt_frames"))
      .def(
          "put",
          [](JitterBuffer& jb, std::uint16_t seq, std::uint32_t ts, std::uint32_t ssrc, bool marker,
             const py::object& payload, double arrival_ms) {
            Bytes b = borrow_bytes(payload, "payload");
            return static_cast<int>(jb.put(seq, ts, ssrc, marker, b.data, b.size, arrival_ms));
          },
          py::arg("seq"), py::arg("timestamp"), py::arg("ssrc"), py::arg("marker"), py::arg("payload"),
          py::arg("arrival_ms"))
      .def("get", [](JitterBuffer& jb, double now_ms) { return frame_tuple(jb.get(now_ms)); }, py::arg("now_ms"))
      .def("stats", [](const JitterBuffer& jb) { return stats_dict(jb.stats()); })
      .def("playout_delay_ms", &JitterBuffer::playout_delay_ms, py::arg("now_ms"))
      .def_property_readonly("target_delay_ms", &JitterBuffer::target_delay_ms)
      .def_property_readonly("playing", &JitterBuffer::playing)
      .def_property_readonly("buffered_packets", &JitterBuffer::buffered_packets)
      .def_property_readonly("next_ready", &JitterBuffer::next_ready)
      .def("reset", &JitterBuffer::reset)
      .def(
          "run_trace",
          [](JitterBuffer& jb, const py::object& seq, const py::object& ts, const py::object& marker,
             const py::object& arrival, int payload_size, std::uint32_t ssrc, double start_ms, double tick_ms,
             py::ssize_t ticks) {
            Trace t = read_trace(seq, ts, marker, arrival);
            if (payload_size < 1 || payload_size > jb.config().max_payload)
              throw py::value_error("payload_size must be in 1..max_payload");
            if (ticks < 0 || !(tick_ms > 0)) throw py::value_error("ticks must be >= 0 and tick_ms > 0");
            py::array_t<std::int8_t> kinds(ticks);
            py::array_t<std::int64_t> seqs(ticks);
            py::array_t<double> delays(ticks);
            std::vector<std::uint8_t> payload(static_cast<std::size_t>(payload_size), 0x55);
            {
              py::gil_scoped_release nogil;
              const std::uint16_t* s = t.seq.data();
              const std::uint32_t* tsp = t.ts.data();
              const std::uint8_t* m = t.marker.data();
              const double* a = t.arrival.data();
              std::int8_t* k = kinds.mutable_data();
              std::int64_t* q = seqs.mutable_data();
              double* d = delays.mutable_data();
              py::ssize_t i = 0;
              for (py::ssize_t tick = 0; tick < ticks; ++tick) {
                const double now = start_ms + static_cast<double>(tick) * tick_ms;
                for (; i < t.n && a[i] <= now; ++i)
                  jb.put(s[i], tsp[i], ssrc, m[i] != 0, payload.data(), payload.size(), a[i]);
                const JitterFrame f = jb.get(now);
                k[tick] = static_cast<std::int8_t>(f.kind);
                q[tick] = f.kind == FrameKind::Normal ? f.sequence : -1;
                d[tick] = f.kind == FrameKind::Normal ? now - f.arrival_ms : -1.0;
              }
            }
            return py::make_tuple(kinds, seqs, delays);
          },
          py::arg("seq"), py::arg("timestamp"), py::arg("marker"), py::arg("arrival_ms"), py::arg("payload_size"),
          py::arg("ssrc"), py::arg("start_ms"), py::arg("tick_ms"), py::arg("ticks"));

  mod.def(
      "map_buffer_run_trace",
      [](const py::object& seq, const py::object& ts, const py::object& arrival, int payload_size, int clock_rate,
         int frame_samples, double delay_ms, double start_ms, double tick_ms, py::ssize_t ticks) {
        py::array_t<std::uint8_t> no_marker(py::len(seq));
        std::memset(no_marker.mutable_data(), 0, static_cast<std::size_t>(no_marker.size()));
        Trace t = read_trace(seq, ts, no_marker, arrival);
        if (payload_size < 1 || payload_size > 65535) throw py::value_error("payload_size must be in 1..65535");
        if (ticks < 0 || !(tick_ms > 0)) throw py::value_error("ticks must be >= 0 and tick_ms > 0");
        MapJitterBuffer jb(clock_rate, frame_samples, delay_ms);
        py::array_t<std::int8_t> kinds(ticks);
        py::array_t<std::int64_t> seqs(ticks);
        std::vector<std::uint8_t> payload(static_cast<std::size_t>(payload_size), 0x55);
        {
          py::gil_scoped_release nogil;
          const std::uint16_t* s = t.seq.data();
          const std::uint32_t* tsp = t.ts.data();
          const double* a = t.arrival.data();
          std::int8_t* k = kinds.mutable_data();
          std::int64_t* q = seqs.mutable_data();
          py::ssize_t i = 0;
          for (py::ssize_t tick = 0; tick < ticks; ++tick) {
            const double now = start_ms + static_cast<double>(tick) * tick_ms;
            for (; i < t.n && a[i] <= now; ++i) jb.put(s[i], tsp[i], payload.data(), payload.size(), a[i]);
            k[tick] = static_cast<std::int8_t>(jb.get(now, &q[tick]));
          }
        }
        return py::make_tuple(kinds, seqs);
      },
      py::arg("seq"), py::arg("timestamp"), py::arg("arrival_ms"), py::arg("payload_size"), py::arg("clock_rate"),
      py::arg("frame_samples"), py::arg("delay_ms"), py::arg("start_ms"), py::arg("tick_ms"), py::arg("ticks"));

  py::class_<Playout>(mod, "Playout")
      .def(py::init([](const std::string& codec, int sample_rate, int clock_rate, int frame_samples, int capacity,
                       int max_payload, double min_delay_ms, double max_delay_ms, double initial_delay_ms,
                       double quantile, double forget_factor, double reference_window_ms, double margin_ms,
                       double max_hold_ms, bool time_stretch, double accelerate_above_ms, double decelerate_below_ms,
                       double accelerate_speech_above_ms, double decelerate_speech_below_ms, bool use_fec) {
             PlayoutConfig c;
             c.buffer = make_config(clock_rate, frame_samples, capacity, max_payload, min_delay_ms, max_delay_ms,
                                    initial_delay_ms, quantile, forget_factor, reference_window_ms, margin_ms,
                                    max_hold_ms, false);
             c.time_stretch = time_stretch;
             c.accelerate_above_ms = accelerate_above_ms;
             c.decelerate_below_ms = decelerate_below_ms;
             c.accelerate_speech_above_ms = accelerate_speech_above_ms;
             c.decelerate_speech_below_ms = decelerate_speech_below_ms;
             c.use_fec = use_fec;
             return std::make_unique<Playout>(make_decoder(codec, sample_rate), c);
           }),
           py::arg("codec"), py::arg("sample_rate"), py::arg("clock_rate"), py::arg("frame_samples"),
           py::arg("capacity"), py::arg("max_payload"), py::arg("min_delay_ms"), py::arg("max_delay_ms"),
           py::arg("initial_delay_ms"), py::arg("quantile"), py::arg("forget_factor"), py::arg("reference_window_ms"),
           py::arg("margin_ms"), py::arg("max_hold_ms"), py::arg("time_stretch"), py::arg("accelerate_above_ms"),
           py::arg("decelerate_below_ms"), py::arg("accelerate_speech_above_ms"),
           py::arg("decelerate_speech_below_ms"), py::arg("use_fec"))
      .def(
          "put",
          [](Playout& p, std::uint16_t seq, std::uint32_t ts, std::uint32_t ssrc, bool marker,
             const py::object& payload, double arrival_ms) {
            Bytes b = borrow_bytes(payload, "payload");
            return static_cast<int>(p.put(seq, ts, ssrc, marker, b.data, b.size, arrival_ms));
          },
          py::arg("seq"), py::arg("timestamp"), py::arg("ssrc"), py::arg("marker"), py::arg("payload"),
          py::arg("arrival_ms"))
      .def(
          "tick",
          [](Playout& p, double now_ms) {
            py::array_t<std::int16_t> out(p.frame_samples());
            FrameKind kind = FrameKind::Empty;
            if (p.tick(now_ms, out.mutable_data(), static_cast<std::size_t>(p.frame_samples()), &kind) < 0)
              throw py::value_error("now_ms must be finite");
            return py::make_tuple(static_cast<int>(kind), out);
          },
          py::arg("now_ms"))
      .def(
          "tick_into",
          [](Playout& p, double now_ms, py::array_t<std::int16_t, py::array::c_style> out) {
            if (out.ndim() != 1 || out.shape(0) != p.frame_samples())
              throw py::value_error("out must hold exactly frame_samples int16 samples");
            FrameKind kind = FrameKind::Empty;
            if (p.tick(now_ms, out.mutable_data(), static_cast<std::size_t>(out.shape(0)), &kind) < 0)
              throw py::value_error("now_ms must be finite");
            return static_cast<int>(kind);
          },
          py::arg("now_ms"), py::arg("out"))
      .def("stats",
           [](const Playout& p) {
             py::dict d = stats_dict(p.stats());
             d["fec_recovered_samples"] = p.fec_recovered_samples();
             d["decode_errors"] = p.decode_errors();
             return d;
           })
      .def_property_readonly("frame_samples", &Playout::frame_samples)
      .def_property_readonly("sample_rate", &Playout::sample_rate)
      .def_property_readonly("target_delay_ms", [](const Playout& p) { return p.buffer().target_delay_ms(); })
      .def(
          "run_trace",
          [](Playout& p, const py::object& seq, const py::object& ts, const py::object& marker,
             const py::object& arrival, const py::object& blob, const py::object& offsets, std::uint32_t ssrc,
             double start_ms, double tick_ms, py::ssize_t ticks) {
            Trace t = read_trace(seq, ts, marker, arrival);
            Bytes payloads = borrow_bytes(blob, "payloads");
            auto off = column<std::int64_t>(offsets, "offsets", t.n + 1);
            const std::int64_t* o = off.data();
            for (py::ssize_t i = 0; i < t.n; ++i)
              if (o[i] < 0 || o[i + 1] < o[i] || static_cast<std::size_t>(o[i + 1]) > payloads.size)
                throw py::value_error("offsets must be non-decreasing and within payloads");
            if (ticks < 0 || !(tick_ms > 0)) throw py::value_error("ticks must be >= 0 and tick_ms > 0");
            const int frame = p.frame_samples();
            py::array_t<std::int16_t> pcm(ticks * frame);
            py::array_t<std::int8_t> kinds(ticks);
            std::vector<PlayRecord> log;
            log.reserve(static_cast<std::size_t>(t.n));
            p.set_play_log(&log);
            {
              py::gil_scoped_release nogil;
              const std::uint16_t* s = t.seq.data();
              const std::uint32_t* tsp = t.ts.data();
              const std::uint8_t* m = t.marker.data();
              const double* a = t.arrival.data();
              std::int16_t* out = pcm.mutable_data();
              std::int8_t* k = kinds.mutable_data();
              py::ssize_t i = 0;
              for (py::ssize_t tick = 0; tick < ticks; ++tick) {
                const double now = start_ms + static_cast<double>(tick) * tick_ms;
                for (; i < t.n && a[i] <= now; ++i)
                  p.put(s[i], tsp[i], ssrc, m[i] != 0, payloads.data + o[i], static_cast<std::size_t>(o[i + 1] - o[i]),
                        a[i]);
                FrameKind kind = FrameKind::Empty;
                p.tick(now, out + tick * frame, static_cast<std::size_t>(frame), &kind);
                k[tick] = static_cast<std::int8_t>(kind);
              }
            }
            p.set_play_log(nullptr);
            py::array_t<std::int64_t> played_seq(static_cast<py::ssize_t>(log.size()));
            py::array_t<double> played_arrival(static_cast<py::ssize_t>(log.size()));
            py::array_t<double> played_at(static_cast<py::ssize_t>(log.size()));
            for (std::size_t j = 0; j < log.size(); ++j) {
              played_seq.mutable_data()[j] = log[j].sequence;
              played_arrival.mutable_data()[j] = log[j].arrival_ms;
              played_at.mutable_data()[j] = log[j].played_ms;
            }
            return py::make_tuple(pcm, kinds, played_seq, played_arrival, played_at);
          },
          py::arg("seq"), py::arg("timestamp"), py::arg("marker"), py::arg("arrival_ms"), py::arg("payloads"),
          py::arg("offsets"), py::arg("ssrc"), py::arg("start_ms"), py::arg("tick_ms"), py::arg("ticks"));

  py::class_<G711Plc>(mod, "G711Plc")
      .def(py::init<int>(), py::arg("sample_rate"))
      .def(
          "good",
          [](G711Plc& plc, py::array_t<std::int16_t, py::array::c_style | py::array::forcecast> pcm) {
            if (pcm.ndim() != 1) throw py::value_error("pcm must be one-dimensional");
            py::array_t<std::int16_t> out(pcm.shape(0));
            plc.good(pcm.data(), out.mutable_data(), static_cast<std::size_t>(pcm.shape(0)));
            return out;
          },
          py::arg("pcm"))
      .def(
          "conceal",
          [](G711Plc& plc, py::ssize_t n) {
            if (n < 0) throw py::value_error("samples must be >= 0");
            py::array_t<std::int16_t> out(n);
            plc.conceal(out.mutable_data(), static_cast<std::size_t>(n));
            return out;
          },
          py::arg("samples"))
      .def(
          "conceal_before",
          [](G711Plc& plc, py::array_t<std::int16_t, py::array::c_style | py::array::forcecast> next, py::ssize_t n) {
            if (next.ndim() != 1) throw py::value_error("next must be one-dimensional");
            if (n < 0) throw py::value_error("samples must be >= 0");
            py::array_t<std::int16_t> out(n);
            plc.conceal_before(next.data(), static_cast<std::size_t>(next.shape(0)), out.mutable_data(),
                               static_cast<std::size_t>(n));
            return out;
          },
          py::arg("next"), py::arg("samples"))
      .def("reset", &G711Plc::reset)
      .def_property_readonly("pitch", &G711Plc::pitch)
      .def_property_readonly("erased", &G711Plc::erased)
      .def_property_readonly("sample_rate", &G711Plc::sample_rate);

  auto stretch_fn = [](bool expand) {
    return [expand](py::array_t<std::int16_t, py::array::c_style | py::array::forcecast> pcm, int sample_rate,
                    float min_correlation, double quiet_rms, int max_quiet_samples) {
      if (pcm.ndim() != 1) throw py::value_error("pcm must be one-dimensional");
      if (sample_rate != 8000 && sample_rate != 16000 && sample_rate != 48000)
        throw py::value_error("sample_rate must be 8000, 16000 or 48000");
      const std::size_t n = static_cast<std::size_t>(pcm.shape(0));
      const std::size_t cap = n + static_cast<std::size_t>(std::max(stretch::max_lag(sample_rate), max_quiet_samples));
      std::vector<std::int16_t> out(cap);
      stretch::Options o;
      o.min_correlation = min_correlation;
      o.quiet_rms = quiet_rms;
      o.max_quiet_samples = max_quiet_samples;
      const int m = expand ? stretch::preemptive_expand(pcm.data(), n, sample_rate, out.data(), cap, o)
                           : stretch::accelerate(pcm.data(), n, sample_rate, out.data(), cap, o);
      if (m < 0) throw std::runtime_error("time-stretch buffer too small");
      py::array_t<std::int16_t> result(m);
      std::memcpy(result.mutable_data(), out.data(), static_cast<std::size_t>(m) * sizeof(std::int16_t));
      return result;
    };
  };
  mod.def("accelerate", stretch_fn(false), py::arg("pcm"), py::arg("sample_rate"), py::arg("min_correlation"),
          py::arg("quiet_rms"), py::arg("max_quiet_samples"));
  mod.def("preemptive_expand", stretch_fn(true), py::arg("pcm"), py::arg("sample_rate"), py::arg("min_correlation"),
          py::arg("quiet_rms"), py::arg("max_quiet_samples"));
  mod.def(
      "find_period",
      [](py::array_t<std::int16_t, py::array::c_style | py::array::forcecast> pcm, int min_lag, int max_lag,
         int window) {
        if (pcm.ndim() != 1) throw py::value_error("pcm must be one-dimensional");
        if (min_lag < 1 || max_lag < min_lag || window < 1 || pcm.shape(0) < window + max_lag)
          throw py::value_error("need 1 <= min_lag <= max_lag and len(pcm) >= window + max_lag");
        const stretch::Period p = stretch::find_period(pcm.data(), pcm.data(), +1, window, min_lag, max_lag, 1);
        return py::make_tuple(p.lag, p.correlation);
      },
      py::arg("pcm"), py::arg("min_lag"), py::arg("max_lag"), py::arg("window"));

  py::class_<PacketStore>(mod, "PacketStore")
      .def(py::init<int, int>(), py::arg("capacity"), py::arg("max_payload"))
      .def(
          "insert",
          [](PacketStore& s, std::int64_t seq, std::int64_t ts, const py::object& payload, double arrival_ms) {
            if (seq < 0) throw py::value_error("seq must be >= 0");
            Bytes b = borrow_bytes(payload, "payload");
            return static_cast<int>(s.insert(seq, ts, false, b.data, b.size, arrival_ms));
          },
          py::arg("seq"), py::arg("timestamp"), py::arg("payload"), py::arg("arrival_ms") = 0.0)
      .def(
          "find",
          [](const PacketStore& s, std::int64_t seq) -> py::object {
            const PacketStore::Slot* slot = s.find(seq);
            if (!slot) return py::none();
            return py::bytes(reinterpret_cast<const char*>(s.payload(slot)), slot->size);
          },
          py::arg("seq"))
      .def(
          "first_from",
          [](const PacketStore& s, std::int64_t seq) {
            const PacketStore::Slot* slot = s.first_from(seq);
            return slot ? slot->seq : std::int64_t{-1};
          },
          py::arg("seq"))
      .def("take", &PacketStore::take, py::arg("seq"))
      .def("was_taken", &PacketStore::was_taken, py::arg("seq"))
      .def("advance", &PacketStore::advance, py::arg("new_head"))
      .def("clear", &PacketStore::clear, py::arg("head"))
      .def_property_readonly("head", &PacketStore::head)
      .def_property_readonly("held", &PacketStore::held)
      .def_property_readonly("capacity", &PacketStore::capacity);
}
