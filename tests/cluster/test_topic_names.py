import pytest

from pybroker.cluster.topics import validate_topic_name
from pybroker.errors import InvalidTopicException


@pytest.mark.parametrize("name", ["a", "orders", "Orders.v2", "a_b-c.d", "x" * 249, "..."])
def test_legal_names_pass(name):
    assert validate_topic_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 250, "bad name", "a/b", "naïve", "a:b", None])
def test_illegal_names_are_invalid_topic(name):
    with pytest.raises(InvalidTopicException):
        validate_topic_name(name)
