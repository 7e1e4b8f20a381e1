"""End-to-end: Kombu's Redis transport under consumer churn.

Every test runs against a real redis-server and against Redoubt (the
`queue_server` fixture): the redis-server run shows the test itself is right,
the Redoubt run is the one that matters. Producers run in the test's thread,
each consumer in a thread of its own with its own Kombu connection.

- Fanout: the transport publishes a fanout exchange's messages with PUBLISH on
  "/<db>.<exchange>/<routing key>" and each consuming connection PSUBSCRIBEs
  "/<db>.<exchange>/*" (bound with routing key "#"). Stable consumers, bound
  before the first numbered message (a probe that reaches a consumer proves it
  is subscribed), must get every message exactly once, in order. Churning
  consumers join and leave while the producer publishes: each session opens a
  connection, consumes, cancels after a random number of messages and closes
  the connection. A session must see a gapless run of sequence numbers (once
  subscribed, every later message reaches it until it cancels), and each
  churner's sessions one after another must be strictly increasing (no
  duplicates, publication order).
- Direct queue: the transport LPUSHes to a list and consumers BRPOP it, with
  acknowledgements kept in the unacked hash. Consumers join and leave (a fresh
  connection each time, leaving only right after a delivery, when no BRPOP is
  in flight) while the producer publishes; every message must be delivered
  exactly once overall, in queue order for each consumer, and nothing may be
  left in the queue or the unacked hash.

Waits are on events and conditions with deadlines; the only polling is the
bounded probe loop that waits for the stable consumers' subscriptions.
"""

import os
import random
import socket
import threading
import time

import pytest
from kombu import Connection, Consumer, Exchange, Queue

MESSAGES = int(os.environ.get("KOMBU_PUBSUB_MESSAGES", "3000"))
DEADLINE = 120.0  # seconds any one scenario may take
SEED = int(os.environ.get("KOMBU_PUBSUB_SEED", random.randrange(2**31)))

FANOUT = Exchange("news", type="fanout", durable=False)
DIRECT = Exchange("jobs", type="direct", durable=False)
JOBS = Queue("jobs", exchange=DIRECT, routing_key="jobs", durable=False)


@pytest.fixture(scope="module")
def url(queue_server):
    with queue_server.client() as client:
        client.flushall()
    return queue_server.url


def drain(conn):
    """One drain_events round; True if it returned because of a delivery."""
    try:
        conn.drain_events(timeout=0.05)
        return True
    except socket.timeout:
        return False


class Worker(threading.Thread):
    """A consumer thread; an exception in it is kept for the test to raise."""

    def __init__(self, name, target):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error = None

    def run(self):
        try:
            self._target_fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


class Tally:
    """Shared counters with a condition to wait on."""

    def __init__(self):
        self.cond = threading.Condition()
        self.stop = threading.Event()

    def wait_for(self, predicate, what, describe):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout=DEADLINE):
                pytest.fail(
                    f"timed out after {DEADLINE}s waiting for {what} (seed {SEED}): {describe()}"
                )


def join_all(workers, tally):
    tally.stop.set()
    for w in workers:
        w.join(timeout=30)
        assert not w.is_alive(), f"{w.name} did not stop"
    for w in workers:
        if w.error is not None:
            raise AssertionError(f"{w.name} failed (seed {SEED})") from w.error


def gapless(seqs):
    return seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True


def strictly_increasing(seqs):
    return all(a < b for a, b in zip(seqs, seqs[1:]))


