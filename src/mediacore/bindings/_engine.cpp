// pybind11 binding of the media engine (src/mediacore/cpp/engine.hpp).
//
// Thin on purpose: configs come in as keyword dicts already validated by
// mediacore/engine.py, events go out as tuples that engine.py turns into
// frozen dataclasses. Every verb releases the GIL (it may wait for a worker);
// nothing here is called per packet.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "engine.hpp"

namespace py = pybind11;
using namespace mediacore;

namespace {

template <typename T>
void take(const py::dict& d, const char* key, T* out) {
  if (d.contains(key)) *out = d[key].cast<T>();
}

EngineConfig engine_config(const py::dict& d) {
  EngineConfig c;
  take(d, "bind_host", &c.bind_host);
  take(d, "port_min", &c.port_min);
  take(d, "port_max", &c.port_max);
  take(d, "threads", &c.threads);
  take(d, "tick_ms", &c.tick_ms);
  take(d, "stats_interval_ms", &c.stats_interval_ms);
  take(d, "rtcp_interval_ms", &c.rtcp_interval_ms);
  take(d, "event_queue_capacity", &c.event_queue_capacity);
  take(d, "socket_buffer_bytes", &c.socket_buffer_bytes);
  take(d, "writer_flush_ms", &c.writer_flush_ms);
  return c;
}

LegConfig leg_config(const py::dict& d) {
  LegConfig c;
  int codec = static_cast<int>(c.codec);
  take(d, "codec", &codec);
  if (codec < 0 || codec > 3) throw std::invalid_argument("unknown codec id");
  c.codec = static_cast<CodecId>(codec);
  take(d, "payload_type", &c.payload_type);
  take(d, "sample_rate", &c.sample_rate);
  take(d, "ptime_ms", &c.ptime_ms);
  take(d, "telephone_event_pt", &c.telephone_event_pt);
  take(d, "remote_host", &c.remote_host);
  take(d, "remote_port", &c.remote_port);
  take(d, "remote_rtcp_port", &c.remote_rtcp_port);
  take(d, "latch", &c.latch);
  int direction = 0;
  take(d, "direction", &direction);
  if (direction < 0 || direction > 3) throw std::invalid_argument("unknown direction id");
  c.direction = static_cast<Direction>(direction);
  take(d, "media_timeout_ms", &c.media_timeout_ms);
  take(d, "detect_inband_dtmf", &c.detect_inband_dtmf);
  take(d, "opus_bitrate", &c.opus_bitrate);
  take(d, "opus_fec", &c.opus_fec);
  take(d, "opus_dtx", &c.opus_dtx);
  take(d, "opus_complexity", &c.opus_complexity);
  take(d, "opus_packet_loss_percent", &c.opus_packet_loss_percent);
  take(d, "affinity", &c.affinity);
  return c;
}

py::dict leg_stats_dict(const LegStats& s) {
  py::dict d;
  d["leg"] = s.leg;
  d["local_port"] = s.local_port;
  d["local_ssrc"] = s.local_ssrc;
  d["remote_ssrc"] = s.remote_ssrc;
  d["latched"] = s.latched;
  d["packets_received"] = s.packets_received;
  d["bytes_received"] = s.bytes_received;
  d["packets_sent"] = s.packets_sent;
  d["bytes_sent"] = s.bytes_sent;
  d["packets_lost"] = s.packets_lost;
  d["packets_late"] = s.packets_late;
  d["packets_duplicated"] = s.packets_duplicated;
  d["packets_relayed"] = s.packets_relayed;
  d["dropped_malformed"] = s.dropped_malformed;
  d["dropped_unexpected_source"] = s.dropped_unexpected_source;
  d["dropped_oversize"] = s.dropped_oversize;
  d["dropped_unknown_payload_type"] = s.dropped_unknown_payload_type;
  d["send_errors"] = s.send_errors;
  d["rtcp_received"] = s.rtcp_received;
  d["rtcp_sent"] = s.rtcp_sent;
  d["rtcp_malformed"] = s.rtcp_malformed;
  d["dtmf_digits"] = s.dtmf_digits;
  d["concealed_samples"] = s.concealed_samples;
  d["jitter_ms"] = s.jitter_ms;
  d["jitter_buffer_delay_ms"] = s.jitter_buffer_delay_ms;
  d["rtt_ms"] = s.rtt_ms;
  d["remote_fraction_lost"] = s.remote_fraction_lost;
  d["remote_jitter_ms"] = s.remote_jitter_ms;
  d["mos"] = s.mos;
  return d;
}

py::list events_to_list(std::vector<Event>& events) {
  py::list out;
  for (Event& e : events) {
    py::object stats = py::none();
    if (e.type == EventType::Stats) stats = leg_stats_dict(e.stats);
    out.append(py::make_tuple(static_cast<int>(e.type), e.leg, e.object, e.time_ms,
                              e.digit ? py::str(std::string(1, e.digit)) : py::object(py::none()),
                              static_cast<int>(e.source), e.duration_ms, e.code, e.value, e.text, stats));
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_engine, m) {
  m.doc() = "Native media engine (see mediacore.engine for the documented API).";

  py::class_<Engine>(m, "Engine")
      .def(py::init([](const py::dict& cfg) { return std::make_unique<Engine>(engine_config(cfg)); }))
      .def("close", &Engine::close, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("closed", &Engine::closed)
      .def("fileno", &Engine::event_fd)
      .def("drain_events",
           [](Engine& e) {
             std::vector<Event> events;
             {
               py::gil_scoped_release release;
               e.drain_events(events);
             }
             return events_to_list(events);
           })
      .def("wait_events",
           [](Engine& e, int timeout_ms) {
             std::vector<Event> events;
             {
               py::gil_scoped_release release;
               e.wait_events(events, timeout_ms);
             }
             return events_to_list(events);
           })
      .def("create_leg",
           [](Engine& e, const py::dict& cfg) {
             const LegConfig c = leg_config(cfg);
             LegInfo info;
             {
               py::gil_scoped_release release;
               info = e.create_leg(c);
             }
             return py::make_tuple(info.id, info.host, info.rtp_port, info.rtcp_port);
           })
      .def("update_leg",
           [](Engine& e, ObjectId leg, const py::dict& cfg) {
             const LegConfig c = leg_config(cfg);
             py::gil_scoped_release release;
             e.update_leg(leg, c);
           })
      .def("destroy_leg", &Engine::destroy_leg, py::call_guard<py::gil_scoped_release>())
      .def(
          "bridge",
          [](Engine& e, ObjectId a, ObjectId b, int rate, bool forward_dtmf) {
            RoomOptions o;
            o.sample_rate = rate;
            o.forward_dtmf = forward_dtmf;
            py::gil_scoped_release release;
            return e.bridge(a, b, o);
          })
      .def("create_room",
           [](Engine& e, int rate, std::uint32_t affinity, bool forward_dtmf) {
             RoomOptions o;
             o.sample_rate = rate;
             o.affinity = affinity;
             o.forward_dtmf = forward_dtmf;
             py::gil_scoped_release release;
             return e.create_room(o);
           })
      .def("join", &Engine::join, py::call_guard<py::gil_scoped_release>())
      .def("leave", &Engine::leave, py::call_guard<py::gil_scoped_release>())
      .def("set_edge", &Engine::set_edge, py::call_guard<py::gil_scoped_release>())
      .def("clear_edge", &Engine::clear_edge, py::call_guard<py::gil_scoped_release>())
      .def("supervise", &Engine::supervise, py::call_guard<py::gil_scoped_release>())
      .def("set_mute", &Engine::set_mute, py::call_guard<py::gil_scoped_release>())
      .def("destroy_room", &Engine::destroy_room, py::call_guard<py::gil_scoped_release>())
      .def("play",
           [](Engine& e, ObjectId target, int kind, const std::string& path, const std::string& tone,
              const std::string& region, const std::string& digits, int duration_ms, int loops, bool stop_on_dtmf,
              double gain) {
             if (kind < 0 || kind > 3) throw std::invalid_argument("unknown play kind");
             PlaySpec s;
             s.kind = static_cast<PlayKind>(kind);
             s.path = path;
             s.tone = tone;
             s.region = region;
             s.digits = digits;
             s.duration_ms = duration_ms;
             s.loops = loops;
             s.stop_on_dtmf = stop_on_dtmf;
             s.gain = gain;
             py::gil_scoped_release release;
             return e.play(target, s);
           })
      .def("stop_playback", &Engine::stop_playback, py::call_guard<py::gil_scoped_release>())
      .def("record",
           [](Engine& e, ObjectId target, const std::string& path, int format, bool stereo, int sample_rate,
              int opus_bitrate) {
             if (format < 0 || format > 3) throw std::invalid_argument("unknown recording format");
             RecordSpec s;
             s.path = path;
             s.format = static_cast<RecordFormat>(format);
             s.stereo = stereo;
             s.sample_rate = sample_rate;
             s.opus_bitrate = opus_bitrate;
             py::gil_scoped_release release;
             return e.record(target, s);
           })
      .def("pause_recording", &Engine::pause_recording, py::call_guard<py::gil_scoped_release>())
      .def("resume_recording", &Engine::resume_recording, py::call_guard<py::gil_scoped_release>())
      .def("stop_recording", &Engine::stop_recording, py::call_guard<py::gil_scoped_release>())
      .def("send_dtmf", &Engine::send_dtmf, py::call_guard<py::gil_scoped_release>())
      .def("leg_stats",
           [](Engine& e, ObjectId leg) {
             LegStats s;
             {
               py::gil_scoped_release release;
               s = e.leg_stats(leg);
             }
             return leg_stats_dict(s);
           })
      .def("leg_stats_many",
           [](Engine& e, const std::vector<ObjectId>& legs) {
             std::vector<LegStats> all;
             {
               py::gil_scoped_release release;
               all = e.leg_stats(legs);
             }
             py::list out;
             for (const auto& s : all) out.append(leg_stats_dict(s));
             return out;
           })
      .def("stats", [](Engine& e) {
        EngineStats s;
        {
          py::gil_scoped_release release;
          s = e.stats();
        }
        py::dict d;
        py::list workers;
        for (const auto& w : s.workers) {
          py::dict wd;
          wd["legs"] = w.legs;
          wd["rooms"] = w.rooms;
          wd["packets_in"] = w.packets_in;
          wd["packets_out"] = w.packets_out;
          wd["bytes_in"] = w.bytes_in;
          wd["bytes_out"] = w.bytes_out;
          wd["ticks"] = w.ticks;
          wd["tick_overruns"] = w.tick_overruns;
          wd["load"] = w.load;
          wd["busy_ns"] = w.busy_ns;
          workers.append(wd);
        }
        d["workers"] = workers;
        d["legs"] = s.legs;
        d["rooms"] = s.rooms;
        d["players"] = s.players;
        d["recorders"] = s.recorders;
        d["port_pairs_total"] = s.port_pairs_total;
        d["port_pairs_in_use"] = s.port_pairs_in_use;
        d["port_exhausted"] = s.port_exhausted;
        d["events_delivered"] = s.events_delivered;
        d["events_dropped"] = s.events_dropped;
        d["commands"] = s.commands;
        d["recorder_bytes_written"] = s.recorder_bytes_written;
        d["recorder_overruns"] = s.recorder_overruns;
        return d;
      });

  // Errors: bad arguments are ValueError (std::invalid_argument, by pybind11),
  // unknown ids are KeyError, resource exhaustion is RuntimeError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::out_of_range& e) {
      PyErr_SetString(PyExc_KeyError, e.what());
    }
  });
}
