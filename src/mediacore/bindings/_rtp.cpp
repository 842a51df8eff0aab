// pybind11 bindings of the RTP, RTCP and receive-statistics units
// (see mediacore/rtp.py and mediacore/rtcp.py for the documented API).
//
// Everything here is thin: parse functions return plain tuples that the
// Python modules turn into frozen dataclasses, and builders take plain values
// that the Python modules have validated. The native code still checks every
// length itself; a bad value is a ValueError naming what is wrong.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "rtp.hpp"

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
  std::vector<std::uint8_t> out(total);
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
      const std::ptrdiff_t n = rtp::serialize(s, out.data() + written, out.size() - written);
      if (n < 0) {
        status = static_cast<int>(n);
        break;
      }
      written += static_cast<std::size_t>(n);
    }
  }
  if (status != rtp::kOk) raise_rtp(status);
  return as_bytes(out.data(), written);
}

}  // namespace

PYBIND11_MODULE(_rtp, mod) {
  mod.doc() = "Native RTP/RTCP parsing and building, and RFC 3550 receive statistics.";
  mod.attr("MAX_CSRC") = rtp::kMaxCsrc;
  mod.attr("ONE_BYTE_PROFILE") = rtp::kOneByteProfile;
  mod.attr("TWO_BYTE_PROFILE") = rtp::kTwoByteProfile;

  mod.def("rtp_parse", &rtp_parse, py::arg("data"));
  mod.def("rtp_serialize", &rtp_serialize, py::arg("marker"), py::arg("payload_type"), py::arg("sequence_number"),
          py::arg("timestamp"), py::arg("ssrc"), py::arg("csrc"), py::arg("payload"), py::arg("extension"),
          py::arg("extension_profile"), py::arg("extension_data"), py::arg("padding_size"));
  mod.def("rtp_elements", &rtp_elements, py::arg("profile"), py::arg("data"));
  mod.def("rtp_write_elements", &rtp_write_elements, py::arg("elements"));
  mod.def("rtp_reserialize_many", &rtp_reserialize_many, py::arg("packets"));
}
