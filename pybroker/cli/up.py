"""`pybroker up`: run a local cluster in the foreground.

Prints ``bootstrap: HOST:PORT,...`` once every listener accepts connections; SIGTERM or
Ctrl-C shuts down cleanly (logs flushed, clean-shutdown marker written, exit 0).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("up", help="start a local pybroker cluster in the foreground")
    p.add_argument("--brokers", type=int, default=1, help="number of broker processes (default 1)")
    p.add_argument("--data", default="./pybroker-data", help="data directory (default ./pybroker-data)")
    p.add_argument("--port", type=int, default=9092, help="first listener port; 0 picks free ports (default 9092)")
    p.add_argument("--host", default="127.0.0.1", help="listener address (default 127.0.0.1)")
    p.add_argument("--num-partitions", type=int, default=1, help="partitions of auto-created topics")
    p.add_argument("--no-auto-create", action="store_true", help="disable auto.create.topics.enable")
    p.add_argument(
        "--config", action="append", default=[], metavar="KEY=VALUE",
        help="default topic setting, e.g. --config retention.ms=60000 (repeatable)",
    )
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.set_defaults(func=run)


def setup_logging(level: str, path: str | None) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(level.upper())
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        file_handler = logging.FileHandler(path)
        file_handler.setFormatter(fmt)
        root.addHandler(file_handler)


def run(args) -> int:
    from pybroker.broker.broker import Broker
    from pybroker.broker.log_manager import DataDirLocked
    from pybroker.config import BrokerConfig, TopicConfig
    from pybroker.errors import KafkaError

    if args.brokers != 1:
        print("pybroker up: only --brokers 1 is available in this version", file=sys.stderr)
        return 2
    try:
        settings = dict(item.split("=", 1) for item in args.config)
        topic_defaults = TopicConfig.parse(settings)
    except ValueError:
        print("pybroker up: --config takes KEY=VALUE", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"pybroker up: {exc}", file=sys.stderr)
        return 2
    data = os.path.abspath(args.data)
    os.makedirs(data, exist_ok=True)
    setup_logging(args.log_level, os.path.join(data, "logs", "broker-0.log"))
    config = BrokerConfig(
        broker_id=0, host=args.host, port=args.port, data_dir=data,
        num_partitions=args.num_partitions, auto_create_topics_enable=not args.no_auto_create,
        topic_defaults=topic_defaults,
    )

    async def main() -> int:
        try:
            broker = Broker(config)
        except DataDirLocked as exc:
            print(f"pybroker up: {exc}", file=sys.stderr)
            return 1
        try:
            await broker.start()
        except OSError as exc:
            broker.logs.close()
            print(f"pybroker up: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"bootstrap: {config.advertised}:{broker.port}", flush=True)
        await stop.wait()
        await broker.stop()
        return 0

    code = asyncio.run(main())
    logging.shutdown()
    return code
