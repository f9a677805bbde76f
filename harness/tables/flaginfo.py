"""Table and page stages: what each validity flag means — ids, titles, explanations.

Pure data with no pandas, so badges and the legend page can import it cheaply;
harness/tables/flags.py computes the flags and re-exports `FLAGS`. Each explanation names the
likely cause, so a reader can tell what to distrust and why.
"""

from __future__ import annotations

from dataclasses import dataclass

# Little's law in a closed loop: each open connection has one request outstanding, but
# for the client's turnaround and a reconnect (connection-closing servers), which wrk
# leaves out of latency. wrk's mean latency is after its coordinated-omission correction
# (stats_correct adds samples for every response slower than twice the mean cycle), which
# pushes the ratio above 1. Measured here on sound cells (gunicorn sync, waitress, uWSGI
# --http --http-keepalive, c=1..100): 0.89–1.92, and 2.23 for uWSGI at c=1 with 87 µs
# responses. So: below 0.5 means half the connections got no countable answer on
# average (the study's CherryPy at c=500: 0.02); above 3 means a tail so heavy that the
# correction dominates the mean. One band for the flag (harness/tables/flags.py) and the
# client-vs-server pages (harness/tables/clientserver.py), so the two never disagree on a cell.
LITTLE_LOW, LITTLE_HIGH = 0.5, 3.0


def little_holds(in_flight: float, connections: float) -> bool:
    """λ·W within the band of the open connections."""
    return LITTLE_LOW <= in_flight / connections <= LITTLE_HIGH


@dataclass(frozen=True)
class FlagInfo:
    id: str
    title: str
    explanation: str


FLAGS: dict[str, FlagInfo] = {
    f.id: f
    for f in (
        FlagInfo(
            "rate_not_achieved",
            "Offered rate not achieved",
            "An open-loop cell answered less than 97 % of the requests per second it offered: "
            "the server (or the client) fell behind the schedule, so the cell's latency is "
            "that of a lower load than its label, and requests still due at the end are in "
            "no latency figure. Past the server's capacity this is expected; below it, see "
            "client_saturated and the run's open-loop floor.",
        ),
        FlagInfo(
            "littles_law",
            "Little's law does not hold",
            "Requests/sec × mean latency (requests in flight) is far from the connections open. "
            "Far below: connections waited without an answer wrk could count (starved, or timed "
            "out and dropped from the latency figures). Far above: rare very slow responses "
            "inflate the mean through wrk's coordinated-omission correction.",
        ),
        FlagInfo(
            "effective_connections",
            "Fewer connections than asked",
            "wrk gives each thread connections // threads, so it opened fewer connections "
            "than the cell's label says.",
        ),
        FlagInfo(
            "fd_limit",
            "wrk hit its open-files limit",
            "Connections that could not open equal the open-files limit minus the descriptors "
            "wrk keeps for itself (stdio and one epoll per thread): the client, not the server, "
            "refused them.",
        ),
        FlagInfo(
            "eof_read_errors",
            "Responses end at connection close",
            "Read errors about as many as requests: the response had neither Content-Length "
            "nor chunked encoding, so its body ended when the server closed the connection. "
            "wrk counts each such response as completed and as a read error.",
        ),
        FlagInfo(
            "timeout_truncated",
            "Latency cut off at the timeout",
            "Responses slower than wrk's --timeout are counted as timeouts and left out of "
            "the latency figures, so the latency shown is better than what clients saw.",
        ),
        FlagInfo(
            "non_2xx",
            "Error responses",
            "Some responses had a status of 400 or more. wrk still counts them in "
            "requests/sec and latency, so the server may be fast at failing.",
        ),
        FlagInfo(
            "noisy",
            "Repeats disagree",
            "The standard deviation of requests/sec across the cell's repeats is at least "
            "10 % of their mean (pyperf's threshold): the result may be unstable.",
        ),
        FlagInfo(
            "client_saturated",
            "wrk may be the bottleneck",
            "The cell reached 70 % or more of the client ceiling measured in the same run "
            "(what wrk drives against nginx, pinned the same way), or wrk used nearly all of "
            "its CPUs while the server had CPU to spare: the number measures the client as "
            "much as the server. For an open-loop cell: the open-loop client used nearly all "
            "of its CPUs, so it sent and read late and its latencies include its own delay.",
        ),
        FlagInfo(
            "noise_unknown",
            "One repeat: noise unknown",
            "The cell was measured once, so nothing says how much it varies: on a shared "
            "machine two runs of the same code differed by 30–40 %. Its number has no "
            "interval; measure with --repeats 3 or more before deciding on it.",
        ),
        FlagInfo(
            "imprecise",
            "Not within the precision asked",
            "The run asked for a precision (--precision): this cell's 95 % interval stayed "
            "wider than that share of its mean after its repeats ran out (--max-repeats) or "
            "the run's time did (--max-time). Its repeats disagree more than the target.",
        ),
        FlagInfo(
            "closes_connections",
            "Closes every connection",
            "The server answered with a Connection: close header (gunicorn's sync worker, by "
            "design), so wrk opened a new TCP connection for every request: its numbers "
            "include that reconnect, which servers keeping connections alive do not pay. It "
            "is how this server behaves, not a fault of the measurement; compare it with "
            "that in mind (the preflight check found it before measuring).",
        ),
        FlagInfo(
            "preflight",
            "A preflight check failed",
            "Before measuring, the server's answer failed a check that did not stop the "
            "measurement, or one that did and was overridden (--ignore-preflight): the cell "
            "may be measuring a wrong answer. The detail names the check.",
        ),
        FlagInfo(
            "server_crashed",
            "Server exited or restarted",
            "The server exited during the measurement, or its processes changed (a worker "
            "died and was replaced).",
        ),
        FlagInfo(
            "starved_connections",
            "Connections left waiting",
            "The kernel saw connections that the server did not serve: fewer established "
            "than wrk opened (listen backlog full), or many waiting in the accept queue while "
            "few requests were in flight. wrk cannot see a connection that never gets an answer.",
        ),
        FlagInfo(
            "stalled",
            "The server stalled",
            "For more than a second inside the measurement the server's CPU stayed near zero "
            "while it was otherwise busy: the server was paused (a stop signal, the machine "
            "descheduled) or the network between wrk and the server went down. wrk's figures "
            "then average a busy time with a dead one; measure the cell again.",
        ),
    )
}
