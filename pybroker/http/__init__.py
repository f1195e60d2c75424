"""HTTP in the supervisor: ``/metrics`` for Prometheus and the web console.

- ``aggregate``: cluster totals from the brokers' periodic reports (pure).
- ``view``: the cluster read from the supervisor's state (controller, reports, groups).
- ``prometheus``: the Collector behind ``/metrics``, with Kafka's JMX exporter names.
- ``actions``: messages, test produce and offset resets, through the Kafka protocol.
- ``server``: the aiohttp application, hosted on the supervisor's event loop.
- ``static/``: the console page and its script (no CDN: it works offline).
"""
