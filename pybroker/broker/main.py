"""A broker process, as the supervisor starts it:

    python -m pybroker.broker.main --node-id N --data DIR --host H --port P --control SOCK

Exit codes the supervisor reads: 0 clean shutdown, ``BOOT_ERROR`` when the broker could
not start (data directory locked, port taken) — restarting at once would fail again.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

BOOT_ERROR = 3


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="pybroker-broker")
    p.add_argument("--node-id", type=int, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control", required=True, help="the supervisor's control socket")
    p.add_argument("--pid-file")
    p.add_argument("--shm", help="the cluster's shared-memory region (set by the supervisor)")
    p.add_argument("--num-partitions", type=int, default=1)
    p.add_argument("--no-auto-create", action="store_true")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--broker-config", action="append", default=[], metavar="KEY=VALUE",
                   help="broker setting by its Python or Kafka name, e.g. replica_lag_time_max_ms=5000 "
                        "or connections.max.idle.ms=60000")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def broker_config(args):
    import dataclasses

    from pybroker.config import BrokerConfig, TopicConfig

    topic_defaults = TopicConfig.parse(dict(item.split("=", 1) for item in args.config))
    overrides = {}
    fields = {f.name: f for f in dataclasses.fields(BrokerConfig)}
    for item in args.broker_config:
        key, value = item.split("=", 1)
        key = key.strip().replace(".", "_")
        if key not in fields:
            raise SystemExit(f"unknown broker setting {key}")
        default = getattr(BrokerConfig(), key)
        if isinstance(default, bool):
            overrides[key] = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            overrides[key] = type(default)(value)
    return BrokerConfig(
        broker_id=args.node_id, host=args.host, port=args.port, data_dir=args.data,
        num_partitions=args.num_partitions, auto_create_topics_enable=not args.no_auto_create,
        topic_defaults=topic_defaults, shm_name=args.shm, **overrides,
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s broker-{args.node_id} %(name)s: %(message)s")
    from pybroker.broker.broker import Broker
    from pybroker.broker.controller_link import RemoteController
    from pybroker.broker.log_manager import DataDirLocked

    from pybroker.private_files import make_private

    config = broker_config(args)
    make_private(config.data_dir)

    async def run() -> int:
        try:
            broker = Broker(config, RemoteController(args.control))
        except DataDirLocked as exc:
            logging.error("%s", exc)
            return BOOT_ERROR
        try:
            await broker.start()
        except OSError as exc:
            logging.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror)
            broker.logs.close()
            return BOOT_ERROR
        if args.pid_file:
            with open(args.pid_file, "w") as f:
                f.write(f"{os.getpid()}\n")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, broker.request_stop)
        await broker.stop_requested.wait()
        await broker.stop()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except FileNotFoundError:
                pass
        return 0

    code = asyncio.run(run())
    logging.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
