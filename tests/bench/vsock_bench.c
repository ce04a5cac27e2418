// SPDX-License-Identifier: GPL-2.0
/*
 * vsock_bench: AF_VSOCK benchmark client for the usb_vsock emulator's
 * services (tests/tools/vsock_testdata.h).
 *
 *   vsock_bench tput CID sink|source STREAMS SECONDS
 *	STREAMS parallel connections to the sink (host to device) or the
 *	source (device to host) service, each moving data for SECONDS
 *   vsock_bench rtt CID COUNT
 *	COUNT 1-byte ping-pongs against the echo service on one connection
 *   vsock_bench connect CID SECONDS
 *	connect to the echo service, 1-byte ping-pong, close, for SECONDS
 *   vsock_bench tcpserve PORT
 *	TCP server for the modes below (the first byte a client sends picks
 *	echo 'e', discard 's' or send forever 'o'); runs until killed
 *   vsock_bench tcp-tput IPV4 out|in STREAMS SECONDS
 *   vsock_bench tcp-rtt IPV4 COUNT
 *	the same as tput and rtt over TCP to a tcpserve at IPV4, port 5201
 *
 * Every mode prints one machine-readable line:
 *   BENCHRES mode=M streams=N bytes=B secs=S mbps=X cpu_s=C cpu_s_per_gib=G
 *   BENCHRES mode=rtt count=N secs=S rtt_us=X
 *   BENCHRES mode=connect count=N secs=S conn_per_s=X
 * cpu_s is busy CPU time of the whole machine (/proc/stat, all CPUs) over
 * the run, so it includes the emulator when it runs on the same machine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/types.h>
#include <linux/vm_sockets.h>

#define PORT_ECHO	5001
#define PORT_SINK	5002
#define PORT_SOURCE	5003
#define BUF_SIZE	65536
#define TCP_PORT	5201

struct stream {
	pthread_t thread;
	unsigned int cid;
	const char *addr;	/* TCP to this IPv4 address instead of vsock */
	int source;
	double end;
	__u64 bytes;
	int err;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Busy CPU seconds of all CPUs so far (user..steal, not idle/iowait). */
static double cpu_busy(void)
{
	unsigned long long v[8] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 8 || hz <= 0)
		return 0;
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
}

static int vconnect(unsigned int cid, unsigned int port)
{
	struct sockaddr_vm sa;
	int fd;

	fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = cid;
	sa.svm_port = port;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int tconnect(const char *addr, char cmd)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(TCP_PORT);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, &cmd, 1) != 1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static void *stream_run(void *arg)
{
	struct stream *s = arg;
	static const __u64 huge = 1ULL << 50;
	unsigned char count[8];
	char *buf;
	ssize_t n;
	int fd, i;

	buf = calloc(1, BUF_SIZE);
	if (!buf) {
		s->err = 1;
		return NULL;
	}
	if (s->addr)
		fd = tconnect(s->addr, s->source ? 'o' : 's');
	else
		fd = vconnect(s->cid, s->source ? PORT_SOURCE : PORT_SINK);
	if (fd < 0) {
		perror("vsock_bench: connect");
		s->err = 1;
		free(buf);
		return NULL;
	}
	for (i = 0; i < 8; i++)
		count[i] = (unsigned char)(huge >> (8 * i));
	if (!s->addr && write_all(fd, count, sizeof(count))) {
		s->err = 1;
		goto out;
	}
	while (now() < s->end) {
		if (s->source) {
			n = read(fd, buf, BUF_SIZE);
			if (n <= 0) {
				s->err = 1;
				break;
			}
			s->bytes += n;
		} else {
			if (write_all(fd, buf, BUF_SIZE)) {
				s->err = 1;
				break;
			}
			s->bytes += BUF_SIZE;
		}
	}
out:
	close(fd);
	free(buf);
	return NULL;
}

static int cmd_tput(unsigned int cid, const char *addr, const char *dir,
		    int nr, double secs)
{
	struct stream *s;
	double t0, t1, c0, c1;
	__u64 bytes = 0;
	int i, err = 0;

	if (nr < 1 || secs <= 0)
		return 2;
	s = calloc(nr, sizeof(*s));
	if (!s)
		return 1;
	c0 = cpu_busy();
	t0 = now();
	for (i = 0; i < nr; i++) {
		s[i].cid = cid;
		s[i].addr = addr;
		s[i].source = !strcmp(dir, "source") || !strcmp(dir, "in");
		s[i].end = t0 + secs;
		if (pthread_create(&s[i].thread, NULL, stream_run, &s[i])) {
			err = 1;
			nr = i;
			break;
		}
	}
	for (i = 0; i < nr; i++) {
		pthread_join(s[i].thread, NULL);
		bytes += s[i].bytes;
		err |= s[i].err;
	}
	t1 = now();
	c1 = cpu_busy();
	printf("BENCHRES mode=%s%s streams=%d bytes=%llu secs=%.3f mbps=%.2f ",
	       addr ? "tcp_" : "", dir, nr, (unsigned long long)bytes, t1 - t0,
	       bytes / 1e6 / (t1 - t0));
	printf("cpu_s=%.2f cpu_s_per_gib=%.2f err=%d\n", c1 - c0,
	       bytes ? (c1 - c0) / (bytes / 1073741824.0) : 0.0, err);
	free(s);
	return err;
}

