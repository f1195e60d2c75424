"""Committed consumer offsets: OffsetCommit (8) stores the next offset to read per
partition for a group; OffsetFetch (9) reads them back (-1 when none); OffsetDelete (47)
removes them (kafka-consumer-groups --delete-offsets)."""
from ..schema import Api, Array, Field, BOOL, INT16, INT32, INT64, STRING

OFFSET_COMMIT = Api(
    # v9 is v8 for KIP-848 members (generation = member epoch).
    8, "OffsetCommit", (2, 9), flexible=8,
    request=[
        Field("group_id", STRING),
        Field("generation_id_or_member_epoch", INT32, "1+", default=-1),
        Field("member_id", STRING, "1+"),
        Field("group_instance_id", STRING, "7+", nullable="7+", default=None),
        Field("retention_time_ms", INT64, "2-4", default=-1),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("committed_offset", INT64),
                Field("committed_leader_epoch", INT32, "6+", default=-1),
                Field("commit_timestamp", INT64, "1", default=-1),
                Field("committed_metadata", STRING, nullable="0+"),
            ])),
        ])),
    ],
    response=[
        Field("throttle_time_ms", INT32, "3+"),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
            ])),
        ])),
    ],
)

_FETCHED_PARTITIONS = [
    Field("partition_index", INT32),
    Field("committed_offset", INT64),
    Field("committed_leader_epoch", INT32, "5+", default=-1),
    Field("metadata", STRING, nullable="0+"),
    Field("error_code", INT16),
]

OFFSET_FETCH = Api(
    9, "OffsetFetch", (1, 9), flexible=6,
    request=[
        Field("group_id", STRING, "0-7"),
        # v2+: null asks for every partition the group has committed.
        Field("topics", Array([
            Field("name", STRING, "0-7"),
            Field("partition_indexes", Array(INT32), "0-7"),
        ]), "0-7", nullable="2-7"),
        # v8+: several groups in one request; v9+ names the KIP-848 member asking.
        Field("groups", Array([
            Field("group_id", STRING),
            Field("member_id", STRING, "9+", nullable="9+", default=None),
            Field("member_epoch", INT32, "9+", default=-1),
            Field("topics", Array([
                Field("name", STRING),
                Field("partition_indexes", Array(INT32)),
            ]), nullable="8+"),
        ]), "8+"),
        Field("require_stable", BOOL, "7+", default=False),
    ],
    response=[
        Field("throttle_time_ms", INT32, "3+"),
        Field("topics", Array([
            Field("name", STRING, "0-7"),
            Field("partitions", Array(_FETCHED_PARTITIONS), "0-7"),
        ]), "0-7"),
        Field("error_code", INT16, "2-7", default=0),
        Field("groups", Array([
            Field("group_id", STRING),
            Field("topics", Array([
                Field("name", STRING),
                Field("partitions", Array(_FETCHED_PARTITIONS)),
            ])),
            Field("error_code", INT16, default=0),
        ]), "8+"),
    ],
)

OFFSET_DELETE = Api(
    47, "OffsetDelete", (0, 0), flexible=None,
    request=[
        Field("group_id", STRING),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
            ])),
        ])),
    ],
    response=[
        # A group-level error (unknown group, a group with members of another protocol)
        # is here; per-partition errors (GROUP_SUBSCRIBED_TO_TOPIC) are below.
        Field("error_code", INT16),
        Field("throttle_time_ms", INT32),
        Field("topics", Array([
            Field("name", STRING),
            Field("partitions", Array([
                Field("partition_index", INT32),
                Field("error_code", INT16),
            ])),
        ])),
    ],
)
