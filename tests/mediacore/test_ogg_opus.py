"""Ogg Opus recordings (RFC 7845) checked by an independent Python Ogg parser and opus-tools.

The parser here shares nothing with the native writer: its CRC is the
bit-by-bit definition (the writer's is table driven), and it is itself checked
on a file made by opusenc. Durations are checked exactly with opusinfo and
opusdec; content with PESQ against the espeak-ng source.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediacore import _recorder
from mediacore.recorder import OggOpusRecorder, repair, repair_ogg

needs_opus_tools = pytest.mark.skipif(shutil.which("opusdec") is None or shutil.which("opusinfo") is None,
                                      reason="opus-tools not installed")


# --------------------------------------------------------------------------- independent parser
def crc_bitwise(data: bytes) -> int:
    """Ogg CRC-32 by its definition: poly 0x04C11DB7, init 0, MSB first, no final XOR."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def parse_pages(raw: bytes, check_crc: bool = True) -> list[dict]:
    pages, off = [], 0
    while off < len(raw):
        assert raw[off:off + 4] == b"OggS", f"no capture pattern at {off}"
        version, flags, granule, serial, seq, crc, nseg = struct.unpack_from("<BBqIIIB", raw, off + 4)
        assert version == 0
        lacing = raw[off + 27:off + 27 + nseg]
        body_len = sum(lacing)
        end = off + 27 + nseg + body_len
        assert end <= len(raw), "truncated page"
        page = bytearray(raw[off:end])
        page[22:26] = b"\0\0\0\0"
        if check_crc:
            assert crc_bitwise(bytes(page)) == crc, f"bad CRC on page {seq}"
        packets, cur, pos, complete = [], b"", off + 27 + nseg, True
        for lv in lacing:
            cur += raw[pos:pos + lv]
            pos += lv
            if lv < 255:
                packets.append(cur)
                cur = b""
        if cur:
            complete = False
        pages.append(dict(flags=flags, granule=granule, serial=serial, seq=seq, crc=crc, packets=packets,
                          complete=complete, size=end - off))
        off = end
    return pages


def opus_packet_samples_48k(packet: bytes) -> int:
    """RFC 6716 section 3.1: duration from the TOC byte (frame count codes 0-3)."""
    toc = packet[0]
    config, code = toc >> 3, toc & 3
    if config < 12:
        frame = (480, 960, 1920, 2880)[config % 4]
    elif config < 16:
        frame = (480, 960)[config % 2]
    else:
        frame = (120, 240, 480, 960)[config % 4]
    frames = 1 if code == 0 else 2 if code in (1, 2) else packet[1] & 0x3F
    return frame * frames


def check_stream(raw: bytes, *, channels: int, rate: int, samples: int, comments=()) -> list[dict]:
    """Every RFC 7845 rule this writer must follow; returns the pages."""
    pages = parse_pages(raw)
    assert [p["seq"] for p in pages] == list(range(len(pages)))
    assert len({p["serial"] for p in pages}) == 1
    head, tags, audio = pages[0], pages[1], pages[2:]
    # Section 3: OpusHead alone on a BOS page with granule 0.
    assert head["flags"] == 0x02 and head["granule"] == 0 and len(head["packets"]) == 1
    magic, version, ch, pre_skip, in_rate, gain, family = struct.unpack("<8sBBHIhB", head["packets"][0])
    assert (magic, version, ch, in_rate, gain, family) == (b"OpusHead", 1, channels, rate, 0, 0)
    assert len(head["packets"][0]) == 19
    # Section 5.2: OpusTags on its own page(s), granule 0.
    assert tags["flags"] == 0 and tags["granule"] == 0 and len(tags["packets"]) == 1
    t = tags["packets"][0]
    assert t[:8] == b"OpusTags"
    vlen = struct.unpack_from("<I", t, 8)[0]
    assert t[12:12 + vlen].startswith(b"Hotline")
    n = struct.unpack_from("<I", t, 12 + vlen)[0]
    got, at = [], 16 + vlen
    for _ in range(n):
        clen = struct.unpack_from("<I", t, at)[0]
        got.append(t[at + 4:at + 4 + clen].decode())
        at += 4 + clen
    assert got == list(comments)
    # Section 4: audio pages; granule = 48 kHz end of the last packet; EOS on
    # the last only; its granule trims the end to exactly the samples recorded.
    assert audio, "no audio pages"
    total = 0
    for i, p in enumerate(audio):
        assert p["complete"], "the writer never splits packets"
        assert p["flags"] == (0x04 if i == len(audio) - 1 else 0)
        for pkt in p["packets"]:
            assert opus_packet_samples_48k(pkt) == 960  # 20 ms frames
            total += 960
        if i < len(audio) - 1:
            assert p["granule"] == total
    last = audio[-1]["granule"]
    assert last == pre_skip + samples * 48000 // rate
    assert last <= total and (len(audio) == 1 or last >= audio[-2]["granule"])
    return pages


