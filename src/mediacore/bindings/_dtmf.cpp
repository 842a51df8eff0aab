// pybind11 bindings of the DTMF units: RFC 4733 telephone-event payloads,
// sender and receiver (telephone_event.hpp) and the in-band detector
// (dtmf.hpp). See mediacore/dtmf.py for the documented API; this layer checks
// buffers and converts results to plain tuples.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "dtmf.hpp"
#include "telephone_event.hpp"

namespace py = pybind11;
using mediacore::DtmfDetector;
using mediacore::DtmfDetectorConfig;
using mediacore::DtmfEvent;
using mediacore::DtmfEventKind;
using mediacore::TelephoneEventPacket;
using mediacore::TelephoneEventReceiver;
using mediacore::TelephoneEventReceiverConfig;
using mediacore::TelephoneEventReport;
using mediacore::TelephoneEventSender;
using mediacore::TelephoneEventSenderConfig;
namespace te = mediacore::telephone_event;

namespace {

// Below this many samples a call keeps the GIL: releasing it costs more than
// a 20 ms frame takes to analyse.
constexpr std::size_t kNoGilThreshold = 4096;

// A borrowed view of a 1-D C-contiguous buffer.
struct Borrowed {
  py::buffer_info info;
  const void* data = nullptr;
  std::size_t n = 0;
};

Borrowed borrow_pcm(const py::handle& obj, const char* name) {
  if (py::isinstance<py::str>(obj) || py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    throw py::value_error(std::string(name) + " must be a buffer of int16 samples (numpy.int16), got " +
                          std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  if (py::isinstance<py::array>(obj)) {
    const auto arr = py::reinterpret_borrow<py::array>(obj);
    if (arr.dtype().kind() != 'i' || arr.itemsize() != 2) {
      throw py::value_error(std::string(name) + " must hold int16 samples, got dtype " +
                            std::string(py::str(arr.dtype())));
    }
    if (arr.ndim() != 1) {
      throw py::value_error(std::string(name) + " must be one-dimensional, got " + std::to_string(arr.ndim()) +
                            " dimensions");
    }
    if (!(arr.flags() & py::array::c_style) || !arr.dtype().attr("isnative").cast<bool>()) {
      throw py::value_error(std::string(name) + " must be C-contiguous in native byte order (use numpy.ascontiguousarray)");
    }
  }
  Borrowed b;
  try {
    b.info = py::reinterpret_borrow<py::buffer>(obj).request();
  } catch (const py::error_already_set&) {
    throw py::value_error(std::string(name) + " must be a buffer of int16 samples (numpy.int16)");
  } catch (const std::runtime_error&) {
    throw py::value_error(std::string(name) + " must be a buffer of int16 samples (numpy.int16)");
  }
  const std::string& fmt = b.info.format;
  if (b.info.itemsize != 2 || (fmt != "h" && fmt != "=h" && fmt != "<h" && fmt != "@h") || b.info.ndim > 1 ||
      (b.info.ndim == 1 && b.info.strides[0] != 2)) {
    throw py::value_error(std::string(name) + " must be a 1-D contiguous buffer of int16 samples, got format '" +
                          fmt + "'");
  }
  b.data = b.info.ptr;
  b.n = static_cast<std::size_t>(b.info.size);
  return b;
}

Borrowed borrow_bytes(const py::handle& obj, const char* name) {
  if (py::isinstance<py::str>(obj)) throw py::value_error(std::string(name) + " must be bytes-like, got str");
  Borrowed b;
  try {
    b.info = py::reinterpret_borrow<py::buffer>(obj).request();
  } catch (const py::error_already_set&) {
    throw py::value_error(std::string(name) + " must be bytes-like, got " +
                          std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  } catch (const std::runtime_error&) {
    throw py::value_error(std::string(name) + " must be bytes-like, got " +
                          std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  if (b.info.ndim > 1 || (b.info.ndim == 1 && b.info.strides[0] != b.info.itemsize)) {
    throw py::value_error(std::string(name) + " must be a contiguous bytes-like buffer");
  }
  b.data = b.info.ptr;
  b.n = static_cast<std::size_t>(b.info.size * b.info.itemsize);
  return b;
}

py::tuple packet_tuple(const TelephoneEventPacket& p) {
  return py::make_tuple(p.timestamp, p.marker,
                        py::bytes(reinterpret_cast<const char*>(p.payload), sizeof p.payload), p.event, p.end,
                        p.volume, p.duration, p.retransmission);
}

// A tuple of report tuples; most packets report nothing, and the empty tuple
// costs no allocation.
py::tuple reports_tuple(const TelephoneEventReport* reports, int n) {
  py::tuple out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const TelephoneEventReport& r = reports[i];
    out[static_cast<std::size_t>(i)] = py::make_tuple(static_cast<int>(r.kind), static_cast<int>(r.reason), r.event,
                                                      r.volume, r.timestamp, r.duration);
  }
  return out;
}

py::list events_list(const std::vector<DtmfEvent>& events, std::size_t n) {
  py::list out;
  for (std::size_t i = 0; i < n; ++i) {
    const DtmfEvent& e = events[i];
    out.append(py::make_tuple(static_cast<int>(e.kind), std::string(1, e.digit), e.start_sample, e.end_sample));
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_dtmf, mod) {
  mod.doc() = "Native DTMF: RFC 4733 telephone-event sender/receiver and the in-band Goertzel detector.";
  mod.attr("MAX_BLOCKS") = te::kMaxBlocks;
  mod.attr("MAX_SEGMENT_DURATION") = te::kMaxSegmentDuration;
  mod.attr("ZERO_DBM0_PEAK") = mediacore::dtmf::kZeroDbm0Peak;

  mod.def("event_from_digit", [](const std::string& text) {
    return text.size() == 1 ? mediacore::dtmf::event_from_digit(text[0]) : -1;
  }, py::arg("digit"));
  mod.def("digit_from_event", [](int event) {
    const char c = mediacore::dtmf::digit_from_event(event);
    return c == '\0' ? std::string() : std::string(1, c);
  }, py::arg("event"));

  mod.def("parse_payload", [](const py::object& payload) {
    const Borrowed b = borrow_bytes(payload, "payload");
    te::EventBlock blocks[te::kMaxBlocks];
    const int n = te::parse(static_cast<const std::uint8_t*>(b.data), b.n, blocks, te::kMaxBlocks);
    if (n == te::kEmpty) throw py::value_error("payload is empty");
    if (n == te::kNotMultipleOf4)
      throw py::value_error("payload length " + std::to_string(b.n) + " is not a multiple of 4 bytes");
    if (n == te::kTooManyBlocks)
      throw py::value_error("payload has " + std::to_string(b.n / 4) + " event blocks, more than " +
                            std::to_string(te::kMaxBlocks));
    py::list out;
    for (int i = 0; i < n; ++i) {
      out.append(py::make_tuple(blocks[i].event, blocks[i].end, blocks[i].volume, blocks[i].duration));
    }
    return out;
  }, py::arg("payload"));
  mod.def("serialize_block", [](int event, bool end, int volume, int duration) {
    if (event < 0 || event > 255) throw py::value_error("event must be within 0 ... 255");
    if (volume < 0 || volume > te::kMaxVolume) throw py::value_error("volume must be within 0 ... 63");
    if (duration < 0 || duration > 0xFFFF) throw py::value_error("duration must be within 0 ... 65535");
    std::uint8_t out[te::kBlockSize];
    te::serialize(te::EventBlock{static_cast<std::uint8_t>(event), end, static_cast<std::uint8_t>(volume),
                                 static_cast<std::uint16_t>(duration)},
                  out, sizeof out);
    return py::bytes(reinterpret_cast<const char*>(out), sizeof out);
  }, py::arg("event"), py::arg("end"), py::arg("volume"), py::arg("duration"));

  // ---------------------------------------------------------------- sender
  py::class_<mediacore::TelephoneEventSenderStats>(mod, "TelephoneEventSenderStats")
      .def_readonly("packets", &mediacore::TelephoneEventSenderStats::packets)
      .def_readonly("events", &mediacore::TelephoneEventSenderStats::events)
      .def_readonly("segments", &mediacore::TelephoneEventSenderStats::segments)
      .def_readonly("rejected", &mediacore::TelephoneEventSenderStats::rejected);

  py::class_<TelephoneEventSender>(mod, "TelephoneEventSender")
      .def(py::init([](int clock_rate, std::uint32_t packet_interval, int end_repeats, std::uint32_t min_gap) {
             TelephoneEventSenderConfig c;
             c.clock_rate = clock_rate;
             c.packet_interval = packet_interval;
             c.end_repeats = end_repeats;
             c.min_gap = min_gap;
             return TelephoneEventSender(c);
           }),
           py::arg("clock_rate") = 8000, py::arg("packet_interval") = 160, py::arg("end_repeats") = 3,
           py::arg("min_gap") = 0)
      .def("enqueue", &TelephoneEventSender::enqueue, py::arg("event"), py::arg("duration"), py::arg("volume"))
      .def("tick", [](TelephoneEventSender& s, std::uint32_t now) -> py::object {
        TelephoneEventPacket p{};
        if (s.tick(now, &p) == 0) return py::none();
        return packet_tuple(p);
      }, py::arg("now"))
      .def("cancel", &TelephoneEventSender::cancel)
      .def_property_readonly("idle", &TelephoneEventSender::idle)
      .def_property_readonly("queued", &TelephoneEventSender::queued)
      .def("stats", &TelephoneEventSender::stats);

  // ---------------------------------------------------------------- receiver
  py::class_<mediacore::TelephoneEventReceiverStats>(mod, "TelephoneEventReceiverStats")
      .def_readonly("packets", &mediacore::TelephoneEventReceiverStats::packets)
      .def_readonly("malformed", &mediacore::TelephoneEventReceiverStats::malformed)
      .def_readonly("unknown_events", &mediacore::TelephoneEventReceiverStats::unknown_events)
      .def_readonly("duplicates", &mediacore::TelephoneEventReceiverStats::duplicates)
      .def_readonly("stale", &mediacore::TelephoneEventReceiverStats::stale)
      .def_readonly("events", &mediacore::TelephoneEventReceiverStats::events)
      .def_readonly("lost_ends", &mediacore::TelephoneEventReceiverStats::lost_ends)
      .def_readonly("timeouts", &mediacore::TelephoneEventReceiverStats::timeouts)
      .def_readonly("segments", &mediacore::TelephoneEventReceiverStats::segments)
      .def_readonly("reports_dropped", &mediacore::TelephoneEventReceiverStats::reports_dropped);

  py::class_<TelephoneEventReceiver>(mod, "TelephoneEventReceiver")
      .def(py::init([](int clock_rate, std::int64_t timeout_ms) {
             TelephoneEventReceiverConfig c;
             c.clock_rate = clock_rate;
             c.timeout_ms = timeout_ms;
             return TelephoneEventReceiver(c);
           }),
           py::arg("clock_rate") = 8000, py::arg("timeout_ms") = 500)
      .def("receive", [](TelephoneEventReceiver& r, std::uint32_t timestamp, bool marker, const py::object& payload,
                         std::optional<std::int64_t> now_ms) -> py::object {
        TelephoneEventReport reports[TelephoneEventReceiver::kMaxReportsPerPacket];
        const std::int64_t now = now_ms ? *now_ms : TelephoneEventReceiver::kNoTime;
        int n;
        if (PyBytes_CheckExact(payload.ptr())) {  // the usual case: no buffer request
          n = r.receive(timestamp, marker, reinterpret_cast<const std::uint8_t*>(PyBytes_AS_STRING(payload.ptr())),
                        static_cast<std::size_t>(PyBytes_GET_SIZE(payload.ptr())), now, reports,
                        TelephoneEventReceiver::kMaxReportsPerPacket);
        } else {
          const Borrowed b = borrow_bytes(payload, "payload");
          n = r.receive(timestamp, marker, static_cast<const std::uint8_t*>(b.data), b.n, now, reports,
                        TelephoneEventReceiver::kMaxReportsPerPacket);
        }
        if (n < 0) return py::none();  // malformed: counted in stats
        return reports_tuple(reports, n);
      }, py::arg("timestamp"), py::arg("marker"), py::arg("payload"), py::arg("now_ms") = py::none())
      .def("poll", [](TelephoneEventReceiver& r, std::int64_t now_ms) {
        TelephoneEventReport reports[2];
        return reports_tuple(reports, r.poll(now_ms, reports, 2));
      }, py::arg("now_ms"))
      .def("flush", [](TelephoneEventReceiver& r) {
        TelephoneEventReport reports[2];
        return reports_tuple(reports, r.flush(reports, 2));
      })
      .def("reset", &TelephoneEventReceiver::reset)
      .def_property_readonly("active", &TelephoneEventReceiver::active)
      .def_property_readonly("active_event", [](const TelephoneEventReceiver& r) -> py::object {
        if (!r.active()) return py::none();
        return py::int_(r.active_event());
      })
      .def("stats", &TelephoneEventReceiver::stats);

  // ---------------------------------------------------------------- in-band detector
  py::class_<mediacore::DtmfDetectorStats>(mod, "DtmfDetectorStats")
      .def_readonly("samples", &mediacore::DtmfDetectorStats::samples)
      .def_readonly("windows", &mediacore::DtmfDetectorStats::windows)
      .def_readonly("valid_windows", &mediacore::DtmfDetectorStats::valid_windows)
      .def_readonly("rejected_level", &mediacore::DtmfDetectorStats::rejected_level)
      .def_readonly("rejected_twist", &mediacore::DtmfDetectorStats::rejected_twist)
      .def_readonly("rejected_relative_peak", &mediacore::DtmfDetectorStats::rejected_relative_peak)
      .def_readonly("rejected_tone_ratio", &mediacore::DtmfDetectorStats::rejected_tone_ratio)
      .def_readonly("rejected_fill", &mediacore::DtmfDetectorStats::rejected_fill)
      .def_readonly("rejected_frequency", &mediacore::DtmfDetectorStats::rejected_frequency)
      .def_readonly("rejected_harmonic", &mediacore::DtmfDetectorStats::rejected_harmonic)
      .def_readonly("masked_windows", &mediacore::DtmfDetectorStats::masked_windows)
      .def_readonly("digits", &mediacore::DtmfDetectorStats::digits)
      .def_readonly("events_dropped", &mediacore::DtmfDetectorStats::events_dropped);

  py::class_<DtmfDetector>(mod, "DtmfDetector")
      .def(py::init([](int sample_rate, double min_level_dbm0, double max_normal_twist_db,
                       double max_reverse_twist_db, double max_frequency_deviation, double min_tone_energy_ratio,
                       double min_harmonic_rejection_db) {
             DtmfDetectorConfig c;
             c.sample_rate = sample_rate;
             c.min_level_dbm0 = min_level_dbm0;
             c.max_normal_twist_db = max_normal_twist_db;
             c.max_reverse_twist_db = max_reverse_twist_db;
             c.max_frequency_deviation = max_frequency_deviation;
             c.min_tone_energy_ratio = min_tone_energy_ratio;
             c.min_harmonic_rejection_db = min_harmonic_rejection_db;
             return DtmfDetector(c);
           }),
           py::arg("sample_rate") = 8000, py::arg("min_level_dbm0") = DtmfDetectorConfig{}.min_level_dbm0,
           py::arg("max_normal_twist_db") = DtmfDetectorConfig{}.max_normal_twist_db,
           py::arg("max_reverse_twist_db") = DtmfDetectorConfig{}.max_reverse_twist_db,
           py::arg("max_frequency_deviation") = DtmfDetectorConfig{}.max_frequency_deviation,
           py::arg("min_tone_energy_ratio") = DtmfDetectorConfig{}.min_tone_energy_ratio,
           py::arg("min_harmonic_rejection_db") = DtmfDetectorConfig{}.min_harmonic_rejection_db)
      .def("process", [](DtmfDetector& d, const py::object& pcm) {
        const Borrowed b = borrow_pcm(pcm, "pcm");
        std::vector<DtmfEvent> events(d.max_events(b.n));
        std::size_t n = 0;
        const auto* samples = static_cast<const std::int16_t*>(b.data);
        if (b.n >= kNoGilThreshold) {
          py::gil_scoped_release release;
          n = d.process(samples, b.n, events.data(), events.size());
        } else {
          n = d.process(samples, b.n, events.data(), events.size());
        }
        return events_list(events, n);
      }, py::arg("pcm"))
      .def("flush", [](DtmfDetector& d) {
        std::vector<DtmfEvent> events(1);
        return events_list(events, d.flush(events.data(), events.size()));
      })
      .def("reset", &DtmfDetector::reset)
      .def_property_readonly("sample_rate", &DtmfDetector::sample_rate)
      .def_property_readonly("block_size", &DtmfDetector::block_size)
      .def_property_readonly("digit_in_progress", [](const DtmfDetector& d) -> py::object {
        const char c = d.digit_in_progress();
        if (c == '\0') return py::none();
        return py::str(std::string(1, c));
      })
      .def("stats", &DtmfDetector::stats);
}
