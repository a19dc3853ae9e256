/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * frame.c - Ethernet frame checks and the stream length-prefix decoder
 *
 * Everything QEMU sends is untrusted.  This file holds the only code that
 * looks at those bytes before libslirp does, and it does no I/O so that unit
 * tests and fuzzers can drive it directly.
 *
 * frame_check() is the pre-filter applied to every frame from the guest: it
 * drops runts (shorter than an Ethernet header), frames longer than the MTU
 * allows, and EtherTypes libslirp has no use for (only ARP, IPv4 and IPv6
 * pass; this keeps e.g. libslirp's NC-SI parser out of reach).
 *
 * Theory of operation of the decoder: on a stream socket (QEMU -netdev
 * stream, passt's framing) each frame is preceded by its length as a 32-bit
 * big-endian number.  frame_decoder_feed() takes whatever bytes one read
 * returned, however they are split, and calls back once per whole frame.  A
 * frame that lies entirely inside the input is passed without copying;
 * only frames split across reads are assembled in the decoder's buffer.  A
 * length larger than the buffer cannot be a QEMU frame: its bytes are counted
 * and skipped, which keeps the stream in step instead of reading garbage as
 * lengths.  Zero and short lengths are passed on for frame_check() to count.
 */
#include "frame.h"

#include <string.h>

static const char *const frame_verdict_names[] = {
    [FRAME_OK] = "ok",
    [FRAME_RUNT] = "runt",
    [FRAME_OVERSIZE] = "oversize",
    [FRAME_ETHERTYPE] = "ethertype",
};
G_STATIC_ASSERT(G_N_ELEMENTS(frame_verdict_names) == FRAME_VERDICT_LAST);

/**
 * frame_verdict_name() - short name of a verdict, for statistics
 * @verdict: the verdict
 *
 * Return: a static string
 */
const char *frame_verdict_name(FrameVerdict verdict)
{
    return frame_verdict_names[verdict];
}

/**
 * frame_check() - decide whether a frame from the guest goes to libslirp
 * @frame: the frame, starting with the Ethernet header
 * @len: its length
 * @max_len: the largest acceptable frame (MTU + FRAME_L2_OVERHEAD)
 *
 * Return: FRAME_OK, or why the frame must be dropped
 */
FrameVerdict frame_check(const guint8 *frame, size_t len, size_t max_len)
{
    guint16 ethertype;

    if (len < FRAME_ETH_HLEN)
        return FRAME_RUNT;
    if (len > max_len)
        return FRAME_OVERSIZE;
    ethertype = (guint16)((frame[12] << 8) | frame[13]);
    switch (ethertype) {
    case 0x0800: /* IPv4 */
    case 0x0806: /* ARP */
    case 0x86dd: /* IPv6 */
        return FRAME_OK;
    }
    return FRAME_ETHERTYPE;
}

/**
 * frame_decoder_init() - prepare a decoder
 * @dec: the decoder
 * @max_len: longest frame to deliver; longer ones are skipped and counted
 */
void frame_decoder_init(FrameDecoder *dec, size_t max_len)
{
    memset(dec, 0, sizeof(*dec));
    dec->state = FRAME_DECODER_HEADER;
    dec->max_len = max_len;
}

/**
 * frame_decoder_clear() - release the decoder's buffer
 * @dec: the decoder
 */
void frame_decoder_clear(FrameDecoder *dec)
{
    g_clear_pointer(&dec->buf, g_free);
}

/**
 * frame_stream_header() - encode a frame length as the stream prefix
 * @hdr: receives 4 bytes
 * @len: frame length (at most FRAME_MAX)
 */
void frame_stream_header(guint8 hdr[FRAME_STREAM_HDR], size_t len)
{
    hdr[0] = (guint8)(len >> 24);
    hdr[1] = (guint8)(len >> 16);
    hdr[2] = (guint8)(len >> 8);
    hdr[3] = (guint8)len;
}

/**
 * frame_decoder_feed() - consume bytes read from a stream socket
 * @dec: the decoder
 * @data: the bytes
 * @len: how many
 * @func: called once per complete frame (the pointer is valid during the call)
 * @opaque: passed to @func
 */
void frame_decoder_feed(FrameDecoder *dec, const guint8 *data, size_t len, FrameFunc func,
                        void *opaque)
{
    while (len > 0) {
        size_t n;

        switch (dec->state) {
        case FRAME_DECODER_HEADER:
            n = MIN(len, FRAME_STREAM_HDR - dec->hdr_have);
            memcpy(dec->hdr + dec->hdr_have, data, n);
            dec->hdr_have += n;
            data += n;
            len -= n;
            if (dec->hdr_have < FRAME_STREAM_HDR)
                break;
            dec->hdr_have = 0;
            dec->want = ((size_t)dec->hdr[0] << 24) | ((size_t)dec->hdr[1] << 16) |
                        ((size_t)dec->hdr[2] << 8) | dec->hdr[3];
            if (dec->want > dec->max_len) {
                dec->oversize++;
                dec->skip = dec->want;
                dec->state = FRAME_DECODER_SKIP;
            } else if (dec->want == 0) {
                func(data, 0, opaque);
            } else {
                dec->have = 0;
                dec->state = FRAME_DECODER_BODY;
            }
            break;
        case FRAME_DECODER_BODY:
            if (dec->have == 0 && len >= dec->want) {
                /* the whole frame is here: no copy */
                func(data, dec->want, opaque);
                data += dec->want;
                len -= dec->want;
                dec->state = FRAME_DECODER_HEADER;
                break;
            }
            if (!dec->buf)
                dec->buf = g_malloc(dec->max_len);
            n = MIN(len, dec->want - dec->have);
            memcpy(dec->buf + dec->have, data, n);
            dec->have += n;
            data += n;
            len -= n;
            if (dec->have == dec->want) {
                func(dec->buf, dec->want, opaque);
                dec->have = 0;
                dec->state = FRAME_DECODER_HEADER;
            }
            break;
        case FRAME_DECODER_SKIP:
            n = MIN(len, dec->skip);
            dec->skip -= n;
            data += n;
            len -= n;
            if (dec->skip == 0)
                dec->state = FRAME_DECODER_HEADER;
            break;
        case FRAME_DECODER_STATE_LAST:
            g_assert_not_reached();
        }
    }
}
