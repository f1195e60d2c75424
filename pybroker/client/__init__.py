"""pybroker's own Kafka client: it speaks only the Kafka protocol, so it works against
pybroker and any Kafka cluster alike."""
from pybroker.client.admin import Admin, ConfigEntry, NewTopic
from pybroker.client.cluster import Client, ClusterMetadata
from pybroker.client.connection import BrokerConnection
from pybroker.client.consumer import Consumer, ConsumerRecord
from pybroker.client.producer import Producer, RecordMetadata

__all__ = [
    "Admin", "BrokerConnection", "Client", "ClusterMetadata", "ConfigEntry", "Consumer",
    "ConsumerRecord", "NewTopic", "Producer", "RecordMetadata",
]