def test_fanout_consumers_join_and_leave(url):
    tally = Tally()
    stable_names = ["stable-a", "stable-b", "stable-c"]
    stable = {n: [] for n in stable_names}  # bodies in arrival order
    numbered = {n: 0 for n in stable_names}  # how many of them are numbered messages
    bound = {n: threading.Event() for n in stable_names}
    # churner name -> list of sessions -> seqs
    churned = {f"churn-{k}": [] for k in range(3)}

    def stable_consumer(name):
        queue = Queue(f"fanout-{name}", exchange=FANOUT, routing_key="#", durable=False)

        def on_message(body, message):
            with tally.cond:
                stable[name].append(body)
                numbered[name] += "seq" in body
                tally.cond.notify_all()
            if "probe" in body:
                bound[name].set()

        with Connection(url) as conn:
            consumer = Consumer(
                conn, queues=[queue], callbacks=[on_message], no_ack=True, accept=["json"]
            )
            with consumer:
                while not tally.stop.is_set():
                    drain(conn)

    def churner(name, rng):
        queue = Queue(f"fanout-{name}", exchange=FANOUT, routing_key="#", durable=False)
        while not tally.stop.is_set():
            seqs = []
            churned[name].append(seqs)

            def on_message(body, message, seqs=seqs):
                seqs.append(body["seq"] if "seq" in body else ("unexpected", body))

            leave_after = 1 + rng.randrange(300)
            with Connection(url) as conn:
                consumer = Consumer(
                    conn, queues=[queue], callbacks=[on_message], no_ack=True, accept=["json"]
                )
                with consumer:
                    while not tally.stop.is_set() and len(seqs) < leave_after:
                        drain(conn)

    workers = [Worker(n, lambda n=n: stable_consumer(n)) for n in stable_names]
    for w in workers:
        w.start()
    try:
        with Connection(url) as conn:
            producer = conn.Producer(serializer="json")

            def publish(body):
                producer.publish(body, exchange=FANOUT, routing_key="tick", declare=[FANOUT])

            # Probes until every stable consumer has had one: from then on each
            # is subscribed (bounded polling, the only kind in this module).
            probes = 0
            deadline = time.monotonic() + 30
            while not all(e.is_set() for e in bound.values()):
                assert all(w.error is None for w in workers), [w.error for w in workers]
                assert time.monotonic() < deadline, f"stable consumers never bound: {bound}"
                publish({"probe": probes})
                probes += 1
                for e in bound.values():
                    e.wait(0.05)

            rngs = random.Random(SEED)
            churners = [
                Worker(n, lambda n=n, r=random.Random(rngs.random()): churner(n, r))
                for n in churned
            ]
            for w in churners:
                w.start()
            workers += churners
            started = time.monotonic()
            for i in range(MESSAGES):
                publish({"seq": i})

        tally.wait_for(
            lambda: all(n >= MESSAGES for n in numbered.values()),
            f"every stable consumer to get {MESSAGES} messages",
            lambda: numbered,
        )
        elapsed = time.monotonic() - started
    finally:
        join_all(workers, tally)

    for name, got in stable.items():
        seen_probes = [b["probe"] for b in got if "probe" in b]
        seqs = [b["seq"] for b in got if "seq" in b]
        assert len(seqs) + len(seen_probes) == len(got), f"{name}: unexpected bodies {got[:5]}"
        # Probes come first, and from the first one received, all of them.
        assert got[: len(seen_probes)] == [{"probe": p} for p in seen_probes], (
            f"{name}: a probe after a message"
        )
        assert seen_probes == list(range(seen_probes[0], probes)), (
            f"{name}: probes {seen_probes} of {probes}"
        )
        if seqs != list(range(MESSAGES)):
            missing = sorted(set(range(MESSAGES)) - set(seqs))
            misplaced = next((k for k, s in enumerate(seqs) if s != k), None)
            pytest.fail(
                f"{name}: got {len(seqs)} messages, expected {MESSAGES} once each in order "
                f"(missing {missing[:10]}, {len(seqs) - len(set(seqs))} duplicated, "
                f"first out of place at {misplaced}; seed {SEED})"
            )

    sessions_total = 0
    received_total = 0
    for name, sessions in churned.items():
        sessions_total += len(sessions)
        everything = [s for seqs in sessions for s in seqs]
        received_total += len(everything)
        odd = [s for s in everything if not (isinstance(s, int) and 0 <= s < MESSAGES)]
        assert odd == [], f"{name}: unexpected bodies (seed {SEED}): {odd[:5]}"
        for k, seqs in enumerate(sessions):
            assert gapless(seqs), f"{name}, session {k}: a gap in {seqs} (seed {SEED})"
        assert strictly_increasing(everything), (
            f"{name}: duplicated or out of order across its sessions {sessions} (seed {SEED})"
        )
    assert received_total > 0, f"the churners received nothing in {sessions_total} sessions"
    print(
        f"fanout: {MESSAGES} messages to 3 stable consumers in {elapsed:.1f}s; churners: "
        f"{sessions_total} sessions, {received_total} messages (seed {SEED})"
    )


def test_direct_queue_consumers_join_and_leave(url, queue_server):
    tally = Tally()
    deliveries = []  # (consumer, seq), in arrival order for each consumer
    sessions_run = {"count": 0}

    def consumer(name, rng):
        while not tally.stop.is_set():
            got = []

            def on_message(body, message, got=got):
                message.ack()
                got.append(body["seq"])
                with tally.cond:
                    deliveries.append((name, body["seq"]))
                    tally.cond.notify_all()

            leave_after = 1 + rng.randrange(150)
            with Connection(url) as conn:
                with Consumer(conn, queues=[JOBS], callbacks=[on_message], accept=["json"]):
                    # Leave only right after a delivery: then no BRPOP is in
                    # flight whose message would go to a closed connection.
                    while not tally.stop.is_set():
                        before = len(got)
                        if drain(conn) and len(got) > before and len(got) >= leave_after:
                            break
            with tally.cond:
                sessions_run["count"] += 1

    rngs = random.Random(SEED + 1)
    workers = [
        Worker(f"jobs-{k}", lambda k=k, r=random.Random(rngs.random()): consumer(f"jobs-{k}", r))
        for k in range(4)
    ]
    for w in workers:
        w.start()
    try:
        started = time.monotonic()
        with Connection(url) as conn:
            producer = conn.Producer(serializer="json")
            # The exchange, queue and binding exist before the first message.
            JOBS(conn.default_channel).declare()
            for i in range(MESSAGES):
                producer.publish({"seq": i}, exchange=DIRECT, routing_key="jobs")
        tally.wait_for(
            lambda: len(deliveries) >= MESSAGES,
            f"{MESSAGES} deliveries",
            lambda: f"{len(deliveries)} delivered",
        )
        elapsed = time.monotonic() - started
    finally:
        join_all(workers, tally)

    seqs = sorted(s for _, s in deliveries)
    if seqs != list(range(MESSAGES)):
        missing = sorted(set(range(MESSAGES)) - set(seqs))
        pytest.fail(
            f"{len(deliveries)} deliveries for {MESSAGES} messages: missing {missing[:10]} "
            f"({len(missing)}), {len(seqs) - len(set(seqs))} duplicated (seed {SEED})"
        )
    for k in range(4):
        mine = [s for name, s in deliveries if name == f"jobs-{k}"]
        assert strictly_increasing(mine), f"jobs-{k} got messages out of queue order (seed {SEED})"
    with queue_server.client() as client:
        assert client.llen("jobs") == 0
        assert client.hlen("unacked") == 0
        assert client.zcard("unacked_index") == 0
    print(
        f"direct: {MESSAGES} messages in {elapsed:.1f}s over {sessions_run['count']} "
        f"consumer sessions (seed {SEED})"
    )
