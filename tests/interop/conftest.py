"""Fixtures of the interop tests: the Java programs of tests/interop/java, compiled once
per module against Apache Kafka's kafka-clients (fetched from Maven Central at test
time)."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

KAFKA_CLIENTS = "org.apache.kafka:kafka-clients:4.4.0"
SOURCES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "java", "*.java")))
M2 = os.path.expanduser("~/.m2/repository")
JARS = ("org/apache/kafka/kafka-clients/4.4.0/kafka-clients-4.4.0.jar", "org/slf4j/slf4j-api/*/slf4j-api-*.jar",
        "com/github/luben/zstd-jni/*/zstd-jni-*.jar", "at/yawk/lz4/lz4-java/*/lz4-java-*.jar",
        "org/xerial/snappy/snappy-java/*/snappy-java-*.jar")


@pytest.fixture(scope="module")
def java_program(tmp_path_factory):
    """``java -cp ...``: append a class name of tests/interop/java and its arguments."""
    if not all(shutil.which(tool) for tool in ("java", "javac", "mvn")):
        pytest.skip("the Java interop test needs java, javac and mvn")
    fetched = subprocess.run(["mvn", "-q", "dependency:get", f"-Dartifact={KAFKA_CLIENTS}"],
                             capture_output=True, text=True, timeout=600)
    assert fetched.returncode == 0, f"fetching {KAFKA_CLIENTS} failed:\n{fetched.stdout}\n{fetched.stderr}"
    jars = []
    for pattern in JARS:
        found = sorted(glob.glob(os.path.join(M2, pattern)))
        assert found, f"no {pattern} under {M2}"
        jars.append(found[-1])
    out = tmp_path_factory.mktemp("java")
    classpath = os.pathsep.join(jars)
    compiled = subprocess.run(["javac", "-cp", classpath, "-d", str(out), *SOURCES],
                              capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stderr
    return ["java", "-cp", classpath + os.pathsep + str(out)]
