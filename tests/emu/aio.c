// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock_emu: the threads that move bulk transfers, with Linux AIO on
 * the FunctionFS endpoint files. The reader keeps --out-reqs reads of 1024
 * bytes (--raw-size in --raw mode) queued on the bulk OUT endpoint and
 * hands each completed one, in order, to link_rx() (raw_rx()). The writer
 * keeps up to --in-reqs transfers from build_transfer() (the source
 * pattern in --raw mode), or from hostile_transfer() while the hostile
 * device runs, queued on the bulk IN endpoint, and follows one whose
 * (non-zero) length is a multiple of wMaxPacketSize with a zero-length
 * write unless --no-zlp. The writer also measures how long the host
 * leaves all of them queued (in_stalls, in_stall_max_ms; see emu.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <linux/aio_abi.h>

#include "emu.h"
#include "../tools/vsock_testdata.h"

#define MTU		USB_VSOCK_MTU

static long sys_io_setup(unsigned int nr, aio_context_t *ctx)
{
	return syscall(__NR_io_setup, nr, ctx);
}

static long sys_io_destroy(aio_context_t ctx)
{
	return syscall(__NR_io_destroy, ctx);
}

static long sys_io_submit(aio_context_t ctx, long n, struct iocb **cbs)
{
	return syscall(__NR_io_submit, ctx, n, cbs);
}

static long sys_io_getevents(aio_context_t ctx, long min, long max,
			     struct io_event *ev, struct timespec *ts)
{
	return syscall(__NR_io_getevents, ctx, min, max, ev, ts);
}

static bool stopping(void)
{
	bool stop;

	pthread_mutex_lock(&emu.lock);
	stop = emu.stop;
	pthread_mutex_unlock(&emu.lock);
	return stop;
}

/* Wait up to ms for the endpoints to be enabled. */
static void wait_enabled(long long ms)
{
	pthread_mutex_lock(&emu.lock);
	if (!emu.enabled && !emu.stop)
		cond_wait_ms(&emu.cond, ms);
	pthread_mutex_unlock(&emu.lock);
}

/* Wait up to ms for OUT reads to be allowed: enabled and not held. */
static void wait_readable(long long ms)
{
	pthread_mutex_lock(&emu.lock);
	if ((!emu.enabled || emu.hold_out) && !emu.stop)
		cond_wait_ms(&emu.cond, ms);
	pthread_mutex_unlock(&emu.lock);
}

struct rd_slot {
	struct iocb cb;
	__u8 *buf;
	bool queued;
	bool done;
	long res;
	unsigned long fn_gen;	/* emu.fn_gen when it completed */
};

/*
 * --slow-start: a read held while the service had not started, and that
 * completed before the function was re-created, went into the old link:
 * dropped unprocessed.
 */
static bool rd_stale(const struct rd_slot *r)
{
	bool stale;

	if (!emu.o.slow_start || r->res <= 0)
		return false;
	pthread_mutex_lock(&emu.lock);
	stale = r->fn_gen != emu.fn_gen;
	pthread_mutex_unlock(&emu.lock);
	return stale;
}

/*
 * --generation, --slow-start: a read failed because the endpoint was
 * disabled (SET_INTERFACE, a reset, an unplug). The reads after it may
 * already hold transfers for the new function: unless the ep0 thread has
 * taken an ENABLE or DISABLE event (and reset the link) since the last
 * read that went through (*seen: emu.fn_gen then), wait for it, 1 s at
 * most, so that they go to the new link.
 */
static void rd_wait_recreated(const struct rd_slot *r, unsigned long *seen)
{
	long long deadline = now_ms() + 1000;

	if ((!emu.o.slow_start && !emu.o.generation) || r->res != -ESHUTDOWN)
		return;
	pthread_mutex_lock(&emu.lock);
	while (emu.fn_gen == *seen && !emu.stop && now_ms() < deadline)
		cond_wait_ms(&emu.cond, deadline - now_ms());
	pthread_mutex_unlock(&emu.lock);
}

void *reader_thread(void *arg)
{
	int n = emu.o.out_reqs, head = 0, next = 0, i, queued = 0;
	unsigned long seen = 0;	/* see rd_wait_recreated() */
	size_t size = emu.o.raw ? emu.o.raw_size : MTU;
	bool enabled;
	struct io_event *ev = calloc(n, sizeof(*ev));
	struct rd_slot *s = calloc(n, sizeof(*s));
	aio_context_t ctx = 0;

	(void)arg;
	if (!ev || !s || sys_io_setup(n, &ctx)) {
		emu_log("reader: cannot set up AIO: %s\n", strerror(errno));
		exit(1);
	}
	for (i = 0; i < n; i++) {
		s[i].buf = malloc(size);
		if (!s[i].buf)
			exit(1);
	}
	while (!stopping()) {
		struct timespec ts = { 0, 200 * 1000000L };
		long long wait = 200, now;
		long got;

		/*
		 * Keep the reads queued, in order. AIO on a disabled endpoint
		 * opened O_NONBLOCK does not fail io_submit(), it completes
		 * at once with -EAGAIN: only submit while enabled.
		 */
		pthread_mutex_lock(&emu.lock);
		enabled = emu.enabled && !emu.hold_out;
		pthread_mutex_unlock(&emu.lock);
		while (enabled && !s[next].queued && !s[next].done) {
			struct iocb *cbp = &s[next].cb;

			memset(cbp, 0, sizeof(*cbp));
			cbp->aio_data = next;
			cbp->aio_lio_opcode = IOCB_CMD_PREAD;
			cbp->aio_fildes = emu.ep_out;
			cbp->aio_buf = (unsigned long)s[next].buf;
			cbp->aio_nbytes = size;
			if (sys_io_submit(ctx, 1, &cbp) != 1) {
				if (errno != EAGAIN && errno != ESHUTDOWN)
					emu_log("reader: io_submit: %s\n",
						strerror(errno));
				break;
			}
			s[next].queued = true;
			queued++;
			next = (next + 1) % n;
		}
		pthread_mutex_lock(&emu.lock);
		if (emu.ls == LS_ECHO) {
			wait = emu.probe_deadline - now_ms();
			if (wait < 0)
				wait = 0;
			if (wait > 200)
				wait = 200;
		}
		pthread_mutex_unlock(&emu.lock);
		if (!queued) {
			if (svc_waiting())
				usleep(20000);	/* all held */
			else
				wait_readable(wait);
			got = 0;
		} else {
			ts.tv_sec = wait / 1000;
			ts.tv_nsec = (wait % 1000) * 1000000L;
			got = sys_io_getevents(ctx, 1, n, ev, &ts);
		}
		for (i = 0; i < got; i++) {
			struct rd_slot *r = &s[ev[i].data];

			r->queued = false;
			r->done = true;
			r->res = ev[i].res;
			pthread_mutex_lock(&emu.lock);
			r->fn_gen = emu.fn_gen;
			pthread_mutex_unlock(&emu.lock);
			queued--;
		}
		while (s[head].done) {
			if (rd_stale(&s[head])) {
				stat_inc(ST_slow_dropped);
				emu_dbg("reader: a %ld-byte read of the old link dropped\n",
					s[head].res);
				s[head].done = false;
				head = (head + 1) % n;
				continue;
			}
			/* --slow-start: data held until the service runs */
			if (s[head].res > 0 && svc_waiting())
				break;
			s[head].done = false;
			if (s[head].res < 0) {
				rd_wait_recreated(&s[head], &seen);
				stat_inc(ST_rx_errors);
				emu_dbg("reader: read failed: %s\n",
					strerror(-s[head].res));
				if (s[head].res == -EAGAIN)
					wait_enabled(100);
			} else if (emu.o.raw) {
				raw_rx(s[head].buf, s[head].res);
			} else {
				seen = s[head].fn_gen;
				link_rx(s[head].buf, s[head].res);
			}
			head = (head + 1) % n;
		}
		if (emu.o.raw)
			continue;
		now = now_ms();
		pthread_mutex_lock(&emu.lock);
		if (emu.ls == LS_ECHO && now >= emu.probe_deadline)
			echo_step(true);
		pthread_mutex_unlock(&emu.lock);
	}
	sys_io_destroy(ctx);
	for (i = 0; i < n; i++)
		free(s[i].buf);
	free(s);
	free(ev);
	return NULL;
}

struct wr_slot {
	struct iocb cb[2];
	__u8 *buf;
	size_t len;		/* built, not yet submitted */
	bool ready;		/* buf holds a transfer (len may be 0) */
	bool hostile;		/* from hostile_transfer(): never stale */
	unsigned long gen;
	int pending;		/* iocbs in flight */
};

static void wr_reap(aio_context_t ctx, struct wr_slot *s, int n,
		    struct io_event *ev)
{
	struct timespec zero = { 0, 0 };
	long got, i;

	got = sys_io_getevents(ctx, 0, 2 * n, ev, &zero);
	for (i = 0; i < got; i++) {
		struct wr_slot *w = &s[ev[i].data / 2];

		w->pending--;
		if ((long long)ev[i].res < 0) {
			stat_inc(ST_tx_errors);
			emu_dbg("writer: write failed: %s\n",
				strerror(-(long long)ev[i].res));
		} else if (ev[i].data % 2) {
			stat_inc(ST_tx_zlp);
		} else {
			stat_inc(ST_tx_transfers);
			stat_add(ST_tx_bytes, ev[i].res);
		}
	}
}

/*
 * Whether a transfer of len bytes, a multiple of wMaxPacketSize, is
 * followed by a ZLP: always by default; never on the older Fuchsia
 * devices; on the newest only below 1024 bytes (a "short" request).
 */
static bool zlp_after(size_t len)
{
	switch (emu.o.generation) {
	case GEN_DEFAULT:
		return true;
	case GEN_V2:
		return len < MTU;
	default:
		return false;
	}
}

/*
 * Whether the host sees where an IN transfer of len bytes ends: at a
 * short packet, a ZLP included, or at the ZLP that follows it. Holds
 * emu.lock.
 */
bool in_transfer_ends(size_t len)
{
	if (!emu.maxp || !len || len % emu.maxp)
		return true;
	return !emu.o.no_zlp && zlp_after(len);
}

static int wr_submit(aio_context_t ctx, struct wr_slot *w, int idx,
		     int efd)
{
	struct iocb *cbp;
	int k, nk = 1;

	pthread_mutex_lock(&emu.lock);
	if (!emu.o.no_zlp && emu.maxp && w->len && w->len % emu.maxp == 0 &&
	    zlp_after(w->len))
		nk = 2;
	if (w->gen != emu.link_gen && !emu.o.raw && !w->hostile) {
		w->len = 0;	/* stale: the link restarted */
		w->ready = false;
		pthread_mutex_unlock(&emu.lock);
		return 0;
	}
	pthread_mutex_unlock(&emu.lock);
	for (k = 0; k < nk; k++) {
		cbp = &w->cb[k];
		memset(cbp, 0, sizeof(*cbp));
		cbp->aio_data = idx * 2 + k;
		cbp->aio_lio_opcode = IOCB_CMD_PWRITE;
		cbp->aio_fildes = emu.ep_in;
		cbp->aio_buf = (unsigned long)w->buf;
		cbp->aio_nbytes = k ? 0 : w->len;
		cbp->aio_flags = IOCB_FLAG_RESFD;
		cbp->aio_resfd = efd;
		if (sys_io_submit(ctx, 1, &cbp) != 1) {
			if (k)
				break;	/* the link is going down anyway */
			return -errno;
		}
		w->pending++;
	}
	w->len = 0;
	w->ready = false;
	return 0;
}

/*
 * in_stalls and in_stall_max_ms: *since is when the writer found every IN
 * write queued (the slot it wants next still in flight), 0 while one is
 * free; *counted once this wait has reached IN_STALL_MS.
 */
static void wr_stall_check(bool full, long long *since, bool *counted)
{
	long long now = now_ms();

	if (!full) {
		*since = 0;
		return;
	}
	if (!*since) {
		*since = now;
		*counted = false;
		return;
	}
	if (now - *since < IN_STALL_MS)
		return;
	if (!*counted)
		stat_inc(ST_in_stalls);
	*counted = true;
	stat_max(ST_in_stall_max_ms, now - *since);
}

void *writer_thread(void *arg)
{
	int n = emu.o.in_reqs, i, efd = eventfd(0, EFD_NONBLOCK);
	size_t size = emu.o.raw ? emu.o.raw_size : HOSTILE_MAX;
	struct io_event *ev = calloc(2 * n, sizeof(*ev));
	struct wr_slot *s = calloc(n, sizeof(*s));
	aio_context_t ctx = 0;
	eventfd_t dummy;
	long long full_since = 0;
	bool enabled, counted = false;

	(void)arg;
	if (efd < 0 || !ev || !s || sys_io_setup(2 * n, &ctx)) {
		emu_log("writer: cannot set up AIO: %s\n", strerror(errno));
		exit(1);
	}
	for (i = 0; i < n; i++) {
		s[i].buf = malloc(size);
		if (!s[i].buf)
			exit(1);
	}
	i = 0;
	while (!stopping()) {
		struct pollfd pfd[2] = {
			{ .fd = efd, .events = POLLIN },
			{ .fd = emu.work_efd, .events = POLLIN },
		};
		struct wr_slot *w = &s[i];
		int err;

		wr_reap(ctx, s, n, ev);
		pthread_mutex_lock(&emu.lock);
		enabled = emu.enabled;
		pthread_mutex_unlock(&emu.lock);
		wr_stall_check(enabled && w->pending, &full_since, &counted);
		if (!enabled) {
			/* see reader_thread() */
			wait_enabled(200);
			continue;
		}
		if (!w->pending && !w->ready) {
			pthread_mutex_lock(&emu.lock);
			w->gen = emu.link_gen;
			w->hostile = false;
			if (emu.o.raw) {
				if (emu.enabled) {
					vt_pattern_fill(w->buf, size,
							emu.raw_tx_off);
					emu.raw_tx_off += size;
					w->len = size;
				}
			} else if (hostile_transfer(w->buf, &w->len)) {
				w->hostile = true;
				w->ready = true;
			} else {
				w->len = build_transfer(w->buf);
			}
			if (w->len)
				w->ready = true;
			pthread_mutex_unlock(&emu.lock);
		}
		if (!w->pending && w->ready) {
			err = wr_submit(ctx, w, i, efd);
			if (!err) {
				i = (i + 1) % n;
				continue;
			}
			if (err != -EAGAIN && err != -ESHUTDOWN)
				emu_log("writer: io_submit: %s\n",
					strerror(-err));
			wait_enabled(50);
			continue;
		}
		poll(pfd, 2, 200);
		eventfd_read(efd, &dummy);
		eventfd_read(emu.work_efd, &dummy);
	}
	sys_io_destroy(ctx);
	for (i = 0; i < n; i++)
		free(s[i].buf);
	free(s);
	free(ev);
	close(efd);
	return NULL;
}
