// pybind11 bindings of the tone generator (tones.hpp). See mediacore/tones.py
// for the documented API. A tone crosses this boundary as a plain tuple
// (components, steps, repeat): components [(frequency_hz, level_dbm0)], steps
// [(on_ms, off_ms)].
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tones.hpp"

namespace py = pybind11;
using mediacore::TonePlayer;
namespace tn = mediacore::tones;

namespace {

using Components = std::vector<std::pair<double, double>>;
using Steps = std::vector<std::pair<std::uint32_t, std::uint32_t>>;
using SpecTuple = std::tuple<Components, Steps, bool>;

constexpr std::size_t kNoGilThreshold = 4096;

tn::ToneSpec to_spec(const Components& components, const Steps& steps, bool repeat) {
  if (components.empty() || components.size() > tn::kMaxComponents)
    throw py::value_error("a tone needs 1 to " + std::to_string(tn::kMaxComponents) + " components, got " +
                          std::to_string(components.size()));
  if (steps.size() > tn::kMaxSteps)
    throw py::value_error("a cadence has at most " + std::to_string(tn::kMaxSteps) + " steps, got " +
                          std::to_string(steps.size()));
  tn::ToneSpec spec{};
  for (const auto& [f, level] : components) spec.components[spec.component_count++] = tn::Component{f, level};
  for (const auto& [on, off] : steps) spec.steps[spec.step_count++] = tn::CadenceStep{on, off};
  spec.repeat = repeat;
  return spec;
}

SpecTuple from_spec(const tn::ToneSpec& spec) {
  Components components;
  Steps steps;
  for (std::size_t i = 0; i < spec.component_count; ++i)
    components.emplace_back(spec.components[i].frequency_hz, spec.components[i].level_dbm0);
  for (std::size_t i = 0; i < spec.step_count; ++i) steps.emplace_back(spec.steps[i].on_ms, spec.steps[i].off_ms);
  return {components, steps, spec.repeat};
}

void check_rc(int rc) {
  switch (rc) {
    case 0: return;
    case -1: throw py::value_error("a tone needs 1 to 4 components");
    case -2: throw py::value_error("a component frequency must be above 0 and below half the sample rate");
    case -3: throw py::value_error("a component level must be within -120 ... +3.17 dBm0");
    case -4: throw py::value_error("a cadence has at most 8 steps");
    case -5: throw py::value_error("a cadence step's on time must be above 0 ms");
    case -6: throw py::value_error("a cadence step is longer than 24 hours");
    case -100: throw py::value_error("the player's queue is full (16 tones)");
    default: throw py::value_error("bad tone (code " + std::to_string(rc) + ")");
  }
}

}  // namespace

PYBIND11_MODULE(_tones, mod) {
  mod.doc() = "Native tone generation: DTMF digits and call-progress tones.";
  mod.attr("MAX_COMPONENTS") = tn::kMaxComponents;
  mod.attr("MAX_STEPS") = tn::kMaxSteps;
  mod.attr("QUEUE_CAPACITY") = TonePlayer::kQueueCapacity;

  mod.def("call_progress", [](int region, int tone) {
    if (region < 0 || region > 2) throw py::value_error("region must be 0 (US), 1 (EU) or 2 (CN)");
    if (tone < 0 || tone > 3) throw py::value_error("tone must be 0 (dial), 1 (ringback), 2 (busy) or 3 (congestion)");
    return from_spec(tn::call_progress(static_cast<tn::Region>(region), static_cast<tn::ProgressTone>(tone)));
  }, py::arg("region"), py::arg("tone"));

  mod.def("dtmf_digit", [](const std::string& key, double level_dbm0, double twist_db, std::uint32_t on_ms,
                           std::uint32_t off_ms, double low_deviation, double high_deviation) {
    tn::ToneSpec spec{};
    if (key.size() != 1 ||
        !tn::dtmf_digit(key[0], level_dbm0, twist_db, on_ms, off_ms, &spec, low_deviation, high_deviation))
      throw py::value_error("digit must be one of 0-9 * # A-D, got " + py::repr(py::str(key)).cast<std::string>());
    return from_spec(spec);
  }, py::arg("digit"), py::arg("level_dbm0"), py::arg("twist_db"), py::arg("on_ms"), py::arg("off_ms"),
     py::arg("low_deviation") = 0.0, py::arg("high_deviation") = 0.0);

  mod.def("validate", [](const Components& components, const Steps& steps, bool repeat, int sample_rate) {
    check_rc(tn::validate(to_spec(components, steps, repeat), sample_rate));
  }, py::arg("components"), py::arg("steps"), py::arg("repeat"), py::arg("sample_rate"));

  py::class_<TonePlayer>(mod, "TonePlayer")
      .def(py::init<int>(), py::arg("sample_rate") = 8000)
      .def("play", [](TonePlayer& p, const Components& c, const Steps& s, bool repeat) {
        check_rc(p.play(to_spec(c, s, repeat)));
      }, py::arg("components"), py::arg("steps"), py::arg("repeat"))
      .def("enqueue", [](TonePlayer& p, const Components& c, const Steps& s, bool repeat) {
        check_rc(p.enqueue(to_spec(c, s, repeat)));
      }, py::arg("components"), py::arg("steps"), py::arg("repeat"))
      .def("read", [](TonePlayer& p, py::ssize_t n) {
        if (n < 0) throw py::value_error("n must be >= 0, got " + std::to_string(n));
        py::array_t<std::int16_t> out(n);
        std::int16_t* data = out.mutable_data();
        if (static_cast<std::size_t>(n) >= kNoGilThreshold) {
          py::gil_scoped_release release;
          p.read(data, static_cast<std::size_t>(n));
        } else {
          p.read(data, static_cast<std::size_t>(n));
        }
        return out;
      }, py::arg("n"))
      .def("read_into", [](TonePlayer& p, const py::array& out) {
        if (!py::isinstance<py::array_t<std::int16_t>>(out) || out.dtype().kind() != 'i' || out.itemsize() != 2)
          throw py::value_error("out must be a numpy int16 array, got dtype " + std::string(py::str(out.dtype())));
        if (out.ndim() != 1) throw py::value_error("out must be one-dimensional");
        if (!(out.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
        if (!out.writeable()) throw py::value_error("out is read-only");
        auto* data = static_cast<std::int16_t*>(out.request(true).ptr);
        const auto n = static_cast<std::size_t>(out.shape(0));
        if (n >= kNoGilThreshold) {
          py::gil_scoped_release release;
          p.read(data, n);
        } else {
          p.read(data, n);
        }
        return out;
      }, py::arg("out"))
      .def("stop", &TonePlayer::stop)
      .def_property_readonly("done", &TonePlayer::done)
      .def_property_readonly("sample_rate", &TonePlayer::sample_rate)
      .def_property_readonly("position", &TonePlayer::position);
}
