/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * frame.h - Ethernet frame checks and the stream length-prefix decoder
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

#define FRAME_ETH_HLEN 14
/* Room for an MTU-sized payload, the Ethernet header and one VLAN tag. */
#define FRAME_L2_OVERHEAD 18
/* QEMU's NET_BUFSIZE: no frame QEMU sends can be larger. */
#define FRAME_MAX 69632
#define FRAME_STREAM_HDR 4

typedef enum {
    FRAME_OK,
    FRAME_RUNT,
    FRAME_OVERSIZE,
    FRAME_ETHERTYPE,
    FRAME_VERDICT_LAST,
} FrameVerdict;

FrameVerdict frame_check(const guint8 *frame, size_t len, size_t max_len);
const char *frame_verdict_name(FrameVerdict verdict);

typedef void (*FrameFunc)(const guint8 *frame, size_t len, void *opaque);

typedef enum {
    FRAME_DECODER_HEADER,
    FRAME_DECODER_BODY,
    FRAME_DECODER_SKIP,
    FRAME_DECODER_STATE_LAST,
} FrameDecoderState;

typedef struct {
    FrameDecoderState state;
    size_t max_len;
    guint8 hdr[FRAME_STREAM_HDR];
    size_t hdr_have;
    size_t want;      /* length of the frame being collected */
    size_t have;      /* bytes of it collected in @buf */
    size_t skip;      /* bytes of an oversized frame still to discard */
    guint8 *buf;      /* max_len bytes, allocated on first partial frame */
    guint64 oversize; /* frames longer than max_len, discarded */
} FrameDecoder;

void frame_decoder_init(FrameDecoder *dec, size_t max_len);
void frame_decoder_clear(FrameDecoder *dec);
void frame_decoder_feed(FrameDecoder *dec, const guint8 *data, size_t len, FrameFunc func,
                        void *opaque);
void frame_stream_header(guint8 hdr[FRAME_STREAM_HDR], size_t len);
