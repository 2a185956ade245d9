"""deploy/: the image, the compose file and the Kubernetes manifests, checked offline.

Kubernetes objects are validated against Kubernetes' own schemas (kubernetes-validate,
strict: unknown fields fail); KEDA's ScaledObject, a custom resource, against a schema of
ours. Cross-checks tie them to the code: commands the CLI knows, ports the processes
listen on, variables the settings accept.
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ops.cli import _parser
from sextant.settings import Settings
from tests.support.helpers import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())

Doc = dict[str, Any]


def _manifests() -> list[Doc]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _one(kind: str, name: str) -> Doc:
    found = [d for d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def _container(deployment: str) -> Doc:
    containers = _one("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Doc = containers[0]
    return container


def _parses_as_sextant_command(args: list[str]) -> None:
    """The CLI accepts these arguments (argparse exits, failing the test, if not)."""
    _parser().parse_args(args)


# --- Kubernetes ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_matches_kubernetes_schemas(version: str) -> None:
    """Each built-in object is valid for Kubernetes `version`, with no unknown fields."""
    checked = 0
    for doc in _manifests():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 9


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The validator has teeth: a typo in a probe is refused."""
    broken = copy.deepcopy(_one("Deployment", "sextant-worker"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    """`kubectl apply -k deploy/k8s` applies every file here and nothing missing."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert {i["name"] for i in kustomization["images"]} == {"sextant"}


_SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers", "minReplicaCount", "maxReplicaCount"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "apiVersion": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 1},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"const": "kafka"},
                            # KEDA reads trigger metadata as strings.
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "required": ["lagThreshold", "offsetResetPolicy"],
                                "properties": {
                                    "offsetResetPolicy": {"enum": ["earliest", "latest"]},
                                    "lagThreshold": {"pattern": "^[0-9]+$"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_the_worker_scaled_object_fits_keda_and_the_deployment() -> None:
    """The ScaledObject has KEDA's required fields, scales the worker Deployment on the
    worker's own group and topic, and never past the topic's partitions."""
    scaled = _one("ScaledObject", "sextant-worker")
    jsonschema.validate(scaled, _SCALED_OBJECT)
    spec, config = scaled["spec"], _one("ConfigMap", "sextant")["data"]
    assert spec["scaleTargetRef"]["name"] == "sextant-worker"
    assert spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["maxReplicaCount"] == int(config["KAFKA_TOPIC_PARTITIONS"])
    metadata = spec["triggers"][0]["metadata"]
    for field in ("bootstrapServers", "consumerGroup", "topic"):
        variable = metadata[f"{field}FromEnv"]  # read from the worker's environment
        assert variable in config, variable
    assert metadata["offsetResetPolicy"] == "earliest"  # as the worker's consumer resets


def test_the_scaled_object_schema_refuses_a_missing_target() -> None:
    """Our ScaledObject schema fails a ScaledObject without scaleTargetRef."""
    broken = copy.deepcopy(_one("ScaledObject", "sextant-worker"))
    del broken["spec"]["scaleTargetRef"]
    with pytest.raises(jsonschema.ValidationError, match="scaleTargetRef"):
        jsonschema.validate(broken, _SCALED_OBJECT)


@pytest.mark.parametrize(
    ("deployment", "command", "port"),
    [("sextant-receiver", "serve", 8080), ("sextant-worker", "work", 8081)],
)
def test_pods_run_a_real_command_with_probes_resources_and_no_root(
    deployment: str, command: str, port: int
) -> None:
    """Each Deployment runs its `sextant` command, probes /healthz (liveness) and /readyz
    (readiness) on the port the process listens on, requests resources, and runs as a
    non-root user on a read-only filesystem."""
    pod = _one("Deployment", deployment)["spec"]["template"]["spec"]
    container = _container(deployment)
    assert container["args"] == [command]
    _parses_as_sextant_command(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert list(ports.values()) == [port]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports[get["port"]] == port
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "replicas" not in _one("Deployment", deployment)["spec"]  # the autoscaler's


def test_worker_port_and_grace_fit_the_worker() -> None:
    """The ConfigMap's WORKER_PORT is the probed port, and a worker has time to drain."""
    config = _one("ConfigMap", "sextant")["data"]
    assert int(config["WORKER_PORT"]) == _container("sextant-worker")["ports"][0]["containerPort"]
    worker = _one("Deployment", "sextant-worker")["spec"]["template"]["spec"]
    receiver = _one("Deployment", "sextant-receiver")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] >= 60
    pre_stop = _container("sextant-receiver")["lifecycle"]["preStop"]["exec"]["command"]
    assert receiver["terminationGracePeriodSeconds"] > int(pre_stop[-1]) + 3 * 2


def test_selectors_match_the_pods_they_mean() -> None:
    """Service, PodDisruptionBudgets and autoscalers point at the right pods."""
    labels = {
        name: _one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        for name in ("sextant-receiver", "sextant-worker")
    }
    for name, pod_labels in labels.items():
        deployment = _one("Deployment", name)
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        pdb = _one("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        assert pdb.items() <= pod_labels.items()
    service = _one("Service", "sextant-receiver")["spec"]
    assert service["selector"].items() <= labels["sextant-receiver"].items()
    assert service["ports"][0]["targetPort"] == "http"
    hpa = _one("HorizontalPodAutoscaler", "sextant-receiver")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "sextant-receiver",
    }
    assert hpa["minReplicas"] >= 2  # one pod can be disrupted while another serves


def test_the_migration_job_and_every_pod_get_their_settings() -> None:
    """The Job runs `sextant migrate`; every container takes the ConfigMap and Secret, and
    together they are settings Sextant accepts."""
    job = _one("Job", "sextant-migrate")["spec"]["template"]["spec"]
    assert job["restartPolicy"] in ("OnFailure", "Never")
    assert job["containers"][0]["args"] == ["migrate"]
    for container in (job["containers"][0], _container("sextant-receiver")):
        sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"configMapRef": "sextant", "secretRef": "sextant"}
    env = {**_one("ConfigMap", "sextant")["data"], **_one("Secret", "sextant")["stringData"]}
    settings = Settings.from_env(env)
    assert settings.kafka_topic == "sextant.events"
    assert settings.kafka_enable_idempotence is True
    assert settings.log_format == "json"