def opusinfo_length(path) -> float:
    out = subprocess.run(["opusinfo", str(path)], check=True, capture_output=True, text=True).stdout
    m = re.search(r"Playback length: (\d+)m:([\d.]+)s", out)
    assert m, out
    return int(m.group(1)) * 60 + float(m.group(2))


def opusdec(path, rate: int, tmp: Path) -> np.ndarray:
    out = tmp / (Path(path).stem + "-dec.wav")
    subprocess.run(["opusdec", "--quiet", "--rate", str(rate), str(path), str(out)], check=True, capture_output=True)
    import wave

    with wave.open(str(out)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return data.reshape(-1, w.getnchannels())


# --------------------------------------------------------------------------- the parser itself
def test_native_crc_matches_the_bitwise_definition():
    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 27, 255, 4096):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert _recorder.ogg_crc32(data) == crc_bitwise(data)
    assert crc_bitwise(b"") == 0
    # A known value: "OggS" alone.
    assert crc_bitwise(b"OggS") == _recorder.ogg_crc32(b"OggS") == 0x5FB0A94F


@needs_opus_tools
def test_parser_accepts_a_file_made_by_opusenc(tmp_path, speech_8k):
    import wave

    src = tmp_path / "src.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(speech_8k[:16000].tobytes())
    opus = tmp_path / "ref.opus"
    subprocess.run(["opusenc", "--quiet", "--bitrate", "16", str(src), str(opus)], check=True)
    raw = opus.read_bytes()
    pages = parse_pages(raw)
    assert pages[0]["packets"][0][:8] == b"OpusHead" and pages[-1]["flags"] & 0x04
    for p in pages:
        page = bytearray(raw[sum(q["size"] for q in pages[:pages.index(p)]):][:p["size"]])
        page[22:26] = b"\0\0\0\0"
        assert _recorder.ogg_crc32(bytes(page)) == p["crc"]
    scan = _recorder.scan_ogg(raw)
    assert scan["status"] == 0 and not scan["changed"] and scan["pages"] == len(pages)


# --------------------------------------------------------------------------- recordings
@needs_opus_tools
@pytest.mark.parametrize("rate", [8000, 16000, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_recording_follows_rfc7845_and_plays_for_exactly_its_length(tmp_path, speech_8k, rate, channels):
    samples = rate * 3 // 2 + 37  # 1.5 s and a partial frame
    left = np.resize(speech_8k, samples)
    path = tmp_path / f"call-{rate}-{channels}.opus"
    comments = ["CALL_ID=abc-123", "QUEUE=support"]
    with OggOpusRecorder(path, sample_rate=rate, channels=channels, comments=comments, flush_ms=500) as rec:
        for i in range(0, samples, 333):  # odd chunk sizes: frames straddle writes
            rec.write(left[i:i + 333], None)
        pre_skip = rec._rec.pre_skip
    assert pre_skip == {8000: 52 * 6, 16000: 104 * 3, 48000: 312}[rate]
    pages = check_stream(path.read_bytes(), channels=channels, rate=rate, samples=samples, comments=comments)
    assert len(pages) == 2 + 4  # 1.5 s in 500 ms pages, then the tail
    assert opusinfo_length(path) == pytest.approx(samples / rate, abs=0.001)  # opusinfo prints whole ms
    decoded = opusdec(path, rate, tmp_path)
    assert decoded.shape == (samples, channels)


@needs_opus_tools
def test_caller_left_agent_right_and_speech_survives(tmp_path, speech_8k):
    from pesq import pesq

    speech = speech_8k[:8000 * 4]
    for side in ("left", "right"):
        path = tmp_path / f"{side}.opus"
        with OggOpusRecorder(path, channels=2) as rec:
            rec.write(speech if side == "left" else None, speech if side == "right" else None)
        dec = opusdec(path, 8000, tmp_path).astype(np.int16)
        talk, quiet = (dec[:, 0], dec[:, 1]) if side == "left" else (dec[:, 1], dec[:, 0])
        rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))  # noqa: E731
        assert rms(quiet) < rms(talk) / 1000  # the other channel is > 60 dB down
        assert pesq(8000, speech, talk, "nb") > 4.0  # time-aligned (pre-skip right) and clean


def test_mono_mixes_both_parties(tmp_path, speech_8k):
    path = tmp_path / "mono.opus"
    with OggOpusRecorder(path, channels=1) as rec:
        rec.write(speech_8k[:8000], speech_8k[8000:16000])
    check_stream(path.read_bytes(), channels=1, rate=8000, samples=8000)


