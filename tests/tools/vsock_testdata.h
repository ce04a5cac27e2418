/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test data definitions shared by the usb_vsock test tools: the device
 * emulator (tests/emu), the usbfs host tool and the AF_VSOCK test programs.
 *
 * Services of the emulator (default device ports):
 *
 *   echo       5001  sends back every byte it receives
 *   sink       5002  the peer sends an 8-byte little-endian byte count N,
 *                    then N bytes; once all N arrived the device sends the
 *                    8-byte little-endian FNV-1a 64 checksum of the N bytes,
 *                    then Finish
 *   source     5003  the peer sends an 8-byte little-endian byte count N;
 *                    the device sends N bytes of the source pattern, then
 *                    Finish
 *   refuse     5004  every Connect is answered with Reset
 *   slow-sink  5005  a sink that reads nothing until it has held the peer
 *                    back once (Pause, or a stalled reader on version 0)
 *                    or has all N bytes, then consumes at most --slow-rate
 *                    bytes per 10 ms
 *   silent     5006  every Connect goes unanswered, as if lost
 *
 * A Connect to any other port is answered with Reset.
 *
 * Source pattern: byte i of a stream (i = 0 for its first byte) is
 *   (i * 7 + (i >> 8) + (i >> 16)) & 0xff
 *
 * Checksum: 64-bit FNV-1a: h = 0xcbf29ce484222325, then for every byte b:
 *   h = (h ^ b) * 0x100000001b3 (mod 2^64)
 */
#ifndef VSOCK_TESTDATA_H
#define VSOCK_TESTDATA_H

#include <stddef.h>
#include <stdint.h>

#define VT_PORT_ECHO		5001
#define VT_PORT_SINK		5002
#define VT_PORT_SOURCE		5003
#define VT_PORT_REFUSE		5004
#define VT_PORT_SLOW_SINK	5005
#define VT_PORT_SILENT		5006

#define VT_FNV_INIT		0xcbf29ce484222325ULL
#define VT_FNV_PRIME		0x100000001b3ULL

static inline uint8_t vt_pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 8) + (i >> 16));
}

/* Fill buf with the pattern bytes of stream offsets off .. off + len - 1. */
static inline void vt_pattern_fill(uint8_t *buf, size_t len, uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = vt_pattern(off + i);
}

/* Index of the first byte that differs from the pattern, or len. */
static inline size_t vt_pattern_check(const uint8_t *buf, size_t len,
				      uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != vt_pattern(off + i))
			return i;
	return len;
}

static inline uint64_t vt_fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= VT_FNV_PRIME;
	}
	return h;
}

static inline void vt_put_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t vt_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif /* VSOCK_TESTDATA_H */
