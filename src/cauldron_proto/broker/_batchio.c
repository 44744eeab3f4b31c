/* _batchio: a socket's waiting multipart messages received, and a list of multipart messages
 * sent, in one call each, without blocking; the optional compiled I/O of the broker's loop.
 *
 * No protocol here: limits, sizes and the frame to look at are parameters; the routing core,
 * the codec and the limits' meaning stay in Python (see cauldron_proto.broker.batchio, which
 * chooses this module or the pure-Python loop, and docs/native.md).
 *
 * libzmq is the one pyzmq has loaded (a socket's handle, ``sock.underlying``, is only valid
 * in that copy): its functions are looked up at import through pyzmq's backend module, whose
 * dependencies include it (dlsym on a dlopen handle searches them), so nothing is linked and
 * no zmq.h is needed (pyzmq's wheels ship neither); the few declarations below are libzmq's
 * stable C ABI (4.1 and later). If any function is missing, importing this module fails and
 * the pure-Python loop runs.
 *
 * The GIL is released while libzmq is called: once per batch received (all of its frames,
 * Python objects are built after), once per batch sent. Nothing blocks (ZMQ_DONTWAIT).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

typedef struct zmq_msg_t {
    unsigned char _[64] __attribute__((aligned(sizeof(void *))));
} zmq_msg_t;

#define Z_DONTWAIT 1
#define Z_SNDMORE 2
#define Z_SRCFD 2

static int (*z_msg_init)(zmq_msg_t *);
static int (*z_msg_recv)(zmq_msg_t *, void *, int);
static int (*z_msg_close)(zmq_msg_t *);
static void *(*z_msg_data)(zmq_msg_t *);
static size_t (*z_msg_size)(const zmq_msg_t *);
static int (*z_msg_more)(const zmq_msg_t *);
static int (*z_msg_get)(const zmq_msg_t *, int);
static const char *(*z_msg_gets)(const zmq_msg_t *, const char *);
static int (*z_send)(void *, const void *, size_t, int);
static int (*z_msg_send)(zmq_msg_t *, void *, int);
static int (*z_errno)(void);
static void (*z_version)(int *, int *, int *);

static PyObject *zmq_error;  /* zmq.ZMQError */

/* ---- receiving ------------------------------------------------------------------------- */

typedef struct {
    zmq_msg_t msg;
    int live;  /* 0: a frame over the kept size, closed (None) */
} slot_t;

typedef struct {
    Py_ssize_t first;    /* the routing id's slot; its frames follow */
    Py_ssize_t nslots;   /* slots after the routing id */
    long long size;      /* bytes after the routing id */
    Py_ssize_t count;    /* frames after the routing id */
    int over;            /* over max_frames or max_size */
    int fd;              /* its connection's file descriptor (-1: none) */
} record_t;

typedef struct {
    slot_t *slots;
    Py_ssize_t used, cap;
    record_t *records;
    Py_ssize_t nrecords;
} batch_t;

