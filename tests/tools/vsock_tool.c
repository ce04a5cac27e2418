// SPDX-License-Identifier: GPL-2.0
/*
 * vsock_tool: AF_VSOCK client and server for the usb_vsock integration
 * tests, speaking the emulator's services (see vsock_testdata.h).
 *
 *   vsock_tool echo CID PORT SIZE...       echo each SIZE bytes, verify
 *   vsock_tool sink CID PORT BYTES         send BYTES, verify the checksum
 *   vsock_tool psink CID PORT BYTES        the same with non-blocking
 *                                          writes and poll(); the writer
 *                                          must have had to wait
 *   vsock_tool source CID PORT BYTES [MS [GO]]
 *                                          receive BYTES, verify, then EOF;
 *                                          sleep MS between 4 KiB reads;
 *                                          read nothing until the file GO
 *                                          exists
 *   vsock_tool parallel N CID PORT BYTES   N echo connections at once
 *   vsock_tool many N CID PORT BYTES       open N echo connections one by
 *                                          one, then move BYTES checked
 *                                          bytes on each at once, then
 *                                          close them all
 *   vsock_tool streams N CID PORT          open N connections, print
 *                                          "connected N", then as stream
 *                                          on each; exits 0 when all end
 *                                          with ECONNRESET
 *   vsock_tool accept PORT N MODE [BYTES]  accept N connections; MODE is
 *                                          echo (until EOF), recv (BYTES
 *                                          of the pattern, then EOF),
 *                                          close (at once) or keep (as
 *                                          recv, print "received I" and
 *                                          keep the socket open)
 *   vsock_tool shutrd CID PORT BYTES GO DONE
 *                                          ask the source service for
 *                                          BYTES, read nothing; once file
 *                                          GO exists, shutdown(SHUT_RD),
 *                                          which must make read() return
 *                                          0, print "shut", and keep the
 *                                          socket open until file DONE
 *                                          exists
 *   vsock_tool hog CID PORT BYTES BUFSIZE DONE
 *                                          ask the source service for
 *                                          BYTES on a socket whose buffer
 *                                          size is BUFSIZE (its minimum
 *                                          and maximum too), print
 *                                          "connected", read nothing until
 *                                          file DONE exists, then read
 *                                          what is there without waiting
 *                                          and print "hog: N bytes, then
 *                                          END" (END: an errno name such
 *                                          as ENOBUFS, eof, or open)
 *   vsock_tool flood CID PORT THREADS SECONDS
 *                                          THREADS threads connect() to
 *                                          CID:PORT without waiting and
 *                                          close at once, for SECONDS;
 *                                          prints "flood: N connect()s,
 *                                          E ENOBUFS, O other errors"
 *   vsock_tool hold CID PORT DONE [COUNT]  connect (and ask the source
 *                                          service for COUNT bytes), then
 *                                          write() a page that
 *                                          userfaultfd leaves unfilled:
 *                                          the writer blocks in the page
 *                                          fault with its socket locked;
 *                                          print "holding" once it does,
 *                                          fill the page once file DONE
 *                                          exists, and print "write: N"
 *                                          or "write: ERRNO-NAME"
 *   vsock_tool holdlisten PORT DONE BYTES  listen on PORT and hold the
 *                                          listener locked as hold does
 *                                          (a setsockopt() whose value is
 *                                          on that page); once file DONE
 *                                          exists, print "setsockopt: 0",
 *                                          accept one connection, print
 *                                          "accepted" and receive BYTES
 *                                          of the pattern, then EOF
 *   vsock_tool user UID COMMAND ARG...     run COMMAND with uid and gid
 *                                          UID and no groups
 *   vsock_tool adopt PORT                  accept one connection, close
 *                                          the listener ("adopted"), echo
 *                                          until EOF
 *   vsock_tool refused CID PORT ERRNO [LOCALPORT]
 *                                          socket() must succeed and
 *                                          connect() fail with exactly
 *                                          ERRNO (a number); bound to
 *                                          LOCALPORT first if given
 *   vsock_tool timeout CID PORT MS         connect() with a connect timeout
 *                                          of MS must fail with ETIMEDOUT
 *   vsock_tool stream CID PORT             write to echo until an error;
 *                                          prints the call and its errno;
 *                                          exits 0 only if a read() or
 *                                          write() failed with ECONNRESET
 *                                          (EOF is a failure)
 *   vsock_tool failclose CID PORT N        echo one byte, then close()
 *                                          with the Nth fault-injection
 *                                          point of the call failing
 *                                          (/proc/thread-self/fail-nth);
 *                                          prints "failclose: injected"
 *                                          if one failed, else
 *                                          "failclose: nothing failed"
 *   vsock_tool usbreset DEVNODE            reset the USB device DEVNODE
 *                                          (/dev/bus/usb/BBB/DDD) as
 *                                          usbreset does (USBDEVFS_RESET)
 *   vsock_tool type TYPE CID PORT          a stream socket connects to
 *                                          CID:PORT, and a TYPE (seqpacket
 *                                          or dgram) socket is refused at
 *                                          the step and with the errno of
 *                                          the vsock core (see cmd_type())
 *
 * Exit status 0 when everything checked out; messages go to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <grp.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <linux/usbdevice_fs.h>
#include <linux/vm_sockets.h>

#include "vsock_testdata.h"

#define CHUNK	65536
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static int fail(const char *what)
{
	fprintf(stderr, "vsock_tool: %s: %s\n", what, strerror(errno));
	return 1;
}

/* connect() fd to CID:PORT, giving up after tmo. */
static int connect_tmo(int fd, unsigned int cid, unsigned int port,
		       const struct timeval *tmo)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = cid,
		.svm_port = port,
	};

	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, tmo,
		       sizeof(*tmo)))
		return -1;
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa));
}

