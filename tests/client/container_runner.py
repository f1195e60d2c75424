"""A process running a listener container that SIGKILLs itself on a chosen record.

    python container_runner.py BOOTSTRAP TOPIC GROUP ACK_MODE KILL_AT_OFFSET [ACK_COUNT ACK_TIME_MS]

The listener (acknowledging every record under the MANUAL modes) kills the process when
it is handed the record at KILL_AT_OFFSET, before processing it: what the group has
committed at that instant is what the ack mode committed so far.
"""
import os
import signal
import sys

from pybroker.client.container import AckMode, ListenerContainer


def main() -> None:
    bootstrap, topic, group, mode, kill_at = sys.argv[1:6]
    ack_count = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    ack_time_ms = int(sys.argv[7]) if len(sys.argv) > 7 else 5000
    mode = AckMode(mode)
    kill_at = int(kill_at)

    def listener(record, ack=None):
        if record.offset == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if ack is not None:
            ack.acknowledge()

    container = ListenerContainer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "max.poll.records": 4, "heartbeat.interval.ms": 100, "fetch.max.wait.ms": 100},
        [topic], listener, ack_mode=mode, ack_count=ack_count, ack_time_ms=ack_time_ms,
        poll_timeout_ms=200)
    container.run()


if __name__ == "__main__":
    main()