# --- compose ---------------------------------------------------------------------------------


def _compose() -> Doc:
    compose: Doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return compose


def test_compose_runs_apache_kafka_in_kraft_mode_and_postgres() -> None:
    """Apache Kafka's own image in KRaft mode (no ZooKeeper anywhere), and Postgres."""
    services = _compose()["services"]
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"])
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert not [n for n in services if "zookeeper" in n]
    assert not [v for v in kafka["environment"] if "ZOOKEEPER" in v]
    assert re.fullmatch(r"postgres:\d+[-\w]*", services["postgres"]["image"])


def test_compose_starts_in_order_with_healthchecks() -> None:
    """Migration after Postgres is healthy, topics after Kafka is healthy, receiver and
    workers after both steps completed; long-running services have healthchecks."""
    services = _compose()["services"]
    assert {"postgres", "kafka", "topics", "migrate", "receiver", "worker"} <= set(services)
    wants = {
        "migrate": {"postgres": "service_healthy"},
        "topics": {"kafka": "service_healthy"},
        "receiver": {
            "migrate": "service_completed_successfully",
            "topics": "service_completed_successfully",
        },
        "worker": {
            "migrate": "service_completed_successfully",
            "topics": "service_completed_successfully",
        },
    }
    for name, depends in wants.items():
        got = {k: v["condition"] for k, v in services[name]["depends_on"].items()}
        assert got == depends, name
    for name in ("postgres", "kafka", "receiver", "worker"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert "8080/readyz" in " ".join(services["receiver"]["healthcheck"]["test"])
    assert "8081/readyz" in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["worker"]["deploy"]["replicas"] == 3


def test_compose_commands_are_sextant_commands_on_sextant_settings() -> None:
    """Services built from deploy/Dockerfile run commands the CLI knows, with settings it
    accepts, and the topics step makes as many partitions as the settings say."""
    services = _compose()["services"]
    ours = {n: s for n, s in services.items() if s.get("build")}
    assert set(ours) == {"migrate", "receiver", "worker", "manage"}
    for service in ours.values():
        assert (ROOT / service["build"]["context"].removeprefix("../")).is_dir()
        assert (DEPLOY / ".." / service["build"]["dockerfile"]).resolve().is_file()
        _parses_as_sextant_command(service["command"])
        settings = Settings.from_env({k: str(v) for k, v in service["environment"].items()})
        assert settings.kafka_bootstrap_servers == "kafka:9092"
    topics = " ".join(services["topics"]["command"])
    assert (
        f"--topic {settings.kafka_topic} --partitions {settings.kafka_topic_partitions}" in topics
    )
    assert f"--topic {settings.kafka_dlq_topic} " in topics


# --- image -----------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_is_small_non_root_and_runs_sextant() -> None:
    """Slim pinned bases, a numeric non-root user, `sextant` as entrypoint and a real
    default command, and only files that exist copied in."""
    steps = _dockerfile()
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert bases
    assert all(re.fullmatch(r"python:3\.\d+-slim-\w+", b) for b in bases)
    user = [args for op, args in steps if op == "USER"][-1]
    assert int(user.split(":")[0]) > 0
    entrypoint = [args for op, args in steps if op == "ENTRYPOINT"][-1]
    command = [args for op, args in steps if op == "CMD"][-1]
    assert yaml.safe_load(entrypoint) == ["sextant"]
    _parses_as_sextant_command(yaml.safe_load(command))
    for op, args in steps:
        if op == "COPY" and "--from" not in args:
            for source in shlex.split(args)[:-1]:
                assert (ROOT / source).exists(), source


def test_the_build_context_holds_what_the_image_copies() -> None:
    """deploy/Dockerfile.dockerignore lets through exactly what the Dockerfile copies."""
    allowed = {
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {
        Path(source).as_posix().rstrip("/")
        for op, args in _dockerfile()
        if op == "COPY" and "--from" not in args
        for source in shlex.split(args)[:-1]
    }
    assert copied == allowed


def test_the_management_api_runs_on_its_port_with_its_token() -> None:
    """`sextant manage` on MANAGE_PORT, probed there, behind the Service, with a token the
    settings accept from the Secret."""
    container = _container("sextant-manage")
    config = _one("ConfigMap", "sextant")["data"]
    env = {**config, **_one("Secret", "sextant")["stringData"]}
    settings = Settings.from_env(env)
    assert container["args"] == ["manage"]
    _parses_as_sextant_command(container["args"])
    assert container["ports"][0]["containerPort"] == settings.manage_port == 8082
    assert settings.manage_port != settings.port
    assert settings.manage_token
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    service = _one("Service", "sextant-manage")["spec"]
    pods = _one("Deployment", "sextant-manage")["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= pods.items()