/*
 * A connected socket, or -1. The core's default connect timeout is 2 s; a
 * TCG guest under load, or a device busy with hostile traffic, can take
 * longer to answer, while a refused port still fails at once, so wait a
 * minute.
 */
static int vconnect_fd(int fd, unsigned int cid, unsigned int port)
{
	const struct timeval tmo = { 60, 0 };

	if (fd < 0)
		return -1;
	if (connect_tmo(fd, cid, port, &tmo)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int vconnect(unsigned int cid, unsigned int port)
{
	return vconnect_fd(socket(AF_VSOCK, SOCK_STREAM, 0), cid, port);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const __u8 *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* Read exactly len bytes; 1 on EOF first (errno 0), -1 on error. */
static int read_all(int fd, void *buf, size_t len)
{
	__u8 *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!n) {
			errno = 0;
			return 1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int expect_eof(int fd)
{
	__u8 c;
	ssize_t n = read(fd, &c, 1);

	if (n) {
		fprintf(stderr, "vsock_tool: expected EOF, got %zd\n", n);
		return 1;
	}
	return 0;
}

/* Echo @total bytes of the pattern at @off through @fd, in chunks. */
static int echo_run(int fd, size_t total, __u64 off)
{
	static __thread __u8 out[CHUNK], in[CHUNK];
	size_t done = 0;

	while (done < total) {
		size_t n = total - done < CHUNK ? total - done : CHUNK;
		int ret;

		vt_pattern_fill(out, n, off + done);
		if (write_all(fd, out, n))
			return fail("echo write");
		ret = read_all(fd, in, n);
		if (ret < 0)
			return fail("echo read");
		if (ret > 0 || memcmp(in, out, n)) {
			fprintf(stderr, "vsock_tool: echo mismatch at %zu\n",
				done + vt_pattern_check(in, n, off + done));
			return 1;
		}
		done += n;
	}
	return 0;
}

static int cmd_echo(int argc, char **argv)
{
	__u64 off = 0;
	int fd, i, ret = 0;

	fd = vconnect(atoi(argv[0]), atoi(argv[1]));
	if (fd < 0)
		return fail("connect");
	for (i = 2; i < argc && !ret; i++) {
		size_t n = strtoull(argv[i], NULL, 0);

		ret = echo_run(fd, n, off);
		off += n;
	}
	close(fd);
	return ret;
}

/*
 * Write all of @buf to the non-blocking @fd, waiting in poll() whenever it
 * is full; *@waits counts the waits. A socket that never becomes writable
 * again within a minute fails.
 */
static int write_poll(int fd, const void *buf, size_t len,
		      unsigned long *waits)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	const __u8 *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n > 0) {
			p += n;
			len -= n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -1;
		(*waits)++;
		n = poll(&pfd, 1, 60000);
		if (n < 0 && errno != EINTR)
			return -1;
		if (!n) {
			fprintf(stderr, "vsock_tool: not writable for 60 s\n");
			errno = ETIMEDOUT;
			return -1;
		}
	}
	return 0;
}

static int sink_run(int argc, char **argv, bool use_poll)
{
	__u64 total = strtoull(argv[2], NULL, 0), done = 0, want, got;
	static __u8 buf[CHUNK];
	unsigned long waits = 0;
	__u8 hdr[8];
	int fd, ret;

	(void)argc;
	fd = vconnect(atoi(argv[0]), atoi(argv[1]));
	if (fd < 0)
		return fail("connect");
	vt_put_le64(hdr, total);
	if (write_all(fd, hdr, 8))
		return fail("write count");
	if (use_poll && fcntl(fd, F_SETFL, O_NONBLOCK))
		return fail("O_NONBLOCK");
	want = VT_FNV_INIT;
	while (done < total) {
		size_t n = total - done < CHUNK ? total - done : CHUNK;

		vt_pattern_fill(buf, n, done);
		want = vt_fnv1a(want, buf, n);
		if (use_poll ? write_poll(fd, buf, n, &waits) :
		    write_all(fd, buf, n))
			return fail("sink write");
		done += n;
	}
	if (use_poll) {
		printf("waited in poll() %lu times\n", waits);
		if (fcntl(fd, F_SETFL, 0))
			return fail("blocking again");
	}
	ret = read_all(fd, hdr, 8);
	if (ret)
		return ret < 0 ? fail("read checksum") : 1;
	got = vt_get_le64(hdr);
	if (got != want) {
		fprintf(stderr, "vsock_tool: checksum %016llx, want %016llx\n",
			(unsigned long long)got, (unsigned long long)want);
		return 1;
	}
	ret = expect_eof(fd);
	close(fd);
	if (use_poll && !waits) {
		fprintf(stderr, "vsock_tool: the writer never had to wait\n");
		return 1;
	}
	return ret;
}

static int cmd_sink(int argc, char **argv)
{
	return sink_run(argc, argv, false);
}

static int cmd_psink(int argc, char **argv)
{
	return sink_run(argc, argv, true);
}

static int recv_pattern(int fd, __u64 total, unsigned int delay_ms)
{
	static __thread __u8 buf[CHUNK];
	__u64 done = 0;

	while (done < total) {
		size_t want = delay_ms ? 4096 : CHUNK;
		ssize_t n;

		if (want > total - done)
			want = total - done;
		n = read(fd, buf, want);
		if (n < 0)
			return fail("read");
		if (!n) {
			fprintf(stderr, "vsock_tool: EOF after %llu of %llu\n",
				(unsigned long long)done,
				(unsigned long long)total);
			return 1;
		}
		if (vt_pattern_check(buf, n, done) != (size_t)n) {
			fprintf(stderr, "vsock_tool: bad byte at %llu\n",
				(unsigned long long)(done +
				vt_pattern_check(buf, n, done)));
			return 1;
		}
		done += n;
		if (delay_ms)
			usleep(delay_ms * 1000);
	}
	return expect_eof(fd);
}

static void wait_file(const char *path)
{
	while (access(path, F_OK))
		usleep(100000);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int cmd_source(int argc, char **argv)
{
	__u64 total = strtoull(argv[2], NULL, 0);
	unsigned int delay = argc > 3 ? atoi(argv[3]) : 0;
	const char *go = argc > 4 ? argv[4] : NULL;
	long long t0, ms;
	__u8 hdr[8];
	int fd, ret;

	fd = vconnect(atoi(argv[0]), atoi(argv[1]));
	if (fd < 0)
		return fail("connect");
	vt_put_le64(hdr, total);
	if (write_all(fd, hdr, 8))
		return fail("write count");
	/* The caller decides when the device has filled our buffer. */
	if (go)
		wait_file(go);
	t0 = now_ms();
	ret = recv_pattern(fd, total, delay);
	ms = now_ms() - t0;
	close(fd);
	if (!ret)
		printf("received %llu bytes in %lld ms: %lld KiB/s\n",
		       (unsigned long long)total, ms,
		       (long long)(total / 1024 * 1000 / (ms ? ms : 1)));
	return ret;
}

/*
 * A socket whose receive buffer is BUFSIZE bytes, whatever the vsock
 * core's defaults: its minimum and maximum go with it.
 */
static int vsocket_buf(__u64 bufsize)
{
	__u64 zero = 0;
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MIN_SIZE, &zero,
		       sizeof(zero)) ||
	    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &bufsize,
		       sizeof(bufsize)) ||
	    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &bufsize,
		       sizeof(bufsize)) ||
	    setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MIN_SIZE, &bufsize,
		       sizeof(bufsize))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read what is there without waiting; say how it ended. */
