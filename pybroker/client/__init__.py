"""pybroker's own Kafka client: it speaks only the Kafka protocol, so it works against
pybroker and any Kafka cluster alike."""
from pybroker.client.admin import (
    Admin, ClusterDescription, ConfigEntry, GroupDescription, GroupListing, MemberDescription, NewTopic,
)
from pybroker.client.cluster import Client, ClusterMetadata
from pybroker.client.connection import BrokerConnection
from pybroker.client.consumer import Consumer, ConsumerRecord
from pybroker.client.container import (
    AckMode, Acknowledgment, DeadLetterPublishingRecoverer, DefaultErrorHandler, ExponentialBackOff,
    FixedBackOff, ListenerContainer,
)
from pybroker.client.producer import Producer, RecordFuture, RecordMetadata
from pybroker.client.share_consumer import AcknowledgeType, ShareConsumer, ShareRecord

__all__ = [
    "AckMode", "AcknowledgeType", "Acknowledgment", "Admin", "BrokerConnection", "Client", "ClusterDescription",
    "ClusterMetadata", "ConfigEntry", "Consumer", "ConsumerRecord", "DeadLetterPublishingRecoverer",
    "DefaultErrorHandler", "ExponentialBackOff", "FixedBackOff", "GroupDescription", "GroupListing",
    "ListenerContainer", "MemberDescription", "NewTopic", "Producer", "RecordFuture", "RecordMetadata",
    "ShareConsumer", "ShareRecord",
]