static int reserve(batch_t *b) {  /* room for one more slot; no GIL needed */
    if (b->used < b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap * 2 : 64;
    slot_t *grown = PyMem_RawRealloc(b->slots, (size_t)cap * sizeof(slot_t));
    if (grown == NULL)
        return -1;
    b->slots = grown;
    b->cap = cap;
    return 0;
}

static void release(batch_t *b) {
    for (Py_ssize_t i = 0; i < b->used; i++)
        if (b->slots[i].live)
            z_msg_close(&b->slots[i].msg);
    PyMem_RawFree(b->slots);
    PyMem_RawFree(b->records);
}

/* Read up to `limit` messages into `b` (no GIL). Returns 0, or an errno: ENOMEM, or a
 * libzmq error on a message's first frame (only when none was read: later, the next call
 * meets it) or inside a message. */
static int read_batch(batch_t *b, void *sock, Py_ssize_t limit, Py_ssize_t max_frames,
                      long long max_size, size_t kept_size) {
    zmq_msg_t scratch;
    for (Py_ssize_t n = 0; n < limit; n++) {
        if (reserve(b) < 0)
            return ENOMEM;
        slot_t *id = &b->slots[b->used];
        z_msg_init(&id->msg);
        if (z_msg_recv(&id->msg, sock, Z_DONTWAIT) < 0) {
            int err = z_errno();
            z_msg_close(&id->msg);
            return (err == EAGAIN || n > 0) ? 0 : err;
        }
        id->live = 1;
        record_t *r = &b->records[b->nrecords++];
        r->first = b->used++;
        r->nslots = 0, r->size = 0, r->count = 0, r->over = 0;
        int fd = z_msg_get(&id->msg, Z_SRCFD);
        r->fd = fd < 0 ? -1 : fd;
        int more = z_msg_more(&id->msg), dropped = 0;
        while (more) {
            zmq_msg_t *msg = &scratch;
            if (!dropped) {
                if (reserve(b) < 0)
                    return ENOMEM;
                msg = &b->slots[b->used].msg;
            }
            z_msg_init(msg);
            if (z_msg_recv(msg, sock, Z_DONTWAIT) < 0) {
                int err = z_errno();
                z_msg_close(msg);
                return err ? err : EIO;
            }
            more = z_msg_more(msg);
            size_t length = z_msg_size(msg);
            r->size += (long long)length;
            r->count++;
            if (dropped) {  /* past max_frames: counted, not kept */
                z_msg_close(msg);
                continue;
            }
            if (!r->over && (r->size > max_size || r->count > max_frames)) {
                r->over = 1;  /* what was read so far is kept up to the kept size */
                for (Py_ssize_t i = r->first + 1; i < b->used; i++)
                    if (z_msg_size(&b->slots[i].msg) > kept_size) {
                        z_msg_close(&b->slots[i].msg);
                        b->slots[i].live = 0;
                    }
            }
            if (r->over && r->count > max_frames) {  /* none of it is kept */
                for (Py_ssize_t i = r->first + 1; i < b->used; i++)
                    if (b->slots[i].live)
                        z_msg_close(&b->slots[i].msg);
                z_msg_close(msg);
                b->used = r->first + 1;
                r->nslots = 0;
                dropped = 1;
                continue;
            }
            b->slots[b->used].live = 1;
            if (r->over && length > kept_size) {
                z_msg_close(msg);
                b->slots[b->used].live = 0;
            }
            b->used++;
            r->nslots++;
        }
    }
    return 0;
}

static PyObject *msg_bytes(slot_t *slot) {
    if (!slot->live)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(z_msg_data(&slot->msg), (Py_ssize_t)z_msg_size(&slot->msg));
}

/* A metadata property of a received frame as str; '' if it has none (or not UTF-8). */
static PyObject *property(slot_t *slot, const char *name) {
    const char *value = z_msg_gets(&slot->msg, name);
    if (value != NULL) {
        PyObject *text = PyUnicode_DecodeUTF8(value, (Py_ssize_t)strlen(value), "strict");
        if (text != NULL)
            return text;
        PyErr_Clear();
    }
    return PyUnicode_FromStringAndSize("", 0);
}

static int matches(slot_t *slots, record_t *r, Py_ssize_t at, Py_ssize_t at_least, const char *value,
                   Py_ssize_t length) {
    if (value == NULL || r->count < at_least || r->count != r->nslots)
        return 0;
    Py_ssize_t i = at < 0 ? r->count + at : at;
    if (i < 0 || i >= r->count)
        return 0;
    slot_t *s = &slots[r->first + 1 + i];
    return (Py_ssize_t)z_msg_size(&s->msg) == length && memcmp(z_msg_data(&s->msg), value, (size_t)length) == 0;
}

/* (peer, frames, size, count, fd, over, key, address) for the record `r`. */
static PyObject *message(batch_t *b, record_t *r, Py_ssize_t max_frames, int want_key, Py_ssize_t note_at,
                         Py_ssize_t note_at_least, const char *note, Py_ssize_t note_length) {
    slot_t *id = &b->slots[r->first];
    PyObject *frames = Py_None, *key = Py_None, *address = Py_None;
    Py_INCREF(Py_None), Py_INCREF(Py_None), Py_INCREF(Py_None);
    PyObject *peer = msg_bytes(id);
    if (peer == NULL)
        goto fail;
    if (!r->over || r->count <= max_frames) {
        Py_DECREF(frames);
        frames = PyList_New(r->nslots);
        if (frames == NULL)
            goto fail;
        for (Py_ssize_t i = 0; i < r->nslots; i++) {
            PyObject *frame = msg_bytes(&b->slots[r->first + 1 + i]);
            if (frame == NULL)
                goto fail;
            PyList_SET_ITEM(frames, i, frame);
        }
    }
    if (!r->over && want_key) {
        Py_DECREF(key);
        if ((key = property(id, "User-Id")) == NULL)
            goto fail;
    }
    if (!r->over && matches(b->slots, r, note_at, note_at_least, note, note_length)) {
        Py_DECREF(address);
        if ((address = property(id, "Peer-Address")) == NULL)
            goto fail;
    }
    return Py_BuildValue("(NNLniONN)", peer, frames, r->size, r->count, r->fd, r->over ? Py_True : Py_False,
                         key, address);
fail:
    Py_XDECREF(peer), Py_XDECREF(frames), Py_XDECREF(key), Py_XDECREF(address);
    return NULL;
}

/* The libzmq socket of a handle (``sock.underlying``, an int); NULL with an exception set. */
static void *socket_of(PyObject *handle) {
    void *sock = PyLong_AsVoidPtr(handle);
    if (sock == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "a NULL socket handle");
    return sock;
}

static PyObject *raise_zmq(int err) {
    if (err == ENOMEM)
        return PyErr_NoMemory();
    PyObject *exc = PyObject_CallFunction(zmq_error, "i", err);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* counts[fd] += bytes; -1 on an error (set). */
static int count_bytes(PyObject *counts, int fd, long long bytes) {
    PyObject *key = PyLong_FromLong(fd);
    if (key == NULL)
        return -1;
    PyObject *was = PyDict_GetItemWithError(counts, key);  /* borrowed */
    long long total = bytes;
    if (was != NULL) {
        total += PyLong_AsLongLong(was);
    } else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *value = PyErr_Occurred() ? NULL : PyLong_FromLongLong(total);
    int rc = value == NULL ? -1 : PyDict_SetItem(counts, key, value);
    Py_XDECREF(value);
    Py_DECREF(key);
    return rc;
}

PyDoc_STRVAR(receive_doc,
"receive(handle, limit, max_frames, max_size, kept_size, want_key=False, note_at=0, note_at_least=0, note=None,\n"
"        counts=None, frame_overhead=0)\n"
"--\n\n"
"Up to ``limit`` multipart messages waiting on the socket ``handle`` (``sock.underlying``), read\n"
"without blocking; a list of (peer, frames, size, count, fd, over, key, address), one a message.\n\n"
"``peer``: its first frame (a ROUTER's routing id). ``size`` and ``count``: the bytes and frames\n"
"after it. ``over``: more than ``max_frames`` frames or ``max_size`` bytes; then ``frames`` is the\n"
"kept list (frames over ``kept_size`` bytes are None), or None past ``max_frames``, the rest\n"
"read and discarded. ``fd``: the file descriptor of its connection (-1: none). ``key``: the\n"
"User-Id property when ``want_key`` (else None); ``address``: the Peer-Address property when\n"
"``note`` is bytes, the message has at least ``note_at_least`` frames and ``frames[note_at]``\n"
"equals it (else None); '' when a property is missing. Neither is given for a message over.\n"
"``counts``: a dict, file descriptor -> bytes, to which each message read (over or not) adds its\n"
"``size`` and ``frame_overhead`` per frame of ``count``, under its connection's descriptor (none\n"
"without one).\n"
"Raises zmq.ZMQError for an error other than EAGAIN before any message was read.");

static PyObject *receive(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"handle", "limit", "max_frames", "max_size", "kept_size", "want_key", "note_at",
                            "note_at_least", "note", "counts", "frame_overhead", NULL};
    PyObject *handle, *note = Py_None, *counts = Py_None;
    Py_ssize_t limit, max_frames, kept_size, note_at = 0, note_at_least = 0, frame_overhead = 0;
    long long max_size;
    int want_key = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnnLn|pnnOOn:receive", names, &handle, &limit, &max_frames,
                                     &max_size, &kept_size, &want_key, &note_at, &note_at_least, &note, &counts,
                                     &frame_overhead))
        return NULL;
    if (counts != Py_None && !PyDict_Check(counts)) {
        PyErr_SetString(PyExc_TypeError, "counts must be a dict or None");
        return NULL;
    }
    void *sock = socket_of(handle);
    if (sock == NULL)
        return NULL;
    if (limit < 0 || max_frames < 0 || kept_size < 0) {
        PyErr_SetString(PyExc_ValueError, "limit, max_frames and kept_size must be >= 0");
        return NULL;
    }
    if (note != Py_None && !PyBytes_Check(note)) {
        PyErr_SetString(PyExc_TypeError, "note must be bytes or None");
        return NULL;
    }
    batch_t b = {0};
    b.records = PyMem_RawMalloc((size_t)(limit ? limit : 1) * sizeof(record_t));
    if (b.records == NULL)
        return PyErr_NoMemory();
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = read_batch(&b, sock, limit, max_frames, max_size, (size_t)kept_size);
    Py_END_ALLOW_THREADS
    PyObject *out = NULL;
    if (err) {
        raise_zmq(err);
        goto done;
    }
    const char *value = note == Py_None ? NULL : PyBytes_AS_STRING(note);
    Py_ssize_t length = note == Py_None ? 0 : PyBytes_GET_SIZE(note);
    out = PyList_New(b.nrecords);
    if (out == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < b.nrecords; i++) {
        record_t *r = &b.records[i];
        PyObject *item = message(&b, r, max_frames, want_key, note_at, note_at_least, value, length);
        if (item == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, item);
        if (counts != Py_None && r->fd >= 0
                && count_bytes(counts, r->fd, r->size + (long long)r->count * frame_overhead) < 0) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    release(&b);
    return out;
}