static void hog_drain(int fd)
{
	static __u8 buf[CHUNK];
	const char *end = "open";
	__u64 got = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		got += n;
	if (!n)
		end = "eof";
	else if (errno != EAGAIN)
		end = strerrorname_np(errno);
	printf("hog: %llu bytes, then %s\n", (unsigned long long)got,
	       end ? end : "?");
}

static int cmd_hog(int argc, char **argv)
{
	__u8 hdr[8];
	int fd;

	(void)argc;
	fd = vconnect_fd(vsocket_buf(strtoull(argv[3], NULL, 0)),
			 atoi(argv[0]), atoi(argv[1]));
	if (fd < 0)
		return fail("connect");
	vt_put_le64(hdr, strtoull(argv[2], NULL, 0));
	if (write_all(fd, hdr, 8))
		return fail("write count");
	printf("connected\n");
	fflush(stdout);
	wait_file(argv[4]);
	hog_drain(fd);
	close(fd);
	return 0;
}

static int cmd_shutrd(int argc, char **argv)
{
	__u8 hdr[8], c;
	ssize_t n;
	int fd;

	(void)argc;
	fd = vconnect(atoi(argv[0]), atoi(argv[1]));
	if (fd < 0)
		return fail("connect");
	vt_put_le64(hdr, strtoull(argv[2], NULL, 0));
	if (write_all(fd, hdr, 8))
		return fail("write count");
	wait_file(argv[3]);
	if (shutdown(fd, SHUT_RD))
		return fail("shutdown");
	n = read(fd, &c, 1);
	if (n) {
		fprintf(stderr, "vsock_tool: read after SHUT_RD returned %zd\n",
			n);
		return 1;
	}
	printf("shut\n");
	fflush(stdout);
	wait_file(argv[4]);
	close(fd);
	return 0;
}

