/*
 * swgi_wire.c: frames between Apache's children and daemon processes
 * (see swgi_wire.h). Plain file descriptors and malloc: the daemon side
 * runs outside any request's pool.
 */
#include "swgi_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void reserve(swgi_wbuf_t *b, size_t more)
{
    size_t cap;
    char *data;

    if (b->len + more <= b->cap) {
        return;
    }
    cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more) {
        cap *= 2;
    }
    data = realloc(b->data, cap);
    if (!data) {
        abort();    /* as APR does when a pool cannot allocate */
    }
    b->data = data;
    b->cap = cap;
}

void swgi_wbuf_free(swgi_wbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void swgi_wire_header(char header[SWGI_WIRE_HEADER], char type, unsigned flags, size_t len)
{
    uint32_t n = (uint32_t)len;

    header[0] = type;
    header[1] = (char)flags;
    header[2] = 0;
    header[3] = 0;
    memcpy(header + 4, &n, 4);
}

void swgi_wbuf_begin(swgi_wbuf_t *b, char type, unsigned flags)
{
    reserve(b, SWGI_WIRE_HEADER);
    b->frame = b->len;
    swgi_wire_header(b->data + b->len, type, flags, 0);
    b->len += SWGI_WIRE_HEADER;
}

void swgi_wbuf_raw(swgi_wbuf_t *b, const void *data, size_t len)
{
    reserve(b, len);
    if (len) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
}

void swgi_wbuf_u32(swgi_wbuf_t *b, uint32_t v)
{
    swgi_wbuf_raw(b, &v, 4);
}

void swgi_wbuf_i64(swgi_wbuf_t *b, int64_t v)
{
    swgi_wbuf_raw(b, &v, 8);
}

void swgi_wbuf_bytes(swgi_wbuf_t *b, const char *data, size_t len)
{
    swgi_wbuf_u32(b, (uint32_t)len);
    swgi_wbuf_raw(b, data, len);
}

void swgi_wbuf_end(swgi_wbuf_t *b)
{
    uint32_t n = (uint32_t)(b->len - b->frame - SWGI_WIRE_HEADER);

    memcpy(b->data + b->frame + 4, &n, 4);
}

void swgi_wire_set_timeouts(int fd, int64_t usec)
{
    struct timeval tv;

    tv.tv_sec = usec / 1000000;
    tv.tv_usec = usec % 1000000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int swgi_wire_writev(int fd, struct iovec *iov, int count)
{
    while (count > 0) {
        struct msghdr msg;
        ssize_t n;

        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)count;
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        while (count > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            count--;
        }
        if (count > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int swgi_wire_write(int fd, const void *data, size_t len)
{
    struct iovec iov;

    iov.iov_base = (void *)data;
    iov.iov_len = len;
    return swgi_wire_writev(fd, &iov, 1);
}

void swgi_reader_init(swgi_reader_t *rd, int fd)
{
    memset(rd, 0, sizeof(*rd));
    rd->fd = fd;
}

void swgi_reader_reset(swgi_reader_t *rd, int fd)
{
    rd->fd = fd;
    rd->start = rd->end = 0;
    rd->timed_out = 0;
    rd->error = 0;
}

void swgi_reader_free(swgi_reader_t *rd)
{
    free(rd->buf);
    rd->buf = NULL;
    rd->cap = rd->start = rd->end = 0;
}

/* Reads more bytes into the buffer: 1, 0 at the end of the stream, -1. */
static int fill(swgi_reader_t *rd, size_t want)
{
    ssize_t n;

    if (rd->start > 0 && rd->start == rd->end) {
        rd->start = rd->end = 0;
    }
    if (rd->cap - rd->start < want) {
        /* Move what is left to the front, and grow if that is not enough. */
        if (rd->end > rd->start) {
            memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
        }
        rd->end -= rd->start;
        rd->start = 0;
        if (rd->cap < want) {
            size_t cap = rd->cap ? rd->cap : SWGI_WIRE_CHUNK + SWGI_WIRE_HEADER;
            char *buf;

            while (cap < want) {
                cap *= 2;
            }
            buf = realloc(rd->buf, cap);
            if (!buf) {
                abort();
            }
            rd->buf = buf;
            rd->cap = cap;
        }
    }
    for (;;) {
        n = recv(rd->fd, rd->buf + rd->end, rd->cap - rd->end, 0);
        if (n > 0) {
            rd->end += (size_t)n;
            return 1;
        }
        if (n == 0) {
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rd->timed_out = 1;
        }
        rd->error = errno;
        return -1;
    }
}

int swgi_reader_next(swgi_reader_t *rd, swgi_frame_t *frame)
{
    uint32_t len;
    int rc;

    rd->timed_out = 0;
    rd->error = 0;
    while (rd->end - rd->start < SWGI_WIRE_HEADER) {
        rc = fill(rd, SWGI_WIRE_HEADER);
        if (rc <= 0) {
            /* The end inside a header is a broken stream, not an end. */
            return (rc == 0 && rd->end == rd->start) ? 0 : -1;
        }
    }
    memcpy(&len, rd->buf + rd->start + 4, 4);
    if (len > SWGI_WIRE_MAX) {
        return -1;
    }
    while (rd->end - rd->start < SWGI_WIRE_HEADER + (size_t)len) {
        rc = fill(rd, SWGI_WIRE_HEADER + (size_t)len);
        if (rc <= 0) {
            return -1;
        }
    }
    frame->type = rd->buf[rd->start];
    frame->flags = (unsigned char)rd->buf[rd->start + 1];
    frame->payload = rd->buf + rd->start + SWGI_WIRE_HEADER;
    frame->len = len;
    rd->start += SWGI_WIRE_HEADER + (size_t)len;
    return 1;
}

/* The next n bytes of the payload, or NULL (and `bad`) if there are fewer. */
static const char *take(swgi_cursor_t *c, size_t n)
{
    const char *data = c->p;

    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    c->p += n;
    return data;
}

uint32_t swgi_cursor_u32(swgi_cursor_t *c)
{
    const char *data = take(c, 4);
    uint32_t v = 0;

    if (data) {
        memcpy(&v, data, 4);
    }
    return v;
}

int64_t swgi_cursor_i64(swgi_cursor_t *c)
{
    const char *data = take(c, 8);
    int64_t v = 0;

    if (data) {
        memcpy(&v, data, 8);
    }
    return v;
}

const char *swgi_cursor_bytes(swgi_cursor_t *c, size_t *len)
{
    uint32_t n = swgi_cursor_u32(c);
    const char *data = take(c, n);

    *len = data ? n : 0;
    return data ? data : "";
}