@pytest.mark.parametrize("mode, expected", [("silence", 8000 * 3), ("gap", 8000 * 2)])
def test_pause_modes(tmp_path, speech_8k, mode, expected):
    path = tmp_path / f"{mode}.opus"
    with OggOpusRecorder(path, pause_mode=mode) as rec:
        rec.write(speech_8k[:8000])
        rec.pause()
        rec.write(speech_8k[8000:16000])
        rec.resume()
        rec.write(speech_8k[16000:24000])
        st = rec.statistics()
    assert st.samples_paused == 8000 and st.samples_in == 24000
    check_stream(path.read_bytes(), channels=2, rate=8000, samples=expected)


def test_empty_recording_is_a_valid_stream(tmp_path):
    path = tmp_path / "empty.opus"
    OggOpusRecorder(path).close()
    check_stream(path.read_bytes(), channels=2, rate=8000, samples=0)


# --------------------------------------------------------------------------- repair
def _recording(tmp_path, speech, name="r.opus", seconds=3, flush_ms=200) -> Path:
    path = tmp_path / name
    with OggOpusRecorder(path, channels=2, flush_ms=flush_ms, serial=0x1234) as rec:
        rec.write(speech[:8000 * seconds], speech[:8000 * seconds][::-1].copy())
    return path


@needs_opus_tools
@pytest.mark.parametrize("cut", [1, 26, 27, 100, 700])
def test_repair_cuts_a_partial_last_page_and_marks_eos(tmp_path, speech_8k, cut):
    path = _recording(tmp_path, speech_8k)
    full = path.read_bytes()
    pages = parse_pages(full)
    # What a killed writer leaves: whole pages, then part of the next one.
    keep = sum(p["size"] for p in pages[:-3])
    path.write_bytes(full[:keep + cut])
    result = repair(path)
    assert result.kind == "ogg" and result.changed and result.new_size == keep
    repaired = parse_pages(path.read_bytes())
    assert len(repaired) == len(pages) - 3 and repaired[-1]["flags"] == 0x04
    assert [p["crc"] for p in repaired[:-1]] == [p["crc"] for p in pages[:len(repaired) - 1]]
    pre_skip = struct.unpack_from("<H", repaired[0]["packets"][0], 10)[0]
    assert result.duration == (repaired[-1]["granule"] - pre_skip) / 48000
    assert opusinfo_length(path) == pytest.approx(result.duration, abs=0.001)  # opusinfo prints whole ms
    assert not repair_ogg(path).changed


def test_repair_of_a_whole_file_changes_nothing(tmp_path, speech_8k):
    path = _recording(tmp_path, speech_8k)
    before = path.read_bytes()
    assert not repair(path).changed
    assert path.read_bytes() == before


def test_repair_leaves_a_file_damaged_in_the_middle_alone(tmp_path, speech_8k):
    path = _recording(tmp_path, speech_8k)
    raw = bytearray(path.read_bytes())
    pages = parse_pages(bytes(raw))
    raw[sum(p["size"] for p in pages[:3]) + 40] ^= 0xFF  # flip a byte in page 3's body
    path.write_bytes(raw)
    with pytest.raises(ValueError, match="middle"):
        repair(path)
    assert path.read_bytes() == raw


def test_repair_refuses_a_file_without_a_valid_first_page(tmp_path):
    path = tmp_path / "junk.opus"
    path.write_bytes(b"OggS" + b"\0" * 10)
    with pytest.raises(ValueError, match="no valid Ogg page"):
        repair_ogg(path)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 5000), flips=st.lists(st.integers(0, 5000), max_size=3), tail=st.binary(max_size=64))
def test_scan_survives_any_damage(tmp_path, speech_8k, cut, flips, tail):
    path = tmp_path / "base.opus"
    if not path.exists():
        _recording(tmp_path, speech_8k, name="base.opus", seconds=1, flush_ms=100)
    raw = bytearray(path.read_bytes()[:cut])
    for at in flips:
        if at < len(raw):
            raw[at] ^= 0x5A
    raw += tail
    scan = _recorder.scan_ogg(bytes(raw))
    assert scan["status"] in (0, -1, -2)
    if scan["status"] == 0:
        kept = bytes(raw[:scan["new_size"]])
        pages = parse_pages(kept)  # every kept page is whole, with a good CRC
        assert len(pages) == scan["pages"]
        target = tmp_path / "fuzz.opus"
        target.write_bytes(raw)
        repair_ogg(target)
        again = _recorder.scan_ogg(target.read_bytes())
        assert not again["changed"]