struct par {
	unsigned int cid, port;
	size_t bytes;
	int fd;
	int ret;
};

static void *par_thread(void *arg)
{
	struct par *p = arg;
	int fd = vconnect(p->cid, p->port);

	if (fd < 0) {
		p->ret = fail("connect");
		return NULL;
	}
	p->ret = echo_run(fd, p->bytes, 0);
	close(fd);
	return NULL;
}

static int cmd_parallel(int argc, char **argv)
{
	int n = atoi(argv[0]), i, bad = 0;
	struct par *p = calloc(n, sizeof(*p));
	pthread_t *t = calloc(n, sizeof(*t));

	(void)argc;
	if (!p || !t)
		return fail("calloc");
	for (i = 0; i < n; i++) {
		p[i].cid = atoi(argv[1]);
		p[i].port = atoi(argv[2]);
		p[i].bytes = strtoull(argv[3], NULL, 0);
		if (pthread_create(&t[i], NULL, par_thread, &p[i]))
			return fail("pthread_create");
	}
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		bad += !!p[i].ret;
	}
	if (bad)
		fprintf(stderr, "vsock_tool: %d of %d connections failed\n",
			bad, n);
	return !!bad;
}

/*
 * Connects p[0..n-1] to CID:PORT one by one (a burst of connect()s under
 * TCG could outlast the connect timeout, so each may take a minute);
 * returns how many were made.
 */
static int connect_n(struct par *p, int n, const char *cid, const char *port)
{
	struct rlimit rl = { n + 64, n + 64 };
	const struct timeval tmo = { 60, 0 };
	int made;

	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		fail("setrlimit");
		return 0;
	}
	for (made = 0; made < n; made++) {
		int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

		if (fd < 0)
			break;
		p[made].fd = fd;
		if (connect_tmo(fd, atoi(cid), atoi(port), &tmo)) {
			close(fd);
			break;
		}
	}
	if (made < n)
		fprintf(stderr, "vsock_tool: connection %d: %s\n", made,
			strerror(errno));
	return made;
}

/* Runs fn on each of p[0..n-1] at once; returns how many failed. */
static int run_n(struct par *p, int n, void *(*fn)(void *))
{
	pthread_t *t = calloc(n, sizeof(*t));
	int i, started, bad = 0;

	if (!t)
		return n;
	for (started = 0; started < n; started++)
		if (pthread_create(&t[started], NULL, fn, &p[started])) {
			fail("pthread_create");
			bad = n - started;
			break;
		}
	for (i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		bad += !!p[i].ret;
	}
	free(t);
	return bad;
}

static void close_n(struct par *p, int n)
{
	while (n--)
		close(p[n].fd);
	free(p);
}

static void *many_thread(void *arg)
{
	struct par *p = arg;

	p->ret = echo_run(p->fd, p->bytes, 0);
	return NULL;
}

/*
 * All N connections exist at once: they are made one by one, then every
 * one moves its data while all are open, and only then are they closed.
 */