static int ping(int fd)
{
	char c = 'x';

	if (write_all(fd, &c, 1))
		return -1;
	return read(fd, &c, 1) == 1 ? 0 : -1;
}

static int cmd_rtt(unsigned int cid, const char *addr, long count)
{
	double t0, t1;
	long i;
	int fd;

	if (addr)
		fd = tconnect(addr, 'e');
	else
		fd = vconnect(cid, PORT_ECHO);
	if (fd < 0) {
		perror("vsock_bench: connect");
		return 1;
	}
	ping(fd);	/* warm up */
	t0 = now();
	for (i = 0; i < count; i++) {
		if (ping(fd)) {
			perror("vsock_bench: ping");
			close(fd);
			return 1;
		}
	}
	t1 = now();
	close(fd);
	printf("BENCHRES mode=%srtt count=%ld secs=%.3f rtt_us=%.1f\n",
	       addr ? "tcp_" : "", count, t1 - t0, (t1 - t0) * 1e6 / count);
	return 0;
}

static int cmd_connect(unsigned int cid, double secs)
{
	double t0, t1;
	long count = 0;
	int fd;

	t0 = now();
	do {
		fd = vconnect(cid, PORT_ECHO);
		if (fd < 0 || ping(fd)) {
			perror("vsock_bench: connect");
			if (fd >= 0)
				close(fd);
			return 1;
		}
		close(fd);
		count++;
		t1 = now();
	} while (t1 - t0 < secs);
	printf("BENCHRES mode=connect count=%ld secs=%.3f conn_per_s=%.1f\n",
	       count, t1 - t0, count / (t1 - t0));
	return 0;
}

static void *serve_conn(void *arg)
{
	int fd = (int)(long)arg;
	char *buf = calloc(1, BUF_SIZE);
	char cmd;
	ssize_t n;

	if (!buf || read(fd, &cmd, 1) != 1)
		goto out;
	for (;;) {
		if (cmd == 'o') {
			if (write_all(fd, buf, BUF_SIZE))
				break;
			continue;
		}
		n = read(fd, buf, BUF_SIZE);
		if (n <= 0 || (cmd == 'e' && write_all(fd, buf, n)))
			break;
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static int cmd_tcpserve(int port)
{
	struct sockaddr_in sa;
	pthread_t t;
	int lfd, fd, one = 1;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		return 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 128)) {
		perror("vsock_bench: tcpserve");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (pthread_create(&t, NULL, serve_conn, (void *)(long)fd))
			close(fd);
		else
			pthread_detach(t);
	}
}

int main(int argc, char **argv)
{
	unsigned int cid;

	/* A peer that closes first must not kill a writer. */
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "tcpserve"))
		return cmd_tcpserve(atoi(argv[2]));
	if (argc < 4)
		goto usage;
	if (!strcmp(argv[1], "tcp-tput") && argc == 6)
		return cmd_tput(0, argv[2], argv[3], atoi(argv[4]),
				atof(argv[5]));
	if (!strcmp(argv[1], "tcp-rtt") && argc == 4)
		return cmd_rtt(0, argv[2], atol(argv[3]));
	cid = strtoul(argv[2], NULL, 0);
	if (!strcmp(argv[1], "tput") && argc == 6)
		return cmd_tput(cid, NULL, argv[3], atoi(argv[4]),
				atof(argv[5]));
	if (!strcmp(argv[1], "rtt") && argc == 4)
		return cmd_rtt(cid, NULL, atol(argv[3]));
	if (!strcmp(argv[1], "connect") && argc == 4)
		return cmd_connect(cid, atof(argv[3]));
usage:
	fprintf(stderr,
		"usage: vsock_bench tput CID sink|source STREAMS SECONDS\n"
		"       vsock_bench rtt CID COUNT\n"
		"       vsock_bench connect CID SECONDS\n"
		"       vsock_bench tcpserve PORT\n"
		"       vsock_bench tcp-tput IPV4 out|in STREAMS SECONDS\n"
		"       vsock_bench tcp-rtt IPV4 COUNT\n");
	return 2;
}
