"""G.711 and L16: exhaustive bit-exactness against CPython's audioop (ITU tables)."""

from __future__ import annotations

import array
import warnings

import numpy as np
import pytest

from mediacore import g711, l16

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


@pytest.mark.parametrize(
    "encode, oracle",
    [(g711.ulaw_encode, audioop.lin2ulaw), (g711.alaw_encode, audioop.lin2alaw)],
    ids=["ulaw", "alaw"],
)
def test_encode_matches_itu_tables_for_every_16bit_input(encode, oracle):
    ours = encode(ALL_SAMPLES)
    theirs = oracle(ALL_SAMPLES.tobytes(), 2)
    assert len(ours) == 65536
    mismatches = [i for i in range(65536) if ours[i] != theirs[i]]
    assert not mismatches, f"first mismatch at sample {ALL_SAMPLES[mismatches[0]]}"


@pytest.mark.parametrize(
    "decode, oracle",
    [(g711.ulaw_decode, audioop.ulaw2lin), (g711.alaw_decode, audioop.alaw2lin)],
    ids=["ulaw", "alaw"],
)
def test_decode_matches_itu_tables_for_every_code(decode, oracle):
    ours = decode(ALL_CODES)
    assert ours.dtype == np.int16 and ours.shape == (256,)
    assert ours.tobytes() == oracle(ALL_CODES, 2)


def test_known_values():
    # Zero, and the well-known silence codes.
    assert g711.ulaw_encode(np.zeros(1, np.int16)) == bytes([g711.ULAW_SILENCE])
    assert g711.alaw_encode(np.zeros(1, np.int16)) == bytes([g711.ALAW_SILENCE])
    # Full-scale values saturate to the extreme codes.
    assert g711.ulaw_encode(np.array([32767, -32768], np.int16)) == b"\x80\x00"
    assert g711.alaw_encode(np.array([32767, -32768], np.int16)) == b"\xaa\x2a"
    assert list(g711.ulaw_decode(b"\x80\x00")) == [32124, -32124]
    assert list(g711.alaw_decode(b"\xaa\x2a")) == [32256, -32256]


@pytest.mark.parametrize("codec", ["ulaw", "alaw"])
def test_encode_of_decode_is_identity_on_codes(codec):
    encode, decode = getattr(g711, f"{codec}_encode"), getattr(g711, f"{codec}_decode")
    back = encode(decode(ALL_CODES))
    # mu-law has two zeros (0x7F = -0 and 0xFF = +0); zero encodes to 0xFF.
    expected = bytes(0xFF if (codec == "ulaw" and c == 0x7F) else c for c in ALL_CODES)
    assert back == expected


def test_buffers_above_nogil_threshold_give_the_same_result():
    rng = np.random.default_rng(7)
    x = rng.integers(-32768, 32768, size=50_000, dtype=np.int16)
    assert g711.ulaw_encode(x) == audioop.lin2ulaw(x.tobytes(), 2)
    assert g711.alaw_decode(g711.alaw_encode(x)).tobytes() == audioop.alaw2lin(audioop.lin2alaw(x.tobytes(), 2), 2)


def test_accepts_any_int16_buffer():
    samples = array.array("h", [0, 100, -100, 32767])
    expected = g711.ulaw_encode(np.array(samples, dtype=np.int16))
    assert g711.ulaw_encode(samples) == expected
    assert g711.ulaw_encode(memoryview(samples)) == expected
    assert list(g711.ulaw_decode(bytearray(expected))) == list(g711.ulaw_decode(expected))
    assert list(g711.ulaw_decode(memoryview(expected))) == list(g711.ulaw_decode(expected))


def test_empty_input():
    assert g711.ulaw_encode(np.zeros(0, np.int16)) == b""
    assert g711.alaw_decode(b"").shape == (0,)
    assert l16.encode(np.zeros(0, np.int16)) == b""


@pytest.mark.parametrize(
    "bad, needle",
    [
        (np.zeros(4, dtype=np.float64), "int16"),
        (np.zeros(4, dtype=np.int32), "int16"),
        (np.zeros(8, dtype=np.int16)[::2], "contiguous"),
        ([1, 2, 3], "int16"),
        ("text", "int16"),
    ],
    ids=["float64", "int32", "strided", "list", "str"],
)
def test_bad_pcm_input_is_a_clear_value_error(bad, needle):
    with pytest.raises(ValueError, match=needle):
        g711.ulaw_encode(bad)


def test_l16_is_big_endian_and_round_trips():
    assert l16.encode(ALL_SAMPLES) == ALL_SAMPLES.astype(">i2").tobytes()
    assert np.array_equal(l16.decode(l16.encode(ALL_SAMPLES)), ALL_SAMPLES)
    assert l16.encode(np.array([0x0102], np.int16)) == b"\x01\x02"


def test_l16_rejects_odd_length():
    with pytest.raises(ValueError, match="multiple of 2"):
        l16.decode(b"\x00\x01\x02")


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 4096, 4111])
def test_simd_decoder_agrees_with_scalar_reference_at_every_length(law, length):
    from mediacore import _g711

    codes = bytes((i * 37 + 11) % 256 for i in range(length))
    fast = getattr(g711, f"{law}_decode")(codes)
    ref = getattr(_g711, f"_{law}_decode_reference")(codes)
    assert np.array_equal(fast, ref)
    assert fast.tobytes() == getattr(audioop, f"{law}2lin")(codes, 2)


def test_decode_into_preallocated_output():
    codes = g711.ulaw_encode(np.arange(-500, 500, dtype=np.int16) * 30)
    out = np.empty(len(codes), np.int16)
    result = g711.ulaw_decode(codes, out=out)
    assert result is out
    assert np.array_equal(out, g711.ulaw_decode(codes))
    assert np.array_equal(l16.decode(l16.encode(out), out=np.empty(len(out), np.int16)), out)


@pytest.mark.parametrize(
    "out, needle",
    [
        (np.empty(3, np.int16), "need 4"),
        (np.empty(4, np.int32), "int16"),
        (np.empty(8, np.int16)[::2], "contiguous"),
        (bytearray(8), "numpy"),
    ],
    ids=["short", "int32", "strided", "bytearray"],
)
def test_decode_into_rejects_a_wrong_output(out, needle):
    with pytest.raises(ValueError, match=needle):
        g711.alaw_decode(b"\x01\x02\x03\x04", out=out)


def test_decode_into_rejects_a_read_only_output():
    out = np.empty(4, np.int16)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        g711.ulaw_decode(b"\x01\x02\x03\x04", out=out)
