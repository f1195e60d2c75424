/* pybroker._native: the client's per-record hot path in C.
 *
 * Three functions, each with a pure-Python twin in pybroker/client/_records_py.py that
 * gives byte-identical results (tests/client/test_records_codec.py runs one suite
 * against both):
 *
 *   murmur2(data) -> int                 Kafka's murmur2 (seed 0x9747b28c), signed 32-bit
 *   encode_varint(value) -> bytes        zigzag varint of an int32
 *   encode_varlong(value) -> bytes       zigzag varint of an int64
 *   encode_records(keys, values, headers, timestamps, base_timestamp) -> bytes
 *
 * encode_records writes the records section of a RecordBatch v2 (everything after the
 * 61-byte header, before compression). Record i is:
 *
 *   length          varint   bytes after this field
 *   attributes      int8     0
 *   timestampDelta  varlong  timestamps[i] - base_timestamp
 *   offsetDelta     varint   i
 *   keyLength       varint   -1 = null, then the key
 *   valueLength     varint   -1 = null, then the value
 *   headerCount     varint, then per header: keyLength varint, key (utf-8),
 *                   valueLength varint (-1 = null), value
 *
 * keys/values hold None, bytes-like objects or str (utf-8); headers is None (no record
 * has headers) or a list whose items are None/empty or sequences of (str, value) pairs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_VARINT 10

static uint32_t murmur2_raw(const unsigned char *data, Py_ssize_t length)
{
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    Py_ssize_t end = length & ~(Py_ssize_t)3;
    for (Py_ssize_t i = 0; i < end; i += 4) {
        uint32_t k = (uint32_t)data[i] | ((uint32_t)data[i + 1] << 8) |
                     ((uint32_t)data[i + 2] << 16) | ((uint32_t)data[i + 3] << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length & 3) {
    case 3: h ^= (uint32_t)data[end + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)data[end + 1] << 8;  /* fall through */
    case 1: h ^= (uint32_t)data[end]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static PyObject *py_murmur2(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint32_t h = murmur2_raw((const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromLong((long)(int32_t)h);
}

static inline int put_uvarint(unsigned char *out, uint64_t v)
{
    int n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

static inline int uvarint_size(uint64_t v)
{
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint64_t zigzag32(int32_t v) { return (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)); }
static inline uint64_t zigzag64(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static PyObject *py_encode_varint(PyObject *self, PyObject *arg)
{
    long long v = PyLong_AsLongLong(arg);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (v < INT32_MIN || v > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "varint out of int32 range: %lld", v);
        return NULL;
    }
    unsigned char buf[MAX_VARINT];
    int n = put_uvarint(buf, zigzag32((int32_t)v));
    return PyBytes_FromStringAndSize((const char *)buf, n);
}

static PyObject *py_encode_varlong(PyObject *self, PyObject *arg)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(arg, &overflow);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (overflow) {
        PyErr_SetString(PyExc_ValueError, "varlong out of int64 range");
        return NULL;
    }
    unsigned char buf[MAX_VARINT];
    int n = put_uvarint(buf, zigzag64((int64_t)v));
    return PyBytes_FromStringAndSize((const char *)buf, n);
}

/* A growable output buffer; grows geometrically so a batch costs O(log n) reallocs. */
typedef struct {
    unsigned char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Out;

static int out_reserve(Out *o, Py_ssize_t extra)
{
    if (o->len + extra <= o->cap)
        return 0;
    Py_ssize_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + extra) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    unsigned char *p = PyMem_Realloc(o->data, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->data = p;
    o->cap = cap;
    return 0;
}

/* A field's bytes: None -> (NULL, -1); str -> utf-8; else the buffer protocol.
 * `view` is filled (and must be released) only when *used_view is set. */
static int field_bytes(PyObject *obj, const char **ptr, Py_ssize_t *len, Py_buffer *view,
                       int *used_view, const char *what, Py_ssize_t index)
{
    *used_view = 0;
    if (obj == Py_None) {
        *ptr = NULL;
        *len = -1;
        return 0;
    }
    if (PyBytes_CheckExact(obj)) {
        *ptr = PyBytes_AS_STRING(obj);
        *len = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        *ptr = PyUnicode_AsUTF8AndSize(obj, len);
        return *ptr == NULL ? -1 : 0;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "%s of record %zd must be bytes, str or None, not %.100s",
                     what, index, Py_TYPE(obj)->tp_name);
        return -1;
    }
    *used_view = 1;
    *ptr = (const char *)view->buf;
    *len = view->len;
    return 0;
}

static inline Py_ssize_t field_size(Py_ssize_t len)
{
    return len < 0 ? 1 : uvarint_size(zigzag32((int32_t)len)) + len;
}

static inline void put_field(unsigned char *out, Py_ssize_t *pos, const char *ptr, Py_ssize_t len)
{
    if (len < 0) {
        out[(*pos)++] = 1; /* zigzag(-1) */
        return;
    }
    *pos += put_uvarint(out + *pos, zigzag32((int32_t)len));
    memcpy(out + *pos, ptr, len);
    *pos += len;
}

#define MAX_FIELD_LEN INT32_MAX

static int encode_headers(PyObject *hdrs, Py_ssize_t index, Py_ssize_t *size_out,
                          PyObject **seq_out)
{
    /* Returns the headers section size; *seq_out holds a fast sequence (or NULL). */
    *seq_out = NULL;
    if (hdrs == Py_None) {
        *size_out = 1;
        return 0;
    }
    PyObject *seq = PySequence_Fast(hdrs, "headers must be a sequence of (key, value) pairs");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_ssize_t size = uvarint_size(zigzag32((int32_t)n));
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, j);
        if (!PyTuple_Check(pair) && !PyList_Check(pair)) {
            PyErr_Format(PyExc_TypeError, "header %zd of record %zd is not a (key, value) pair", j, index);
            Py_DECREF(seq);
            return -1;
        }
        if (PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError, "header %zd of record %zd is not a (key, value) pair", j, index);
            Py_DECREF(seq);
            return -1;
        }
        PyObject *k = PySequence_Fast_GET_ITEM(pair, 0), *v = PySequence_Fast_GET_ITEM(pair, 1);
        const char *p;
        Py_ssize_t len;
        Py_buffer view;
        int used;
        if (k == Py_None) {
            PyErr_Format(PyExc_TypeError, "header %zd of record %zd has a null key", j, index);
            Py_DECREF(seq);
            return -1;
        }
        if (field_bytes(k, &p, &len, &view, &used, "header key", index) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        size += field_size(len);
        if (used)
            PyBuffer_Release(&view);
        if (field_bytes(v, &p, &len, &view, &used, "header value", index) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        size += field_size(len);
        if (used)
            PyBuffer_Release(&view);
    }
    *size_out = size;
    *seq_out = seq;
    return 0;
}

static int write_headers(unsigned char *out, Py_ssize_t *pos, PyObject *seq, Py_ssize_t index)
{
    if (seq == NULL) {
        out[(*pos)++] = 0;
        return 0;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    *pos += put_uvarint(out + *pos, zigzag32((int32_t)n));
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, j);
        for (int side = 0; side < 2; side++) {
            const char *p;
            Py_ssize_t len;
            Py_buffer view;
            int used;
            if (field_bytes(PySequence_Fast_GET_ITEM(pair, side), &p, &len, &view, &used,
                            side ? "header value" : "header key", index) < 0)
                return -1;
            put_field(out, pos, p, len);
            if (used)
                PyBuffer_Release(&view);
        }
    }
    return 0;
}

