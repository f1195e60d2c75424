"""A kafka-python or aiokafka group member run as its own process (the confluent-kafka one
is consumer_process.py); same argv and JSON events, with the client named first:

argv: client(kafka-python|aiokafka) bootstrap topic group client_id commit_every session_timeout_ms assignor

Events: {"e": "subscribed"}, {"e": "assigned", "p": [...]}, {"e": "msg", "p", "o", "v"},
{"e": "commit", "offsets": {...}}. SIGTERM closes the consumer cleanly. Each client runs
alone in its process: several clients in one interpreter starve each other's heartbeats.
"""
import asyncio
import json
import signal
import sys
import time


def emit(kind, **fields):
    print(json.dumps({"e": kind, "t": time.time(), **fields}), flush=True)


def report(batches, assignment, last: list[int] | None) -> list[int]:
    """Emit one poll's records, and the assignment when it changed; returns it."""
    for records in batches.values():
        for r in records:
            emit("msg", p=r.partition, o=r.offset, v=r.value.decode())
    current = sorted(tp.partition for tp in assignment)
    if current != last:
        emit("assigned", p=current)
    return current


def run_kafka_python(bootstrap, topic, group, client_id, session_timeout_ms, assignor, stopping):
    from groups_helpers import kafka_python_subscribe
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    strategy = RoundRobinPartitionAssignor if assignor == "roundrobin" else RangePartitionAssignor
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                             auto_offset_reset="earliest", enable_auto_commit=True,
                             auto_commit_interval_ms=500, heartbeat_interval_ms=500,
                             session_timeout_ms=session_timeout_ms,
                             partition_assignment_strategy=[strategy])
    kafka_python_subscribe(consumer, topic)
    emit("subscribed")
    last = None
    while not stopping:
        last = report(consumer.poll(timeout_ms=100), consumer.assignment(), last)
    consumer.close()


def run_aiokafka(bootstrap, topic, group, client_id, session_timeout_ms, assignor, stopping):
    from aiokafka import AIOKafkaConsumer
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    strategy = RoundRobinPartitionAssignor if assignor == "roundrobin" else RangePartitionAssignor

    async def main():
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                                    auto_offset_reset="earliest", heartbeat_interval_ms=500,
                                    auto_commit_interval_ms=500, session_timeout_ms=session_timeout_ms,
                                    partition_assignment_strategy=(strategy,))
        await consumer.start()
        emit("subscribed")
        last = None
        try:
            while not stopping:
                last = report(await consumer.getmany(timeout_ms=100), consumer.assignment(), last)
        finally:
            await consumer.stop()

    asyncio.run(main())


def main():
    client, bootstrap, topic, group, client_id, _commit_every, session_timeout_ms, assignor = sys.argv[1:9]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    run = run_kafka_python if client == "kafka-python" else run_aiokafka
    run(bootstrap, topic, group, client_id, int(session_timeout_ms), assignor, stopping)


if __name__ == "__main__":
    main()