/* ---- sending --------------------------------------------------------------------------- */

typedef struct {
    const char *data;
    Py_ssize_t size;
} part_t;

PyDoc_STRVAR(transmit_doc,
"transmit(handle, gone_errno, messages)\n"
"--\n\n"
"Send each multipart message (a sequence of bytes-like frames) of ``messages`` on the socket\n"
"``handle`` without blocking; what could not go, as ``transmit_all`` does: a message whose send\n"
"fails stops there and comes back as (frames, gone), ``gone`` when the error was\n"
"``gone_errno``; None when everything went. Frames are copied into libzmq.");

static PyObject *transmit(PyObject *self, PyObject *args) {
    PyObject *handle, *messages;
    int gone_errno;
    if (!PyArg_ParseTuple(args, "OiO:transmit", &handle, &gone_errno, &messages))
        return NULL;
    void *sock = socket_of(handle);
    if (sock == NULL)
        return NULL;
    PyObject *seq = PySequence_Fast(messages, "messages must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), nparts = 0, held = 0;
    PyObject **lists = PyMem_Calloc((size_t)(n ? n : 1), sizeof(PyObject *));
    Py_ssize_t *starts = PyMem_Calloc((size_t)n + 1, sizeof(Py_ssize_t));
    int *errors = PyMem_Calloc((size_t)(n ? n : 1), sizeof(int));
    part_t *parts = NULL;
    Py_buffer *views = NULL;
    Py_ssize_t nviews = 0;
    PyObject *out = NULL;
    if (lists == NULL || starts == NULL || errors == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; held < n; held++) {  /* each message as a fast sequence, held until the end */
        lists[held] = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, held), "a message must be a sequence");
        if (lists[held] == NULL)
            goto done;
        starts[held] = nparts;
        nparts += PySequence_Fast_GET_SIZE(lists[held]);
    }
    starts[n] = nparts;
    parts = PyMem_Calloc((size_t)(nparts ? nparts : 1), sizeof(part_t));
    views = PyMem_Calloc((size_t)(nparts ? nparts : 1), sizeof(Py_buffer));
    if (parts == NULL || views == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t m = 0; m < n; m++) {
        PyObject **items = PySequence_Fast_ITEMS(lists[m]);
        for (Py_ssize_t i = starts[m]; i < starts[m + 1]; i++) {
            PyObject *frame = items[i - starts[m]];
            if (PyBytes_CheckExact(frame)) {
                parts[i].data = PyBytes_AS_STRING(frame), parts[i].size = PyBytes_GET_SIZE(frame);
                continue;
            }
            if (PyObject_GetBuffer(frame, &views[nviews], PyBUF_SIMPLE) < 0)
                goto done;
            parts[i].data = views[nviews].buf, parts[i].size = views[nviews].len;
            nviews++;
        }
    }
    /* The frames stay alive meanwhile: each message's fast sequence (a list is itself, held
     * here; anything else a new list) holds them, and only this thread uses the socket. */
    Py_ssize_t nfailed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t m = 0; m < n; m++) {
        for (Py_ssize_t i = starts[m]; i < starts[m + 1]; i++) {
            int flags = i + 1 < starts[m + 1] ? Z_DONTWAIT | Z_SNDMORE : Z_DONTWAIT;
            if (z_send(sock, parts[i].data, (size_t)parts[i].size, flags) < 0) {
                errors[m] = z_errno();
                if (errors[m] == 0)
                    errors[m] = EIO;
                nfailed++;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (nfailed == 0) {
        out = Py_None;
        Py_INCREF(out);
        goto done;
    }
    out = PyList_New(0);
    for (Py_ssize_t m = 0; out != NULL && m < n; m++) {
        if (!errors[m])
            continue;
        PyObject *pair = Py_BuildValue("(OO)", PySequence_Fast_GET_ITEM(seq, m),
                                       errors[m] == gone_errno ? Py_True : Py_False);
        if (pair == NULL || PyList_Append(out, pair) < 0)
            Py_CLEAR(out);
        Py_XDECREF(pair);
    }
done:
    for (Py_ssize_t i = 0; i < nviews; i++)
        PyBuffer_Release(&views[i]);
    for (Py_ssize_t m = 0; m < held; m++)
        Py_DECREF(lists[m]);
    PyMem_Free(lists), PyMem_Free(starts), PyMem_Free(errors), PyMem_Free(parts), PyMem_Free(views);
    Py_DECREF(seq);
    return out;
}

/* ---- relaying ---------------------------------------------------------------------------- */

#define RELAY_CHUNK 32  /* messages held at once: read, decided, then sent */

typedef struct {
    Py_ssize_t first, nslots;  /* slots of a message within limits (nslots 0: over, none kept) */
    long long size;            /* bytes, every frame */
    Py_ssize_t count;          /* frames */
    int over;                  /* 1: over max_frames, 2: over max_size (checked in that order) */
    int fd;                    /* its connection's file descriptor (-1: none) */
} relayed_t;

/* Read up to `limit` messages (no GIL); those over a limit are read and discarded as they come.
 * Returns 0 or an errno (as read_batch). */
static int read_relay(slot_t **slots, Py_ssize_t *cap, relayed_t *out, Py_ssize_t *n, void *sock,
                      Py_ssize_t limit, Py_ssize_t max_frames, long long max_size) {
    batch_t b = {*slots, 0, *cap, NULL, 0};
    int err = 0;
    zmq_msg_t scratch;
    for (*n = 0; *n < limit; ) {
        relayed_t *r = &out[*n];
        r->first = b.used, r->nslots = 0, r->size = 0, r->count = 0, r->over = 0, r->fd = -1;
        int more = 1;
        while (more) {
            zmq_msg_t *msg = &scratch;
            if (!r->over) {
                if (reserve(&b) < 0) {
                    err = ENOMEM;
                    goto done;
                }
                msg = &b.slots[b.used].msg;
            }
            z_msg_init(msg);
            if (z_msg_recv(msg, sock, Z_DONTWAIT) < 0) {
                err = z_errno();
                z_msg_close(msg);
                if (r->count == 0 && (err == EAGAIN || *n > 0))
                    err = 0;  /* nothing more waits (or the next call meets the error) */
                else if (err == 0)
                    err = EIO;
                goto done;
            }
            more = z_msg_more(msg);
            if (r->count == 0) {
                int fd = z_msg_get(msg, Z_SRCFD);
                r->fd = fd < 0 ? -1 : fd;
            }
            r->size += (long long)z_msg_size(msg);
            r->count++;
            if (!r->over && (r->count > max_frames || r->size > max_size)) {
                for (Py_ssize_t i = r->first; i < b.used; i++)
                    z_msg_close(&b.slots[i].msg);
                z_msg_close(msg);
                b.used = r->first, r->nslots = 0;
                r->over = -1;  /* which limit is decided on the whole message, below */
                continue;
            }
            if (r->over) {
                z_msg_close(msg);
                continue;
            }
            b.slots[b.used++].live = 1;
            r->nslots++;
        }
        if (r->over)
            r->over = r->count > max_frames ? 1 : 2;
        (*n)++;
    }
done:
    *slots = b.slots, *cap = b.cap;
    if (err) {
        for (Py_ssize_t i = 0; i < b.used; i++)
            z_msg_close(&b.slots[i].msg);
    }
    return err;
}

PyDoc_STRVAR(relay_doc,
"relay(source, destination, limit, max_frames, max_size, frames_reason, size_reason, decide=None,\n"
"      counts=None, frame_overhead=0)\n"
"--\n\n"
"Move up to ``limit`` multipart messages waiting on the socket ``source`` to ``destination``\n"
"(handles, ``sock.underlying``) without blocking and without copying them; (relayed, dropped).\n\n"
"A message of more than ``max_frames`` frames is dropped (reason ``frames_reason``), else one of\n"
"more than ``max_size`` bytes in all (``size_reason``); they are read and discarded. Each other\n"
"message, when ``decide`` is given, is sent only if ``decide(key, first_frame, count)`` (key:\n"
"the User-Id of its connection, '' if none) returns None, else dropped with the reason it\n"
"returns. ``dropped``: (reason, count, size, first_frame, key) for each, the last two None\n"
"for a message over a limit. A send that fails (only at the end of the context) closes the\n"
"message, counted neither way. ``counts``: a dict, file descriptor -> bytes, to which each\n"
"message read (relayed or not) adds its size and ``frame_overhead`` per frame, under its\n"
"connection's descriptor (for the unfinished-message checks; none without a descriptor).");

static PyObject *relay(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"source", "destination", "limit", "max_frames", "max_size", "frames_reason",
                            "size_reason", "decide", "counts", "frame_overhead", NULL};
    PyObject *source, *destination, *frames_reason, *size_reason, *decide = Py_None, *counts = Py_None;
    Py_ssize_t limit, max_frames, frame_overhead = 0;
    long long max_size;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOnnLOO|OOn:relay", names, &source, &destination, &limit,
                                     &max_frames, &max_size, &frames_reason, &size_reason, &decide, &counts,
                                     &frame_overhead))
        return NULL;
    if (counts != Py_None && !PyDict_Check(counts)) {
        PyErr_SetString(PyExc_TypeError, "counts must be a dict or None");
        return NULL;
    }
    void *src = socket_of(source), *dst = src == NULL ? NULL : socket_of(destination);
    if (dst == NULL)
        return NULL;
    PyObject *dropped = PyList_New(0);
    if (dropped == NULL)
        return NULL;
    slot_t *slots = NULL;
    Py_ssize_t cap = 0, relayed = 0, done = 0;
    relayed_t chunk[RELAY_CHUNK];
    int pass[RELAY_CHUNK];
    PyObject *out = NULL;
    while (done < limit) {
        Py_ssize_t n = 0, want = limit - done < RELAY_CHUNK ? limit - done : RELAY_CHUNK;
        int err;
        Py_BEGIN_ALLOW_THREADS
        err = read_relay(&slots, &cap, chunk, &n, src, want, max_frames, max_size);
        Py_END_ALLOW_THREADS
        if (err) {
            raise_zmq(err);
            goto fail;
        }
        int failed = 0;
        for (Py_ssize_t m = 0; counts != Py_None && !failed && m < n; m++) {
            if (chunk[m].fd >= 0 && count_bytes(counts, chunk[m].fd,
                                                chunk[m].size + (long long)chunk[m].count * frame_overhead) < 0)
                failed = 1;
        }
        for (Py_ssize_t m = 0; m < n; m++) {  /* decided with the GIL; nothing sent yet */
            relayed_t *r = &chunk[m];
            PyObject *reason = NULL, *first = Py_None, *key = Py_None;
            pass[m] = 0;
            if (failed)
                continue;
            if (r->over) {
                reason = r->over == 1 ? frames_reason : size_reason;
                Py_INCREF(reason), Py_INCREF(first), Py_INCREF(key);
            } else if (decide == Py_None) {
                pass[m] = 1;
                continue;
            } else {
                slot_t *head = &slots[r->first];
                first = PyBytes_FromStringAndSize(z_msg_data(&head->msg), (Py_ssize_t)z_msg_size(&head->msg));
                key = first == NULL ? NULL : property(head, "User-Id");
                reason = key == NULL ? NULL : PyObject_CallFunction(decide, "OOn", key, first, r->count);
                if (reason == Py_None) {
                    pass[m] = 1;
                    Py_DECREF(reason), Py_DECREF(first), Py_DECREF(key);
                    continue;
                }
            }
            PyObject *item = reason == NULL ? NULL : Py_BuildValue("(OnLOO)", reason, r->count, r->size, first, key);
            Py_XDECREF(reason), Py_XDECREF(first), Py_XDECREF(key);
            if (item == NULL || PyList_Append(dropped, item) < 0)
                failed = 1;
            Py_XDECREF(item);
        }
        Py_ssize_t sent = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t m = 0; m < n; m++) {
            relayed_t *r = &chunk[m];
            int ok = pass[m];
            for (Py_ssize_t i = r->first; i < r->first + r->nslots; i++) {
                zmq_msg_t *msg = &slots[i].msg;
                int flags = i + 1 < r->first + r->nslots ? Z_DONTWAIT | Z_SNDMORE : Z_DONTWAIT;
                if (ok && z_msg_send(msg, dst, flags) >= 0)
                    continue;  /* libzmq owns it now */
                ok = 0;
                z_msg_close(msg);
            }
            sent += ok;
        }
        Py_END_ALLOW_THREADS
        relayed += sent;
        done += n;
        if (failed)
            goto fail;
        if (n < want)
            break;
    }
    out = Py_BuildValue("(nO)", relayed, dropped);