static PyObject *py_encode_records(PyObject *self, PyObject *args)
{
    PyObject *keys, *values, *headers, *timestamps;
    long long base_ts;
    if (!PyArg_ParseTuple(args, "O!O!OO!L:encode_records", &PyList_Type, &keys, &PyList_Type,
                          &values, &headers, &PyList_Type, &timestamps, &base_ts))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (PyList_GET_SIZE(values) != n || PyList_GET_SIZE(timestamps) != n ||
        (headers != Py_None && (!PyList_Check(headers) || PyList_GET_SIZE(headers) != n))) {
        PyErr_SetString(PyExc_ValueError,
                        "keys, values, timestamps (and headers unless None) must be lists of one length");
        return NULL;
    }
    if (n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many records for one batch");
        return NULL;
    }
    Out o = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *kp, *vp;
        Py_ssize_t kl, vl;
        Py_buffer kview, vview;
        int kused = 0, vused = 0;
        PyObject *hseq = NULL;
        Py_ssize_t hsize = 1;
        int overflow = 0;
        long long ts = PyLong_AsLongLongAndOverflow(PyList_GET_ITEM(timestamps, i), &overflow);
        if ((ts == -1 && PyErr_Occurred()) || overflow) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "timestamp of record %zd out of int64 range", i);
            goto fail;
        }
        int64_t delta = (int64_t)((uint64_t)ts - (uint64_t)base_ts);
        if (field_bytes(PyList_GET_ITEM(keys, i), &kp, &kl, &kview, &kused, "key", i) < 0)
            goto fail;
        if (field_bytes(PyList_GET_ITEM(values, i), &vp, &vl, &vview, &vused, "value", i) < 0) {
            if (kused)
                PyBuffer_Release(&kview);
            goto fail;
        }
        if (headers != Py_None) {
            PyObject *h = PyList_GET_ITEM(headers, i);
            if (h != Py_None && encode_headers(h, i, &hsize, &hseq) < 0)
                goto fail_fields;
        }
        if (kl > MAX_FIELD_LEN || vl > MAX_FIELD_LEN) {
            PyErr_Format(PyExc_ValueError, "record %zd is larger than 2 GiB", i);
            goto fail_all;
        }
        Py_ssize_t body = 1 + uvarint_size(zigzag64(delta)) + uvarint_size(zigzag32((int32_t)i)) +
                          field_size(kl) + field_size(vl) + hsize;
        if (body > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "record %zd is larger than 2 GiB", i);
            goto fail_all;
        }
        if (out_reserve(&o, body + MAX_VARINT) < 0)
            goto fail_all;
        Py_ssize_t pos = o.len;
        pos += put_uvarint(o.data + pos, zigzag32((int32_t)body));
        o.data[pos++] = 0; /* attributes */
        pos += put_uvarint(o.data + pos, zigzag64(delta));
        pos += put_uvarint(o.data + pos, zigzag32((int32_t)i));
        put_field(o.data, &pos, kp, kl);
        put_field(o.data, &pos, vp, vl);
        if (write_headers(o.data, &pos, hseq, i) < 0)
            goto fail_all;
        o.len = pos;
        Py_XDECREF(hseq);
        if (kused)
            PyBuffer_Release(&kview);
        if (vused)
            PyBuffer_Release(&vview);
        continue;
    fail_all:
        Py_XDECREF(hseq);
    fail_fields:
        if (kused)
            PyBuffer_Release(&kview);
        if (vused)
            PyBuffer_Release(&vview);
        goto fail;
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)o.data, o.len);
    PyMem_Free(o.data);
    return result;
fail:
    PyMem_Free(o.data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"murmur2", py_murmur2, METH_O, "Kafka's murmur2 hash of a bytes-like object (signed 32-bit)."},
    {"encode_varint", py_encode_varint, METH_O, "Zigzag varint of a signed 32-bit value."},
    {"encode_varlong", py_encode_varlong, METH_O, "Zigzag varint of a signed 64-bit value."},
    {"encode_records", py_encode_records, METH_VARARGS,
     "encode_records(keys, values, headers, timestamps, base_timestamp) -> bytes: the records "
     "section of a RecordBatch v2."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "pybroker._native",
    "C accelerator for pybroker's client: murmur2, varints, record encoding.", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
