/* Tests of sidecar/http/h2mem.c: which of nghttp2's pages go back while idle, and a session that works on after it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "sidecar/http/h2mem.h"

#define FRAME_HEADER_LEN 9
#define CLIENT_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define FRAMEBUF_LEN (FRAME_HEADER_LEN + 1 + 16384) /* nghttp2's: a frame of the default size, a pad length byte */

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t round_up(size_t n)
{
    return (n + page() - 1) / page() * page();
}

/* The allocator by itself: blocks at creation only, whole pages, zero pages only for all but the frame buffer. */
static void test_blocks(void **state)
{
    (void)state;
    sc_h2mem_t m;
    nghttp2_mem *mem = &m.mem;
    sc_h2mem_init(&m);
    char *framebuf = mem->realloc(NULL, FRAMEBUF_LEN, mem->mem_user_data);
    char *table = mem->calloc(256, 16, mem->mem_user_data);
    char *small = mem->malloc(1024, mem->mem_user_data);
    sc_h2mem_created(&m);
    char *later = mem->malloc(2 * page(), mem->mem_user_data);

    assert_non_null(framebuf);
    assert_non_null(table);
    assert_int_equal((uintptr_t)framebuf % page(), 0);
    assert_int_equal((uintptr_t)table % page(), 0);
    assert_ptr_equal(m.framebuf, framebuf);
    for (size_t i = 0; i != 256 * 16; ++i)
        assert_int_equal(table[i], 0);
    memset(framebuf, 0xAB, FRAMEBUF_LEN);
    memset(later, 0xCD, 2 * page());

    /* the frame buffer whatever it holds, the zero table, nothing of the rest */
    assert_int_equal(sc_h2mem_release(&m), round_up(FRAMEBUF_LEN) + 4096);
    assert_int_equal(framebuf[0], 0);
    assert_int_equal(later[0], (char)0xCD);

    /* a table page with a byte set stays; its bytes are kept */
    table[100] = 7;
    memset(framebuf, 0xAB, FRAMEBUF_LEN);
    assert_int_equal(sc_h2mem_release(&m), round_up(FRAMEBUF_LEN));
    assert_int_equal(table[100], 7);

    /* moved by realloc, a block is an ordinary allocation: not given back any more */
    table = mem->realloc(table, 8192, mem->mem_user_data);
    table[100] = 0;
    assert_int_equal(sc_h2mem_release(&m), round_up(FRAMEBUF_LEN));
    mem->free(framebuf, mem->mem_user_data);
    assert_null(m.framebuf);
    assert_int_equal(sc_h2mem_release(&m), 0);

    mem->free(table, mem->mem_user_data);
    mem->free(small, mem->mem_user_data);
    mem->free(later, mem->mem_user_data);
}

/* Everything nghttp2 has to send; returns the bytes in out. */
static size_t drain(nghttp2_session *session, uint8_t *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(session, &data);
        assert_true(n >= 0);
        if (n == 0)
            return len;
        assert_true(len + (size_t)n <= cap);
        memcpy(out + len, data, (size_t)n);
        len += (size_t)n;
    }
}

/* 1 when out holds a HEADERS frame of stream_id that ends its stream. */
static int has_final_headers(const uint8_t *out, size_t len, int32_t stream_id)
{
    size_t off = 0;
    while (off + FRAME_HEADER_LEN <= len) {
        size_t payload = (size_t)out[off] << 16 | (size_t)out[off + 1] << 8 | out[off + 2];
        uint32_t id = ((uint32_t)out[off + 5] << 24 | (uint32_t)out[off + 6] << 16 | (uint32_t)out[off + 7] << 8 |
                       out[off + 8]) & 0x7fffffff;
        if (out[off + 3] == NGHTTP2_HEADERS && (out[off + 4] & NGHTTP2_FLAG_END_STREAM) != 0 && id == (uint32_t)stream_id)
            return 1;
        off += FRAME_HEADER_LEN + payload;
    }
    return 0;
}

/* A GET on stream_id (HPACK literals, no Huffman coding), fed to the server. */
static void feed_request(nghttp2_session *session, int32_t stream_id)
{
    static const uint8_t block[] = "\x00\x07:method\x03GET\x00\x07:scheme\x05https\x00\x0a:authority\x01x"
                                   "\x00\x05:path\x01/";
    uint8_t frame[FRAME_HEADER_LEN + sizeof(block) - 1];
    size_t len = sizeof(block) - 1;
    frame[0] = 0, frame[1] = 0, frame[2] = (uint8_t)len;
    frame[3] = NGHTTP2_HEADERS, frame[4] = NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM;
    frame[5] = 0, frame[6] = 0, frame[7] = 0, frame[8] = (uint8_t)stream_id;
    memcpy(frame + FRAME_HEADER_LEN, block, len);
    assert_int_equal(nghttp2_session_mem_recv(session, frame, sizeof(frame)), (ssize_t)sizeof(frame));
}

/* A served request, the pages given back, and the next request served on the same session. */
static void test_session_after_release(void **state)
{
    (void)state;
    static const uint8_t preface[] = CLIENT_PREFACE "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    nghttp2_session_callbacks *callbacks;
    nghttp2_session *session;
    sc_h2mem_t m;
    uint8_t out[4096];
    nghttp2_nv status = {(uint8_t *)":status", (uint8_t *)"204", 7, 3, NGHTTP2_NV_FLAG_NONE};

    assert_int_equal(nghttp2_session_callbacks_new(&callbacks), 0);
    sc_h2mem_init(&m);
    assert_int_equal(nghttp2_session_server_new3(&session, callbacks, NULL, NULL, &m.mem), 0);
    sc_h2mem_created(&m);
    assert_non_null(m.framebuf);

    assert_int_equal(nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    assert_int_equal(nghttp2_session_mem_recv(session, preface, sizeof(preface) - 1), (ssize_t)sizeof(preface) - 1);
    drain(session, out, sizeof(out));
    /* nothing known yet: the frame buffer and the empty stream map go */
    assert_int_equal(sc_h2mem_release(&m), round_up(FRAMEBUF_LEN) + 4096);

    for (int32_t id = 1; id <= 5; id += 2) {
        feed_request(session, id);
        assert_int_equal(nghttp2_submit_response(session, id, &status, 1, NULL), 0);
        size_t len = drain(session, out, sizeof(out));
        assert_true(has_final_headers(out, len, id));
        assert_int_equal(nghttp2_session_want_write(session), 0);
        assert_true(sc_h2mem_release(&m) >= round_up(FRAMEBUF_LEN));
    }

    nghttp2_session_del(session);
    nghttp2_session_callbacks_del(callbacks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_session_after_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
