// pybind11 bindings of the Opus unit (src/mediacore/cpp/opus_codec.hpp).
// The public API, with docstrings and argument checks, is mediacore.opus;
// this module stays thin: buffers in, bytes / numpy arrays out, no copies
// beyond the result, the GIL held (every call is one short frame).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>

#include "opus_codec.hpp"

namespace py = pybind11;
namespace mc = mediacore;
namespace op = mediacore::opus;

namespace {

// A read-only view of a Python buffer, released on scope exit.
class View {
 public:
  View() = default;
  View(const View&) = delete;
  View& operator=(const View&) = delete;
  ~View() {
    if (held_) PyBuffer_Release(&view_);
  }

  // Any C-contiguous bytes-like object.
  void bytes(py::handle obj, const char* name) {
    if (PyBytes_Check(obj.ptr())) {
      data_ = PyBytes_AS_STRING(obj.ptr());
      size_ = static_cast<std::size_t>(PyBytes_GET_SIZE(obj.ptr()));
      return;
    }
    if (PyUnicode_Check(obj.ptr())) throw py::value_error(std::string(name) + " must be bytes-like, got str");
    acquire(obj, PyBUF_C_CONTIGUOUS, name, "a C-contiguous bytes-like buffer");
    data_ = view_.buf;
    size_ = static_cast<std::size_t>(view_.len);
  }

  // int16 samples: a 1-D buffer (interleaved if stereo) or a C-contiguous
  // (n, channels) array.
  void pcm(py::handle obj, const char* name, int channels) {
    if (PyUnicode_Check(obj.ptr()) || PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
      throw py::value_error(std::string(name) + " must be a buffer of int16 samples (numpy.int16), got " +
                            Py_TYPE(obj.ptr())->tp_name);
    }
    acquire(obj, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT, name, "a C-contiguous buffer of int16 samples");
    const char* fmt = view_.format != nullptr ? view_.format : "B";
    const bool int16 = view_.itemsize == 2 && (!std::strcmp(fmt, "h") || !std::strcmp(fmt, "=h") ||
                                               !std::strcmp(fmt, "<h") || !std::strcmp(fmt, "@h"));
    if (!int16) {
      throw py::value_error(std::string(name) + " must hold int16 samples, got format '" + fmt + "' with " +
                            std::to_string(view_.itemsize) + "-byte items");
    }
    const bool shape_ok = view_.ndim <= 1 || (view_.ndim == 2 && view_.shape[1] == channels);
    if (!shape_ok) {
      throw py::value_error(std::string(name) + " must be one-dimensional (interleaved) or shaped (n, " +
                            std::to_string(channels) + ")");
    }
    data_ = view_.buf;
    size_ = static_cast<std::size_t>(view_.len) / 2;
  }

  const void* data() const { return data_; }
  std::size_t size() const { return size_; }  // bytes, or samples for pcm()

 private:
  void acquire(py::handle obj, int flags, const char* name, const char* what) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, flags) != 0) {
      PyErr_Clear();
      throw py::value_error(std::string(name) + " must be " + what + ", got " + Py_TYPE(obj.ptr())->tp_name);
    }
    held_ = true;
  }

  Py_buffer view_{};
  bool held_ = false;
  const void* data_ = nullptr;
  std::size_t size_ = 0;
};

const char* application_name(op::Application a) {
  switch (a) {
    case op::Application::Voip: return "voip";
    case op::Application::Audio: return "audio";
    case op::Application::RestrictedLowDelay: return "restricted-lowdelay";
  }
  return "voip";
}

op::Application application_from(const std::string& s) {
  if (s == "voip") return op::Application::Voip;
  if (s == "audio") return op::Application::Audio;
  if (s == "restricted-lowdelay") return op::Application::RestrictedLowDelay;
  throw py::value_error("application must be 'voip', 'audio' or 'restricted-lowdelay', got '" + s + "'");
}

constexpr const char* kBandwidthNames[] = {"narrowband", "mediumband", "wideband", "superwideband", "fullband"};

const char* bandwidth_name(op::Bandwidth b) { return kBandwidthNames[static_cast<int>(b)]; }

