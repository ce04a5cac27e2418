#!/usr/bin/awk -f
# SPDX-License-Identifier: GPL-2.0
#
# bench-report.awk -v csv=FILE -v runs=N [-v ncmnote=WHY]: the "BENCH ROW RUN key=value..."
# lines of bench-guest.sh in, a table out (stdout) and FILE (CSV): medians
# over the runs, with ratios.

function median(row, key,    n, i, j, t, a, s) {
	n = cnt[row, key]
	if (!n)
		return ""
	for (i = 1; i <= n; i++)
		a[i] = val[row, key, i] + 0
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	if (n % 2)
		return a[(n + 1) / 2]
	return (a[n / 2] + a[n / 2 + 1]) / 2
}

function all(row, key,    i, s) {
	s = ""
	for (i = 1; i <= cnt[row, key]; i++)
		s = s (i > 1 ? " " : "") val[row, key, i]
	return s
}

function ratio(a, b) {
	if (a == "" || b == "" || b + 0 == 0)
		return "n/a"
	return sprintf("%.3f", a / b)
}

function fmt(v) {
	return v == "" ? "n/a" : sprintf("%.2f", v)
}

# out ROW LABEL KEY UNIT R1NAME R1 R2NAME R2 R3NAME R3 NOTE
function out(row, label, key, unit, n1, r1, n2, r2, n3, r3, note,    m, rs) {
	m = median(row, key)
	rs = ""
	if (n1 != "") rs = rs sprintf(" %s=%s", n1, r1)
	if (n2 != "") rs = rs sprintf(" %s=%s", n2, r2)
	if (n3 != "") rs = rs sprintf(" %s=%s", n3, r3)
	if (m == "" && note == "")
		note = "no result (see the console log)"
	printf "%-34s %10s %-7s%s%s\n", label, fmt(m), unit, rs,
		note != "" ? "  [" note "]" : ""
	printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,\"%s\",\"%s\"\n", row, key,
		m == "" ? "n/a" : m, unit, n1, r1, n2, r2, n3, r3,
		cnt[row, key] + 0, all(row, key), note > csv
}

$1 == "BENCH" {
	row = $2
	for (i = 4; i <= NF; i++) {
		k = $i
		sub(/=.*/, "", k)
		v = $i
		sub(/^[^=]*=/, "", v)
		if (v !~ /^[0-9.eE+-]+$/)
			continue
		if (k == "err" && v != 0) {
			errs[row]++
			continue
		}
		cnt[row, k]++
		val[row, k, cnt[row, k]] = v
	}
}

END {
	print "row,metric,median,unit,ratio1,value1,ratio2,value2,ratio3,value3,n,values,note" > csv
	printf "usb_vsock benchmark: medians of %d runs, stock 6.12 under qemu TCG, dummy_hcd\n\n", runs
	print "== 1. link limit: raw bulk via usbfs, 8 URBs in flight"
	for (s = 0; s < 3; s++) {
		sz = s == 0 ? 512 : (s == 1 ? 1024 : 16384)
		for (d = 0; d < 2; d++) {
			dir = d ? "out" : "in"
			row = "raw_" dir "_" sz
			out(row, sprintf("raw %s %d B", toupper(dir), sz), "mbps", "MB/s")
			out(row, sprintf("raw %s %d B CPU", toupper(dir), sz), "cpu_s_per_gib", "s/GiB")
		}
	}
	print ""
	print "== 2. alternative: TCP over CDC-NCM (gadget end in its own netns)"
	nn = ncmnote != "" ? ncmnote : ""
	for (d = 0; d < 2; d++) {
		dir = d ? "in" : "out"
		for (k = 0; k < 2; k++) {
			n = k ? 8 : 1
			row = "ncm_tcp_" dir "_" n
			lbl = sprintf("NCM TCP %s %d str", d ? "IN(gadget->host)" : "OUT(host->gadget)", n)
			out(row, lbl, "mbps", "MB/s", "", "", "", "", "", "", cnt[row, "mbps"] ? "" : nn)
			out(row, lbl " CPU", "cpu_s_per_gib", "s/GiB", "", "", "", "", "", "", cnt[row, "mbps"] ? "" : nn)
		}
	}
	out("ncm_rtt", "NCM TCP 1-byte RTT", "rtt_us", "us", "", "", "", "", "", "", cnt["ncm_rtt", "rtt_us"] ? "" : nn)
	print ""
	print "== 3. usb_vsock (def = default params, ffx = tx_urbs=1 rx_urbs=2)"
	print "   ratios: /rawout1K and /rawin512 = raw bulk at usb_vsock's own transfer size"
	print "   (OUT transfers <= tx_size 1024 B, IN URBs of wMaxPacketSize 512 B)"
	for (c = 0; c < 2; c++) {
		conf = c ? "ffx" : "def"
		for (d = 0; d < 2; d++) {
			dir = d ? "source" : "sink"
			rdir = d ? "in" : "out"
			for (k = 0; k < 3; k++) {
				n = k == 0 ? 1 : (k == 1 ? 8 : 64)
				row = "vs_" conf "_" dir "_" n
				m = median(row, "mbps")
				lbl = sprintf("vsock %s %s %d str", conf, d ? "IN(source)" : "OUT(sink)", n)
				note = errs[row] ? errs[row] " run(s) with errors" : ""
				out(row, lbl, "mbps", "MB/s",
				    d ? "/rawin512" : "/rawout1K", ratio(m, median(d ? "raw_in_512" : "raw_out_1024", "mbps")),
				    "/raw" rdir "16K", ratio(m, median("raw_" rdir "_16384", "mbps")),
				    conf == "def" ? "def/ffx" : "", ratio(m, median("vs_ffx_" dir "_" n, "mbps")),
				    note)
				out(row, lbl " CPU", "cpu_s_per_gib", "s/GiB")
			}
		}
		out("vs_" conf "_rtt", sprintf("vsock %s 1-byte RTT", conf), "rtt_us", "us",
		    conf == "def" ? "def/ffx" : "", ratio(median("vs_def_rtt", "rtt_us"), median("vs_ffx_rtt", "rtt_us")))
		out("vs_" conf "_connect", sprintf("vsock %s connects", conf), "conn_per_s", "1/s",
		    conf == "def" ? "def/ffx" : "", ratio(median("vs_def_connect", "conn_per_s"), median("vs_ffx_connect", "conn_per_s")))
	}
	print ""
	print "== 4. usb_vsock (default params) / NCM TCP, same streams and direction"
	for (d = 0; d < 2; d++) {
		for (k = 0; k < 2; k++) {
			n = k ? 8 : 1
			row = "vs_def_" (d ? "source" : "sink") "_" n
			nrow = "ncm_tcp_" (d ? "in" : "out") "_" n
			r = ratio(median(row, "mbps"), median(nrow, "mbps"))
			printf "%-34s %10s\n", sprintf("vsock/NCM %s %d str", d ? "IN" : "OUT", n), r
			printf "%s,ratio_vs_ncm,%s,x,,,,,,,,\"\",\"%s\"\n", row, r, r == "n/a" ? nn : "" > csv
		}
	}
	r = ratio(median("vs_def_rtt", "rtt_us"), median("ncm_rtt", "rtt_us"))
	printf "%-34s %10s\n", "vsock/NCM 1-byte RTT", r
	printf "vs_def_rtt,ratio_vs_ncm,%s,x,,,,,,,,\"\",\"%s\"\n", r, r == "n/a" ? nn : "" > csv
}
