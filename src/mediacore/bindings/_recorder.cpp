// pybind11 bindings of the call recorder, WAV/Ogg repair and the Ogg helpers
// (see mediacore/recorder.py for the API).
//
// drain() and the repair functions do file I/O and release the GIL; write()
// is a short per-frame call and keeps it. One thread may write while another
// drains (the recorder's ring is single-producer single-consumer).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "ogg.hpp"
#include "recorder.hpp"
#include "wav.hpp"

namespace py = pybind11;
using namespace mediacore;

namespace {

const std::int16_t* pcm_ptr(const py::object& obj, const char* name, std::size_t* n) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<py::array>(obj))
    throw py::value_error(std::string(name) + " must be a numpy int16 array, got " +
                          std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!py::isinstance<py::array_t<std::int16_t>>(a) || a.itemsize() != 2)
    throw py::value_error(std::string(name) + " must hold int16 samples, got dtype " + std::string(py::str(a.dtype())));
  if (a.ndim() != 1) throw py::value_error(std::string(name) + " must be one-dimensional");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous (use numpy.ascontiguousarray)");
  *n = static_cast<std::size_t>(a.shape(0));
  return static_cast<const std::int16_t*>(a.data());
}

py::dict wav_plan_dict(const wav::RepairPlan& p) {
  py::dict d;
  d["status"] = p.status;
  d["changed"] = p.changed;
  d["old_size"] = p.old_size;
  d["new_size"] = p.new_size;
  d["data_offset"] = p.data_offset;
  d["data_bytes"] = p.data_bytes;
  d["format_tag"] = p.format_tag;
  d["channels"] = p.channels;
  d["sample_rate"] = p.sample_rate;
  d["block_align"] = p.block_align;
  d["errno"] = p.sys_errno;
  return d;
}

py::dict ogg_scan_dict(const ogg::ScanResult& r) {
  py::dict d;
  d["status"] = r.status;
  d["changed"] = r.changed;
  d["old_size"] = r.old_size;
  d["new_size"] = r.status == ogg::kScanOk ? r.valid_end : r.old_size;
  d["pages"] = r.pages;
  d["serial"] = r.serial;
  d["single_stream"] = r.single_stream;
  d["eos"] = r.ends_with_eos || r.set_eos;
  d["set_eos"] = r.set_eos;
  d["last_granule"] = r.last_granule;
  d["errno"] = r.sys_errno;
  return d;
}

void bytes_of(const py::buffer& b, std::vector<std::uint8_t>* out) {
  py::buffer_info info = b.request();
  if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize))
    throw py::value_error("data must be a contiguous bytes-like buffer");
  const auto* p = static_cast<const std::uint8_t*>(info.ptr);
  out->assign(p, p + info.size * info.itemsize);
}

}  // namespace

