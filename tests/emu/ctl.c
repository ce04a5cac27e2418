// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock_emu: the control interface.
 *
 * A unix stream socket (--ctl, default /tmp/NAME.sock) takes one command
 * line per connection; the reply is zero or more lines, then "ok" or
 * "fail: REASON". "usb_vsock_emu ctl SOCKET COMMAND [ARG...]" sends one,
 * prints the reply lines (the fail line to stderr) and exits 0 on ok, 1 on
 * fail. Commands:
 *   status                   state=... cid=... version=... syncs=... (one
 *                            line of key=value)
 *   stats                    one counter per line, name=value
 *   get NAME                 the value of one counter or status key
 *   wait-sync [SEC [N]]      wait (default 10 s) until synced, with at
 *                            least N handshakes done in all (default 1)
 *   connect PORT SVC [N]     send Connect (host_cid 2, device_cid the
 *                            assigned CID, a new device port) to host port
 *                            PORT and run service SVC on it once accepted:
 *                            echo, sink, slow-sink, or source N (N bytes of
 *                            the pattern, then Finish). Waits 5 s for the
 *                            Accept: "accepted id=ID device_port=P", or
 *                            fails with "refused" or "timeout"
 *   conns                    one line per connection
 *   wait-idle [SEC]          wait (default 10 s) until no connection is left
 *   unplug | replug          unbind from / bind to the UDC again
 *   resync                   restart the link from the device side: drop
 *                            every connection, send a Sync, and wait for
 *                            the host to run the handshake again (with
 *                            --generation v2: reset-sync; fails with the
 *                            older generations, which never do this)
 *   hostile MODE COUNT [PORT]
 *                            send COUNT hostile IN transfers of MODE
 *                            (hostile.c: random, mutate, magic, length,
 *                            type, sync, connect, data, pause, echo,
 *                            lengths, mix; none stops); PORT: the host
 *                            listener for connect. Returns at once
 *   wait-hostile [SEC]       wait (default 60 s) until they are all sent
 *   hold-out 1|0             stop reading the OUT endpoint, as a wedged
 *                            device would (the host's transfers then wait),
 *                            or read it again
 *   halt-out                 halt the OUT endpoint (a STALL), as a device
 *                            does on a request it cannot take; the host
 *                            must clear it
 *   ignore-pause 1|0         count the host's Pause packets but go on
 *                            sending regardless, as a device that ignores
 *                            flow control would, or honour them again
 *   give-up                  (--generation) dead at once, as after a bad
 *                            final Sync: nothing is answered or processed
 *                            until the function is re-created
 *   drop-syncs N             (--generation) the next N host Syncs read are
 *                            dropped unprocessed (dropped_syncs)
 *   reset-sync               (--generation v2) drop the connections, send a
 *                            reset Sync (vsock:2:0, our CID), wait for the
 *                            host's Sync
 *   client-reconnect         (--generation v2) the vsock client reconnected:
 *                            as reset-sync (its first link starts with one)
 *   odd connect-payload PORT SERVICE [N]
 *                            connect as above, with a payload on the
 *                            Connect (Fuchsia ignores it)
 *   odd bad-pause            send a Pause with payload 2 on the first open
 *                            connection (Fuchsia drops it)
 *   next-port PORT           the next connect comes from device port PORT
 *                            (the ones after it from PORT + 1 and on)
 *   reset-stats              zero the counters
 *   quit                     exit as on SIGTERM
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "emu.h"

struct ctl_out {
	char buf[8192];
	size_t len;
};

static __printf(2, 3) void out(struct ctl_out *co, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (co->len >= sizeof(co->buf))
		return;
	va_start(ap, fmt);
	n = vsnprintf(co->buf + co->len, sizeof(co->buf) - co->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		co->len += n;
	if (co->len > sizeof(co->buf))
		co->len = sizeof(co->buf);
}

/* status as key=value pairs; the caller holds emu.lock. */
static void status_line(struct ctl_out *co)
{
	out(co, "state=%s cid=%u version=%d syncs=%u enabled=%d bound=%d conns=%u maxp=%u\n",
	    link_state_name(emu.ls), emu.cid, emu.agreed, emu.sync_count,
	    emu.enabled, emu.bound, emu.nconns, emu.maxp);
}

static int cmd_get(struct ctl_out *co, const char *key)
{
	int i;

	for (i = 0; i < ST_COUNT; i++) {
		if (!strcmp(key, emu_stat_names[i])) {
			out(co, "%llu\n", (unsigned long long)
			    __atomic_load_n(&emu.stats[i], __ATOMIC_RELAXED));
			return 0;
		}
	}
	pthread_mutex_lock(&emu.lock);
	if (!strcmp(key, "state"))
		out(co, "%s\n", link_state_name(emu.ls));
	else if (!strcmp(key, "cid"))
		out(co, "%u\n", emu.cid);
	else if (!strcmp(key, "version"))
		out(co, "%d\n", emu.agreed);
	else if (!strcmp(key, "syncs"))
		out(co, "%u\n", emu.sync_count);
	else if (!strcmp(key, "conns"))
		out(co, "%u\n", emu.nconns);
	else if (!strcmp(key, "enabled"))
		out(co, "%d\n", emu.enabled);
	else if (!strcmp(key, "hostile_left"))
		out(co, "%llu\n", (unsigned long long)emu.hostile_left);
	else if (!strcmp(key, "generation"))
		out(co, "%s\n", gen_name(emu.o.generation));
	else if (!strcmp(key, "service"))
		out(co, "%s\n", svc_waiting() ? "starting" : "running");
	else if (!strcmp(key, "drop_syncs_left"))
		out(co, "%u\n", emu.drop_syncs);
	else
		key = NULL;
	pthread_mutex_unlock(&emu.lock);
	if (!key)
		out(co, "fail: no such key\n");
	return key ? 0 : -1;
}

/* The payload of an odd Connect: Fuchsia ignores it, so must the host. */
#define ODD_PAYLOAD	"odd!"

/* odd: the Connect carries a payload. */
static int cmd_connect(struct ctl_out *co, char **arg, int nargs, bool odd)
{
	/* Long enough for a loaded TCG guest: only a hang guard. */
	long long deadline = now_ms() + 30000;
	struct emu_conn *c;
	struct emu_quad q;
	enum emu_svc svc;
	int res;

	if (nargs < 2)
		goto usage;
	for (svc = SVC_ECHO; svc < SVC_COUNT; svc++)
		if (!strcmp(arg[1], svc_name(svc)))
			break;
	if (svc == SVC_COUNT || svc == SVC_REFUSE || svc == SVC_SILENT ||
	    nargs > 3)
		goto usage;
	if (svc == SVC_SOURCE ? nargs != 3 : nargs != 2)
		goto usage;
	pthread_mutex_lock(&emu.lock);
	if (emu.ls != LS_SYNCED) {
		pthread_mutex_unlock(&emu.lock);
		out(co, "fail: not synced\n");
		return -1;
	}
	q.dev_cid = emu.cid;
	q.host_cid = USB_VSOCK_CID_HOST;
	q.dev_port = emu.next_local_port++;
	q.host_port = strtoul(arg[0], NULL, 0);
	c = conn_new(&q, svc, true);
	if (!c) {
		pthread_mutex_unlock(&emu.lock);
		out(co, "fail: out of memory\n");
		return -1;
	}
	if (nargs == 3) {
		c->have_count = true;
		c->count = strtoull(arg[2], NULL, 0);
	}
	conn_get(c);
	stat_inc(ST_connect_out);
	queue_pkt(USB_VSOCK_CONNECT, &q, odd ? ODD_PAYLOAD : NULL,
		  odd ? sizeof(ODD_PAYLOAD) - 1 : 0, false);
	while (c->state == CS_CONNECTING && !emu.stop &&
	       now_ms() < deadline)
		cond_wait_ms(&c->cond, deadline - now_ms());
	res = c->connect_result;
	if (c->state == CS_CONNECTING) {
		queue_pkt(USB_VSOCK_RESET, &q, NULL, 0, false);
		conn_kill(c);
	}
	if (res > 0)
		out(co, "accepted id=%u device_port=%u\n", c->id, q.dev_port);
	else
		out(co, "fail: %s\n", res < 0 ? "refused" : "timeout");
	conn_put(c);
	pthread_mutex_unlock(&emu.lock);
	return res > 0 ? 0 : -1;
usage:
	out(co, "fail: usage: connect PORT echo|sink|slow-sink|source N\n");
	return -1;
}

/* A Pause with a bad payload on the first open connection. */
static int cmd_bad_pause(struct ctl_out *co)
{
	static const __u8 bad = 2;
	struct emu_conn *c;

	pthread_mutex_lock(&emu.lock);
	for (c = emu.conns->next; c != emu.conns; c = c->next)
		if (c->state == CS_OPEN)
			break;
	if (c == emu.conns) {
		pthread_mutex_unlock(&emu.lock);
		out(co, "fail: no open connection\n");
		return -1;
	}
	queue_pkt(USB_VSOCK_PAUSE_PKT, &c->q, &bad, 1, false);
	out(co, "sent id=%u\n", c->id);
	pthread_mutex_unlock(&emu.lock);
	return 0;
}

static int wait_hostile(struct ctl_out *co, char **arg, int nargs)
{
	long long deadline = now_ms() + 1000 *
		(nargs > 0 ? strtoll(arg[0], NULL, 0) : 60);
	bool ok;

	pthread_mutex_lock(&emu.lock);
	while (!(ok = !emu.hostile_left) && !emu.stop && now_ms() < deadline)
		cond_wait_ms(&emu.cond, deadline - now_ms());
	out(co, "hostile_left=%llu\n", (unsigned long long)emu.hostile_left);
	pthread_mutex_unlock(&emu.lock);
	if (!ok)
		out(co, "fail: timeout\n");
	return ok ? 0 : -1;
}

static int wait_for(struct ctl_out *co, char **arg, int nargs, bool idle)
{
	long long deadline = now_ms() + 1000 *
		(nargs > 0 ? strtoll(arg[0], NULL, 0) : 10);
	unsigned int min_syncs = nargs > 1 ? strtoul(arg[1], NULL, 0) : 1;
	bool ok;

	pthread_mutex_lock(&emu.lock);
	for (;;) {
		if (idle)
			ok = !emu.nconns;
		else
			ok = emu.ls == LS_SYNCED && emu.sync_count >= min_syncs;
		if (ok || emu.stop || now_ms() >= deadline)
			break;
		cond_wait_ms(&emu.cond, deadline - now_ms());
	}
	status_line(co);
	pthread_mutex_unlock(&emu.lock);
	if (!ok)
		out(co, "fail: timeout\n");
	return ok ? 0 : -1;
}

static void cmd_conns(struct ctl_out *co)
{
	static const char *const st[] = { "connecting", "open", "fin-sent",
					  "dead" };
	struct emu_conn *c;

	pthread_mutex_lock(&emu.lock);
	for (c = emu.conns->next; c != emu.conns; c = c->next) {
		out(co, "id=%u svc=%s state=%s dev=%u:%u host=%u:%u rx=%zu tx=%zu",
		    c->id, svc_name(c->svc), st[c->state], c->q.dev_cid,
		    c->q.dev_port, c->q.host_cid, c->q.host_port, c->rx.len,
		    c->tx.len);
		out(co, " host_paused=%d we_paused=%d\n", c->host_paused,
		    c->we_paused);
	}
	pthread_mutex_unlock(&emu.lock);
}

static int run_cmd(struct ctl_out *co, char *line)
{
	char *arg[8], *save = NULL, *t;
	int n = 0, i;

	for (t = strtok_r(line, " \t\r\n", &save); t && n < 8;
	     t = strtok_r(NULL, " \t\r\n", &save))
		arg[n++] = t;
	if (!n) {
		out(co, "fail: empty command\n");
		return -1;
	}
	if (!strcmp(arg[0], "status")) {
		pthread_mutex_lock(&emu.lock);
		status_line(co);
		pthread_mutex_unlock(&emu.lock);
	} else if (!strcmp(arg[0], "stats")) {
		for (i = 0; i < ST_COUNT; i++)
			out(co, "%s=%llu\n", emu_stat_names[i],
			    (unsigned long long)__atomic_load_n(&emu.stats[i],
							       __ATOMIC_RELAXED));
	} else if (!strcmp(arg[0], "get") && n == 2) {
		return cmd_get(co, arg[1]);
	} else if (!strcmp(arg[0], "wait-sync")) {
		return wait_for(co, arg + 1, n - 1, false);
	} else if (!strcmp(arg[0], "wait-idle")) {
		return wait_for(co, arg + 1, n - 1, true);
	} else if (!strcmp(arg[0], "connect")) {
		return cmd_connect(co, arg + 1, n - 1, false);
	} else if (!strcmp(arg[0], "odd") && n >= 2 &&
		   !strcmp(arg[1], "connect-payload")) {
		return cmd_connect(co, arg + 2, n - 2, true);
	} else if (!strcmp(arg[0], "odd") && n == 2 &&
		   !strcmp(arg[1], "bad-pause")) {
		return cmd_bad_pause(co);
	} else if (!strcmp(arg[0], "conns")) {
		cmd_conns(co);
	} else if (!strcmp(arg[0], "unplug")) {
		if (gadget_unbind()) {
			out(co, "fail: cannot unbind\n");
			return -1;
		}
	} else if (!strcmp(arg[0], "replug")) {
		if (gadget_bind()) {
			out(co, "fail: cannot bind\n");
			return -1;
		}
	} else if (!strcmp(arg[0], "resync")) {
		if (link_restart()) {
			out(co, "fail: generation %s never sends a Sync unprompted\n",
			    gen_name(emu.o.generation));
			return -1;
		}
	} else if (!strcmp(arg[0], "hostile") && (n == 3 || n == 4)) {
		if (hostile_start(arg[1], strtoull(arg[2], NULL, 0),
				  n == 4 ? strtoul(arg[3], NULL, 0) : 0)) {
			out(co, "fail: unknown mode %s\n", arg[1]);
			return -1;
		}
	} else if (!strcmp(arg[0], "wait-hostile")) {
		return wait_hostile(co, arg + 1, n - 1);
	} else if (!strcmp(arg[0], "hold-out") && n == 2) {
		pthread_mutex_lock(&emu.lock);
		emu.hold_out = atoi(arg[1]);
		pthread_cond_broadcast(&emu.cond);
		pthread_mutex_unlock(&emu.lock);
	} else if (!strcmp(arg[0], "halt-out")) {
		if (gadget_halt_out()) {
			out(co, "fail: cannot halt the OUT endpoint: %s\n",
			    strerror(errno));
			return -1;
		}
	} else if (!strcmp(arg[0], "ignore-pause") && n == 2) {
		pthread_mutex_lock(&emu.lock);
		emu.ignore_pause = atoi(arg[1]);
		pthread_mutex_unlock(&emu.lock);
	} else if (!strcmp(arg[0], "give-up") ||
		   !strcmp(arg[0], "reset-sync") ||
		   !strcmp(arg[0], "client-reconnect")) {
		if ((arg[0][0] == 'g' ? link_give_up() :
		     arg[0][0] == 'r' ? link_reset_sync() :
		     link_client_reconnect())) {
			out(co, "fail: not with generation %s\n",
			    gen_name(emu.o.generation));
			return -1;
		}
	} else if (!strcmp(arg[0], "drop-syncs") && n == 2) {
		if (!emu.o.generation) {
			out(co, "fail: only with --generation\n");
			return -1;
		}
		pthread_mutex_lock(&emu.lock);
		emu.drop_syncs = strtoul(arg[1], NULL, 0);
		pthread_mutex_unlock(&emu.lock);
	} else if (!strcmp(arg[0], "next-port") && n == 2) {
		pthread_mutex_lock(&emu.lock);
		emu.next_local_port = strtoul(arg[1], NULL, 0);
		pthread_mutex_unlock(&emu.lock);
	} else if (!strcmp(arg[0], "reset-stats")) {
		for (i = 0; i < ST_COUNT; i++)
			__atomic_store_n(&emu.stats[i], 0, __ATOMIC_RELAXED);
	} else if (!strcmp(arg[0], "quit")) {
		pthread_mutex_lock(&emu.lock);
		emu.quit = true;
		pthread_mutex_unlock(&emu.lock);
	} else {
		out(co, "fail: unknown command %s\n", arg[0]);
		return -1;
	}
	return 0;
}

static void *ctl_client_thread(void *arg)
{
	int fd = (long)arg;
	struct ctl_out *co = calloc(1, sizeof(*co));
	char line[512];
	size_t got = 0;
	ssize_t n;

	if (!co)
		goto out;
	while (got < sizeof(line) - 1) {
		n = read(fd, line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			break;
		got += n;
		if (memchr(line, '\n', got))
			break;
	}
	line[got] = 0;
	if (!run_cmd(co, line))
		out(co, "ok\n");
	if (co->len == sizeof(co->buf))
		memcpy(co->buf + co->len - 17, "\nfail: truncated\n", 17);
	for (got = 0; got < co->len; got += n) {
		n = write(fd, co->buf + got, co->len - got);
		if (n <= 0)
			break;
	}
	free(co);
out:
	close(fd);
	return NULL;
}

void *ctl_thread(void *arg)
{
	int sfd = (long)arg;
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		struct pollfd p = { .fd = sfd, .events = POLLIN };
		bool stop;
		int fd;

		pthread_mutex_lock(&emu.lock);
		stop = emu.stop;
		pthread_mutex_unlock(&emu.lock);
		if (stop)
			break;
		if (poll(&p, 1, 200) <= 0)
			continue;
		fd = accept(sfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (pthread_create(&t, &attr, ctl_client_thread,
				   (void *)(long)fd))
			close(fd);
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

int ctl_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(emu.o.ctl_path) >= sizeof(sa.sun_path)) {
		emu_log("control socket path too long\n");
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", emu.o.ctl_path);
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, 8)) {
		emu_log("control socket %s: %s\n", sa.sun_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* usb_vsock_emu ctl SOCKET COMMAND [ARG...] */
int ctl_client(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cmd[512], reply[8192];
	size_t len = 0, got = 0;
	char *line, *save = NULL;
	int fd, i, ok = 0;
	ssize_t n;

	if (argc < 2 || strlen(argv[0]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: usb_vsock_emu ctl SOCKET COMMAND [ARG...]\n");
		return 2;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[0]);
	for (i = 1; i < argc; i++)
		len += snprintf(cmd + len, sizeof(cmd) - len, "%s%s",
				i > 1 ? " " : "", argv[i]);
	if (len >= sizeof(cmd) - 1)
		return 2;
	cmd[len++] = '\n';
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "usb_vsock_emu ctl: %s: %s\n", sa.sun_path,
			strerror(errno));
		return 1;
	}
	if (write(fd, cmd, len) != (ssize_t)len) {
		fprintf(stderr, "usb_vsock_emu ctl: write: %s\n",
			strerror(errno));
		return 1;
	}
	while (got < sizeof(reply) - 1) {
		n = read(fd, reply + got, sizeof(reply) - 1 - got);
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	reply[got] = 0;
	for (line = strtok_r(reply, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "ok"))
			ok = 1;
		else if (!strncmp(line, "fail", 4))
			fprintf(stderr, "usb_vsock_emu ctl: %s\n", line);
		else
			printf("%s\n", line);
	}
	return ok ? 0 : 1;
}
