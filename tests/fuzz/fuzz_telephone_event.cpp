// libFuzzer target: RFC 4733 telephone-event payload parser, receiver and sender.
//
// The input is a script of operations on one receiver and one sender:
//   receive a packet (timestamp, marker, arrival time, payload bytes from the
//   input), poll, flush, reset, queue an event on the sender, tick the sender
//   (and receive what it sends). Checked on every step:
// 1. parse() stays inside the payload and reports a block count that matches
//    its length; serialize(parse(x)) gives x back with the R bit cleared.
// 2. The receiver's reports pair up: every end names the event and timestamp
//    of the open start, a start never comes while one is open, end reasons and
//    codes are in range, reports never exceed the buffer.
// 3. The sender's packets have 1 <= duration <= 0xFFFF, a payload that parses
//    to the packet's fields, the marker only on an event's first packet, and
//    retransmissions repeat the previous packet (cancel() may add the E bit).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "telephone_event.hpp"

using namespace mediacore;
namespace te = mediacore::telephone_event;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_telephone_event: %s\n", what);
  std::abort();
}

struct Reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t at = 0;
  bool empty() const { return at >= size; }
  std::uint8_t u8() { return at < size ? data[at++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u16()) << 16 | u16(); }
};

void check_parse(const std::uint8_t* payload, std::size_t size) {
  te::EventBlock blocks[te::kMaxBlocks];
  const int n = te::parse(payload, size, blocks, te::kMaxBlocks);
  if (n < 0) {
    if (size != 0 && size % 4 == 0 && size / 4 <= te::kMaxBlocks) fail("a well-sized payload was refused");
    return;
  }
  if (static_cast<std::size_t>(n) * 4 != size || n < 1) fail("block count does not match the payload length");
  for (int i = 0; i < n; ++i) {
    std::uint8_t out[4];
    if (te::serialize(blocks[i], out, sizeof out) != 4) fail("serialize refused a parsed block");
    const std::uint8_t* in = payload + 4 * i;
    if (out[0] != in[0] || out[1] != (in[1] & 0xBFu) || out[2] != in[2] || out[3] != in[3])
      fail("serialize(parse(x)) != x without the R bit");
  }
  // Too small an output buffer must be refused, not overrun.
  if (n > 1 && te::parse(payload, size, blocks, static_cast<std::size_t>(n - 1)) != te::kNoRoom)
    fail("parse wrote past its capacity");
}

struct Pairing {
  bool open = false;
  std::uint8_t event = 0;
  std::uint32_t timestamp = 0;