static int cmd_many(int argc, char **argv)
{
	int n = atoi(argv[0]), i, made, bad;
	struct par *p = calloc(n, sizeof(*p));

	(void)argc;
	if (!p)
		return fail("calloc");
	for (i = 0; i < n; i++)
		p[i].bytes = strtoull(argv[3], NULL, 0);
	made = connect_n(p, n, argv[1], argv[2]);
	bad = made < n ? n - made : run_n(p, n, many_thread);
	close_n(p, made);
	if (bad) {
		fprintf(stderr, "vsock_tool: %d of %d connections failed\n",
			bad, n);
		return 1;
	}
	printf("%d connections open at once, %s bytes checked on each\n", n,
	       argv[3]);
	return 0;
}

/*
 * Echo CHUNK bytes at a time through fd until a call fails; returns its
 * errno, 0 for an EOF, and the call in *what.
 */
static int stream_loop(int fd, __u8 *buf, __u64 *off, const char **what)
{
	const char *call;

	for (;;) {
		vt_pattern_fill(buf, CHUNK, *off);
		call = "write";
		if (write_all(fd, buf, CHUNK))
			break;
		call = "read";
		if (read_all(fd, buf, CHUNK))
			break;
		*off += CHUNK;
	}
	if (what)
		*what = call;
	return errno;
}

/* Echo until an error; ECONNRESET is the one expected. */
static int stream_run(int fd)
{
	__u8 *buf = malloc(CHUNK);
	__u64 off = 0;
	int err;

	if (!buf)
		return fail("malloc");
	err = stream_loop(fd, buf, &off, NULL);
	free(buf);
	if (err == ECONNRESET)
		return 0;
	fprintf(stderr, "vsock_tool: stream stopped after %llu bytes: %s\n",
		(unsigned long long)off, err ? strerror(err) : "EOF");
	return 1;
}

static void *streams_thread(void *arg)
{
	struct par *p = arg;

	p->ret = stream_run(p->fd);
	return NULL;
}

static int cmd_streams(int argc, char **argv)
{
	int n = atoi(argv[0]), made, bad;
	struct par *p = calloc(n, sizeof(*p));

	(void)argc;
	if (!p)
		return fail("calloc");
	made = connect_n(p, n, argv[1], argv[2]);
	if (made == n) {
		printf("connected %d\n", n);
		fflush(stdout);
	}
	bad = made < n ? n - made : run_n(p, n, streams_thread);
	close_n(p, made);
	printf("%d of %d streams ended with ECONNRESET\n", n - bad, n);
	return !!bad;
}

static int serve(int fd, const char *mode, __u64 bytes)
{
	static __u8 buf[CHUNK];
	ssize_t n;

	if (!strcmp(mode, "recv"))
		return recv_pattern(fd, bytes, 0);
	if (!strcmp(mode, "close"))
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write_all(fd, buf, n))
			return fail("echo write");
	return n < 0 ? fail("echo read") : 0;
}

/*
 * A stream socket listening on port, or -1. Prints "listening": the test
 * script may then make the device connect.
 */
static int listen_on(const char *port, int backlog)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = atoi(port),
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, backlog))
		return -1;
	printf("listening\n");
	fflush(stdout);
	return fd;
}

static int cmd_accept(int argc, char **argv)
{
	int n = atoi(argv[1]), fd, c, i, ret = 0;
	__u64 bytes = argc > 3 ? strtoull(argv[3], NULL, 0) : 0;

	fd = listen_on(argv[0], 16);
	if (fd < 0)
		return fail("listen");
	for (i = 1; i <= n && !ret; i++) {
		c = accept(fd, NULL, NULL);
		if (c < 0)
			return fail("accept");
		if (strcmp(argv[2], "keep")) {
			ret = serve(c, argv[2], bytes);
			close(c);
			continue;
		}
		/* Left open until exit, once the peer ended it. */
		ret = serve(c, "recv", bytes);
		printf("received %d\n", i);
		fflush(stdout);
	}
	close(fd);
	return ret;
}

/*
 * Accept one connection on port, close the listener, then echo on the
 * connection until EOF: the accepted socket keeps the port, which is free
 * to bind again.
 */
static int cmd_adopt(int argc, char **argv)
{
	int fd, c, ret;

	(void)argc;
	fd = listen_on(argv[0], 1);
	if (fd < 0)
		return fail("listen");
	c = accept(fd, NULL, NULL);
	if (c < 0)
		return fail("accept");
	close(fd);
	printf("adopted\n");
	fflush(stdout);
	ret = serve(c, "echo", 0);
	close(c);
	return ret;
}

/*
 * connect() to cid:port on a new socket of type must fail with exactly
 * want; the socket itself must be made. Returns 0 if so.
 */
