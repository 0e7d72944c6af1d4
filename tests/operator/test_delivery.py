"""spec.delivery: rate limits, slow-down pause, status TTL, suppression and DKIM, from the
CRD through the worker Deployment's env to the worker's own Settings."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from crdvalidate import Invalid, admit
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ophelpers import BASE_SPEC, EQ_SCHEMA, SAMPLES, admitted, eq_body, k8s_validate, make_eq, with_spec
from test_builders import _ctx, _resolve

from emailqueue.ratelimit import Limit
from emailqueue.settings import Settings
from emailqueue_operator.builders.worker_deployment import worker_deployment
from emailqueue_operator.spec import EmailQueue, EmailQueueSpec, InvalidSpec

DELIVERY: dict[str, Any] = {
    "rateLimit": "50/s:5",
    "domainRateLimits": [{"domain": "gmail.com", "rate": "20/s"}, {"domain": "yahoo.com", "rate": "500/d"}],
    "slowDownPauseSeconds": 45,
    "statusTTLSeconds": 3600,
    "suppressHardBounces": False,
    "dkim": {"domain": "example.com", "selector": "mail2026", "privateKeySecretRef": {"name": "dkim"}},
}
FULL = with_spec(delivery=DELIVERY)


def _env(eq: EmailQueue) -> dict[str, dict[str, Any]]:
    container = worker_deployment(eq, _ctx(eq))["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


#: The model is lax where admission is strict: "no" is False to pydantic, unknown fields are ignored.
_ADMISSION_ONLY = {"'no' is not of type 'boolean'", "Additional properties are not allowed ('privateKey'"}


class TestCrd:
    def test_defaults(self) -> None:
        delivery = admitted()["spec"]["delivery"]
        assert delivery == {
            "domainRateLimits": [],
            "slowDownPauseSeconds": 30,
            "statusTTLSeconds": 86400,
            "suppressHardBounces": True,
        }
        dkim = admitted(with_spec(delivery={"dkim": {"domain": "example.com", "privateKeySecretRef": {"name": "k"}}}))
        assert dkim["spec"]["delivery"]["dkim"]["selector"] == "emailqueue"
        assert dkim["spec"]["delivery"]["dkim"]["privateKeySecretRef"]["key"] == "private-key"

    def test_full_spec_is_admitted_and_parsed(self) -> None:
        delivery = make_eq(FULL).spec.delivery
        assert delivery.rate_limit == "50/s:5"
        assert delivery.rendered_domain_rate_limits() == "gmail.com=20/s,yahoo.com=500/d"
        assert (delivery.slow_down_pause_seconds, delivery.status_ttl_seconds) == (45, 3600)
        assert delivery.suppress_hard_bounces is False
        assert delivery.dkim is not None
        assert delivery.dkim.private_key_secret_ref.key == "private-key"

    @pytest.mark.parametrize(
        ("delivery", "message"),
        [
            ({"rateLimit": "fast"}, "spec.delivery.rateLimit must be COUNT/PERIOD"),
            ({"rateLimit": "0/s"}, "spec.delivery.rateLimit must be COUNT/PERIOD"),
            ({"rateLimit": "5/w"}, "spec.delivery.rateLimit must be COUNT/PERIOD"),
            ({"rateLimit": "5/s:0"}, "spec.delivery.rateLimit must be COUNT/PERIOD"),
            ({"domainRateLimits": [{"domain": "Gmail.com", "rate": "5/s"}]}, "must be a lower-case domain name"),
            ({"domainRateLimits": [{"domain": "a.com,b.com", "rate": "5/s"}]}, "must be a lower-case domain name"),
            ({"domainRateLimits": [{"domain": "gmail.com", "rate": "5 per s"}]}, "domainRateLimits[].rate must be"),
            ({"domainRateLimits": [{"domain": "gmail.com"}]}, "'rate' is a required property"),
            ({"slowDownPauseSeconds": -1}, "-1 is less than the minimum of 0"),
            ({"statusTTLSeconds": -5}, "-5 is less than the minimum of 0"),
            ({"suppressHardBounces": "no"}, "'no' is not of type 'boolean'"),
            ({"dkim": {"domain": "example.com"}}, "'privateKeySecretRef' is a required property"),
            (
                {"dkim": {"domain": "example.com", "privateKeySecretRef": {"name": "k"}, "privateKey": "PEM"}},
                "Additional properties are not allowed ('privateKey'",
            ),
            (
                {"dkim": {"domain": "example.com", "selector": "bad_sel", "privateKeySecretRef": {"name": "k"}}},
                "spec.delivery.dkim.selector must be",
            ),
            (
                {"dkim": {"domain": "-x.com", "privateKeySecretRef": {"name": "k"}}},
                "spec.delivery.dkim.domain must be",
            ),
        ],
    )
    def test_invalid_delivery_is_rejected_with_a_readable_message(self, delivery: dict[str, Any], message: str) -> None:
        with pytest.raises(Invalid) as caught:
            admit(EQ_SCHEMA, eq_body(with_spec(delivery=delivery)))
        assert message in str(caught.value)
        if message in _ADMISSION_ONLY:
            return
        # The operator's own model rejects it too (for objects that skipped admission).
        with pytest.raises(ValueError):  # noqa: PT011 - pydantic's messages vary by field
            EmailQueueSpec.model_validate(with_spec(delivery=delivery))

    @pytest.mark.parametrize(
        "name", ["EMAILQUEUE_RATE_LIMIT", "EMAILQUEUE_DKIM_PRIVATE_KEY", "EMAILQUEUE_STATUS_TTL_S"]
    )
    def test_worker_env_may_not_set_delivery_variables(self, name: str) -> None:
        spec = with_spec(worker={"env": [{"name": name, "value": "x"}]})
        with pytest.raises(Invalid, match=r"spec\.delivery"):
            admit(EQ_SCHEMA, eq_body(spec))
        with pytest.raises(ValueError, match=name):
            EmailQueueSpec.model_validate(spec)

    def test_duplicate_domains_are_an_invalid_spec(self) -> None:
        twice = [{"domain": "gmail.com", "rate": "5/s"}, {"domain": "gmail.com", "rate": "9/s"}]
        with pytest.raises(InvalidSpec, match="each domain may be listed once"):
            EmailQueue.from_body(eq_body(with_spec(delivery={"domainRateLimits": twice})))


class TestRender:
    def test_only_what_is_set(self) -> None:
        env = _env(make_eq())
        for name in ("EMAILQUEUE_RATE_LIMIT", "EMAILQUEUE_DOMAIN_RATE_LIMITS", "EMAILQUEUE_DKIM_DOMAIN"):
            assert name not in env
        assert "EMAILQUEUE_DKIM_PRIVATE_KEY" not in env
        assert env["EMAILQUEUE_RATE_PAUSE_MS"]["value"] == "30000"
        assert env["EMAILQUEUE_STATUS_TTL_S"]["value"] == "86400"
        assert env["EMAILQUEUE_SUPPRESS_HARD_BOUNCES"]["value"] == "true"

    def test_everything_set(self) -> None:
        eq = make_eq(FULL)
        env = _env(eq)
        values = {name: var.get("value") for name, var in env.items()}
        assert values["EMAILQUEUE_RATE_LIMIT"] == "50/s:5"
        assert values["EMAILQUEUE_DOMAIN_RATE_LIMITS"] == "gmail.com=20/s,yahoo.com=500/d"
        assert values["EMAILQUEUE_RATE_PAUSE_MS"] == "45000"
        assert values["EMAILQUEUE_STATUS_TTL_S"] == "3600"
        assert values["EMAILQUEUE_SUPPRESS_HARD_BOUNCES"] == "false"
        assert values["EMAILQUEUE_DKIM_DOMAIN"] == "example.com"
        assert values["EMAILQUEUE_DKIM_SELECTOR"] == "mail2026"
        # The key only ever from its Secret.
        assert env["EMAILQUEUE_DKIM_PRIVATE_KEY"] == {
            "name": "EMAILQUEUE_DKIM_PRIVATE_KEY",
            "valueFrom": {"secretKeyRef": {"name": "dkim", "key": "private-key"}},
        }
        k8s_validate(worker_deployment(eq, _ctx(eq)))
        k8s_validate(worker_deployment(eq, _ctx(eq, keda=False)))

    def test_no_duplicate_env_names(self) -> None:
        eq = make_eq(with_spec(delivery=DELIVERY, worker={"env": [{"name": "EMAILQUEUE_LOG_LEVEL", "value": "DEBUG"}]}))
        container = worker_deployment(eq, _ctx(eq))["spec"]["template"]["spec"]["containers"][0]
        names = [e["name"] for e in container["env"]]
        assert len(names) == len(set(names))


class TestWorkerContract:
    """The worker's Settings load and parse exactly the env rendered for spec.delivery."""

    def _settings(self, eq: EmailQueue, monkeypatch: pytest.MonkeyPatch, pem: str = "") -> Settings:
        secrets = {
            ("mail-redis-auth", "password"): "p@ss",
            ("smtp", "dsn"): "smtp://u:p@smtp.example.com:587",
            ("dkim", "private-key"): pem,
        }
        container = worker_deployment(eq, _ctx(eq))["spec"]["template"]["spec"]["containers"][0]
        env = _resolve(container["env"], secrets, "mail-worker-7d9f-x2x4q")
        for name in list(Settings.model_fields):
            monkeypatch.delenv(name.upper(), raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return Settings()

    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        settings = self._settings(make_eq(), monkeypatch)
        assert settings.limits() == (None, {})
        assert (settings.rate_pause_ms, settings.status_ttl_s, settings.suppress_hard_bounces) == (30000, 86400, True)
        assert settings.dkim_signer() is None
        # ...which are the worker's own defaults: rendering them changes nothing.
        defaults = Settings.model_fields
        assert defaults["rate_pause_ms"].default == settings.rate_pause_ms
        assert defaults["status_ttl_s"].default == settings.status_ttl_s
        assert defaults["suppress_hard_bounces"].default is settings.suppress_hard_bounces

    def test_everything_set(self, monkeypatch: pytest.MonkeyPatch) -> None:
        pem = _pem()
        settings = self._settings(make_eq(FULL), monkeypatch, pem)
        queue_limit, domains = settings.limits()
        assert queue_limit == Limit(50, 1000, 5)
        assert domains == {"gmail.com": Limit(20, 1000), "yahoo.com": Limit(500, 86_400_000)}
        assert settings.rate_pause_ms == 45000
        assert settings.status_ttl_s == 3600
        assert settings.suppress_hard_bounces is False
        signer = settings.dkim_signer()
        assert signer is not None
        assert (signer.domain, signer.selector, signer.private_key) == ("example.com", "mail2026", pem.encode())
        signed = signer.sign(b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
        assert signed.startswith(b"DKIM-Signature:")
        assert b"d=example.com" in signed
        assert b"s=mail2026" in signed

    def test_every_sample_rate_the_crd_admits_the_worker_parses(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for rate, limit in {
            "1/s": Limit(1, 1000),
            "3000/m": Limit(3000, 60_000),
            "2/h:2": Limit(2, 3_600_000, 2),
        }.items():
            settings = self._settings(make_eq(with_spec(delivery={"rateLimit": rate})), monkeypatch)
            assert settings.limits()[0] == limit


def test_base_spec_is_untouched() -> None:
    assert "delivery" not in BASE_SPEC


def test_the_commented_sample_block_is_admitted() -> None:
    """manifests/samples/emailqueue.yaml shows spec.delivery commented out: uncommented, it is valid."""
    lines = (SAMPLES / "emailqueue.yaml").read_text().splitlines()
    start = lines.index("  # delivery:")
    block = []
    for line in lines[start:]:
        if not line.startswith("  # "):
            break
        block.append("  " + line[4:])
    doc = next(d for d in yaml.safe_load_all("\n".join(block)) if d)
    assert set(doc["delivery"]) == set(DELIVERY)
    body = admit(EQ_SCHEMA, eq_body(with_spec(delivery=doc["delivery"])))
    assert EmailQueue.from_body(body).spec.delivery.dkim is not None
