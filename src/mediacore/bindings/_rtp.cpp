// pybind11 bindings of the RTP, RTCP and receive-statistics units
// (see mediacore/rtp.py and mediacore/rtcp.py for the documented API).
//
// Everything here is thin: parse functions return plain tuples that the
// Python modules turn into frozen dataclasses, and builders take plain values
// that the Python modules have validated. The native code still checks every
// length itself; a bad value is a ValueError naming what is wrong.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <tuple>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "rtcp.hpp"
#include "rtp.hpp"
#include "rtp_stats.hpp"

namespace py = pybind11;
using namespace mediacore;

namespace {

// A read-only view of any C-contiguous byte buffer (bytes, bytearray, memoryview...).
struct ByteView {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

ByteView byte_view(const py::handle& obj, py::buffer_info& keep, const char* what) {
  if (PyBytes_Check(obj.ptr())) {
    return {reinterpret_cast<const std::uint8_t*>(PyBytes_AS_STRING(obj.ptr())),
            static_cast<std::size_t>(PyBytes_GET_SIZE(obj.ptr()))};
  }
  if (!PyObject_CheckBuffer(obj.ptr()))
    throw py::type_error(std::string(what) + " must be bytes-like, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  keep = py::reinterpret_borrow<py::buffer>(obj).request();
  if (keep.ndim > 1 || (keep.ndim == 1 && keep.strides[0] != keep.itemsize))
    throw py::value_error(std::string(what) + " must be a C-contiguous buffer");
  return {static_cast<const std::uint8_t*>(keep.ptr), static_cast<std::size_t>(keep.size * keep.itemsize)};
}

py::bytes as_bytes(const std::uint8_t* p, std::size_t n) {
  return py::bytes(reinterpret_cast<const char*>(p), n);
}

[[noreturn]] void raise_rtp(int status) { throw py::value_error(rtp::status_message(status)); }

py::tuple rtp_parse(const py::handle& data) {
  py::buffer_info keep;
  const ByteView in = byte_view(data, keep, "data");
  rtp::PacketView v;
  const int r = rtp::parse(in.data, in.size, &v);
  if (r != rtp::kOk) raise_rtp(r);
  py::tuple csrc(v.csrc_count);
  for (int i = 0; i < v.csrc_count; ++i) csrc[static_cast<std::size_t>(i)] = py::int_(v.csrc(i));
  return py::make_tuple(v.version, v.padding, v.extension, v.marker, v.payload_type, v.sequence_number,
                        v.timestamp, v.ssrc, std::move(csrc), as_bytes(v.payload, v.payload_size),
                        v.extension_profile, as_bytes(v.extension_data, v.extension_size), v.padding_size);
}

// The same parse, building an instance of `cls` (mediacore.rtp.RtpPacket)
// directly: the fields are set as object.__setattr__ would, so the frozen
// dataclass costs no Python bytecode per packet.
py::object rtp_parse_into(const py::handle& cls, const py::handle& data) {
  static const char* const kNames[] = {"version", "padding", "extension", "marker", "payload_type",
                                       "sequence_number", "timestamp", "ssrc", "csrc", "payload",
                                       "extension_profile", "extension_data", "padding_size"};
  static PyObject* keys[13] = {};
  if (!keys[0]) {
    for (int i = 0; i < 13; ++i) keys[i] = PyUnicode_InternFromString(kNames[i]);  // kept for the process
  }
  if (!PyType_Check(cls.ptr())) throw py::type_error("cls must be a class");
  py::tuple fields = rtp_parse(data);
  auto* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
  py::object obj = py::reinterpret_steal<py::object>(type->tp_alloc(type, 0));
  if (!obj) throw py::error_already_set();
  // object.__setattr__ semantics (what a frozen dataclass's own __init__ uses),
  // keeping CPython's compact per-instance attribute storage.
  for (int i = 0; i < 13; ++i) {
    if (PyObject_GenericSetAttr(obj.ptr(), keys[i], PyTuple_GET_ITEM(fields.ptr(), i)) != 0)
      throw py::error_already_set();
  }
  return obj;
}

py::bytes rtp_serialize(bool marker, int payload_type, std::uint16_t sequence_number, std::uint32_t timestamp,
                        std::uint32_t ssrc, const std::vector<std::uint32_t>& csrc, const py::handle& payload,
                        bool extension, std::uint16_t extension_profile, const py::handle& extension_data,
                        int padding_size) {
  if (payload_type < 0 || payload_type > 127) raise_rtp(rtp::kBadPayloadType);
  if (padding_size < 0 || padding_size > 255) raise_rtp(rtp::kBadPaddingSize);
  if (csrc.size() > static_cast<std::size_t>(rtp::kMaxCsrc)) raise_rtp(rtp::kTooManyCsrc);
  py::buffer_info keep_payload, keep_ext;
  const ByteView pl = byte_view(payload, keep_payload, "payload");
  const ByteView ext = byte_view(extension_data, keep_ext, "extension_data");
  rtp::PacketSpec s;
  s.marker = marker;
  s.payload_type = static_cast<std::uint8_t>(payload_type);
  s.sequence_number = sequence_number;
  s.timestamp = timestamp;
  s.ssrc = ssrc;
  s.csrc_count = static_cast<int>(csrc.size());
  s.csrc = csrc.data();
  s.extension = extension;
  s.extension_profile = extension_profile;
  s.extension_data = ext.data;
  s.extension_size = ext.size;
  s.payload = pl.data;
  s.payload_size = pl.size;
  s.padding_size = static_cast<std::uint8_t>(padding_size);
  const std::ptrdiff_t n = rtp::serialized_size(s);
  if (n < 0) raise_rtp(static_cast<int>(n));
  // Write straight into a new bytes object: no intermediate copy.
  py::bytes out(nullptr, static_cast<std::size_t>(n));
  auto* dst = reinterpret_cast<std::uint8_t*>(PyBytes_AS_STRING(out.ptr()));
  const std::ptrdiff_t w = rtp::serialize(s, dst, static_cast<std::size_t>(n));
  if (w != n) raise_rtp(w < 0 ? static_cast<int>(w) : rtp::kBufferTooSmall);
  return out;
}

py::list rtp_elements(std::uint16_t profile, const py::handle& data) {
  py::buffer_info keep;
  const ByteView in = byte_view(data, keep, "extension_data");
  const rtp::ElementForm form = rtp::element_form(profile);
  if (form == rtp::ElementForm::kNone)
    throw py::value_error("extension profile 0x" + [&] {
      char buf[8];
      std::snprintf(buf, sizeof buf, "%04X", profile);
      return std::string(buf);
    }() + " is neither the RFC 8285 one-byte (0xBEDE) nor two-byte (0x100X) form");
  rtp::ElementReader reader(form, in.data, in.size);
  py::list out;
  rtp::Element e;
  int r;
  while ((r = reader.next(&e)) == 1) out.append(py::make_tuple(e.id, as_bytes(e.data, e.size)));
  if (r < 0) throw py::value_error("RFC 8285 element runs past the end of the header extension");
  return out;
}

py::tuple rtp_write_elements(const std::vector<std::pair<int, py::bytes>>& elements) {
  std::vector<rtp::Element> els;
  els.reserve(elements.size());
  std::size_t bound = 0;
  for (const auto& [id, value] : elements) {
    if (id < 1 || id > 255) throw py::value_error("element id must be 1..255, got " + std::to_string(id));
    const auto* p = reinterpret_cast<const std::uint8_t*>(PyBytes_AS_STRING(value.ptr()));
    const auto n = static_cast<std::size_t>(PyBytes_GET_SIZE(value.ptr()));
    if (n > 255) throw py::value_error("element value must be at most 255 bytes, got " + std::to_string(n));
    els.push_back({static_cast<std::uint8_t>(id), p, n});
    bound += 2 + n;
  }
  std::vector<std::uint8_t> buf(bound + 4);
  std::uint16_t profile = 0;
  const std::ptrdiff_t n = rtp::write_elements(els.data(), els.size(), buf.data(), buf.size(), &profile);
  if (n < 0) raise_rtp(static_cast<int>(n));
  return py::make_tuple(profile, as_bytes(buf.data(), static_cast<std::size_t>(n)));
}

// Parse each packet and serialize it again, natively, for the whole list:
// the bulk path the benchmark compares with a pure-Python parser. Returns the
// concatenated output. The GIL is released for the loop.
py::bytes rtp_reserialize_many(const py::list& packets) {
  std::vector<ByteView> views;
  std::vector<py::buffer_info> keep(packets.size());
  views.reserve(packets.size());
  std::size_t total = 0;
  for (std::size_t i = 0; i < packets.size(); ++i) {
    views.push_back(byte_view(packets[i], keep[i], "packet"));
    total += views.back().size;
  }
  // Re-serializing gives each packet's own length back, so the result is
  // written straight into one bytes object of the total size.
  py::bytes result(nullptr, total);
  auto* out = reinterpret_cast<std::uint8_t*>(PyBytes_AS_STRING(result.ptr()));
  int status = rtp::kOk;
  std::size_t written = 0;
  {
    py::gil_scoped_release nogil;
    std::uint32_t csrc[rtp::kMaxCsrc];
    for (const ByteView& in : views) {
      rtp::PacketView v;
      status = rtp::parse(in.data, in.size, &v);
      if (status != rtp::kOk) break;
      for (int c = 0; c < v.csrc_count; ++c) csrc[c] = v.csrc(c);
      rtp::PacketSpec s;
      s.marker = v.marker;
      s.payload_type = v.payload_type;
      s.sequence_number = v.sequence_number;
      s.timestamp = v.timestamp;
      s.ssrc = v.ssrc;
      s.csrc_count = v.csrc_count;
      s.csrc = csrc;
      s.extension = v.extension;
      s.extension_profile = v.extension_profile;
      s.extension_data = v.extension_data;
      s.extension_size = v.extension_size;
      s.payload = v.payload;
      s.payload_size = v.payload_size;
      s.padding_size = v.padding_size;
      const std::ptrdiff_t n = rtp::serialize(s, out + written, total - written);
      if (n < 0) {
        status = static_cast<int>(n);
        break;
      }
      written += static_cast<std::size_t>(n);
    }
  }
  if (status != rtp::kOk) raise_rtp(status);
  if (written != total) raise_rtp(rtp::kBufferTooSmall);  // cannot happen: sizes are preserved
  return result;
}


// ---------------------------------------------------------------- RTCP

using BlockTuple = std::tuple<std::uint32_t, int, std::int64_t, std::uint32_t, std::uint32_t, std::uint32_t,
                              std::uint32_t>;

[[noreturn]] void raise_rtcp(int status) { throw py::value_error(rtcp::status_message(status)); }

py::tuple block_tuple(const rtcp::ReportBlock& b) {
  return py::make_tuple(b.ssrc, b.fraction_lost, b.cumulative_lost, b.highest_sequence, b.jitter, b.last_sr,
                        b.delay_since_last_sr);
}

rtcp::ReportBlock block_from(const BlockTuple& t) {
  const auto& [ssrc, fraction, lost, highest, jitter, lsr, dlsr] = t;
  if (fraction < 0 || fraction > 255) throw py::value_error("fraction_lost must be in 0..255");
  if (lost < -0x800000 || lost > 0x7FFFFF) throw py::value_error("cumulative_lost must fit in signed 24 bits");
  rtcp::ReportBlock b;
  b.ssrc = ssrc;
  b.fraction_lost = static_cast<std::uint8_t>(fraction);
  b.cumulative_lost = static_cast<std::int32_t>(lost);
  b.highest_sequence = highest;
  b.jitter = jitter;
  b.last_sr = lsr;
  b.delay_since_last_sr = dlsr;
  return b;
}

py::list blocks_list(const rtcp::ReportView& v) {
  py::list out;
  for (int i = 0; i < v.report_count; ++i) out.append(block_tuple(v.block(i)));
  return out;
}

// Parse a (compound) RTCP datagram into tagged tuples, checked per A.2 and per type:
//   (200, ssrc, ntp, rtp_ts, packets, octets, [blocks], extension)   SR
//   (201, ssrc, [blocks], extension)                                 RR
//   (202, [(ssrc, [(type, data)])])                                  SDES (PRIV data raw)
//   (203, [ssrc], reason or None)                                    BYE
//   (204, subtype, ssrc, name, data)                                 APP
//   (type, count, body)                                              anything else
py::list rtcp_parse(const py::handle& data, bool reduced_size) {
  py::buffer_info keep;
  const ByteView in = byte_view(data, keep, "data");
  rtcp::CompoundReader reader(in.data, in.size, reduced_size);
  const int valid = reader.validate();
  if (valid != rtcp::kOk) raise_rtcp(valid);
  py::list out;
  rtcp::PacketView p;
  int r;
  while ((r = reader.next(&p)) == 1) {
    switch (p.packet_type) {
      case rtcp::kSR:
      case rtcp::kRR: {
        rtcp::ReportView v;
        const int s = rtcp::parse_report(p, &v);
        if (s != rtcp::kOk) raise_rtcp(s);
        if (v.has_sender_info) {
          out.append(py::make_tuple(200, v.ssrc, v.sender.ntp_timestamp, v.sender.rtp_timestamp,
                                    v.sender.packet_count, v.sender.octet_count, blocks_list(v),
                                    as_bytes(v.extension, v.extension_size)));
        } else {
          out.append(py::make_tuple(201, v.ssrc, blocks_list(v), as_bytes(v.extension, v.extension_size)));
        }
        break;
      }
      case rtcp::kSDES: {
        rtcp::SdesReader sdes(p);
        py::list chunks;
        std::uint32_t ssrc;
        int c;
        while ((c = sdes.next_chunk(&ssrc)) == 1) {
          py::list items;
          rtcp::SdesItem item;
          int i;
          while ((i = sdes.next_item(&item)) == 1) items.append(py::make_tuple(item.type, as_bytes(item.data, item.size)));
          if (i < 0) raise_rtcp(i);
          chunks.append(py::make_tuple(ssrc, items));
        }
        if (c < 0) raise_rtcp(c);
        out.append(py::make_tuple(202, chunks));
        break;
      }
      case rtcp::kBYE: {
        rtcp::ByeView v;
        const int s = rtcp::parse_bye(p, &v);
        if (s != rtcp::kOk) raise_rtcp(s);
        py::list sources;
        for (int i = 0; i < v.source_count; ++i) sources.append(v.source(i));
        py::object reason = v.has_reason ? py::object(as_bytes(v.reason, v.reason_size)) : py::object(py::none());
        out.append(py::make_tuple(203, sources, reason));
        break;
      }
      case rtcp::kAPP: {
        rtcp::AppView v;
        const int s = rtcp::parse_app(p, &v);
        if (s != rtcp::kOk) raise_rtcp(s);
        out.append(py::make_tuple(204, v.subtype, v.ssrc, as_bytes(v.name, 4), as_bytes(v.data, v.data_size)));
        break;
      }
      default:
        out.append(py::make_tuple(p.packet_type, p.count, as_bytes(p.body, p.body_size)));
    }
  }
  if (r < 0) raise_rtcp(r);
  return out;
}

// Run a Writer call into a buffer sized by `bound`, returning the bytes written.
template <typename F>
py::bytes write_packet(std::size_t bound, std::uint8_t padding, F&& write) {
  std::vector<std::uint8_t> buf(bound + padding);
  rtcp::Writer w(buf.data(), buf.size());
  int s = write(w);
  if (s == rtcp::kOk && padding) s = w.pad_last(padding);
  if (s != rtcp::kOk) raise_rtcp(s);
  return as_bytes(buf.data(), w.size());
}

std::vector<rtcp::ReportBlock> blocks_from(const std::vector<BlockTuple>& blocks) {
  std::vector<rtcp::ReportBlock> out;
  out.reserve(blocks.size());
  for (const auto& t : blocks) out.push_back(block_from(t));
  return out;
}

py::bytes rtcp_sender_report(std::uint32_t ssrc, std::uint64_t ntp, std::uint32_t rtp_ts, std::uint32_t packets,
                             std::uint32_t octets, const std::vector<BlockTuple>& blocks, const py::bytes& ext,
                             std::uint8_t padding) {
  const auto bl = blocks_from(blocks);
  const std::string e = ext;
  rtcp::SenderInfo info{ntp, rtp_ts, packets, octets};
  return write_packet(28 + 24 * bl.size() + e.size(), padding, [&](rtcp::Writer& w) {
    return w.sender_report(ssrc, info, bl.data(), static_cast<int>(bl.size()),
                           reinterpret_cast<const std::uint8_t*>(e.data()), e.size());
  });
}

py::bytes rtcp_receiver_report(std::uint32_t ssrc, const std::vector<BlockTuple>& blocks, const py::bytes& ext,
                               std::uint8_t padding) {
  const auto bl = blocks_from(blocks);
  const std::string e = ext;
  return write_packet(8 + 24 * bl.size() + e.size(), padding, [&](rtcp::Writer& w) {
    return w.receiver_report(ssrc, bl.data(), static_cast<int>(bl.size()),
                             reinterpret_cast<const std::uint8_t*>(e.data()), e.size());
  });
}

py::bytes rtcp_sdes(const std::vector<std::pair<std::uint32_t, std::vector<std::pair<int, std::string>>>>& chunks,
                    std::uint8_t padding) {
  std::vector<std::vector<rtcp::SdesItem>> items(chunks.size());
  std::vector<rtcp::SdesChunk> cs(chunks.size());
  std::size_t bound = 4;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    for (const auto& [type, value] : chunks[c].second) {
      if (type < 1 || type > 255) throw py::value_error("SDES item type must be in 1..255, got " + std::to_string(type));
      items[c].push_back({static_cast<std::uint8_t>(type), reinterpret_cast<const std::uint8_t*>(value.data()),
                          value.size()});
      bound += 2 + value.size();
    }
    cs[c] = {chunks[c].first, items[c].data(), static_cast<int>(items[c].size())};
    bound += 8;
  }
  return write_packet(bound, padding, [&](rtcp::Writer& w) {
    return w.sdes(cs.data(), static_cast<int>(cs.size()));
  });
}

py::bytes rtcp_bye(const std::vector<std::uint32_t>& sources, const std::optional<std::string>& reason,
                   std::uint8_t padding) {
  const std::size_t rlen = reason ? reason->size() : 0;
  return write_packet(4 + 4 * sources.size() + rlen + 4, padding, [&](rtcp::Writer& w) {
    return w.bye(sources.data(), static_cast<int>(sources.size()), reason.has_value(),
                 reason ? reinterpret_cast<const std::uint8_t*>(reason->data()) : nullptr, rlen);
  });
}

py::bytes rtcp_app(int subtype, std::uint32_t ssrc, const py::bytes& name, const py::bytes& data,
                   std::uint8_t padding) {
  if (subtype < 0 || subtype > rtcp::kMaxCount) raise_rtcp(rtcp::kTooManyItems);
  const std::string n = name, d = data;
  if (n.size() != 4) throw py::value_error("APP name must be exactly 4 bytes");
  return write_packet(12 + d.size(), padding, [&](rtcp::Writer& w) {
    return w.app(static_cast<std::uint8_t>(subtype), ssrc, reinterpret_cast<const std::uint8_t*>(n.data()),
                 reinterpret_cast<const std::uint8_t*>(d.data()), d.size());
  });
}

py::bytes rtcp_raw(int packet_type, int count, const py::bytes& body, std::uint8_t padding) {
  if (packet_type < 0 || packet_type > 255) throw py::value_error("packet_type must be in 0..255");
  if (count < 0 || count > rtcp::kMaxCount) raise_rtcp(rtcp::kTooManyItems);
  const std::string b = body;
  return write_packet(4 + b.size(), padding, [&](rtcp::Writer& w) {
    return w.raw(static_cast<std::uint8_t>(packet_type), static_cast<std::uint8_t>(count),
                 reinterpret_cast<const std::uint8_t*>(b.data()), b.size());
  });
}

}  // namespace

PYBIND11_MODULE(_rtp, mod) {
  mod.doc() = "Native RTP/RTCP parsing and building, and RFC 3550 receive statistics.";
  mod.attr("MAX_CSRC") = rtp::kMaxCsrc;
  mod.attr("ONE_BYTE_PROFILE") = rtp::kOneByteProfile;
  mod.attr("TWO_BYTE_PROFILE") = rtp::kTwoByteProfile;

  mod.def("rtp_parse", &rtp_parse, py::arg("data"));
  mod.def("rtp_parse_into", &rtp_parse_into, py::arg("cls"), py::arg("data"));
  mod.def("rtp_serialize", &rtp_serialize, py::arg("marker"), py::arg("payload_type"), py::arg("sequence_number"),
          py::arg("timestamp"), py::arg("ssrc"), py::arg("csrc"), py::arg("payload"), py::arg("extension"),
          py::arg("extension_profile"), py::arg("extension_data"), py::arg("padding_size"));
  mod.def("rtp_elements", &rtp_elements, py::arg("profile"), py::arg("data"));
  mod.def("rtp_write_elements", &rtp_write_elements, py::arg("elements"));
  mod.def("rtp_reserialize_many", &rtp_reserialize_many, py::arg("packets"));
  // RTCP
  mod.def("rtcp_parse", &rtcp_parse, py::arg("data"), py::arg("reduced_size") = false);
  mod.def("rtcp_sender_report", &rtcp_sender_report, py::arg("ssrc"), py::arg("ntp_timestamp"),
          py::arg("rtp_timestamp"), py::arg("packet_count"), py::arg("octet_count"), py::arg("reports"),
          py::arg("profile_extension"), py::arg("padding") = 0);
  mod.def("rtcp_receiver_report", &rtcp_receiver_report, py::arg("ssrc"), py::arg("reports"),
          py::arg("profile_extension"), py::arg("padding") = 0);
  mod.def("rtcp_sdes", &rtcp_sdes, py::arg("chunks"), py::arg("padding") = 0);
  mod.def("rtcp_bye", &rtcp_bye, py::arg("sources"), py::arg("reason"), py::arg("padding") = 0);
  mod.def("rtcp_app", &rtcp_app, py::arg("subtype"), py::arg("ssrc"), py::arg("name"), py::arg("data"),
          py::arg("padding") = 0);
  mod.def("rtcp_raw", &rtcp_raw, py::arg("packet_type"), py::arg("count"), py::arg("body"),
          py::arg("padding") = 0);

  // NTP and RTT (RFC 3550 4, 6.4.1)
  mod.def("ntp_from_unix_ns", &rtp_stats::ntp_from_unix_ns, py::arg("unix_ns"));
  mod.def("unix_ns_from_ntp", &rtp_stats::unix_ns_from_ntp, py::arg("ntp"));
  mod.def("ntp_middle32", &rtp_stats::ntp_middle32, py::arg("ntp"));
  mod.def("rtt_q16", &rtp_stats::rtt_q16, py::arg("arrival_middle32"), py::arg("last_sr"), py::arg("dlsr"));

  // Receive / send statistics
  py::class_<rtp_stats::ReceiveStats>(mod, "ReceiveStats")
      .def(py::init([](std::uint32_t ssrc, std::uint32_t clock_rate, int min_sequential, int max_dropout,
                       int max_misorder) {
             rtp_stats::Config c;
             c.clock_rate = clock_rate;
             c.min_sequential = min_sequential;
             c.max_dropout = max_dropout;
             c.max_misorder = max_misorder;
             return rtp_stats::ReceiveStats(ssrc, c);
           }),
           py::arg("ssrc"), py::arg("clock_rate"), py::arg("min_sequential") = 2, py::arg("max_dropout") = 3000,
           py::arg("max_misorder") = 100)
      .def_property_readonly("ssrc", &rtp_stats::ReceiveStats::ssrc)
      .def("on_packet", &rtp_stats::ReceiveStats::on_packet, py::arg("sequence_number"), py::arg("timestamp"),
           py::arg("arrival_ns"), py::arg("payload_bytes") = 0)
      .def("on_packets",
           [](rtp_stats::ReceiveStats& self, const std::vector<std::uint16_t>& seqs,
              const std::vector<std::uint32_t>& timestamps, const std::vector<std::int64_t>& arrivals) {
             if (seqs.size() != timestamps.size() || seqs.size() != arrivals.size())
               throw py::value_error("sequence_numbers, timestamps and arrivals_ns must have the same length");
             std::vector<int> out(seqs.size());
             for (std::size_t i = 0; i < seqs.size(); ++i) out[i] = self.on_packet(seqs[i], timestamps[i], arrivals[i]);
             return out;
           },
           py::arg("sequence_numbers"), py::arg("timestamps"), py::arg("arrivals_ns"))
      .def("on_sender_report", &rtp_stats::ReceiveStats::on_sender_report, py::arg("ntp_timestamp"),
           py::arg("arrival_ns"))
      .def("report_block", [](rtp_stats::ReceiveStats& self, std::int64_t now_ns) {
             return block_tuple(self.report_block(now_ns));
           }, py::arg("now_ns"))
      .def("snapshot", [](const rtp_stats::ReceiveStats& self) {
        const rtp_stats::ReceiveSnapshot s = self.snapshot();
        py::dict d;
        d["ssrc"] = s.ssrc;
        d["valid"] = s.valid;
        d["max_seq"] = s.max_seq;
        d["cycles"] = s.cycles;
        d["base_seq"] = s.base_seq;
        d["extended_max"] = s.extended_max;
        d["received"] = s.received;
        d["expected"] = s.expected;
        d["lost"] = s.lost;
        d["jitter"] = s.jitter;
        d["packets"] = s.packets;
        d["probation_dropped"] = s.probation_dropped;
        d["bad_sequence"] = s.bad_sequence;
        d["restarts"] = s.restarts;
        d["late"] = s.late;
        d["payload_octets"] = s.payload_octets;
        d["have_sr"] = s.have_sr;
        d["last_sr"] = s.last_sr;
        return d;
      });
  mod.def("loss_fields", [](std::int64_t expected, std::uint64_t received, std::int64_t expected_interval,
                            std::int64_t received_interval) {
    const auto f = rtp_stats::loss_fields(expected, received, expected_interval, received_interval);
    return py::make_tuple(f.fraction_lost, f.cumulative_lost);
  }, py::arg("expected"), py::arg("received"), py::arg("expected_interval"), py::arg("received_interval"));
  mod.def("timestamp_units", &rtp_stats::ReceiveStats::timestamp_units, py::arg("ns"), py::arg("clock_rate"));

  py::class_<rtp_stats::SendStats>(mod, "SendStats")
      .def(py::init<std::uint32_t, std::uint32_t>(), py::arg("ssrc"), py::arg("clock_rate"))
      .def_property_readonly("ssrc", &rtp_stats::SendStats::ssrc)
      .def_property_readonly("sent_any", &rtp_stats::SendStats::sent_any)
      .def("on_sent", &rtp_stats::SendStats::on_sent, py::arg("timestamp"), py::arg("payload_bytes"),
           py::arg("now_ns"))
      .def("sender_info", [](const rtp_stats::SendStats& self, std::uint64_t ntp_now, std::int64_t now_ns) {
             const rtcp::SenderInfo i = self.sender_info(ntp_now, now_ns);
             return py::make_tuple(i.ntp_timestamp, i.rtp_timestamp, i.packet_count, i.octet_count);
           }, py::arg("ntp_now"), py::arg("now_ns"));
}