op::Bandwidth bandwidth_from(const std::string& s) {
  for (int i = 0; i < 5; ++i) {
    if (s == kBandwidthNames[i]) return static_cast<op::Bandwidth>(i);
  }
  throw py::value_error(
      "max_bandwidth must be 'narrowband', 'mediumband', 'wideband', 'superwideband' or 'fullband', got '" + s + "'");
}

const char* mode_name(op::Mode m) {
  switch (m) {
    case op::Mode::Silk: return "silk";
    case op::Mode::Hybrid: return "hybrid";
    case op::Mode::Celt: return "celt";
  }
  return "silk";
}

py::dict settings_dict(const op::EncoderSettings& s) {
  py::dict d;
  d["sample_rate"] = s.sample_rate;
  d["channels"] = s.channels;
  d["application"] = application_name(s.application);
  d["bitrate"] = s.bitrate;
  d["complexity"] = s.complexity;
  d["fec"] = s.fec;
  d["packet_loss_percent"] = s.packet_loss_percent;
  d["dtx"] = s.dtx;
  d["cbr"] = s.cbr;
  d["max_bandwidth"] = bandwidth_name(s.max_bandwidth);
  d["frame_ms"] = s.frame_ms;
  return d;
}

op::EncoderSettings settings_from(const py::dict& d) {
  op::EncoderSettings s;
  s.sample_rate = d["sample_rate"].cast<int>();
  s.channels = d["channels"].cast<int>();
  s.application = application_from(d["application"].cast<std::string>());
  s.bitrate = d["bitrate"].cast<int>();
  s.complexity = d["complexity"].cast<int>();
  s.fec = d["fec"].cast<bool>();
  s.packet_loss_percent = d["packet_loss_percent"].cast<int>();
  s.dtx = d["dtx"].cast<bool>();
  s.cbr = d["cbr"].cast<bool>();
  s.max_bandwidth = bandwidth_from(d["max_bandwidth"].cast<std::string>());
  s.frame_ms = d["frame_ms"].cast<int>();
  return s;
}

py::dict fmtp_dict(const op::Fmtp& f) {
  py::dict d;
  d["maxplaybackrate"] = f.maxplaybackrate;
  d["sprop_maxcapturerate"] = f.sprop_maxcapturerate;
  d["maxptime"] = f.maxptime;
  d["ptime"] = f.ptime;
  d["minptime"] = f.minptime;
  d["maxaveragebitrate"] = f.maxaveragebitrate;
  d["stereo"] = f.stereo;
  d["sprop_stereo"] = f.sprop_stereo;
  d["cbr"] = f.cbr;
  d["useinbandfec"] = f.useinbandfec;
  d["usedtx"] = f.usedtx;
  return d;
}

op::Fmtp fmtp_from(const py::dict& d) {
  op::Fmtp f;
  f.maxplaybackrate = d["maxplaybackrate"].cast<int>();
  f.sprop_maxcapturerate = d["sprop_maxcapturerate"].cast<int>();
  f.maxptime = d["maxptime"].cast<int>();
  f.ptime = d["ptime"].cast<int>();
  f.minptime = d["minptime"].cast<int>();
  f.maxaveragebitrate = d["maxaveragebitrate"].cast<int>();
  f.stereo = d["stereo"].cast<bool>();
  f.sprop_stereo = d["sprop_stereo"].cast<bool>();
  f.cbr = d["cbr"].cast<bool>();
  f.useinbandfec = d["useinbandfec"].cast<bool>();
  f.usedtx = d["usedtx"].cast<bool>();
  return f;
}

const char* fmtp_error_text(op::FmtpError e) {
  switch (e) {
    case op::FmtpError::MissingValue: return "has no value";
    case op::FmtpError::NotANumber: return "is not a decimal number";
    case op::FmtpError::NotABoolean: return "must be 0 or 1";
    case op::FmtpError::None: break;
  }
  return "is invalid";
}

py::array_t<std::int16_t> new_pcm(std::size_t samples, int channels) {
  if (channels == 1) return py::array_t<std::int16_t>(static_cast<py::ssize_t>(samples));
  return py::array_t<std::int16_t>({static_cast<py::ssize_t>(samples), static_cast<py::ssize_t>(channels)});
}

