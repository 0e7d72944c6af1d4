"""Security tests: Redis ACL users and TLS, SMTP TLS and AUTH, no secret anywhere it should not be."""
