"""The Apache Kafka jars, fetched from Maven Central by ``pom.xml`` beside this module into a
cache directory outside the repository, once per machine.

The cache is ``$GOVSYNC_KAFKA_CACHE`` or ``~/.cache/govsync`` (``$XDG_CACHE_HOME/govsync``);
its ``kafka-<version>-<pom digest>/`` holds every runtime jar, so a changed pom gets a fresh
directory. Maven writes into a temporary directory that is renamed into place when complete,
under a file lock, so a reader never sees half a set and two first uses do not fetch twice.
Run ``python -m sync.stack.kafka`` to fetch ahead of time (CI, an offline laptop). Other
poms (the benchmark's Kafka Connect and Debezium) use the same cache through
:func:`ensure_maven_jars`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from sync.errors import StackError

POM = Path(__file__).with_name("pom.xml")
CACHE_VARIABLE = "GOVSYNC_KAFKA_CACHE"
_MAVEN_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
MINIMUM_JAVA = 17  # Kafka 4 brokers


def kafka_version() -> str:
    """The pinned ``kafka.version`` of the pom."""
    return pom_property(POM, "kafka.version")


def pom_property(pom: Path, name: str) -> str:
    """The value of ``<properties><name>`` in ``pom``."""
    node = ElementTree.parse(pom).find(f"m:properties/m:{name}", _MAVEN_NS)
    if node is None or not node.text:
        raise StackError(f"{pom} pins no {name}")
    return node.text.strip()


def cache_root() -> Path:
    if configured := os.environ.get(CACHE_VARIABLE):
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "govsync"


def jars_dir() -> Path:
    return cached_jars_dir(POM, f"kafka-{kafka_version()}")


def cached_jars_dir(pom: Path, name: str) -> Path:
    """``<cache>/<name>-<pom digest>``: a changed pom gets a fresh directory."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:8]
    return cache_root() / f"{name}-{digest}"


def java_binary() -> str:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on the PATH; Java 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        raise StackError(
            "the Kafka broker needs Java 17 or newer: install a JDK (e.g. apt-get install "
            "openjdk-17-jre-headless) or set JAVA_HOME"
        )
    major = _java_major(java)
    if major < MINIMUM_JAVA:
        raise StackError(f"{java} is Java {major}; Kafka {kafka_version()} needs Java 17+")
    return java


def _java_major(java: str) -> int:
    done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr)
    if found is None:
        raise StackError(f"cannot tell the version of {java}: {done.stderr.strip()[:200]}")
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def fetch_command(output: Path, pom: Path = POM) -> list[str]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "the jars are fetched with Maven, which is not installed: install it (e.g. "
            f"apt-get install maven) and run `{_shown(output, pom)}`, or put the jars of {pom} "
            f"in {output.with_name(output.name.removesuffix('.partial'))}"
        )
    return [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output}",
    ]


def _shown(output: Path, pom: Path) -> str:
    return f"mvn -q -B -f {pom} dependency:copy-dependencies -DoutputDirectory={output}"


def ensure_jars() -> Path:
    """The directory of the Kafka jars, fetched with Maven on first use."""
    return ensure_maven_jars(POM, jars_dir(), "kafka_2.13-*.jar", f"the Kafka {kafka_version()}")


def ensure_maven_jars(pom: Path, target: Path, marker: str, what: str) -> Path:
    """``target``, filled with ``pom``'s runtime jars on first use; a fetch is complete when
    a jar matches the glob ``marker``. ``what`` names the set in errors."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching the same set
        if not target.is_dir():
            _fetch(pom, target, marker, what)
    return target


def _fetch(pom: Path, target: Path, marker: str, what: str) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = fetch_command(partial, pom)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"fetching {what} jars took over 15 minutes: `{_shown(partial, pom)}`"
        ) from exc
    if done.returncode != 0 or not any(partial.glob(marker)):
        output = (done.stdout + done.stderr).strip()[-3000:]
        raise StackError(
            f"could not fetch {what} jars from Maven Central (exit code {done.returncode}): "
            f"`{_shown(partial, pom)}`\n{output}"
        )
    os.replace(partial, target)


def classpath(directory: Path) -> str:
    """The JVM's class path: every jar of ``directory``."""
    return str(directory / "*")
