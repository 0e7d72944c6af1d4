"""Prometheus metrics of one worker process (its own registry, served on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self, queue: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["queue"]
        self.sent = Counter("emailqueue_sent", "Emails accepted by the SMTP server", labels, registry=self.registry)
        self.failed = Counter(
            "emailqueue_failed", "Emails dead-lettered, by reason", [*labels, "reason"], registry=self.registry
        )
        self.retried = Counter("emailqueue_retried", "Attempts scheduled for retry", labels, registry=self.registry)
        self.reclaimed = Counter(
            "emailqueue_reclaimed", "Entries reclaimed from dead consumers", labels, registry=self.registry
        )
        self.duplicates = Counter(
            "emailqueue_duplicates_suppressed",
            "Redeliveries skipped by the idempotency marker",
            labels,
            registry=self.registry,
        )
        self.send_seconds = Histogram(
            "emailqueue_send_duration_seconds",
            "Time of one SMTP delivery attempt",
            labels,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "emailqueue_in_flight", "Deliveries in progress in this process", labels, registry=self.registry
        )
        self.backlog = Gauge(
            "emailqueue_backlog", "Stream length: waiting + in flight (all workers)", labels, registry=self.registry
        )
        self.delayed = Gauge(
            "emailqueue_delayed", "Retries and scheduled sends not yet due", labels, registry=self.registry
        )
        self.dead_letters = Gauge(
            "emailqueue_dead_letters", "Entries in the failed stream", labels, registry=self.registry
        )
        self.oldest_age = Gauge(
            "emailqueue_oldest_message_age_seconds",
            "Age of the oldest outstanding entry (any lane)",
            labels,
            registry=self.registry,
        )
        self.paused = Gauge("emailqueue_paused", "1 while the queue is paused", labels, registry=self.registry)
        self.redis_used = Gauge(
            "emailqueue_redis_used_memory_bytes", "Redis used_memory", labels, registry=self.registry
        )
        self.redis_max = Gauge(
            "emailqueue_redis_maxmemory_bytes", "Redis maxmemory (0 = no limit)", labels, registry=self.registry
        )
        self.queue = queue

    def render(self) -> bytes:
        return generate_latest(self.registry)
