/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-frame.c - the frame pre-filter and the stream length-prefix decoder:
 * partial reads at every split point, several frames per read, bogus and
 * zero lengths, and random chunking against a reference
 */
#include <glib.h>
#include <string.h>

#include "frame.h"

typedef struct {
    GPtrArray *frames; /* of GBytes */
    const guint8 *input_start;
    const guint8 *input_end;
    guint zero_copy;
} Collector;

static void collect(const guint8 *frame, size_t len, void *opaque)
{
    Collector *c = opaque;

    if (c->input_start && frame >= c->input_start && frame < c->input_end)
        c->zero_copy++;
    g_ptr_array_add(c->frames, g_bytes_new(frame, len));
}

static void collector_init(Collector *c)
{
    memset(c, 0, sizeof(*c));
    c->frames = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
}

static GByteArray *encode(const guint8 *const *frames, const size_t *lens, size_t n)
{
    GByteArray *out = g_byte_array_new();

    for (size_t i = 0; i < n; i++) {
        guint8 hdr[FRAME_STREAM_HDR];

        frame_stream_header(hdr, lens[i]);
        g_byte_array_append(out, hdr, sizeof(hdr));
        g_byte_array_append(out, frames[i], (guint)lens[i]);
    }
    return out;
}

static void make_frame(guint8 *buf, size_t len, guint8 seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (guint8)(seed + i * 7);
}

static void test_check(void)
{
    guint8 f[1600] = { 0 };

    g_assert_cmpint(frame_check(f, 0, 1518), ==, FRAME_RUNT);
    g_assert_cmpint(frame_check(f, 13, 1518), ==, FRAME_RUNT);
    f[12] = 0x08;
    f[13] = 0x00;
    g_assert_cmpint(frame_check(f, 14, 1518), ==, FRAME_OK);
    g_assert_cmpint(frame_check(f, 1518, 1518), ==, FRAME_OK);
    g_assert_cmpint(frame_check(f, 1519, 1518), ==, FRAME_OVERSIZE);
    f[13] = 0x06;
    g_assert_cmpint(frame_check(f, 60, 1518), ==, FRAME_OK);
    f[12] = 0x86;
    f[13] = 0xdd;
    g_assert_cmpint(frame_check(f, 60, 1518), ==, FRAME_OK);
    f[12] = 0x88; /* NC-SI */
    f[13] = 0xf8;
    g_assert_cmpint(frame_check(f, 60, 1518), ==, FRAME_ETHERTYPE);
    f[12] = 0x81; /* VLAN */
    f[13] = 0x00;
    g_assert_cmpint(frame_check(f, 60, 1518), ==, FRAME_ETHERTYPE);
    g_assert_cmpstr(frame_verdict_name(FRAME_RUNT), ==, "runt");
}

static void test_whole_zero_copy(void)
{
    guint8 a[60], b[1514];
    const guint8 *frames[] = { a, b };
    size_t lens[] = { sizeof(a), sizeof(b) };
    g_autoptr(GByteArray) wire = NULL;
    FrameDecoder dec;
    Collector c;

    make_frame(a, sizeof(a), 1);
    make_frame(b, sizeof(b), 2);
    wire = encode(frames, lens, 2);
    collector_init(&c);
    c.input_start = wire->data;
    c.input_end = wire->data + wire->len;
    frame_decoder_init(&dec, FRAME_MAX);
    frame_decoder_feed(&dec, wire->data, wire->len, collect, &c);
    g_assert_cmpuint(c.frames->len, ==, 2);
    g_assert_cmpuint(c.zero_copy, ==, 2);
    g_assert_cmpmem(g_bytes_get_data(c.frames->pdata[0], NULL), 60, a, 60);
    g_assert_cmpmem(g_bytes_get_data(c.frames->pdata[1], NULL), 1514, b, 1514);
    g_assert_cmpint(dec.state, ==, FRAME_DECODER_HEADER);
    frame_decoder_clear(&dec);
    g_ptr_array_unref(c.frames);
}

static void test_every_split(void)
{
    guint8 a[64], b[100], d[14];
    const guint8 *frames[] = { a, b, d };
    size_t lens[] = { sizeof(a), sizeof(b), sizeof(d) };
    g_autoptr(GByteArray) wire = NULL;

    make_frame(a, sizeof(a), 3);
    make_frame(b, sizeof(b), 4);
    make_frame(d, sizeof(d), 5);
    wire = encode(frames, lens, 3);

    /* two reads, split at every offset; then three reads at every pair */
    for (guint i = 0; i <= wire->len; i++) {
        for (guint j = i; j <= wire->len; j++) {
            FrameDecoder dec;
            Collector c;

            collector_init(&c);
            frame_decoder_init(&dec, FRAME_MAX);
            frame_decoder_feed(&dec, wire->data, i, collect, &c);
            frame_decoder_feed(&dec, wire->data + i, j - i, collect, &c);
            frame_decoder_feed(&dec, wire->data + j, wire->len - j, collect, &c);
            g_assert_cmpuint(c.frames->len, ==, 3);
            for (int k = 0; k < 3; k++) {
                gsize len;
                const guint8 *got = g_bytes_get_data(c.frames->pdata[k], &len);

                g_assert_cmpmem(got, len, frames[k], lens[k]);
            }
            g_assert_cmpuint(dec.oversize, ==, 0);
            frame_decoder_clear(&dec);
            g_ptr_array_unref(c.frames);
        }
    }
}

