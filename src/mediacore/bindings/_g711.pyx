# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Native G.711 and L16 buffer kernels (see mediacore.g711 for the API)."""

cimport numpy as cnp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, uint8_t

cimport cpp_g711 as k
from pcm_buffers cimport NOGIL_THRESHOLD, Borrowed, borrow_bytes, borrow_pcm, new_pcm, release, writable_pcm

cnp.import_array()

ctypedef void (*encode_fn)(const int16_t*, size_t, uint8_t*) noexcept nogil
ctypedef void (*decode_fn)(const uint8_t*, size_t, int16_t*) noexcept nogil


cdef bytes _encode(encode_fn fn, object pcm, Py_ssize_t bytes_per_sample):
    cdef Borrowed src
    borrow_pcm(pcm, &src, "pcm")
    cdef bytes out
    cdef uint8_t* dst
    try:
        out = PyBytes_FromStringAndSize(NULL, src.n * bytes_per_sample)
        dst = <uint8_t*>PyBytes_AS_STRING(out)
        if src.n >= NOGIL_THRESHOLD:
            with nogil:
                fn(<const int16_t*>src.data, src.n, dst)
        else:
            fn(<const int16_t*>src.data, src.n, dst)
        return out
    finally:
        release(&src)


cdef object _decode(decode_fn fn, object data, Py_ssize_t bytes_per_sample, object out=None):
    cdef Borrowed src
    borrow_bytes(data, &src, "data")
    cdef Py_ssize_t n
    cdef int16_t* dst
    try:
        if src.n % bytes_per_sample:
            raise ValueError(f"data length {src.n} is not a multiple of {bytes_per_sample} bytes")
        n = src.n // bytes_per_sample
        if out is None:
            out = new_pcm(n)
            dst = <int16_t*>cnp.PyArray_DATA(out)
        else:
            dst = writable_pcm(out, n, "out")
        if n >= NOGIL_THRESHOLD:
            with nogil:
                fn(<const uint8_t*>src.data, n, dst)
        else:
            fn(<const uint8_t*>src.data, n, dst)
        return out
    finally:
        release(&src)


def ulaw_encode(pcm):
    return _encode(k.ulaw_encode, pcm, 1)

def ulaw_decode(data, out=None):
    return _decode(k.ulaw_decode, data, 1, out)

def alaw_encode(pcm):
    return _encode(k.alaw_encode, pcm, 1)

def alaw_decode(data, out=None):
    return _decode(k.alaw_decode, data, 1, out)

def l16_encode(pcm):
    return _encode(k.l16_encode, pcm, 2)

def l16_decode(data, out=None):
    return _decode(k.l16_decode, data, 2, out)

def _ulaw_decode_reference(data):
    """The scalar reference decoder (tests compare the SIMD kernel with it)."""
    return _decode(k.ulaw_decode_reference, data, 1)

def _alaw_decode_reference(data):
    return _decode(k.alaw_decode_reference, data, 1)
