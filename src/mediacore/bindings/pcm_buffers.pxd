# Shared helpers for Cython kernels that take and return sample buffers.
#
# Inputs are any C-contiguous buffer: numpy int16 arrays and bytes take a fast
# path (a pointer, no buffer-protocol round trip: this is most of the cost of a
# 20 ms frame), anything else goes through the buffer protocol with its format
# checked. Errors are ValueErrors that say what was wrong.
#
# Usage:
#     cdef Borrowed b
#     borrow_pcm(obj, &b, "pcm")
#     try: ... b.data, b.n ...
#     finally: release(&b)
cimport numpy as cnp
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.stdint cimport int16_t, uint8_t

# Below this many items a kernel runs without releasing the GIL: releasing and
# re-taking it costs more than a 20 ms frame takes to process.
cdef enum:
    NOGIL_THRESHOLD = 4096

cdef struct Borrowed:
    const void* data
    Py_ssize_t n          # items (samples for PCM, bytes for byte buffers)
    Py_buffer view
    bint has_view


cdef inline int borrow_pcm(object obj, Borrowed* out, str name) except -1:
    """Borrow a 1-D C-contiguous buffer of native int16 samples."""
    cdef cnp.ndarray arr
    out.has_view = False
    if cnp.PyArray_CheckExact(obj):
        arr = <cnp.ndarray>obj
        if (cnp.PyArray_TYPE(arr) == cnp.NPY_INT16 and cnp.PyArray_NDIM(arr) == 1
                and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISNOTSWAPPED(arr)):
            out.data = cnp.PyArray_DATA(arr)
            out.n = cnp.PyArray_DIM(arr, 0)
            return 0
        if cnp.PyArray_TYPE(arr) != cnp.NPY_INT16:
            raise ValueError(f"{name} must hold int16 samples, got dtype {(<object>arr).dtype}")
        if cnp.PyArray_NDIM(arr) != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {(<object>arr).shape}")
        raise ValueError(f"{name} must be C-contiguous in native byte order (use numpy.ascontiguousarray)")
    if isinstance(obj, (str, list, tuple)):
        raise ValueError(f"{name} must be a buffer of int16 samples (numpy.int16), got {type(obj).__name__}")
    try:
        PyObject_GetBuffer(obj, &out.view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    except BufferError:
        raise ValueError(f"{name} must be a C-contiguous buffer of int16 samples") from None
    except TypeError:
        raise ValueError(f"{name} must be a buffer of int16 samples (numpy.int16), got {type(obj).__name__}") from None
    out.has_view = True
    fmt = (<bytes>out.view.format) if out.view.format != NULL else b"B"
    if out.view.itemsize != 2 or fmt not in (b"h", b"=h", b"<h", b"@h") or out.view.ndim > 1:
        PyBuffer_Release(&out.view)
        out.has_view = False
        raise ValueError(f"{name} must be a 1-D buffer of int16 samples, got format {fmt.decode()!r} "
                         f"with {out.view.itemsize}-byte items")
    out.data = out.view.buf
    out.n = out.view.len // 2
    return 0


cdef inline int borrow_bytes(object obj, Borrowed* out, str name) except -1:
    """Borrow any C-contiguous buffer as raw bytes."""
    out.has_view = False
    if PyBytes_CheckExact(obj):
        out.data = PyBytes_AS_STRING(obj)
        out.n = PyBytes_GET_SIZE(obj)
        return 0
    if isinstance(obj, str):
        raise ValueError(f"{name} must be bytes-like, got str")
    try:
        PyObject_GetBuffer(obj, &out.view, PyBUF_C_CONTIGUOUS)
    except BufferError:
        raise ValueError(f"{name} must be a C-contiguous bytes-like buffer") from None
    except TypeError:
        raise ValueError(f"{name} must be bytes-like, got {type(obj).__name__}") from None
    out.has_view = True
    out.data = out.view.buf
    out.n = out.view.len
    return 0


cdef inline void release(Borrowed* b) noexcept:
    if b.has_view:
        PyBuffer_Release(&b.view)
        b.has_view = False


cdef inline int16_t* writable_pcm(object out, Py_ssize_t n, str name) except NULL:
    """The data pointer of a writable 1-D C-contiguous int16 numpy array of length n."""
    if not cnp.PyArray_CheckExact(out):
        raise ValueError(f"{name} must be a numpy int16 array, got {type(out).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>out
    if (cnp.PyArray_TYPE(arr) != cnp.NPY_INT16 or cnp.PyArray_NDIM(arr) != 1
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISNOTSWAPPED(arr)):
        raise ValueError(f"{name} must be a 1-D C-contiguous numpy int16 array")
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} is read-only")
    if cnp.PyArray_DIM(arr, 0) != n:
        raise ValueError(f"{name} has {cnp.PyArray_DIM(arr, 0)} samples, need {n}")
    return <int16_t*>cnp.PyArray_DATA(arr)


cdef inline cnp.ndarray new_pcm(Py_ssize_t n):
    cdef cnp.npy_intp dims = n
    return cnp.PyArray_EMPTY(1, &dims, cnp.NPY_INT16, 0)
