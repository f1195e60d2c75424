"""Kafka error codes and the exceptions that carry them.

Every error pybroker reports to a client is one of Kafka's numbered codes; the same
classes are raised inside the broker and by pybroker's own client, so a code read off
the wire always maps back to an exception (an unknown code to ``UnknownServerError``
carrying the number) instead of vanishing.
"""
from __future__ import annotations


class KafkaError(Exception):
    """Base of every error with a Kafka code. ``retriable`` says whether a client may retry."""

    code: int = -1
    retriable: bool = False
    message: str = "Unknown server error"

    def __init__(self, detail: str | None = None):
        super().__init__(detail or self.message)
        self.detail = detail


_BY_CODE: dict[int, type[KafkaError]] = {}


def _error(name: str, code: int, retriable: bool, message: str) -> type[KafkaError]:
    cls = type(name, (KafkaError,), {"code": code, "retriable": retriable, "message": message})
    _BY_CODE[code] = cls
    globals()[name] = cls
    return cls


# (name, code, retriable, message) — codes and texts from Kafka's Errors enum.
_TABLE = [
    ("UnknownServerError", -1, False, "The server experienced an unexpected error when processing the request."),
    ("OffsetOutOfRange", 1, False, "The requested offset is not within the range of offsets maintained by the server."),
    ("CorruptMessage", 2, True, "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt."),
    ("UnknownTopicOrPartition", 3, True, "This server does not host this topic-partition."),
    ("InvalidFetchSize", 4, False, "The requested fetch size is invalid."),
    ("LeaderNotAvailable", 5, True, "There is no leader for this topic-partition as we are in the middle of a leadership election."),
    ("NotLeaderOrFollower", 6, True, "For requests intended only for the leader, this error indicates that the broker is not the current leader."),
    ("RequestTimedOut", 7, True, "The request timed out."),
    ("BrokerNotAvailable", 8, False, "The broker is not available."),
    ("ReplicaNotAvailable", 9, True, "The replica is not available for the requested topic-partition."),
    ("MessageTooLarge", 10, False, "The request included a message larger than the max message size the server will accept."),
    ("StaleControllerEpoch", 11, False, "The controller moved to another broker."),
    ("OffsetMetadataTooLarge", 12, False, "The metadata field of the offset request was too large."),
    ("NetworkException", 13, True, "The server disconnected before a response was received."),
    ("CoordinatorLoadInProgress", 14, True, "The coordinator is loading and hence can't process requests."),
    ("CoordinatorNotAvailable", 15, True, "The coordinator is not available."),
    ("NotCoordinator", 16, True, "This is not the correct coordinator."),
    ("InvalidTopicException", 17, False, "The request attempted to perform an operation on an invalid topic."),
    ("RecordListTooLarge", 18, False, "The request included message batch larger than the configured segment size on the server."),
    ("NotEnoughReplicas", 19, True, "Messages are rejected since there are fewer in-sync replicas than required."),
    ("NotEnoughReplicasAfterAppend", 20, True, "Messages are written to the log, but to fewer in-sync replicas than required."),
    ("InvalidRequiredAcks", 21, False, "Produce request specified an invalid value for required acks."),
    ("IllegalGeneration", 22, False, "Specified group generation id is not valid."),
    ("InconsistentGroupProtocol", 23, False, "The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list."),
    ("InvalidGroupId", 24, False, "The configured groupId is invalid."),
    ("UnknownMemberId", 25, False, "The coordinator is not aware of this member."),
    ("InvalidSessionTimeout", 26, False, "The session timeout is not within the range allowed by the broker."),
    ("RebalanceInProgress", 27, False, "The group is rebalancing, so a rejoin is needed."),
    ("InvalidCommitOffsetSize", 28, False, "The committing offset data size is not valid."),
    ("TopicAuthorizationFailed", 29, False, "Topic authorization failed."),
    ("GroupAuthorizationFailed", 30, False, "Group authorization failed."),
    ("ClusterAuthorizationFailed", 31, False, "Cluster authorization failed."),
    ("InvalidTimestamp", 32, False, "The timestamp of the message is out of acceptable range."),
    ("UnsupportedSaslMechanism", 33, False, "The broker does not support the requested SASL mechanism."),
    ("IllegalSaslState", 34, False, "Request is not valid given the current SASL state."),
    ("UnsupportedVersion", 35, False, "The version of API is not supported."),
    ("TopicAlreadyExists", 36, False, "Topic with this name already exists."),
    ("InvalidPartitions", 37, False, "Number of partitions is below 1."),
    ("InvalidReplicationFactor", 38, False, "Replication factor is below 1 or larger than the number of available brokers."),
    ("InvalidReplicaAssignment", 39, False, "Replica assignment is invalid."),
    ("InvalidConfig", 40, False, "Configuration is invalid."),
    ("NotController", 41, True, "This is not the correct controller for this cluster."),
    ("InvalidRequest", 42, False, "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker."),
    ("UnsupportedForMessageFormat", 43, False, "The message format version on the broker does not support the request."),
    ("PolicyViolation", 44, False, "Request parameters do not satisfy the configured policy."),
    ("OutOfOrderSequenceNumber", 45, False, "The broker received an out of order sequence number."),
    ("DuplicateSequenceNumber", 46, False, "The broker received a duplicate sequence number."),
    ("InvalidProducerEpoch", 47, False, "Producer attempted to produce with an old epoch."),
    ("InvalidTxnState", 48, False, "The producer attempted a transactional operation in an invalid state."),
    ("InvalidProducerIdMapping", 49, False, "The producer attempted to use a producer id which is not currently assigned to its transactional id."),
    ("InvalidTransactionTimeout", 50, False, "The transaction timeout is larger than the maximum value allowed by the broker."),
    ("ConcurrentTransactions", 51, True, "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing."),
    ("TransactionCoordinatorFenced", 52, False, "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer."),
    ("TransactionalIdAuthorizationFailed", 53, False, "Transactional Id authorization failed."),
    ("SecurityDisabled", 54, False, "Security features are disabled."),
    ("OperationNotAttempted", 55, False, "The broker did not attempt to execute this operation."),
    ("KafkaStorageError", 56, True, "Disk error when trying to access log file on the disk."),
    ("LogDirNotFound", 57, False, "The user-specified log directory is not found in the broker config."),
    ("SaslAuthenticationFailed", 58, False, "SASL Authentication failed."),
    ("UnknownProducerId", 59, False, "This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question."),
    ("ReassignmentInProgress", 60, False, "A partition reassignment is in progress."),
    ("DelegationTokenAuthDisabled", 61, False, "Delegation Token feature is not enabled."),
    ("DelegationTokenNotFound", 62, False, "Delegation Token is not found on server."),
    ("DelegationTokenOwnerMismatch", 63, False, "Specified Principal is not valid Owner/Renewer."),
    ("DelegationTokenRequestNotAllowed", 64, False, "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels."),
    ("DelegationTokenAuthorizationFailed", 65, False, "Delegation Token authorization failed."),
    ("DelegationTokenExpired", 66, False, "Delegation Token is expired."),
    ("InvalidPrincipalType", 67, False, "Supplied principalType is not supported."),
    ("NonEmptyGroup", 68, False, "The group is not empty."),
    ("GroupIdNotFound", 69, False, "The group id does not exist."),
    ("FetchSessionIdNotFound", 70, True, "The fetch session ID was not found."),
    ("InvalidFetchSessionEpoch", 71, True, "The fetch session epoch is invalid."),
    ("ListenerNotFound", 72, True, "There is no listener on the leader broker that matches the listener on which metadata request was processed."),
    ("TopicDeletionDisabled", 73, False, "Topic deletion is disabled."),
    ("FencedLeaderEpoch", 74, True, "The leader epoch in the request is older than the epoch on the broker."),
    ("UnknownLeaderEpoch", 75, True, "The leader epoch in the request is newer than the epoch on the broker."),
    ("UnsupportedCompressionType", 76, False, "The requesting client does not support the compression type of given partition."),
    ("StaleBrokerEpoch", 77, False, "Broker epoch has changed."),
    ("OffsetNotAvailable", 78, True, "The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing."),
    ("MemberIdRequired", 79, False, "The group member needs to have a valid member id before actually entering a consumer group."),
    ("PreferredLeaderNotAvailable", 80, True, "The preferred leader was not available."),
    ("GroupMaxSizeReached", 81, False, "The consumer group has reached its max size."),
    ("FencedInstanceId", 82, False, "The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id."),
    ("EligibleLeadersNotAvailable", 83, True, "Eligible topic partition leaders are not available."),
    ("ElectionNotNeeded", 84, True, "Leader election not needed for topic partition."),
    ("NoReassignmentInProgress", 85, False, "No partition reassignment is in progress."),
    ("GroupSubscribedToTopic", 86, False, "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it."),
    ("InvalidRecord", 87, False, "This record has failed the validation on broker and hence will be rejected."),
    ("UnstableOffsetCommit", 88, True, "There are unstable offsets that need to be cleared."),
    ("ThrottlingQuotaExceeded", 89, False, "The throttling quota has been exceeded."),
    ("ProducerFenced", 90, False, "There is a newer producer with the same transactionalId which fences the current one."),
    ("ResourceNotFound", 91, False, "A request illegally referred to a resource that does not exist."),
    ("DuplicateResource", 92, False, "A request illegally referred to the same resource twice."),
    ("UnacceptableCredential", 93, False, "Requested credential would not meet criteria for acceptability."),
    ("InconsistentVoterSet", 94, False, "Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters."),
    ("InvalidUpdateVersion", 95, False, "The given update version was invalid."),
    ("FeatureUpdateFailed", 96, False, "Unable to update finalized features due to an unexpected server error."),
    ("PrincipalDeserializationFailure", 97, False, "Request principal deserialization failed during forwarding. This indicates an internal error on the broker cluster security setup."),
    ("SnapshotNotFound", 98, False, "Requested snapshot was not found."),
    ("PositionOutOfRange", 99, False, "Requested position is not greater than or equal to zero, and less than the size of the snapshot."),
    ("UnknownTopicId", 100, True, "This server does not host this topic ID."),
    ("DuplicateBrokerRegistration", 101, False, "This broker ID is already in use."),
    ("BrokerIdNotRegistered", 102, False, "The given broker ID was not registered."),
    ("InconsistentTopicId", 103, True, "The log's topic ID did not match the topic ID in the request."),
    ("InconsistentClusterId", 104, False, "The clusterId in the request does not match that found on the server."),
    ("TransactionalIdNotFound", 105, False, "The transactionalId could not be found."),
    ("FetchSessionTopicIdError", 106, True, "The fetch session encountered inconsistent topic ID usage."),
    ("IneligibleReplica", 107, False, "The new ISR contains at least one ineligible replica."),
    ("NewLeaderElected", 108, False, "The AlterPartition request successfully updated the partition state but the leader has changed."),
    ("OffsetMovedToTieredStorage", 109, False, "The requested offset is moved to tiered storage."),
    ("FencedMemberEpoch", 110, False, "The member epoch is fenced by the group coordinator. The member must abandon all its partitions and rejoin."),
    ("UnreleasedInstanceId", 111, False, "The instance ID is still used by another member in the consumer group. That member must leave first."),
    ("UnsupportedAssignor", 112, False, "The assignor or its version range is not supported by the consumer group."),
    ("StaleMemberEpoch", 113, False, "The member epoch is stale. The member must retry after receiving its updated member epoch via the ConsumerGroupHeartbeat API."),
    ("MismatchedEndpointType", 114, False, "The request was sent to an endpoint of the wrong type."),
    ("UnsupportedEndpointType", 115, False, "This endpoint type is not supported yet."),
    ("UnknownControllerId", 116, False, "This controller ID is not known."),
    ("UnknownSubscriptionId", 117, False, "Client sent a push telemetry request with an invalid or outdated subscription ID."),
    ("TelemetryTooLarge", 118, False, "Client sent a push telemetry request larger than the maximum size the broker will accept."),
    ("InvalidRegistration", 119, False, "The controller has considered the broker registration to be invalid."),
    ("TransactionAbortable", 120, False, "The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID."),
    ("InvalidRecordState", 121, False, "The record state is invalid. The acknowledgement of delivery could not be completed."),
    ("ShareSessionNotFound", 122, True, "The share session was not found."),
    ("InvalidShareSessionEpoch", 123, True, "The share session epoch is invalid."),
    ("FencedStateEpoch", 124, False, "The share coordinator rejected the request because the share-group state epoch did not match."),
    ("InvalidVoterKey", 125, False, "The voter key doesn't match the receiving replica's key."),
    ("DuplicateVoter", 126, False, "The voter is already part of the set of voters."),
    ("VoterNotFound", 127, False, "The voter is not part of the set of voters."),
    ("InvalidRegularExpression", 128, False, "The regular expression is not valid."),
    ("RebootstrapRequired", 129, False, "Client metadata is stale. The client should rebootstrap to obtain new metadata."),
]