  void check(const TelephoneEventReport* reports, int n, std::size_t capacity) {
    if (n < 0 || static_cast<std::size_t>(n) > capacity) fail("report count out of range");
    for (int i = 0; i < n; ++i) {
      const TelephoneEventReport& r = reports[i];
      if (r.event > te::kMaxKnownEvent) fail("an unknown event was reported");
      if (r.kind == TelephoneEventReportKind::kStart) {
        if (open) fail("a start while another event is open");
        if (r.reason != TelephoneEventEndReason::kNone) fail("a start with an end reason");
        open = true;
        event = r.event;
        timestamp = r.timestamp;
      } else if (r.kind == TelephoneEventReportKind::kEnd) {
        if (!open) fail("an end without a start");
        if (r.event != event || r.timestamp != timestamp) fail("an end for another event than the open one");
        if (r.reason == TelephoneEventEndReason::kNone || static_cast<int>(r.reason) > 4) fail("bad end reason");
        open = false;
      } else {
        fail("bad report kind");
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in{data, size};
  TelephoneEventReceiverConfig rc;
  rc.clock_rate = (in.u8() & 1) ? 16000 : 8000;
  rc.timeout_ms = 1 + in.u8();
  TelephoneEventReceiver receiver(rc);

  TelephoneEventSenderConfig sc;
  sc.clock_rate = rc.clock_rate;
  sc.packet_interval = 1u + (in.u16() % 2000u);
  sc.end_repeats = 1 + in.u8() % 4;
  sc.min_gap = in.u16();
  TelephoneEventSender sender(sc);

  Pairing pairing;
  TelephoneEventReport reports[TelephoneEventReceiver::kMaxReportsPerPacket];
  std::int64_t now = 0;
  std::uint32_t sender_clock = in.u32();
  TelephoneEventPacket previous{};
  bool have_previous = false;
  bool expect_marker = true;
  int operations = 0;

  while (!in.empty() && operations++ < 4096) {
    const std::uint8_t op = in.u8();
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {  // a packet from the network
        const std::uint32_t timestamp = in.u32();
        const bool marker = op & 0x80;
        now += in.u8();
        std::size_t len = in.u8() % 72;
        if (len > in.size - in.at) len = in.size - in.at;
        const std::uint8_t* payload = in.data + in.at;
        in.at += len;
        check_parse(payload, len);
        const int n = receiver.receive(timestamp, marker, payload, len, (op & 0x40) ? TelephoneEventReceiver::kNoTime : now,
                                       reports, sizeof reports / sizeof reports[0]);
        if (n == -1) break;
        pairing.check(reports, n, sizeof reports / sizeof reports[0]);
        break;
      }
      case 3: {  // time passes
        now += in.u16();
        pairing.check(reports, receiver.poll(now, reports, 2), 2);
        break;
      }
      case 4: {
        if (op & 0x10) {
          pairing.check(reports, receiver.flush(reports, 2), 2);
          if (pairing.open) fail("flush left an event open");
        } else {
          receiver.reset();
          pairing.open = false;
        }
        break;
      }
      case 5: {  // queue an event on the sender
        const std::uint8_t event = in.u8();
        const std::uint32_t duration = in.u32() >> (in.u8() % 32);
        sender.enqueue(event, duration, in.u8());
        if (op & 0x20) sender.cancel();
        break;
      }
      default: {  // a sender tick; what it sends goes to the receiver
        TelephoneEventPacket p{};
        const int sent = sender.tick(sender_clock, &p);
        sender_clock += (op & 0x10) ? 0u : sc.packet_interval;
        if (sent == 0) {
          if (sender.idle()) expect_marker = true;
          break;
        }
        if (sent != 1) fail("tick returned neither 0 nor 1");
        if (p.duration == 0) fail("a zero duration was sent");
        te::EventBlock block{};
        if (te::parse(p.payload, sizeof p.payload, &block, 1) != 1 || block.event != p.event ||
            block.end != p.end || block.volume != p.volume || block.duration != p.duration)
          fail("a packet's payload does not say what its fields say");
        if (p.retransmission) {
          // Same event, volume, duration and timestamp; the E bit may appear
          // (cancel() while a segment's last packet is repeated ends the event).
          if (!have_previous || p.payload[0] != previous.payload[0] || p.payload[2] != previous.payload[2] ||
              p.payload[3] != previous.payload[3] || (p.payload[1] & 0x7Fu) != (previous.payload[1] & 0x7Fu) ||
              (previous.end && !p.end) || p.timestamp != previous.timestamp || p.marker)
            fail("a retransmission differs from the packet it repeats");
        } else {
          if (p.marker != expect_marker) fail("marker bit on the wrong packet");
          expect_marker = false;
        }
        if (p.end) expect_marker = true;  // the next packet starts an event (ends may come by repeats after cancel())
        previous = p;
        have_previous = true;
        now += 20;
        const int n = receiver.receive(p.timestamp, p.marker, p.payload, sizeof p.payload, now, reports,
                                       sizeof reports / sizeof reports[0]);
        if (n < 0) fail("the receiver refused the sender's packet");
        pairing.check(reports, n, sizeof reports / sizeof reports[0]);
        break;
      }
    }
  }
  pairing.check(reports, receiver.flush(reports, 2), 2);
  if (pairing.open || receiver.active()) fail("an event is open after flush");
  return 0;
}