fail:
    PyMem_RawFree(slots);
    Py_DECREF(dropped);
    return out;
}

/* ---- the module ------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"receive", (PyCFunction)(void (*)(void))receive, METH_VARARGS | METH_KEYWORDS, receive_doc},
    {"transmit", transmit, METH_VARARGS, transmit_doc},
    {"relay", (PyCFunction)(void (*)(void))relay, METH_VARARGS | METH_KEYWORDS, relay_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_batchio",
    "Batched, non-blocking receive and send of multipart messages on a libzmq socket (see receive, transmit).",
    -1, methods,
};

/* libzmq's functions from the copy pyzmq loaded (see the top of this file). */
static int bind_libzmq(void) {
    PyObject *backend = PyImport_ImportModule("zmq.backend.cython._zmq");
    if (backend == NULL)
        return -1;
    PyObject *path = PyObject_GetAttrString(backend, "__file__");
    Py_DECREF(backend);
    if (path == NULL)
        return -1;
    PyObject *encoded = PyUnicode_EncodeFSDefault(path);
    Py_DECREF(path);
    if (encoded == NULL)
        return -1;
    void *lib = dlopen(PyBytes_AS_STRING(encoded), RTLD_NOW | RTLD_NOLOAD);
    Py_DECREF(encoded);
    if (lib == NULL) {
        PyErr_Format(PyExc_ImportError, "pyzmq's backend is not loaded: %s", dlerror());
        return -1;
    }
    struct { void **slot; const char *name; } wanted[] = {
        {(void **)&z_msg_init, "zmq_msg_init"}, {(void **)&z_msg_recv, "zmq_msg_recv"},
        {(void **)&z_msg_close, "zmq_msg_close"}, {(void **)&z_msg_data, "zmq_msg_data"},
        {(void **)&z_msg_size, "zmq_msg_size"}, {(void **)&z_msg_more, "zmq_msg_more"},
        {(void **)&z_msg_get, "zmq_msg_get"}, {(void **)&z_msg_gets, "zmq_msg_gets"},
        {(void **)&z_send, "zmq_send"}, {(void **)&z_msg_send, "zmq_msg_send"}, {(void **)&z_errno, "zmq_errno"}, {(void **)&z_version, "zmq_version"},
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        *wanted[i].slot = dlsym(lib, wanted[i].name);
        if (*wanted[i].slot == NULL) {
            PyErr_Format(PyExc_ImportError, "libzmq as pyzmq loaded it has no %s", wanted[i].name);
            return -1;
        }
    }
    /* lib stays open: pyzmq holds it loaded anyway */
    int major, minor, patch;
    z_version(&major, &minor, &patch);
    if (major < 4 || (major == 4 && minor < 1)) {
        PyErr_Format(PyExc_ImportError, "libzmq %d.%d.%d is older than 4.1", major, minor, patch);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__batchio(void) {
    if (bind_libzmq() < 0)
        return NULL;
    PyObject *errors = PyImport_ImportModule("zmq.error");
    if (errors == NULL)
        return NULL;
    zmq_error = PyObject_GetAttrString(errors, "ZMQError");
    Py_DECREF(errors);
    if (zmq_error == NULL)
        return NULL;
    return PyModule_Create(&module);
}
