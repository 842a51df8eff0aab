// pybind11 bindings of mediacore::Mixer (see mediacore/mixer.py for the API).
//
// Gains cross this boundary in Q12 (4096 = unity); mediacore.mixer converts
// floats and validates slot ids. The buffer checks here are the last line of
// defence: nothing reaches the C++ mixer that could read outside an array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "mixer.hpp"

namespace py = pybind11;
using mediacore::CodecId;
using mediacore::Mixer;
using mediacore::SupervisorMode;

namespace {

template <typename T>
py::array_t<T> frame_array(const py::array& a, const char* name, int ndim) {
  if (!py::isinstance<py::array_t<T>>(a) || a.dtype().kind() != py::dtype::of<T>().kind() ||
      a.itemsize() != static_cast<py::ssize_t>(sizeof(T))) {
    throw py::value_error(std::string(name) + " must be a numpy array of " +
                          (sizeof(T) == 2 ? "int16 samples" : "uint8 G.711 codes") + ", got dtype " +
                          std::string(py::str(a.dtype())));
  }
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-dimensional, got " +
                          std::to_string(a.ndim()) + " dimensions");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous (use numpy.ascontiguousarray)");
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

void check_rows(const Mixer& m, const py::array& a, const char* name) {
  if (static_cast<std::size_t>(a.shape(1)) != m.frame_samples())
    throw py::value_error(std::string(name) + " rows must hold " + std::to_string(m.frame_samples()) +
                          " samples (one frame), got " + std::to_string(a.shape(1)));
  if (a.shape(0) < m.slot_bound())
    throw py::value_error(std::string(name) + " needs at least " + std::to_string(m.slot_bound()) +
                          " rows (one per slot id up to the highest in use), got " + std::to_string(a.shape(0)));
}

void check_slot(const Mixer& m, int slot, const char* name) {
  if (!m.has_slot(slot)) throw py::value_error(std::string(name) + " " + std::to_string(slot) + " is not a slot");
}

}  // namespace

PYBIND11_MODULE(_mixer, mod) {
  mod.doc() = "Native conference mixer (mix-minus with a per-edge gain matrix).";
  mod.attr("GAIN_ONE") = Mixer::kUnityGain;
  mod.attr("GAIN_MAX") = Mixer::kMaxGain;
  mod.attr("MAX_SLOTS") = Mixer::kMaxSlots;

  py::enum_<SupervisorMode>(mod, "SupervisorMode")
      .value("OFF", SupervisorMode::OFF)
      .value("LISTEN", SupervisorMode::LISTEN)
      .value("WHISPER", SupervisorMode::WHISPER)
      .value("BARGE", SupervisorMode::BARGE);

  py::class_<mediacore::MixerStats>(mod, "MixerStats")
      .def_readonly("ticks", &mediacore::MixerStats::ticks)
      .def_readonly("clipped_samples", &mediacore::MixerStats::clipped_samples)
      .def_readonly("slots", &mediacore::MixerStats::slots)
      .def_readonly("edges", &mediacore::MixerStats::edges);

  py::class_<Mixer>(mod, "Mixer")
      .def(py::init<int, int, int>(), py::arg("sample_rate"), py::arg("frame_ms") = 20, py::arg("max_slots") = 256)
      .def_property_readonly("sample_rate", &Mixer::sample_rate)
      .def_property_readonly("frame_samples", &Mixer::frame_samples)
      .def_property_readonly("max_slots", &Mixer::max_slots)
      .def_property_readonly("slot_bound", &Mixer::slot_bound)
      .def("has_slot", &Mixer::has_slot, py::arg("slot"))
      .def("add_slot", &Mixer::add_slot, py::arg("conference") = true)
      .def("remove_slot", &Mixer::remove_slot, py::arg("slot"))
      .def("set_edge", &Mixer::set_edge, py::arg("src"), py::arg("dst"), py::arg("gain_q12"))
      .def("clear_edge", &Mixer::clear_edge, py::arg("src"), py::arg("dst"))
      .def("gain", &Mixer::gain, py::arg("src"), py::arg("dst"))
      .def("has_edge", &Mixer::has_edge, py::arg("src"), py::arg("dst"))
      .def("set_conference", &Mixer::set_conference, py::arg("slot"), py::arg("member"))
      .def("set_mute", &Mixer::set_mute, py::arg("slot"), py::arg("mute"))
      .def("set_deaf", &Mixer::set_deaf, py::arg("slot"), py::arg("deaf"))
      .def("conference", &Mixer::conference, py::arg("slot"))
      .def("muted", &Mixer::muted, py::arg("slot"))
      .def("deaf", &Mixer::deaf, py::arg("slot"))
      .def("set_supervisor", &Mixer::set_supervisor, py::arg("supervisor"), py::arg("caller"), py::arg("agent"),
           py::arg("mode"))
      .def(
          "set_input",
          [](Mixer& m, int slot, const py::array& pcm) {
            check_slot(m, slot, "slot");
            auto a = frame_array<std::int16_t>(pcm, "pcm", 1);
            if (static_cast<std::size_t>(a.shape(0)) != m.frame_samples())
              throw py::value_error("pcm must hold " + std::to_string(m.frame_samples()) + " samples (one frame), got " +
                                    std::to_string(a.shape(0)));
            m.set_input(slot, a.data(), m.frame_samples());
          },
          py::arg("slot"), py::arg("pcm"))
      .def(
          "output",
          [](const Mixer& m, int slot) {
            check_slot(m, slot, "slot");
            py::array_t<std::int16_t> out(static_cast<py::ssize_t>(m.frame_samples()));
            std::memcpy(out.mutable_data(), m.output(slot), m.frame_samples() * sizeof(std::int16_t));
            return out;
          },
          py::arg("slot"))
      .def("mix", py::overload_cast<>(&Mixer::mix))
      .def(
          "mix_rows",
          [](Mixer& m, const py::array& inputs) {
            auto in = frame_array<std::int16_t>(inputs, "inputs", 2);
            check_rows(m, in, "inputs");
            py::array_t<std::int16_t> out({in.shape(0), in.shape(1)});
            if (m.mix(in.data(), static_cast<std::size_t>(in.shape(0)), out.mutable_data()) != 0)
              throw py::value_error("inputs rejected by the mixer");
            return out;
          },
          py::arg("inputs"))
      .def(
          "mix_g711",
          [](Mixer& m, const py::array& codes, bool ulaw) {
            auto in = frame_array<std::uint8_t>(codes, "codes", 2);
            check_rows(m, in, "codes");
            py::array_t<std::uint8_t> out({in.shape(0), in.shape(1)});
            if (m.mix_g711(in.data(), static_cast<std::size_t>(in.shape(0)), out.mutable_data(),
                           ulaw ? CodecId::PCMU : CodecId::PCMA) != 0)
              throw py::value_error("codes rejected by the mixer");
            return out;
          },
          py::arg("codes"), py::arg("ulaw") = true)
      .def("stats", &Mixer::stats);
}