for _row in _TABLE:
    _error(*_row)

NONE = 0


def for_code(code: int) -> type[KafkaError]:
    """The exception class of a Kafka error code; an unknown code maps to a fresh subclass
    of UnknownServerError that keeps the number, so it is never lost."""
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = type(f"KafkaError{code}", (_BY_CODE[-1],), {"code": code})
    return cls


def raise_for_code(code: int, detail: str | None = None) -> None:
    if code:
        raise for_code(code)(detail)


def name_of(code: int) -> str:
    """Kafka's upper-case name of a code, e.g. 35 -> 'UNSUPPORTED_VERSION'."""
    if code == 0:
        return "NONE"
    cls = _BY_CODE.get(code)
    if cls is None:
        return f"UNKNOWN_{code}"
    import re
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).upper()


# Names referenced by other modules (defined dynamically above); listed so linters and
# readers can see them.
UnknownServerError: type[KafkaError]
OffsetOutOfRange: type[KafkaError]
CorruptMessage: type[KafkaError]
UnknownTopicOrPartition: type[KafkaError]
InvalidTopicException: type[KafkaError]
MessageTooLarge: type[KafkaError]
InvalidRequiredAcks: type[KafkaError]
UnsupportedVersion: type[KafkaError]
TopicAlreadyExists: type[KafkaError]
InvalidPartitions: type[KafkaError]
InvalidReplicationFactor: type[KafkaError]
InvalidConfig: type[KafkaError]
InvalidRequest: type[KafkaError]
NotLeaderOrFollower: type[KafkaError]
OutOfOrderSequenceNumber: type[KafkaError]
DuplicateSequenceNumber: type[KafkaError]
InvalidProducerEpoch: type[KafkaError]
InvalidTxnState: type[KafkaError]
InvalidProducerIdMapping: type[KafkaError]
InvalidTransactionTimeout: type[KafkaError]
ConcurrentTransactions: type[KafkaError]
ProducerFenced: type[KafkaError]
TransactionalIdNotFound: type[KafkaError]
TransactionAbortable: type[KafkaError]
UnstableOffsetCommit: type[KafkaError]
CoordinatorNotAvailable: type[KafkaError]
UnknownProducerId: type[KafkaError]
KafkaStorageError: type[KafkaError]
RecordListTooLarge: type[KafkaError]
InvalidRecord: type[KafkaError]
UnsupportedCompressionType: type[KafkaError]
LeaderNotAvailable: type[KafkaError]
FencedLeaderEpoch: type[KafkaError]
UnknownLeaderEpoch: type[KafkaError]
NotEnoughReplicas: type[KafkaError]
RequestTimedOut: type[KafkaError]
InvalidUpdateVersion: type[KafkaError]
IneligibleReplica: type[KafkaError]
InvalidReplicaAssignment: type[KafkaError]
TopicDeletionDisabled: type[KafkaError]