static int expect_connect_errno(int type, unsigned int cid, unsigned int port,
				int want, unsigned int local_port)
{
	const struct timeval tmo = { 60, 0 };
	struct sockaddr_vm local = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = local_port,
	};
	int fd = socket(AF_VSOCK, type, 0), err;

	if (fd < 0)
		return fail("socket");
	if (local_port != VMADDR_PORT_ANY &&
	    bind(fd, (struct sockaddr *)&local, sizeof(local))) {
		close(fd);
		return fail("bind");
	}
	if (!connect_tmo(fd, cid, port, &tmo)) {
		fprintf(stderr, "vsock_tool: connect succeeded\n");
		close(fd);
		return 1;
	}
	err = errno;
	close(fd);
	if (err != want) {
		fprintf(stderr, "vsock_tool: connect failed with %d (%s), want %d (%s)\n",
			err, strerror(err), want, strerror(want));
		return 1;
	}
	printf("connect refused: %s\n", strerror(err));
	return 0;
}

static int cmd_refused(int argc, char **argv)
{
	return expect_connect_errno(SOCK_STREAM, atoi(argv[0]), atoi(argv[1]),
				    atoi(argv[2]),
				    argc > 3 ? strtoul(argv[3], NULL, 0) :
				    VMADDR_PORT_ANY);
}

static int cmd_timeout(int argc, char **argv)
{
	long ms = atol(argv[2]);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000 };
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	int ret = 1;

	(void)argc;
	if (fd < 0)
		return fail("socket");
	if (!connect_tmo(fd, atoi(argv[0]), atoi(argv[1]), &tv))
		fprintf(stderr, "vsock_tool: connect succeeded\n");
	else if (errno != ETIMEDOUT)
		ret = fail("connect did not time out");
	else
		ret = 0;
	close(fd);
	return ret;
}

static int cmd_stream(int argc, char **argv)
{
	static __u8 buf[CHUNK];
	int fd = vconnect(atoi(argv[0]), atoi(argv[1]));
	const char *what;
	__u64 off = 0;
	int err;

	(void)argc;
	if (fd < 0)
		return fail("connect");
	printf("connected\n");
	fflush(stdout);
	err = stream_loop(fd, buf, &off, &what);
	printf("stopped after %llu bytes: %s: %s\n", (unsigned long long)off,
	       what, err ? strerror(err) : "EOF");
	close(fd);
	return err != ECONNRESET;
}

/*
 * The driver serves SOCK_STREAM only. First a stream socket must connect
 * to CID:PORT: the CID is a device of usb_vsock, the host-to-guest
 * transport (without the driver every check below would fail the same
 * way for want of any transport). Then, with the vsock core of 6.1 and of
 * 6.12 alike (net/vmw_vsock/af_vsock.c; the debug kernel is 6.12):
 *
 * - dgram: vsock_create() assigns a SOCK_DGRAM socket its transport at
 *   once, the one registered with VSOCK_TRANSPORT_F_DGRAM. usb_vsock
 *   registers only VSOCK_TRANSPORT_F_H2G and the test VM loads no other
 *   transport with datagrams (vmci), so socket() fails with ENODEV.
 * - seqpacket: socket() succeeds; connect() assigns the transport of the
 *   CID, usb_vsock, and vsock_assign_transport() fails with
 *   ESOCKTNOSUPPORT because its seqpacket_allow() says no (a transport
 *   that took SEQPACKET would connect; with no transport for the CID the
 *   error would be ENODEV).
 */
static int cmd_type(int argc, char **argv)
{
	unsigned int cid = atoi(argv[1]), port = atoi(argv[2]);
	int fd;

	(void)argc;
	fd = vconnect(cid, port);
	if (fd < 0)
		return fail("stream connect");
	close(fd);
	printf("stream socket connected\n");
	if (!strcmp(argv[0], "seqpacket"))
		return expect_connect_errno(SOCK_SEQPACKET, cid, port,
					    ESOCKTNOSUPPORT, VMADDR_PORT_ANY);
	if (strcmp(argv[0], "dgram")) {
		fprintf(stderr, "vsock_tool: unknown type %s\n", argv[0]);
		return 2;
	}
	fd = socket(AF_VSOCK, SOCK_DGRAM, 0);
	if (fd >= 0) {
		fprintf(stderr, "vsock_tool: a dgram socket was made\n");
		close(fd);
		return 1;
	}
	if (errno != ENODEV)
		return fail("dgram socket failed, but not with ENODEV");
	printf("dgram socket refused: %s\n", strerror(errno));
	return 0;
}

static int cmd_usbreset(int argc, char **argv)
{
	int fd = open(argv[0], O_WRONLY | O_CLOEXEC);

	(void)argc;
	if (fd < 0)
		return fail("open the device node");
	if (ioctl(fd, USBDEVFS_RESET, 0)) {
		close(fd);
		return fail("USBDEVFS_RESET");
	}
	close(fd);
	printf("reset %s\n", argv[0]);
	return 0;
}

