// pybind11 bindings of the E-model unit (see mediacore/emodel.py for the documented API).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "emodel.hpp"

namespace py = pybind11;
using namespace mediacore;

namespace {

emodel::Codec codec_from(int c) {
  if (c < 0 || c > 3) throw py::value_error("codec must be 0..3 (G711, G711_PLC, G729A, OPUS)");
  return static_cast<emodel::Codec>(c);
}

py::dict result_dict(const emodel::Result& r) {
  py::dict d;
  d["R"] = r.R;
  d["Ro"] = r.Ro;
  d["Is"] = r.Is;
  d["Id"] = r.Id;
  d["Idte"] = r.Idte;
  d["Idle"] = r.Idle;
  d["Idd"] = r.Idd;
  d["Ie_eff"] = r.Ie_eff;
  d["mos"] = r.mos;
  return d;
}

}  // namespace

PYBIND11_MODULE(_emodel, mod) {
  mod.doc() = "Native ITU-T G.107 E-model and burst-loss estimator.";

  // Every Table 3 parameter, by its G.107 name, defaults as in the Recommendation.
  const emodel::Params d;
  mod.def(
      "compute",
      [](double SLR, double RLR, double STMR, double LSTR, double Ds, double Dr, double TELR, double WEPL, double T,
         double Tr, double Ta, double qdu, double Ie, double Bpl, double Ppl, double BurstR, double Nc, double Nfor,
         double Ps, double Pr, double A, double mT, double sT) {
        emodel::Params p{SLR, RLR, STMR, LSTR, Ds, Dr, TELR, WEPL, T, Tr, Ta, qdu,
                         Ie,  Bpl, Ppl,  BurstR, Nc, Nfor, Ps, Pr, A, mT, sT};
        return result_dict(emodel::compute(p));
      },
      py::arg("SLR") = d.SLR, py::arg("RLR") = d.RLR, py::arg("STMR") = d.STMR, py::arg("LSTR") = d.LSTR,
      py::arg("Ds") = d.Ds, py::arg("Dr") = d.Dr, py::arg("TELR") = d.TELR, py::arg("WEPL") = d.WEPL,
      py::arg("T") = d.T, py::arg("Tr") = d.Tr, py::arg("Ta") = d.Ta, py::arg("qdu") = d.qdu, py::arg("Ie") = d.Ie,
      py::arg("Bpl") = d.Bpl, py::arg("Ppl") = d.Ppl, py::arg("BurstR") = d.BurstR, py::arg("Nc") = d.Nc,
      py::arg("Nfor") = d.Nfor, py::arg("Ps") = d.Ps, py::arg("Pr") = d.Pr, py::arg("A") = d.A,
      py::arg("mT") = d.mT, py::arg("sT") = d.sT);
  mod.def("mos_from_r", &emodel::mos_from_r, py::arg("r"));
  mod.def("effective_ie", &emodel::effective_ie, py::arg("ie"), py::arg("bpl"), py::arg("ppl"), py::arg("burst_r"));
  mod.def("codec_impairment", [](int c) {
    const auto i = emodel::codec_impairment(codec_from(c));
    return py::make_tuple(i.ie, i.bpl);
  }, py::arg("codec"));
  mod.def("estimate_r", [](int c, double delay, double loss, double burst) {
    return emodel::estimate_r(codec_from(c), delay, loss, burst);
  }, py::arg("codec"), py::arg("delay_ms"), py::arg("loss_percent"), py::arg("burst_ratio") = 1.0);
  mod.def("estimate_mos", [](int c, double delay, double loss, double burst) {
    return emodel::estimate_mos(codec_from(c), delay, loss, burst);
  }, py::arg("codec"), py::arg("delay_ms"), py::arg("loss_percent"), py::arg("burst_ratio") = 1.0);

  py::class_<emodel::BurstEstimator>(mod, "BurstEstimator")
      .def(py::init<>())
      .def("on_received", &emodel::BurstEstimator::on_received)
      .def("on_lost", &emodel::BurstEstimator::on_lost, py::arg("count") = 1)
      .def("on_sequence", &emodel::BurstEstimator::on_sequence, py::arg("seq"), py::arg("max_gap") = 3000)
      .def("on_pattern", [](emodel::BurstEstimator& self, const std::vector<bool>& lost) {
        for (bool l : lost) {
          if (l) self.on_lost(); else self.on_received();
        }
      }, py::arg("lost"))
      .def("reset", &emodel::BurstEstimator::reset)
      .def_property_readonly("received", &emodel::BurstEstimator::received)
      .def_property_readonly("lost", &emodel::BurstEstimator::lost)
      .def_property_readonly("loss_percent", &emodel::BurstEstimator::loss_percent)
      .def_property_readonly("p", &emodel::BurstEstimator::p)
      .def_property_readonly("q", &emodel::BurstEstimator::q)
      .def_property_readonly("burst_ratio", &emodel::BurstEstimator::burst_ratio);
}
