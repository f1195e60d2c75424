"""DescribeCluster (60): cluster id, a controller id and the live brokers, as Kafka 4's
admin tools ask first (kafka-ui, Kafdrop, AdminClient.describeCluster). Brokers only:
asking for the controllers (endpoint type 2) gets UNSUPPORTED_ENDPOINT_TYPE, as a Kafka
broker answers; no broker is ever fenced."""
from __future__ import annotations

from pybroker import errors
from pybroker.broker.apis.metadata import controller_id
from pybroker.broker.authorization import operations
from pybroker.security.acls import CLUSTER, CLUSTER_NAME

BROKERS = 1
UNKNOWN_OPERATIONS = -2147483648


def handle(broker, request) -> dict:
    body = request.body
    endpoint_type = body.get("endpoint_type", BROKERS)
    response = {"throttle_time_ms": 0, "error_code": 0, "error_message": None, "endpoint_type": endpoint_type,
                "cluster_id": broker.image.cluster_id, "controller_id": controller_id(broker), "brokers": [],
                "cluster_authorized_operations": operations(broker, request, CLUSTER, CLUSTER_NAME)
                if body.get("include_cluster_authorized_operations") else UNKNOWN_OPERATIONS}
    if endpoint_type != BROKERS:
        return {**response, "error_code": errors.UnsupportedEndpointType.code, "controller_id": -1,
                "error_message": "pybroker brokers describe brokers only (endpoint type 1)"}
    response["brokers"] = [{"broker_id": b.node_id, "host": host, "port": port, "rack": b.rack, "is_fenced": False}
                           for b in sorted(broker.image.brokers.values(), key=lambda b: b.node_id)
                           for host, port in (b.address_for(request.listener),)]
    return response