struct flood {
	unsigned int cid;
	unsigned int port;
	time_t end;
	unsigned long n;
	unsigned long nobufs;
	unsigned long other;
	int first_err;
};

static void *flood_thread(void *arg)
{
	struct flood *f = arg;
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = f->cid,
		.svm_port = f->port,
	};
	int fd;

	while (time(NULL) < f->end) {
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0);
		if (fd < 0) {
			f->first_err = f->first_err ? f->first_err : errno;
			f->other++;
			continue;
		}
		f->n++;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
		    errno != EINPROGRESS) {
			if (errno == ENOBUFS) {
				f->nobufs++;
			} else {
				f->first_err = f->first_err ? f->first_err :
					       errno;
				f->other++;
			}
		}
		close(fd);
	}
	return NULL;
}

static int cmd_flood(int argc, char **argv)
{
	unsigned int i, n = strtoul(argv[2], NULL, 0);
	struct flood f[64] = { 0 }, sum = { 0 };
	pthread_t th[64];

	(void)argc;
	if (!n || n > 64)
		return fail("1 to 64 threads");
	for (i = 0; i < n; i++) {
		f[i].cid = strtoul(argv[0], NULL, 0);
		f[i].port = strtoul(argv[1], NULL, 0);
		f[i].end = time(NULL) + strtoul(argv[3], NULL, 0);
		if (pthread_create(&th[i], NULL, flood_thread, &f[i]))
			return fail("pthread_create");
	}
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		sum.n += f[i].n;
		sum.nobufs += f[i].nobufs;
		sum.other += f[i].other;
		if (!sum.first_err)
			sum.first_err = f[i].first_err;
	}
	printf("flood: %lu connect()s, %lu ENOBUFS, %lu other errors%s%s\n",
	       sum.n, sum.nobufs, sum.other, sum.other ? ", first: " : "",
	       sum.other ? strerror(sum.first_err) : "");
	return 0;
}

struct hold {
	int fd;
	void *page;
	size_t len;
	ssize_t ret;
	int err;
};

static void *hold_write(void *arg)
{
	struct hold *h = arg;

	h->ret = write(h->fd, h->page, h->len);
	h->err = errno;
	return NULL;
}

/* A page whose first touch blocks until UFFDIO_COPY fills it, or -1. */
static int hold_page(struct hold *h)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (uffd < 0)
		return fail("userfaultfd (vm.unprivileged_userfaultfd?)");
	h->len = sysconf(_SC_PAGESIZE);
	h->page = mmap(NULL, h->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->page == MAP_FAILED)
		return fail("mmap");
	reg.range.start = (unsigned long)h->page;
	reg.range.len = h->len;
	if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg))
		return fail("userfaultfd setup");
	return uffd;
}

/*
 * Run @fn on @h in a thread, print "holding" once it blocks on the page,
 * wait for file @done, then fill the page and wait for @fn to return.
 */