// A lost span for conceal / decode_fec: a positive multiple of 2.5 ms, at most 120 ms.
std::size_t loss_span(long long samples, int rate) {
  const long long quantum = rate / 400;
  const long long longest = rate / 1000 * op::kMaxPacketMs;
  if (samples <= 0 || samples % quantum != 0 || samples > longest) {
    throw py::value_error("samples must be a positive multiple of 2.5 ms (" + std::to_string(quantum) +
                          " at " + std::to_string(rate) + " Hz) up to 120 ms (" + std::to_string(longest) +
                          "), got " + std::to_string(samples));
  }
  return static_cast<std::size_t>(samples);
}

}  // namespace

PYBIND11_MODULE(_opus, m) {
  m.doc() = "Native Opus codec (libopus) and RFC 7587 fmtp handling; see mediacore.opus for the API.";
  m.attr("RTP_CLOCK_RATE") = op::kRtpClockRate;
  m.attr("MAX_PACKET_BYTES") = op::kMaxPacketBytes;
  m.attr("LIBOPUS_VERSION") = op::libopus_version();

  m.def("rtp_ticks", [](std::uint32_t samples, int rate) {
    if (!op::valid_rate(rate)) throw py::value_error("sample_rate must be 8000, 16000 or 48000");
    return op::rtp_ticks(samples, rate);
  });
  m.def("samples_for_rtp_ticks", [](std::uint32_t ticks, int rate) {
    if (!op::valid_rate(rate)) throw py::value_error("sample_rate must be 8000, 16000 or 48000");
    return op::samples_for_rtp_ticks(ticks, rate);
  });
  m.def("inspect_packet", [](py::handle payload) -> py::object {
    View v;
    v.bytes(payload, "payload");
    const op::PacketInfo info = op::inspect_packet(static_cast<const std::uint8_t*>(v.data()), v.size());
    if (!info.valid) return py::none();
    return py::make_tuple(mode_name(info.mode), bandwidth_name(info.bandwidth), info.channels, info.frames,
                          info.samples_per_frame_48k, info.has_fec);
  });

  m.def("parse_fmtp", [](const std::string& text) {
    op::Fmtp f;
    const op::FmtpParse r = op::parse_fmtp(text, f);
    if (r.error != op::FmtpError::None) {
      throw py::value_error("fmtp parameter '" + std::string(r.item) + "' " + fmtp_error_text(r.error));
    }
    return fmtp_dict(f);
  });
  m.def("format_fmtp", [](const py::dict& fields) {
    const op::Fmtp f = fmtp_from(fields);
    char buf[512];
    const std::size_t n = op::format_fmtp(f, buf, sizeof buf);
    if (n > sizeof buf) throw py::value_error("fmtp too long");
    return std::string(buf, n);
  });
  m.def("fmtp_for_decoder", [](int decoder_rate, int channels, bool fec, bool dtx, bool cbr, int max_average_bitrate,
                               int capture_rate, bool capture_stereo) {
    return fmtp_dict(op::fmtp_for_decoder(decoder_rate, channels, fec, dtx, cbr, max_average_bitrate, capture_rate,
                                          capture_stereo));
  });
  m.def("encoder_settings_for", [](const py::dict& remote, const py::dict& base) {
    const op::EncoderSettings b = settings_from(base);
    if (const char* why = op::validate(b)) throw py::value_error(why);
    return settings_dict(op::encoder_settings_for(fmtp_from(remote), b));
  });
  m.def("default_max_average_bitrate", [](const std::string& application, const std::string& bandwidth, int channels) {
    return op::default_max_average_bitrate(application_from(application), bandwidth_from(bandwidth), channels);
  });

  py::class_<mc::OpusEncoder>(m, "Encoder")
      .def(py::init([](int sample_rate, int channels, const std::string& application, int bitrate, int complexity,
                       bool fec, int packet_loss_percent, bool dtx, bool cbr, const std::string& max_bandwidth,
                       int frame_ms) {
             op::EncoderSettings s;
             s.sample_rate = sample_rate;
             s.channels = channels;
             s.application = application_from(application);
             s.bitrate = bitrate;
             s.complexity = complexity;
             s.fec = fec;
             s.packet_loss_percent = packet_loss_percent;
             s.dtx = dtx;
             s.cbr = cbr;
             s.max_bandwidth = bandwidth_from(max_bandwidth);
             s.frame_ms = frame_ms;
             return std::make_unique<mc::OpusEncoder>(s);
           }),
           py::arg("sample_rate"), py::arg("channels"), py::arg("application"), py::arg("bitrate"),
           py::arg("complexity"), py::arg("fec"), py::arg("packet_loss_percent"), py::arg("dtx"), py::arg("cbr"),
           py::arg("max_bandwidth"), py::arg("frame_ms"))
      .def(
          "encode",
          [](mc::OpusEncoder& self, py::handle pcm) {
            View v;
            v.pcm(pcm, "pcm", self.channels());
            const auto channels = static_cast<std::size_t>(self.channels());
            const std::size_t ten_ms = static_cast<std::size_t>(self.sample_rate() / 100);
            const std::size_t samples = v.size() / channels;
            if (v.size() % channels != 0 || samples % ten_ms != 0 ||
                (samples / ten_ms != 1 && samples / ten_ms != 2 && samples / ten_ms != 4 && samples / ten_ms != 6)) {
              throw py::value_error("pcm has " + std::to_string(samples) + " samples per channel; a frame at " +
                                    std::to_string(self.sample_rate()) + " Hz is " + std::to_string(ten_ms) + ", " +
                                    std::to_string(2 * ten_ms) + ", " + std::to_string(4 * ten_ms) + " or " +
                                    std::to_string(6 * ten_ms) + " (10/20/40/60 ms)");
            }
            std::uint8_t packet[op::kMaxPacketBytes];
            const int n = self.encode(static_cast<const std::int16_t*>(v.data()), samples, packet, sizeof packet);
            if (n < 0) throw py::value_error("libopus could not encode this frame");
            return py::bytes(reinterpret_cast<const char*>(packet), static_cast<std::size_t>(n));
          },
          py::arg("pcm"))
      .def("reset", &mc::OpusEncoder::reset)
      .def_property_readonly("sample_rate", &mc::OpusEncoder::sample_rate)
      .def_property_readonly("channels", &mc::OpusEncoder::channels)
      .def_property_readonly("application", [](const mc::OpusEncoder& e) { return application_name(e.settings().application); })
      .def_property_readonly("frame_ms", [](const mc::OpusEncoder& e) { return e.settings().frame_ms; })
      .def_property_readonly("lookahead", &mc::OpusEncoder::lookahead)
      .def_property_readonly("effective_bitrate", &mc::OpusEncoder::effective_bitrate)
      .def_property(
          "bitrate", [](const mc::OpusEncoder& e) { return e.settings().bitrate; },
          [](mc::OpusEncoder& e, int v) {
            if (!e.set_bitrate(v)) throw py::value_error("bitrate must be 6000..510000 b/s (or 0 for automatic)");
          })
      .def_property(
          "complexity", [](const mc::OpusEncoder& e) { return e.settings().complexity; },
          [](mc::OpusEncoder& e, int v) {
            if (!e.set_complexity(v)) throw py::value_error("complexity must be 0..10");
          })
      .def_property(
          "packet_loss_percent", [](const mc::OpusEncoder& e) { return e.settings().packet_loss_percent; },
          [](mc::OpusEncoder& e, int v) {
            if (!e.set_packet_loss_percent(v)) throw py::value_error("packet_loss_percent must be 0..100");
          })
      .def_property(
          "fec", [](const mc::OpusEncoder& e) { return e.settings().fec; },
          [](mc::OpusEncoder& e, bool v) { e.set_fec(v); })
      .def_property(
          "dtx", [](const mc::OpusEncoder& e) { return e.settings().dtx; },
          [](mc::OpusEncoder& e, bool v) { e.set_dtx(v); })
      .def_property(
          "cbr", [](const mc::OpusEncoder& e) { return e.settings().cbr; },
          [](mc::OpusEncoder& e, bool v) { e.set_cbr(v); })
      .def_property(
          "max_bandwidth", [](const mc::OpusEncoder& e) { return bandwidth_name(e.settings().max_bandwidth); },
          [](mc::OpusEncoder& e, const std::string& v) { e.set_max_bandwidth(bandwidth_from(v)); })
      .def("_settings", [](const mc::OpusEncoder& e) { return settings_dict(e.settings()); })
      .def("_stats", [](const mc::OpusEncoder& e) {
        const op::OpusEncoderStats& s = e.stats();
        py::dict d;
        d["frames"] = s.frames;
        d["bytes"] = s.bytes;
        d["dtx_frames"] = s.dtx_frames;
        d["rejected_frames"] = s.rejected_frames;
        return d;
      });

  py::class_<mc::OpusDecoder>(m, "Decoder")
      .def(py::init<int, int>(), py::arg("sample_rate"), py::arg("channels"))
      .def_property_readonly("sample_rate", &mc::OpusDecoder::sample_rate)
      .def_property_readonly("channels", &mc::OpusDecoder::channels)
      .def_property_readonly("last_packet_duration", &mc::OpusDecoder::last_packet_duration)
      .def(
          "samples_in",
          [](const mc::OpusDecoder& self, py::handle payload) {
            View v;
            v.bytes(payload, "payload");
            const int n = self.samples_in(static_cast<const std::uint8_t*>(v.data()), v.size());
            if (n < 0) throw py::value_error("payload is not a valid Opus packet (RFC 6716 section 3)");
            return n;
          },
          py::arg("payload"))
      .def(
          "decode",
          [](mc::OpusDecoder& self, py::handle payload) {
            View v;
            v.bytes(payload, "payload");
            const auto* data = static_cast<const std::uint8_t*>(v.data());
            const int n = self.samples_in(data, v.size());
            if (n < 0) {
              self.decode(data, v.size(), nullptr, 0);  // counts it as corrupt
              throw py::value_error("payload is not a valid Opus packet (RFC 6716 section 3)");
            }
            auto out = new_pcm(static_cast<std::size_t>(n), self.channels());
            const int got = self.decode(data, v.size(), out.mutable_data(), static_cast<std::size_t>(n));
            if (got != n) throw py::value_error("libopus could not decode this packet");
            return out;
          },
          py::arg("payload"))
      .def(
          "conceal",
          [](mc::OpusDecoder& self, long long samples) {
            const std::size_t n = loss_span(samples, self.sample_rate());
            auto out = new_pcm(n, self.channels());
            if (self.conceal(out.mutable_data(), n) != static_cast<int>(n)) {
              throw py::value_error("libopus could not conceal");
            }
            return out;
          },
          py::arg("samples"))
      .def(
          "decode_fec",
          [](mc::OpusDecoder& self, py::handle next_payload, long long samples) -> py::object {
            View v;
            v.bytes(next_payload, "next_payload");
            const std::size_t n = loss_span(samples, self.sample_rate());
            const auto* data = static_cast<const std::uint8_t*>(v.data());
            auto out = new_pcm(n, self.channels());
            if (self.decode_fec(data, v.size(), out.mutable_data(), n) >= 0) return std::move(out);
            if (!op::inspect_packet(data, v.size()).valid) {
              throw py::value_error("next_payload is not a valid Opus packet (RFC 6716 section 3)");
            }
            return py::none();  // valid, but no FEC for this span: conceal instead
          },
          py::arg("next_payload"), py::arg("samples"))
      .def("reset", &mc::OpusDecoder::reset)
      .def("_stats", [](const mc::OpusDecoder& d) {
        const op::OpusDecoderStats& s = d.stats();
        py::dict r;
        r["packets"] = s.packets;
        r["samples"] = s.samples;
        r["concealed_samples"] = s.concealed_samples;
        r["concealment_events"] = s.concealment_events;
        r["fec_recovered"] = s.fec_recovered;
        r["fec_samples"] = s.fec_samples;
        r["fec_unavailable"] = s.fec_unavailable;
        r["corrupt_packets"] = s.corrupt_packets;
        return r;
      });
}
