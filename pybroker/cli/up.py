"""`pybroker up`: run a local cluster — a supervisor and N broker processes.

Foreground by default: prints ``bootstrap: HOST:PORT,...`` once every broker accepts
connections, then ``console: http://HOST:PORT/`` (the web console and ``/metrics``, on
``--http-port``); SIGTERM or Ctrl-C shuts everything down cleanly (logs flushed, clean-shutdown
markers written, exit 0). ``--daemon`` detaches (pid file ``<data>/run/supervisor.pid``)
after the bootstrap line; ``pybroker down --data DIR`` stops it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback


def register(subparsers) -> None:
    p = subparsers.add_parser("up", help="start a local pybroker cluster (supervisor + brokers)")
    p.add_argument("--brokers", type=int, default=None,
                   help="number of broker processes (default: as many as the data dir has, 3 for a new one); "
                        "more than it has adds brokers, fewer removes none (see `pybroker scale`)")
    p.add_argument("--data", default="./pybroker-data", help="data directory (default ./pybroker-data)")
    p.add_argument("--port", type=int, default=9092,
                   help="first listener port, brokers use PORT..PORT+N-1; 0 picks free ports (default 9092)")
    p.add_argument("--host", default="127.0.0.1", help="listener address (default 127.0.0.1)")
    p.add_argument("--num-partitions", type=int, default=1, help="partitions of auto-created topics (default 1)")
    p.add_argument("--replication-factor", type=int, default=1,
                   help="replication factor of topics created without one (default 1, as Kafka)")
    p.add_argument("--no-auto-create", action="store_true", help="disable auto.create.topics.enable")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="default topic setting, e.g. --config retention.ms=60000 (repeatable)")
    p.add_argument("--broker-config", action="append", default=[], metavar="KEY=VALUE",
                   help="broker setting by its Python or Kafka name, e.g. replica_lag_time_max_ms=10000 "
                        "or connections.max.idle.ms=60000 (repeatable)")
    p.add_argument("--broker-rack", action="append", default=[], metavar="ID=RACK",
                   help="broker.rack of broker ID, e.g. --broker-rack 0=az-a --broker-rack 1=az-b (repeatable); "
                        "kept by later starts on the same --data. With racks, replicas spread over racks; "
                        "with --broker-config replica.selector.class=org.apache.kafka.common.replica."
                        "RackAwareReplicaSelector, consumers with client.rack read from a replica in their rack")
    p.add_argument("--session-timeout-ms", type=int, default=6000,
                   help="a broker silent this long is fenced and its partitions fail over (default 6000)")
    p.add_argument("--group-share-session-timeout-ms", type=int, default=45000,
                   help="share groups: a member silent this long is fenced (default 45000, as Kafka)")
    p.add_argument("--group-share-heartbeat-interval-ms", type=int, default=5000,
                   help="share groups: how often members heartbeat (default 5000, as Kafka)")
    p.add_argument("--group-share-record-lock-duration-ms", type=int, default=30000,
                   help="share groups: how long a member holds an acquired record (default 30000, as Kafka)")
    p.add_argument("--group-share-delivery-count-limit", type=int, default=5,
                   help="share groups: deliveries of a record before it is archived (default 5, as Kafka)")
    p.add_argument("--group-consumer-session-timeout-ms", type=int, default=45000,
                   help="KIP-848 consumer groups: a member silent this long is fenced (default 45000, as Kafka)")
    p.add_argument("--group-consumer-heartbeat-interval-ms", type=int, default=5000,
                   help="KIP-848 consumer groups: how often members heartbeat (default 5000, as Kafka)")
    p.add_argument("--group-consumer-migration-policy", default="bidirectional",
                   choices=["disabled", "upgrade", "downgrade", "bidirectional"],
                   help="online migration of groups with members between the classic and the consumer "
                        "protocol (group.consumer.migration.policy; default bidirectional, as Kafka)")
    p.add_argument("--group-initial-rebalance-delay-ms", type=int, default=3000,
                   help="wait for more members before a new group's first rebalance (default 3000, as Kafka)")
    p.add_argument("--offsets-retention-minutes", type=int, default=7 * 24 * 60,
                   help="committed offsets of a group empty this long expire (default 10080, as Kafka)")
    p.add_argument("--max-partitions", type=int, default=100_000,
                   help="partitions the whole cluster may hold; CreateTopics/CreatePartitions beyond it "
                        "get POLICY_VIOLATION (default 100000)")
    p.add_argument("--no-shm", action="store_true",
                   help="no shared-memory region: heartbeats, offsets and replication over sockets only")
    p.add_argument("--http-port", type=int, default=9644,
                   help="port of the web console and /metrics on --host (default 9644; 0 picks a free port)")
    p.add_argument("--console-actions", action="store_true",
                   help="allow the console's actions (create/delete topics, produce, reset offsets) when --host "
                        "is not loopback; on loopback they are always allowed")
    p.add_argument("--shm-slots", type=int, default=None, metavar="N",
                   help="offsets-table rows of the shared-memory region (default: 32768, or room for twice "
                        "the partitions the cluster has at start); partitions beyond 3/4 of it use sockets only")
    sec = p.add_argument_group("security (see the README's Security section)")
    sec.add_argument("--listener", action="append", default=[], metavar="PROTOCOL[:PORT]",
                     help="a client listener: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, with its first port "
                          "(brokers use PORT..PORT+N-1); repeatable; the first is the bootstrap line's. "
                          "Default: PLAINTEXT on --port")
    sec.add_argument("--sasl-mechanisms", default="PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", metavar="LIST",
                     help="SASL mechanisms of SASL listeners (default PLAIN,SCRAM-SHA-256,SCRAM-SHA-512)")
    sec.add_argument("--super-user", metavar="NAME:PASSWORD",
                     help="create this user (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN) on the first start")
    sec.add_argument("--ssl-certfile", help="PEM certificate (chain) of SSL listeners")
    sec.add_argument("--ssl-keyfile", help="PEM private key of --ssl-certfile")
    sec.add_argument("--ssl-cafile", help="CA bundle that client certificates must chain to (mTLS)")
    sec.add_argument("--ssl-client-auth", choices=("none", "requested", "required"), default=None,
                     help="ssl.client.auth: require a client certificate (mTLS; default none, "
                          "required when --ssl-cafile is given)")
    sec.add_argument("--tls-self-signed", action="store_true",
                     help="make (once) a CA and a broker certificate for 127.0.0.1/localhost in DATA/tls "
                          "and serve SSL listeners with them; prints the CA file for clients")
    sec.add_argument("--authorizer", choices=("acl", "none"), default="none",
                     help="acl: check every request against the cluster's ACLs (`pybroker acls`), as Kafka's "
                          "StandardAuthorizer; none (default): every client may do everything")
    sec.add_argument("--super-users", default="", metavar="'User:a;User:b'",
                     help="principals allowed everything whatever the ACLs (Kafka's super.users, ';'-separated)")
    sec.add_argument("--allow-everyone-if-no-acl-found", action="store_true",
                     help="with --authorizer acl, allow a resource that has no ACL at all "
                          "(Kafka's allow.everyone.if.no.acl.found; default: refuse)")
    p.add_argument("--daemon", action="store_true", help="detach after start; stop with `pybroker down`")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.set_defaults(func=run)


def _pairs(items: list[str], flag: str) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"pybroker up: {flag} takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key] = value
    return out


def broker_racks(items: list[str], brokers: int) -> dict[int, str]:
    """``--broker-rack ID=RACK`` items as {broker id: rack}."""
    racks = {}
    for item in items:
        node, sep, rack = item.partition("=")
        if not sep or not node.strip().isdigit() or not rack.strip():
            raise ValueError(f"--broker-rack takes ID=RACK, e.g. 0=az-a, got {item!r}")
        if int(node) >= brokers:
            raise ValueError(f"--broker-rack {item}: there are brokers 0..{brokers - 1}")
        racks[int(node)] = rack.strip()
    return racks


def check_broker_settings(settings: dict) -> None:
    """Broker settings refused before anything starts: a replica.selector.class pybroker
    does not have."""
    from pybroker.broker.replica_selector import selector_for

    for key, value in settings.items():
        if key.strip().replace(".", "_") == "replica_selector_class":
            selector_for(value)


def authorizer_settings(args) -> dict:
    """The broker settings of ``--authorizer``, ``--super-users`` and the principal of
    ``--super-user NAME:PASSWORD``."""
    if args.authorizer != "acl":
        return {}
    supers = [p.strip() for p in args.super_users.split(";") if p.strip()]
    if args.super_user:
        supers.append("User:" + args.super_user.split(":", 1)[0])
    for principal in supers:
        kind, sep, name = principal.partition(":")
        if not (sep and kind and name):
            raise SystemExit(f"pybroker up: --super-users takes principals as Type:name, got {principal!r}")
    return {"authorizer": "acl", "super_users": ";".join(dict.fromkeys(supers)),
            "allow_everyone_if_no_acl_found": str(args.allow_everyone_if_no_acl_found).lower()}


def run(args) -> int:
    from pybroker.config import TopicConfig
    from pybroker.errors import KafkaError

    if args.brokers is not None and not 1 <= args.brokers <= 64:
        print("pybroker up: --brokers must be between 1 and 64", file=sys.stderr)
        return 2
    if args.max_partitions < 1:
        print("pybroker up: --max-partitions must be at least 1", file=sys.stderr)
        return 2
    if args.shm_slots is not None and not 1 <= args.shm_slots <= 1 << 20:
        print("pybroker up: --shm-slots must be between 1 and 1048576", file=sys.stderr)
        return 2
    topic_settings = _pairs(args.config, "--config")
    try:
        args.racks = broker_racks(args.broker_rack, args.brokers)
        check_broker_settings(_pairs(args.broker_config, "--broker-config"))
    except ValueError as exc:
        print(f"pybroker up: {exc}", file=sys.stderr)
        return 2
    authorizer_settings(args)  # a bad --super-users fails here, before anything starts
    try:
        TopicConfig.parse(topic_settings)
    except KafkaError as exc:
        print(f"pybroker up: {exc}", file=sys.stderr)
        return 2
    try:
        security = _security(args)
    except ValueError as exc:
        print(f"pybroker up: {exc}", file=sys.stderr)
        return 2
    from pybroker.private_files import make_private

    data = os.path.abspath(args.data)
    make_private(data)
    os.makedirs(os.path.join(data, "logs"), exist_ok=True)
    running = running_supervisor(data)
    if running is not None:
        print(f"pybroker up: a supervisor (pid {running}) already runs on {data}", file=sys.stderr)
        return 1
    if args.tls_self_signed:
        from pybroker.security import tls

        paths = tls.self_signed(os.path.join(data, "tls"), (args.host,))
        args.ssl_certfile, args.ssl_keyfile = paths["certfile"], paths["keyfile"]
        security["settings"].update(ssl_certfile=paths["certfile"], ssl_keyfile=paths["keyfile"])
        security["ca"] = paths["cafile"]
    if any(p in ("SSL", "SASL_SSL") for p, _ in security["listeners"] or ()) and not args.ssl_certfile:
        print("pybroker up: an SSL listener needs --ssl-certfile and --ssl-keyfile, or --tls-self-signed",
              file=sys.stderr)
        return 2
    args.security = security
    if args.daemon:
        return _daemonize(args, data, topic_settings)
    from pybroker.supervisor.arbiter import StartError

    try:
        return _run_supervisor(args, data, topic_settings, on_ready=_print_ready)
    except StartError as exc:
        print(f"pybroker up: {exc}", file=sys.stderr)
        return 1


def _security(args) -> dict:
    """The security options as the supervisor takes them: listeners, broker settings
    (by BrokerConfig's names), the super user."""
    from pybroker.security.listener import parse_listener, parse_mechanisms

    listeners = [parse_listener(spec) for spec in args.listener] or None
    settings = {}
    if listeners:
        settings["sasl_enabled_mechanisms"] = ",".join(parse_mechanisms(args.sasl_mechanisms))
    for name in ("ssl_certfile", "ssl_keyfile", "ssl_cafile"):
        value = getattr(args, name)
        if value:
            if not os.path.exists(value):
                raise ValueError(f"--{name.replace('_', '-')} {value}: no such file")
            settings[name] = os.path.abspath(value)
    client_auth = args.ssl_client_auth or ("required" if args.ssl_cafile else "none")
    if client_auth != "none":
        if not args.ssl_cafile:
            raise ValueError("--ssl-client-auth needs --ssl-cafile")
        settings["ssl_client_auth"] = client_auth
    super_user = None
    if args.super_user:
        name, sep, password = args.super_user.partition(":")
        if not sep or not name or not password:
            raise ValueError("--super-user takes NAME:PASSWORD")
        super_user = (name, password)
    return {"listeners": listeners, "settings": settings, "super_user": super_user, "ca": None}


def _print_ready(bootstrap: str, console: str, extra: tuple[str, ...] = ()) -> None:
    print(f"bootstrap: {bootstrap}", flush=True)
    for line in extra:
        print(line, flush=True)
    print(f"console: {console}", flush=True)


def _ready_lines(supervisor, security: dict) -> tuple[str, ...]:
    """``listener NAME: ADDRESSES`` per listener when there are listeners, and the CA."""
    lines = []
    if supervisor.count_note:
        lines.append(supervisor.count_note)
    if security["listeners"]:
        lines += [f"listener {name}: {addresses}" for name, addresses in supervisor.listener_bootstraps().items()]
    if security["ca"]:
        lines.append(f"ssl ca: {security['ca']}")
    return tuple(lines)


def running_supervisor(data: str) -> int | None:
    """The pid of a live supervisor named by ``<data>/run/supervisor.pid``, else None (no
    file, a dead or zombie process, or a reused pid that is no ``pybroker up``)."""
    from pybroker.supervisor.arbiter import live_cmdline, read_pid, run_dir

    pid = read_pid(os.path.join(run_dir(data), "supervisor.pid"))
    cmdline = live_cmdline(pid) if pid != os.getpid() else None
    if not cmdline:
        return None
    is_pybroker = any(arg.endswith("pybroker") or "pybroker.cli" in arg for arg in cmdline)
    return pid if is_pybroker and "up" in cmdline else None


def _console(args):
    """The HTTP server (console and /metrics) on its socket, bound now: a taken port
    fails ``up`` before any broker starts."""
    from pybroker.http.server import HttpServer, bind

    try:
        sock = bind(args.host, args.http_port)
    except OSError as exc:
        raise SystemExit(f"pybroker up: cannot serve the console on {args.host}:{args.http_port}: {exc.strerror or exc} "
                         "(another pybroker up? choose another port with --http-port, 0 picks a free one)") from None
    return HttpServer(sock, allow_writes=True if args.console_actions else None)


def _run_supervisor(args, data: str, topic_settings: dict, on_ready, console=None) -> int:
    """Run the cluster until it is stopped; a StartError propagates to the caller."""
    from pybroker.group.consumer_group import ConsumerGroupSettings
    from pybroker.group.share_group import ShareGroupSettings
    from pybroker.group.coordinator import CoordinatorSettings
    from pybroker.group.state_machine import GroupSettings
    from pybroker.supervisor.arbiter import Supervisor

    fmt = logging.Formatter("%(asctime)s %(levelname)s supervisor %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(args.log_level.upper())
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(os.path.join(data, "logs", "supervisor.log"))):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    if console is None:
        console = _console(args)
    supervisor = Supervisor(
        data, brokers=args.brokers, host=args.host, base_port=args.port, topic_settings=topic_settings,
        num_partitions=args.num_partitions, replication_factor=args.replication_factor,
        auto_create=not args.no_auto_create,
        broker_settings={**_pairs(args.broker_config, "--broker-config"), **authorizer_settings(args)},
        session_timeout_s=args.session_timeout_ms / 1000.0, log_level=args.log_level,
        shared_memory=not args.no_shm, shm_slots=args.shm_slots, max_partitions=args.max_partitions,
        group_settings=CoordinatorSettings(
            group=GroupSettings(initial_rebalance_delay_ms=args.group_initial_rebalance_delay_ms),
            consumer=ConsumerGroupSettings(session_timeout_ms=args.group_consumer_session_timeout_ms,
                                           heartbeat_interval_ms=args.group_consumer_heartbeat_interval_ms,
                                           migration_policy=args.group_consumer_migration_policy),
            share=ShareGroupSettings(session_timeout_ms=args.group_share_session_timeout_ms,
                                     heartbeat_interval_ms=args.group_share_heartbeat_interval_ms,
                                     record_lock_duration_ms=args.group_share_record_lock_duration_ms,
                                     delivery_count_limit=args.group_share_delivery_count_limit),
            offsets_retention_ms=args.offsets_retention_minutes * 60_000,
        ),
        extensions=[console],
        listeners=args.security["listeners"], super_user=args.security["super_user"], racks=args.racks,
    )
    supervisor.broker_settings.update(args.security["settings"])
    try:
        return asyncio.run(supervisor.run(
            lambda bootstrap: on_ready(bootstrap, console.url, _ready_lines(supervisor, args.security))))
    finally:
        logging.shutdown()


def _daemonize(args, data: str, topic_settings: dict) -> int:
    """Double fork; the original process waits through a pipe for ``bootstrap ADDRESSES``
    and the console's URL once the cluster is ready, or ``error MESSAGE`` when it cannot
    start. The console's socket is bound before, so a taken port fails here, in the
    foreground."""
    from pybroker.supervisor.arbiter import StartError

    console = _console(args)
    read_fd, write_fd = os.pipe()
    if os.fork() > 0:
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            kind, _, line = pipe.readline().strip().partition(" ")
            console = pipe.readline().strip()
            extra = tuple(pipe.read().splitlines())
        if kind == "error":
            print(f"pybroker up: {line}", file=sys.stderr)
            return 1
        if kind != "bootstrap":
            print(f"pybroker up: the cluster did not start; see {data}/logs/supervisor.out and "
                  f"{data}/logs/supervisor.log", file=sys.stderr)
            return 1
        _print_ready(line, console, extra)
        print(f"supervisor pid file: {data}/run/supervisor.pid (stop with: pybroker down --data {data})", flush=True)
        return 0
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    out = os.open(os.path.join(data, "logs", "supervisor.out"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    pipe = os.fdopen(write_fd, "w")

    def tell_parent(*lines: str) -> None:
        pipe.write("".join(line + "\n" for line in lines))
        pipe.close()

    code = 1
    try:
        code = _run_supervisor(args, data, topic_settings,
                               lambda bootstrap, url, extra=(): tell_parent(f"bootstrap {bootstrap}", url, *extra),
                               console)
    except StartError as exc:
        print(f"pybroker up: {exc}", file=sys.stderr)
        tell_parent(f"error {exc}")
    except BaseException:
        traceback.print_exc()  # to supervisor.out: nobody else would see it
    finally:
        if not pipe.closed:
            pipe.close()
        os._exit(code)