static int hold_run(struct hold *h, int uffd, void *(*fn)(void *),
		    const char *done)
{
	struct uffdio_copy copy = { 0 };
	struct uffd_msg msg;
	pthread_t t;
	__u8 *fill;

	if (pthread_create(&t, NULL, fn, h))
		return fail("pthread_create");
	if (read(uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT)
		return fail("userfaultfd read");
	printf("holding\n");
	fflush(stdout);
	while (access(done, F_OK))
		usleep(100000);

	fill = malloc(h->len);
	if (!fill)
		return fail("malloc");
	vt_pattern_fill(fill, h->len, 0);
	copy.dst = (unsigned long)h->page;
	copy.src = (unsigned long)fill;
	copy.len = h->len;
	if (ioctl(uffd, UFFDIO_COPY, &copy))
		return fail("UFFDIO_COPY");
	pthread_join(t, NULL);
	free(fill);
	return 0;
}

/*
 * Hold a socket's lock from userspace for as long as we like: the vsock
 * core locks the socket for write(), and the driver copies the data in
 * with it locked, so a page fault on the buffer blocks with the lock held.
 * A FUSE mapping does the same for any user; userfaultfd is simpler.
 */
static int cmd_hold(int argc, char **argv)
{
	struct hold h = { 0 };
	int uffd;

	uffd = hold_page(&h);
	if (uffd < 0)
		return 1;
	h.fd = vconnect(atoi(argv[0]), atoi(argv[1]));
	if (h.fd < 0)
		return fail("connect");
	if (argc > 3) {
		__u8 hdr[8];

		vt_put_le64(hdr, strtoull(argv[3], NULL, 0));
		if (write_all(h.fd, hdr, sizeof(hdr)))
			return fail("write count");
	}
	if (hold_run(&h, uffd, hold_write, argv[2]))
		return 1;
	if (h.ret < 0)
		printf("write: %s\n", strerrorname_np(h.err));
	else
		printf("write: %zd\n", h.ret);
	close(h.fd);
	return 0;
}

/* The vsock core copies a socket option in with the socket locked. */
static void *hold_setsockopt(void *arg)
{
	struct hold *h = arg;

	h->ret = setsockopt(h->fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE,
			    h->page, sizeof(unsigned long long));
	h->err = errno;
	return NULL;
}

/* A listener held locked as cmd_hold() holds a connection. */
static int cmd_holdlisten(int argc, char **argv)
{
	struct hold h = { 0 };
	int uffd, c, ret;

	(void)argc;
	uffd = hold_page(&h);
	if (uffd < 0)
		return 1;
	h.fd = listen_on(argv[0], 4);
	if (h.fd < 0)
		return fail("listen");
	if (hold_run(&h, uffd, hold_setsockopt, argv[1]))
		return 1;
	if (h.ret < 0)
		printf("setsockopt: %s\n", strerrorname_np(h.err));
	else
		printf("setsockopt: %zd\n", h.ret);
	fflush(stdout);
	c = accept(h.fd, NULL, NULL);
	if (c < 0)
		return fail("accept");
	printf("accepted\n");
	fflush(stdout);
	ret = serve(c, "recv", strtoull(argv[2], NULL, 0));
	close(c);
	close(h.fd);
	return ret || h.ret < 0;
}

/*
 * close() with an allocation failing in it: with failslab taking sleeping
 * allocations (debugfs failslab/ignore-gfp-wait = N), the Nth one the
 * thread makes from here fails. The socket's release runs before close()
 * returns (task work), so the failure lands in the transport's close.
 */
static int cmd_failclose(int argc, char **argv)
{
	char buf[16];
	int fd, nth;
	ssize_t n;

	(void)argc;
	fd = vconnect(atoi(argv[0]), atoi(argv[1]));
	if (fd < 0)
		return fail("connect");
	if (echo_run(fd, 1, 0))
		return 1;
	nth = open("/proc/thread-self/fail-nth", O_RDWR);
	if (nth < 0)
		return fail("open fail-nth");
	n = strlen(argv[2]);
	if (write(nth, argv[2], n) != n)
		return fail("write fail-nth");
	close(fd);
	n = pread(nth, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return fail("read fail-nth");
	buf[n] = '\0';
	/*
	 * 0: a failure was injected; else how many points were left, as
	 * when every allocation close() made may not fail (__GFP_NOFAIL).
	 */
	n = strtol(buf, NULL, 10);
	printf("failclose: %s\n", n ? "nothing failed" : "injected");
	close(nth);
	return 0;
}

static int cmd_user(int argc, char **argv);

static const struct {
	const char *name;
	int args;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "echo", 3, cmd_echo },
	{ "sink", 3, cmd_sink },
	{ "psink", 3, cmd_psink },
	{ "source", 3, cmd_source },
	{ "parallel", 4, cmd_parallel },
	{ "many", 4, cmd_many },
	{ "streams", 3, cmd_streams },
	{ "accept", 3, cmd_accept },
	{ "shutrd", 5, cmd_shutrd },
	{ "hog", 5, cmd_hog },
	{ "user", 2, cmd_user },
	{ "hold", 3, cmd_hold },
	{ "holdlisten", 3, cmd_holdlisten },
	{ "flood", 4, cmd_flood },
	{ "adopt", 1, cmd_adopt },
	{ "refused", 3, cmd_refused },
	{ "timeout", 3, cmd_timeout },
	{ "stream", 2, cmd_stream },
	{ "type", 3, cmd_type },
	{ "usbreset", 1, cmd_usbreset },
	{ "failclose", 3, cmd_failclose },
};

static int run(int argc, char **argv)
{
	size_t i;

	for (i = 0; argc > 0 && i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(argv[0], cmds[i].name) && argc - 1 >= cmds[i].args)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "usage: see the comment at the top of the source\n");
	return 2;
}

/* An unprivileged user: no groups, and the same number as uid and gid. */
static int cmd_user(int argc, char **argv)
{
	unsigned int id = strtoul(argv[0], NULL, 0);

	if (setgroups(0, NULL) || setgid(id) || setuid(id))
		return fail("drop privileges");
	return run(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	return run(argc - 1, argv + 1);
}
