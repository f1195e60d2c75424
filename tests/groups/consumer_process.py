"""A confluent-kafka group member run as its own process, so a test can SIGKILL it.

argv: bootstrap topic group client_id commit_every session_timeout_ms assignor

Prints one JSON object per line, flushed, with the wall-clock time ``t``:
``{"e": "subscribed"}``, ``{"e": "assigned", "p": [partitions]}`` after each rebalance,
``{"e": "msg", "p": P, "o": OFFSET, "v": VALUE}`` per record, and
``{"e": "commit", "offsets": {P: NEXT_OFFSET}}`` once a synchronous commit returned
(every ``commit_every`` records), ``{"e": "owned", "p": [partitions]}`` whenever the whole
assignment changes (incremental protocols pass ``on_assign`` only what is added).
Assignor ``consumer`` means ``group.protocol=consumer`` (KIP-848). SIGTERM closes the consumer cleanly.
"""
import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException


def emit(kind, **fields):
    print(json.dumps({"e": kind, "t": time.time(), **fields}), flush=True)


def main():
    bootstrap, topic, group, client_id, commit_every, session_timeout_ms, assignor = sys.argv[1:8]
    commit_every = int(commit_every)
    config = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": client_id,
              "enable.auto.commit": False, "auto.offset.reset": "earliest",
              "topic.metadata.refresh.interval.ms": 2000}
    if assignor == "consumer":
        # The KIP-848 protocol: the coordinator assigns and sets the timeouts.
        config["group.protocol"] = "consumer"
    else:
        config.update({"session.timeout.ms": int(session_timeout_ms), "heartbeat.interval.ms": 500,
                       "partition.assignment.strategy": assignor})
    consumer = Consumer(config)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    positions = {}

    def on_assign(c, partitions):
        emit("assigned", p=sorted(tp.partition for tp in partitions))

    def commit():
        if not positions:
            return
        from confluent_kafka import TopicPartition
        offsets = [TopicPartition(topic, p, o) for p, o in positions.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            emit("commit_failed", error=str(exc))
            return
        emit("commit", offsets={p: o for p, o in positions.items()})
        positions.clear()

    def on_revoke(c, partitions):
        commit()
        emit("revoked", p=sorted(tp.partition for tp in partitions))

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    emit("subscribed")
    since_commit = 0
    owned = None
    while not stopping:
        msg = consumer.poll(0.1)
        now_owned = sorted(tp.partition for tp in consumer.assignment())
        if now_owned != owned:
            owned = now_owned
            emit("owned", p=owned)
        if msg is None or msg.error():
            continue
        emit("msg", p=msg.partition(), o=msg.offset(), v=msg.value().decode())
        positions[msg.partition()] = msg.offset() + 1
        since_commit += 1
        if since_commit >= commit_every:
            commit()
            since_commit = 0
    consumer.close()


if __name__ == "__main__":
    main()
