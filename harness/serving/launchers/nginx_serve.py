"""nginx as the reference server of the client ceiling: the apps' plaintext answer, far faster.

The client ceiling is what wrk can drive at all: wrk against a server much faster than
any WSGI server, answering exactly what the apps answer on `/` (the preflight checks the
same status, body and Content-Type). Started like the other launchers,

    python nginx_serve.py APP --host H --port P --backlog B [--workers W]

(APP is ignored: nginx answers by itself), it writes an nginx configuration into a
temporary folder (one process, no daemon, no access log, keep-alive without limit),
starts nginx and stays its parent: SIGTERM and SIGINT are passed on, and its exit code
is nginx's. The folder is removed once nginx listens (it has read everything by then).
Standard library only: it runs on a server host with the plain copy of the harness.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from _prefork import parser

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# Byte for byte what apps/app_contract.py answers on GET /.
BODY, CONTENT_TYPE = "Hello, World!", "text/plain; charset=utf-8"
CONF = """\
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    server {{
        listen {listen} backlog={backlog};
        location / {{
            default_type "{content_type}";
            return 200 "{body}";
        }}
    }}
}}
"""
START_S = 10.0


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def main() -> int:
    args = parser("nginx, the client ceiling's reference server").parse_args()
    tmp = tempfile.mkdtemp(prefix="wsgi-baseline-nginx-")
    listen = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    conf = CONF.format(
        tmp=tmp, nofile=args.backlog + 256, connections=args.backlog + 64, listen=listen,
        backlog=args.backlog, content_type=CONTENT_TYPE, body=BODY,
    )  # fmt: skip
    with open(f"{tmp}/nginx.conf", "w") as f:
        f.write(conf)
    argv = [NGINX, "-p", tmp, "-c", f"{tmp}/nginx.conf", "-e", f"{tmp}/error.log"]
    try:
        proc = subprocess.Popen(argv)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"nginx: cannot start {NGINX}: {e.strerror} (apt-get install nginx-light)")
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: proc.send_signal(signum))
    deadline = time.monotonic() + START_S
    while proc.poll() is None and time.monotonic() < deadline:
        if _listening(args.host, args.port):
            break
        time.sleep(0.01)  # poll interval while nginx starts; bounded by START_S
    shutil.rmtree(tmp, ignore_errors=True)
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