static void test_bogus_lengths(void)
{
    guint8 good[60];
    g_autoptr(GByteArray) wire = g_byte_array_new();
    guint8 hdr[FRAME_STREAM_HDR];
    g_autofree guint8 *junk = g_malloc0(3000);
    FrameDecoder dec;
    Collector c;

    make_frame(good, sizeof(good), 9);
    /* a length above the limit: its 3000 bytes must be skipped, not parsed */
    frame_stream_header(hdr, 3000);
    g_byte_array_append(wire, hdr, 4);
    memset(junk, 0xff, 3000); /* would read as huge lengths if misparsed */
    g_byte_array_append(wire, junk, 3000);
    /* a zero length is delivered as an empty frame for frame_check to count */
    frame_stream_header(hdr, 0);
    g_byte_array_append(wire, hdr, 4);
    frame_stream_header(hdr, sizeof(good));
    g_byte_array_append(wire, hdr, 4);
    g_byte_array_append(wire, good, sizeof(good));

    for (guint chunk = 1; chunk <= wire->len; chunk = chunk * 3 + 1) {
        collector_init(&c);
        frame_decoder_init(&dec, 2048);
        for (guint off = 0; off < wire->len; off += chunk)
            frame_decoder_feed(&dec, wire->data + off, MIN(chunk, wire->len - off), collect, &c);
        g_assert_cmpuint(dec.oversize, ==, 1);
        g_assert_cmpuint(c.frames->len, ==, 2);
        g_assert_cmpuint(g_bytes_get_size(c.frames->pdata[0]), ==, 0);
        g_assert_cmpmem(g_bytes_get_data(c.frames->pdata[1], NULL), sizeof(good), good,
                        sizeof(good));
        frame_decoder_clear(&dec);
        g_ptr_array_unref(c.frames);
    }

    /* a length of 4 GiB - 1 must not allocate or stall: it is skipped lazily */
    collector_init(&c);
    frame_decoder_init(&dec, FRAME_MAX);
    frame_stream_header(hdr, 0xffffffffu);
    frame_decoder_feed(&dec, hdr, 4, collect, &c);
    frame_decoder_feed(&dec, junk, 3000, collect, &c);
    g_assert_cmpuint(dec.oversize, ==, 1);
    g_assert_cmpint(dec.state, ==, FRAME_DECODER_SKIP);
    g_assert_cmpuint(dec.skip, ==, 0xffffffffu - 3000);
    g_assert_null(dec.buf);
    g_assert_cmpuint(c.frames->len, ==, 0);
    frame_decoder_clear(&dec);
    g_ptr_array_unref(c.frames);
}

static void test_random_chunks(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(20261127);

    for (int round = 0; round < 200; round++) {
        guint n = (guint)g_rand_int_range(rand, 1, 20);
        g_autoptr(GPtrArray) want = g_ptr_array_new_with_free_func(g_free);
        g_autofree size_t *lens = g_new(size_t, n);
        g_autoptr(GByteArray) wire = NULL;
        FrameDecoder dec;
        Collector c;

        for (guint i = 0; i < n; i++) {
            lens[i] = (size_t)g_rand_int_range(rand, 1, 9000);
            guint8 *f = g_malloc(lens[i]);
            make_frame(f, lens[i], (guint8)i);
            g_ptr_array_add(want, f);
        }
        wire = encode((const guint8 *const *)want->pdata, lens, n);
        collector_init(&c);
        frame_decoder_init(&dec, 9000);
        for (guint off = 0; off < wire->len;) {
            /* drawn first: MIN() evaluates its arguments twice */
            guint chunk = (guint)g_rand_int_range(rand, 1, 12000);
            guint step = MIN(chunk, wire->len - off);

            frame_decoder_feed(&dec, wire->data + off, step, collect, &c);
            off += step;
        }
        g_assert_cmpuint(c.frames->len, ==, n);
        for (guint i = 0; i < n; i++) {
            gsize len;
            const guint8 *got = g_bytes_get_data(c.frames->pdata[i], &len);

            g_assert_cmpmem(got, len, want->pdata[i], lens[i]);
        }
        frame_decoder_clear(&dec);
        g_ptr_array_unref(c.frames);
    }
}

static void test_header_encoding(void)
{
    guint8 hdr[FRAME_STREAM_HDR];

    frame_stream_header(hdr, 0x0102a0b0);
    g_assert_cmpuint(hdr[0], ==, 0x01);
    g_assert_cmpuint(hdr[1], ==, 0x02);
    g_assert_cmpuint(hdr[2], ==, 0xa0);
    g_assert_cmpuint(hdr[3], ==, 0xb0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/frame/check", test_check);
    g_test_add_func("/frame/stream/header", test_header_encoding);
    g_test_add_func("/frame/stream/whole-zero-copy", test_whole_zero_copy);
    g_test_add_func("/frame/stream/every-split", test_every_split);
    g_test_add_func("/frame/stream/bogus-lengths", test_bogus_lengths);
    g_test_add_func("/frame/stream/random-chunks", test_random_chunks);
    return g_test_run();
}
