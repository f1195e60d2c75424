"""A PreEncoded element (a cached part of a response) encodes to the same bytes as the
dict it was made from, at every Metadata version."""
from __future__ import annotations

import pytest

from pybroker.protocol import api
from pybroker.protocol.schema import PreEncoded

TOPIC = {"error_code": 0, "name": "orders", "topic_id": b"\x01" * 16, "is_internal": False,
         "partitions": [{"error_code": 0, "partition_index": i, "leader_id": i % 3, "leader_epoch": 2,
                         "replica_nodes": [0, 1, 2], "isr_nodes": [i % 3], "offline_replicas": []}
                        for i in range(5)]}


def body(topics):
    return {"throttle_time_ms": 0, "brokers": [{"node_id": 0, "host": "127.0.0.1", "port": 9092, "rack": None}],
            "cluster_id": "c", "controller_id": 0, "topics": topics}


@pytest.mark.parametrize("version", range(api.APIS[api.METADATA].min_version, api.APIS[api.METADATA].max_version + 1))
def test_pre_encoded_topic_entry_matches_the_dict(version):
    element = api.response_element_schema(api.METADATA, version, "topics")
    cached = PreEncoded(element.encode(TOPIC))
    plain = b"".join(api.encode_response(api.METADATA, version, 7, body([TOPIC, TOPIC])))
    assert b"".join(api.encode_response(api.METADATA, version, 7, body([cached, TOPIC]))) == plain


def test_element_schema_refuses_a_field_that_is_no_struct_array():
    with pytest.raises(ValueError):
        api.response_element_schema(api.METADATA, 9, "cluster_id")