PYBIND11_MODULE(_recorder, mod) {
  mod.doc() = "Native call recorder (WAV, Ogg Opus), crash repair and Ogg helpers.";

  py::enum_<RecordingFormat>(mod, "RecordingFormat")
      .value("WAV_PCM16", RecordingFormat::WAV_PCM16)
      .value("WAV_ULAW", RecordingFormat::WAV_ULAW)
      .value("WAV_ALAW", RecordingFormat::WAV_ALAW)
      .value("OGG_OPUS", RecordingFormat::OGG_OPUS);
  py::enum_<PauseMode>(mod, "PauseMode").value("SILENCE", PauseMode::SILENCE).value("GAP", PauseMode::GAP);

  py::class_<RecorderStats>(mod, "RecorderStats")
      .def_readonly("samples_in", &RecorderStats::samples_in)
      .def_readonly("samples_recorded", &RecorderStats::samples_recorded)
      .def_readonly("samples_paused", &RecorderStats::samples_paused)
      .def_readonly("samples_dropped", &RecorderStats::samples_dropped)
      .def_readonly("overruns", &RecorderStats::overruns)
      .def_readonly("bytes_buffered", &RecorderStats::bytes_buffered)
      .def_readonly("bytes_written", &RecorderStats::bytes_written)
      .def_readonly("pages", &RecorderStats::pages)
      .def_readonly("header_updates", &RecorderStats::header_updates)
      .def_readonly("write_errors", &RecorderStats::write_errors);

  py::class_<Recorder>(mod, "Recorder")
      .def(py::init([](RecordingFormat format, int sample_rate, int channels, PauseMode pause_mode,
                       std::size_t buffer_bytes, int bitrate, int complexity, int page_ms, std::uint32_t serial,
                       std::vector<std::string> comments) {
             RecorderConfig c;
             c.format = format;
             c.sample_rate = sample_rate;
             c.channels = channels;
             c.pause_mode = pause_mode;
             c.buffer_bytes = buffer_bytes;
             c.bitrate = bitrate;
             c.complexity = complexity;
             c.page_ms = page_ms;
             c.serial = serial;
             c.comments = std::move(comments);
             return new Recorder(c);
           }),
           py::arg("format"), py::arg("sample_rate") = 8000, py::arg("channels") = 1,
           py::arg("pause_mode") = PauseMode::SILENCE, py::arg("buffer_bytes") = 0, py::arg("bitrate") = 0,
           py::arg("complexity") = 5, py::arg("page_ms") = 1000, py::arg("serial") = 0,
           py::arg("comments") = std::vector<std::string>{})
      .def(
          "write",
          [](Recorder& r, const py::object& left, const py::object& right) {
            std::size_t nl = 0, nr = 0;
            const std::int16_t* l = pcm_ptr(left, "left", &nl);
            const std::int16_t* rr = pcm_ptr(right, "right", &nr);
            if (l && rr && nl != nr)
              throw py::value_error("left and right must have the same length, got " + std::to_string(nl) + " and " +
                                    std::to_string(nr));
            return r.write(l, rr, l ? nl : nr);
          },
          py::arg("left"), py::arg("right") = py::none())
      .def("pause", &Recorder::pause)
      .def("resume", &Recorder::resume)
      .def_property_readonly("paused", &Recorder::paused)
      .def("stop", &Recorder::stop)
      .def_property_readonly("stopped", &Recorder::stopped)
      .def(
          "drain",
          [](Recorder& r, int fd, bool sync) {
            long n;
            {
              py::gil_scoped_release nogil;
              n = r.drain(fd, sync);
            }
            if (n < 0) {
              errno = static_cast<int>(-n);
              PyErr_SetFromErrno(PyExc_OSError);
              throw py::error_already_set();
            }
            return n;
          },
          py::arg("fd"), py::arg("sync") = false)
      .def_property_readonly("complete", &Recorder::complete)
      .def_property_readonly("buffered_bytes", &Recorder::buffered_bytes)
      .def_property_readonly("pre_skip", &Recorder::pre_skip)
      .def("stats", &Recorder::stats);

  mod.def(
      "repair_wav",
      [](const std::string& path) {
        wav::RepairPlan p;
        {
          py::gil_scoped_release nogil;
          p = wav::repair_file(path.c_str());
        }
        return wav_plan_dict(p);
      },
      py::arg("path"));
  mod.def(
      "repair_ogg",
      [](const std::string& path) {
        ogg::ScanResult r;
        {
          py::gil_scoped_release nogil;
          r = ogg::repair_file(path.c_str());
        }
        return ogg_scan_dict(r);
      },
      py::arg("path"));
  mod.def(
      "plan_wav_repair",
      [](const py::buffer& data) {
        std::vector<std::uint8_t> bytes;
        bytes_of(data, &bytes);
        return wav_plan_dict(wav::plan_repair(MemorySource(bytes.data(), bytes.size())));
      },
      py::arg("data"), "What repair_wav would do to these bytes (nothing is changed).");
  mod.def(
      "scan_ogg",
      [](const py::buffer& data) {
        std::vector<std::uint8_t> bytes;
        bytes_of(data, &bytes);
        return ogg_scan_dict(ogg::scan(MemorySource(bytes.data(), bytes.size())));
      },
      py::arg("data"), "What repair_ogg would do to these bytes (nothing is changed).");
  mod.def(
      "ogg_crc32",
      [](const py::buffer& data) {
        std::vector<std::uint8_t> bytes;
        bytes_of(data, &bytes);
        return ogg::crc32(bytes.data(), bytes.size());
      },
      py::arg("data"));
  mod.def(
      "wav_header",
      [](int codec, int channels, int sample_rate, std::uint64_t data_bytes, bool pad_written) {
        const wav::Format f{static_cast<wav::Codec>(codec), channels, sample_rate};
        if (!wav::valid(f)) throw py::value_error("invalid WAV format");
        std::uint8_t h[64];
        const std::size_t n = wav::write_header(f, data_bytes, h, sizeof h, pad_written);
        return py::bytes(reinterpret_cast<const char*>(h), n);
      },
      py::arg("codec"), py::arg("channels"), py::arg("sample_rate"), py::arg("data_bytes"),
      py::arg("pad_written") = true);
}
